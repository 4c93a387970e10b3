"""Command help as paragraphs: a docstring's line breaks inside a paragraph are not the help's.

Typer's rich help prints a command's docstring with its line breaks where the source wrapped it (at
120 columns of code): ``ctr --help`` broke "... that has a config but" / "no exported version yet"
mid-sentence. ``HelpTyper`` registers each command with the lines of every paragraph joined, the blank
lines between paragraphs kept, and a paragraph click marks ``\\b`` (keep my lines) as written.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable
from typing import Any

import typer


def unwrapped(text: str | None) -> str | None:
    """``text`` with the line breaks inside each paragraph made spaces; paragraphs (blank-line separated)
    kept, and a ``\\b`` paragraph as it is."""
    if text is None:
        return None
    paragraphs = inspect.cleandoc(text).split("\n\n")
    return "\n\n".join(
        paragraph if paragraph.startswith("\b") else " ".join(line.strip() for line in paragraph.splitlines())
        for paragraph in paragraphs
    )


class HelpTyper(typer.Typer):
    """A Typer whose commands' help (``help=`` or the docstring) is registered ``unwrapped``."""

    def command(self, *args: Any, **kwargs: Any) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
        register = super().command(*args, **kwargs)

        def decorator(function: Callable[..., Any]) -> Callable[..., Any]:
            register(function)
            info = self.registered_commands[-1]
            info.help = unwrapped(info.help if info.help is not None else inspect.getdoc(function))
            return function

        return decorator
