"""User mistakes end the ``ctr`` command with one line saying what is wrong and what to do.

A missing file or config, a malformed spec or config, a missing log column or an unknown kind raises
``FileNotFoundError``/``FileExistsError``/``ValueError`` (``FeatureError`` included) with a message
naming the problem; the command prints ``error: <message>`` to stderr and exits 2, without a
traceback. ``ctr -v ...`` keeps the traceback for debugging. Other exceptions are bugs and propagate.
"""

from __future__ import annotations

import sys
from typing import Any

import typer

USER_ERRORS = (FileNotFoundError, FileExistsError, NotADirectoryError, ValueError)


class UserErrorTyper(typer.Typer):
    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        try:
            return super().__call__(*args, **kwargs)
        except USER_ERRORS as error:
            if "-v" in sys.argv[1:2] or "--verbose" in sys.argv[1:2]:
                raise
            message = str(error).splitlines()[0] if str(error) else type(error).__name__
            typer.echo(f"error: {message}", err=True)
            raise SystemExit(2) from None
