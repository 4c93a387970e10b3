"""Options several commands share: the model repository and the work directory (one declaration, one help
text), options that take a comma-separated list of numbers (``--lambdas 0,0.9``, ``--rates 1000,2000``),
and options that only one mode of a command reads.

A value that is not a number of the kind asked ends the command with one line naming the option and
the value (cli/errors.py), where ``float("abc")`` alone said only "could not convert string to float".
An option given where it would be ignored is refused the same way (``refuse_unread``): ``ctr simulate
--shards 4 --days 30`` wrote four days, not thirty, without a word.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, TypeVar

import typer

if TYPE_CHECKING:
    from service.settings import Settings

Number = TypeVar("Number", int, float)

# The service's settings that `ctr serve` (and `ctr prepare`, `ctr score`) take as options, and those options
SETTING_OPTIONS = {
    "host": "--host",
    "port": "--port",
    "model_repository": "--repository",
    "ctr_model": "--ctr-model",
    "ctcvr_model": "--ctcvr-model",
}

REPOSITORY_HELP = "The model repository directory (default: CTR_MODEL_REPOSITORY, else models)."
# CTR_MODEL_REPOSITORY, as `ctr serve`, `prepare` and `score` read it: `sample-request`, `train` and `evaluate`
# ignored it, so where it was set (the image sets it) they looked for a models/ folder the service did not serve from
RepositoryOption = Annotated[
    Path,
    typer.Option("--repository", "-r", envvar="CTR_MODEL_REPOSITORY", show_envvar=False, help=REPOSITORY_HELP),
]
# The same option for the commands that take the service's settings (`serve`, `prepare`, `score`): None where it is
# not given, so that the settings read CTR_MODEL_REPOSITORY themselves and a mistake in it is said naming the
# variable, not --repository (``given_options``)
ServedRepositoryOption = Annotated[Path | None, typer.Option("--repository", "-r", help=REPOSITORY_HELP)]
WorkDirOption = Annotated[Path, typer.Option("--work-dir", help="Where simulated logs and checkpoints go.")]
ProgressOption = Annotated[
    bool | None, typer.Option("--progress/--no-progress", help="Progress bars (default: when stderr is a terminal).")
]


def shown_progress(progress: bool | None) -> bool:
    """``--progress`` / ``--no-progress`` as given, else whether stderr is a terminal: the bars' carriage
    returns filled a redirected log (a CI job's, ``2> err``) with kilobytes of half-drawn lines."""
    import sys

    return sys.stderr.isatty() if progress is None else progress


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


def above_zero(value: float, option: str) -> None:
    """ValueError naming ``option`` unless ``value`` is above 0 (the load generator's own "rate and duration must
    be positive" named neither, and came once the services had started)."""
    if not value > 0:
        raise ValueError(f"{option} takes requests/s above 0; {value:g} is not")


def refuse_unread(context: typer.Context, names: list[str], why: str) -> None:
    """BadParameter naming those of the parameters ``names`` given on the command line (not left at
    their defaults), which the mode chosen does not read, and ``why``."""
    sources = {name: context.get_parameter_source(name) for name in names}  # typer vendors click's enum: by name
    given = [name for name, source in sources.items() if source is not None and source.name != "DEFAULT"]
    if given:
        flags = " and ".join("--" + name.replace("_", "-") for name in given)
        raise typer.BadParameter(f"{flags} {'is' if len(given) == 1 else 'are'} not read {why}")


def explicit_only(context: typer.Context, name: str, value: str | None) -> str | None:
    """``value`` when the option ``name`` was given on the command line, None when it came from the
    environment. An exported CTR_ADMIN_TOKEN (the service's own setting, in the shell that started it) is
    no request to retrain through a service: without --url and --repository it is not read, where it made
    a plain `ctr auction` refuse "--repository and --admin-token are for a running service (--url)"."""
    source = context.get_parameter_source(name)
    return None if source is not None and source.name == "ENVIRONMENT" else value  # typer vendors click's enum


def settings_with_options(given: dict[str, Any]) -> Settings:
    """The service's settings, the options ``given`` (a key of ``SETTING_OPTIONS``; None: not given) over
    the CTR_* environment. What is wrong with a setting, here or when the service binds its address, is
    said naming the option where the user gave one (``--port``), not the variable it overrides."""
    from pydantic import ValidationError

    from cli.errors import one_line
    from service.binding import name_settings
    from service.settings import Settings

    overrides = {key: value for key, value in given.items() if value is not None}  # --port 0 is refused, not dropped
    try:
        settings = Settings(**overrides)
    except ValidationError as error:
        message = one_line(error)
        for field in overrides:  # "CTR_PORT:" and "must differ from CTR_PORT (9000)" alike
            message = re.sub(rf"\bCTR_{field.upper()}\b", SETTING_OPTIONS[field], message)
        raise ValueError(message) from None
    name_settings(given_options(given))
    return settings


def given_options(given: dict[str, Any]) -> dict[str, str]:
    """The options among ``given`` (as ``settings_with_options`` takes them) that the user gave, by setting:
    ``{"port": "--port"}``; what is said of a setting names the option, not the variable it overrides."""
    return {field: SETTING_OPTIONS[field] for field, value in given.items() if value is not None}
