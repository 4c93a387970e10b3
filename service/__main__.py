"""``python -m service``: serve with settings from the ``CTR_*`` environment."""

from service.server import serve

serve()
