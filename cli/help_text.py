"""Command help as paragraphs: a docstring's line breaks inside a paragraph are not the help's.

Typer's rich help prints a command's docstring with its line breaks where the source wrapped it (at
120 columns of code): ``ctr --help`` broke "... that has a config but" / "no exported version yet"
mid-sentence. ``HelpTyper`` registers each command with the lines of every paragraph joined, the blank
lines between paragraphs kept, and a paragraph click marks ``\\b`` (keep my lines) as written.

Below ``RICH_HELP_COLUMNS`` (an 80-column terminal, and a pipe or a file, which rich and click take for 80
columns), rich's option tables cut option names and defaults short (``--no-service-wo…``,
``[default: naive,debiased,or…``), so the help is click's plain one there, whose columns wrap and never cut
(a group's list of commands keeps click's one-line summaries, cut with "...": the whole first paragraph as
the summary broke fish's and PowerShell's completion, which print it, into lines read as commands).
"""

from __future__ import annotations

import inspect
import shutil
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


RICH_HELP_COLUMNS = 100  # from here every command's rich help has room for its option names and defaults


class HelpTyper(typer.Typer):
    """A Typer whose commands' help (``help=`` or the docstring) is registered ``unwrapped``; run as the
    command line, its help and usage errors are rich's from ``RICH_HELP_COLUMNS`` columns, click's below."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._wide_markup = self.rich_markup_mode  # what a wide terminal gets

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        wide = shutil.get_terminal_size().columns >= RICH_HELP_COLUMNS  # COLUMNS, else the terminal's, else 80
        self.rich_markup_mode = self._wide_markup if wide else None  # a sub-command's group takes the root's
        return super().__call__(*args, **kwargs)

    def command(self, *args: Any, **kwargs: Any) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
        register = super().command(*args, **kwargs)

        def decorator(function: Callable[..., Any]) -> Callable[..., Any]:
            register(function)
            info = self.registered_commands[-1]
            info.help = unwrapped(info.help if info.help is not None else inspect.getdoc(function))
            return function

        return decorator
