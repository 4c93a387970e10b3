"""``python -m service``: serve with settings from the ``CTR_*`` environment; a setting that is wrong is
said in one line naming its variable, exit 2, as ``ctr serve`` says it (it was a 17-line traceback)."""

import sys

from pydantic import ValidationError

from service.server import serve
from service.settings import Settings, invalid_settings

try:
    settings = Settings()
except ValidationError as error:
    sys.stderr.write(f"error: {invalid_settings(error)}\n")
    sys.exit(2)
serve(settings)
