"""The settings a service starts with, said in one line at its start: those that differ from the defaults (or that
an option of ``ctr serve`` gave), each with where it came from.

Nothing else in the log showed that ``CTR_BATCHING=false``, a time-out, polling or the admin routes took effect,
nor that an option overrode a variable (``CTR_PORT=abc ctr serve --port 18516`` started without a word): the
line names the option and the variable it stood over. The admin token is said as ``set``, never its value. In
the JSON format (log_format.py) the line also has the values as ``settings`` and their origins as
``settings_from``, so a log query need not parse the message.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import Any

import orjson

from service.settings import PREFIX, Settings

logger = logging.getLogger(__name__)

SECRET_SETTINGS = frozenset({"admin_token"})  # said as "set": a log is read by more people than the token's holders


def effective_settings(
    settings: Settings, options: Mapping[str, str], environment: Mapping[str, str]
) -> tuple[dict[str, Any], dict[str, str]]:
    """The settings that differ from their defaults or that an option gave (``options``: setting -> the option,
    ``{"port": "--port"}``), as JSON values; and where each came from: the option (", over CTR_PORT" where the
    variable was set too), its variable where ``environment`` holds it, else "given" (a caller's Settings)."""
    variables = {name.upper() for name in environment}
    values: dict[str, Any] = {}
    sources: dict[str, str] = {}
    dumped = settings.model_dump(mode="json")
    for name, field in Settings.model_fields.items():
        if name not in options and getattr(settings, name) == field.get_default(call_default_factory=True):
            continue
        variable = PREFIX + name.upper()
        values[name] = "set" if name in SECRET_SETTINGS else dumped[name]
        if name in options:
            sources[name] = options[name] + (f", over {variable}" if variable in variables else "")
        else:
            sources[name] = variable if variable in variables else "given"
    return values, sources


def log_effective_settings(settings: Settings, options: Mapping[str, str], environment: Mapping[str, str]) -> None:
    """One INFO line of ``effective_settings``: ``port=18516 (--port, over CTR_PORT), batching=false
    (CTR_BATCHING)``; the fields ``settings`` and ``settings_from`` in the JSON format."""
    values, sources = effective_settings(settings, options, environment)
    if not values:
        logger.info("settings: the defaults (no CTR_ variable or option changed one)")
        return
    said = ", ".join(f"{name}={_shown(value)} ({sources[name]})" for name, value in values.items())
    logger.info("settings other than the defaults: %s", said, extra={"settings": values, "settings_from": sources})


def _shown(value: Any) -> str:
    """A string as it is (a path, a model's name), any other value as JSON writes it (``false``, ``[1, 64]``)."""
    return value if isinstance(value, str) else orjson.dumps(value).decode()
