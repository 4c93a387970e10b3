"""The JSON report every `ctr` command that measures something writes: its folder made, one trailing newline;
what it records of its run (``run_record``: the command line, the code and package versions); and its lines
on the terminal. Where it is to go is checked before the work
(``check_writable``): a folder given as ``--out``, or a file where its folder should be, was said only
once a minutes-long evaluation had finished, as ``[Errno 17] File exists: 't/a.parquet'``."""

from __future__ import annotations

import json
import os
import shlex
import tempfile
from pathlib import Path
from typing import Any

import typer

from common.finite_json import finite
from common.provenance import provenance
from common.shown_url import shown_url


def check_writable(path: Path, option: str = "--out") -> None:
    """IsADirectoryError or NotADirectoryError, naming ``option``, when ``path`` cannot be written as a file:
    it is a folder, or one of the folders above it is a file; the OSError of ``path`` (PermissionError, EROFS)
    when the folder it goes in cannot take a file. Called before the work whose result goes there."""
    if path.is_dir():
        raise IsADirectoryError(f"{option} {path} is a directory: name the file to write")
    _check_folder_above(path, option)
    _check_folder_takes_files(path)


def check_report_paths(out: Path, png: bool = True) -> None:
    """``check_writable`` for a report's ``--out`` and, where the command draws one, the PNG beside it."""
    check_writable(out)
    if png:
        check_writable(out.with_suffix(".png"), "the PNG beside --out")


def check_folder_writable(path: Path, option: str = "--out") -> None:
    """NotADirectoryError, naming ``option``, when ``path`` cannot be made a folder: it, or a folder above
    it, is a file (``ctr simulate --shards`` writes its shards into it); the OSError of ``path`` when it, or
    the folder it would be made in, cannot take a file."""
    if path.exists() and not path.is_dir():
        raise NotADirectoryError(f"{option} {path} is a file, not a directory to write the shards into")
    _check_folder_above(path, option)
    _check_folder_takes_files(path)


def _check_folder_above(path: Path, option: str) -> None:
    if os.path.expanduser(path) != str(path):  # a quoted ~ (or ~user): the shell expands it only unquoted
        raise ValueError(f"{option} {path}: '~' is not expanded here (a shell expands it unquoted): write the path")
    if str(path) == "-":  # what some tools read as standard output: here it named a file "-"
        raise ValueError(f"{option} -: writes a file, not to standard output; name the file to write")
    existing = _nearest_existing(path)
    if existing is not None and not existing.is_dir():
        raise NotADirectoryError(f"{option} {path}: {existing} is a file, not a directory to write into")


def _check_folder_takes_files(path: Path) -> None:
    """A file made and removed in the folder ``path`` or, where it is none, the nearest existing one above it
    (where its folders are made, or it is written): the mode bits alone do not say a read-only mount, and a
    report checked only for its shape was refused as the run ended, an auction's quarter of an hour lost (its
    model versions published meanwhile)."""
    existing = path if path.is_dir() else _nearest_existing(path) or Path.cwd()
    try:
        with tempfile.TemporaryFile(dir=existing):
            pass
    except OSError as error:
        raise OSError(error.errno, error.strerror, str(path)) from error


def _nearest_existing(path: Path) -> Path | None:
    return next((parent for parent in path.parents if parent.exists()), None)


def write_report(out: Path, report: dict[str, Any], sort_keys: bool = False) -> None:
    """Write ``report`` to ``out`` as indented JSON; ``sort_keys`` for reports whose order means nothing.
    A NaN or infinite number (a ratio of cases not run) is written as null: ``NaN`` is no JSON, and
    JSON.parse and jq refused the file."""
    write_whole(out, json.dumps(finite(report), indent=2, sort_keys=sort_keys, allow_nan=False) + "\n")


def write_whole(out: Path, text: str) -> None:
    """``text`` into ``out`` (its folders made), whole or not at all (common/whole_file.py): written in
    place, a full disk left an empty file at ``out``, and a report there before was lost."""
    from common.whole_file import written_whole

    with written_whole(out) as temporary:
        temporary.write_text(text, encoding="utf-8")


def run_record(context: typer.Context) -> dict[str, Any]:
    """What every report records of the run that wrote it: its ``command`` (``command_line``) and its
    ``provenance`` (the code's commit and the versions of the packages that shape a number): a rerun
    with the same seed gives the same report, and these say what the rerun must be."""
    return {"command": command_line(context), "provenance": provenance()}


def command_line(context: typer.Context) -> str:
    """The ``ctr`` command that ran, for its report's ``command``: the subcommand path and every parameter
    given (by the command line or the environment, not left at its default), in the order the command
    declares them, shell-quoted. A secret's value (an option declared with ``hide_input``, the admin
    token) is written as ``***``."""
    path = []
    step: typer.Context | None = context
    while step is not None and step.parent is not None:  # the root's name is how it was started: "ctr"
        path.append(step.info_name or "")
        step = step.parent
    words = ["ctr", *reversed(path)]
    for param in context.command.params:
        source = context.get_parameter_source(param.name or "")
        if param.name is None or source is None or source.name == "DEFAULT":  # typer vendors click's enum: by name
            continue
        words.extend(_given(param, context.params[param.name]))
    return shlex.join(words)


def _given(param: Any, value: Any) -> list[str]:
    """The words that give ``param`` its ``value`` on a command line."""
    values = list(value) if isinstance(value, list | tuple) else [value]
    if getattr(param, "hide_input", False):
        values = ["***"] * len(values)
    values = [shown_url(v) if isinstance(v, str) else v for v in values]  # a URL's password, as ***
    if param.param_type_name == "argument":
        return [str(v) for v in values]
    flag = next((opt for opt in param.opts if opt.startswith("--")), param.opts[0])
    if getattr(param, "is_bool_flag", False):
        off = next((opt for opt in param.secondary_opts if opt.startswith("--")), None)
        return [flag] if value else [off] if off else []
    return [word for v in values for word in (flag, str(v))]


def report_lines(report: dict[str, Any]) -> list[str]:
    """``report`` as aligned ``key value`` lines: floats to 4 places, a table of values on one line
    (``auc=0.6313  ece=0.0058``), a table of tables as a heading and a line per entry (the methods of
    ``ctr evaluate ctr``, which printed as one 2 KB line); anything deeper as compact JSON."""
    lines = []
    for key, value in report.items():
        if isinstance(value, dict) and value and all(isinstance(v, dict) for v in value.values()):
            lines.append(f"{key}:")
            lines.extend(f"  {entry:<26} {_shown(values)}" for entry, values in value.items())
        else:
            lines.append(f"{key:<28} {_shown(value)}")
    return lines


def _shown(value: Any, nested: bool = False) -> str:
    if isinstance(value, float):
        return f"{value:.4f}"
    if isinstance(value, dict):
        if nested:
            return json.dumps(value, separators=(",", ":"))
        return "  ".join(f"{k}={_shown(v, nested=True)}" for k, v in value.items())
    return str(value)
