"""Options several commands share: the model repository and the work directory (one declaration, one help
text), options that take a comma-separated list of numbers (``--lambdas 0,0.9``, ``--rates 1000,2000``),
and options that only one mode of a command reads.

A value that is not a number of the kind asked ends the command with one line naming the option and
the value (cli/errors.py), where ``float("abc")`` alone said only "could not convert string to float".
An option given where it would be ignored is refused the same way (``refuse_unread``): ``ctr simulate
--shards 4 --days 30`` wrote four days, not thirty, without a word.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Annotated, TypeVar

import typer

Number = TypeVar("Number", int, float)

RepositoryOption = Annotated[Path, typer.Option("--repository", "-r", help="The model repository directory.")]
WorkDirOption = Annotated[Path, typer.Option("--work-dir", help="Where simulated logs and checkpoints go.")]


def numbers(text: str, kind: Callable[[str], Number], option: str) -> tuple[Number, ...]:
    """The values of ``text`` (comma-separated) as ``kind``; ValueError naming ``option`` otherwise."""
    values = []
    for part in text.split(","):
        try:
            values.append(kind(part.strip()))
        except ValueError:
            what = "integers" if kind is int else "numbers"
            raise ValueError(f"{option} takes comma-separated {what}; {part.strip()!r} is not one") from None
    return tuple(values)


def refuse_unread(context: typer.Context, names: list[str], why: str) -> None:
    """BadParameter naming those of the parameters ``names`` given on the command line (not left at
    their defaults), which the mode chosen does not read, and ``why``."""
    sources = {name: context.get_parameter_source(name) for name in names}  # typer vendors click's enum: by name
    given = [name for name, source in sources.items() if source is not None and source.name != "DEFAULT"]
    if given:
        flags = " and ".join("--" + name.replace("_", "-") for name in given)
        raise typer.BadParameter(f"{flags} {'is' if len(given) == 1 else 'are'} not read {why}")
