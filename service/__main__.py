"""``python -m service``: serve with settings from the ``CTR_*`` environment; a setting that is wrong is
said in one line naming its variable, exit 2, as ``ctr serve`` says it (it was a 17-line traceback). It takes
no arguments: ``--help`` prints where its settings come from (exit 0), any other argument is refused in one
line (exit 2); both served the defaults on port 8000, ``--port 9000`` silently so."""

import sys

from pydantic import ValidationError

from service.server import serve
from service.settings import Settings, invalid_settings

USAGE = (
    "usage: python -m service (no arguments): serves the model repository with settings from CTR_* environment "
    'variables, e.g. CTR_PORT=9000 python -m service; each one\'s default, unit and range: docs/serving.md, "Settings"'
)

if sys.argv[1:] in (["--help"], ["-h"]):
    sys.stdout.write(USAGE + "\n")
    sys.exit(0)
if sys.argv[1:]:
    sys.stderr.write(f"error: python -m service takes no arguments, not {' '.join(sys.argv[1:])!r}: {USAGE}\n")
    sys.exit(2)
try:
    settings = Settings()
except ValidationError as error:
    sys.stderr.write(f"error: {invalid_settings(error)}\n")
    sys.exit(2)
serve(settings)
