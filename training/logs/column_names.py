"""Refusals of a log file's column names: one held twice, required ones missing, with what may be wrong (a
name differing in case or spaces, a CSV without a header or with another delimiter, a label by another name)."""

from __future__ import annotations

from pathlib import Path

from common.log_columns import CLICK_ALIASES, LABEL_COLUMNS, MISSING_LABELS
from training.logs.cell_values import reads_as_number
from training.logs.csv_files import other_delimiter_hint
from training.logs.formats import log_format


def refuse_repeated_names(file: Path, names: list[str], what: str) -> None:
    """ValueError naming a column name ``file`` holds twice (Arrow's own message, "Multiple matches for
    FieldRef.Name(site) in site: string ...", showed part of a schema instead)."""
    repeated = sorted({name for name in names if names.count(name) > 1})
    if repeated:
        raise ValueError(
            f"{what} {file} holds more than one column named {repeated[0]!r}: keep one of them{_headless(file, names)}"
        )


def _headless(file: Path, names: list[str]) -> str:
    """A hint for a CSV whose first line holds numbers where names are wanted: written without a header
    (Spark's ``df.write.csv`` default), its first row was taken for the columns' names ("" if not so)."""
    if log_format(file) != "csv" or not any(reads_as_number(name) for name in names):
        return ""
    return " (its first line holds numbers: a CSV's first line must name the columns, write it with a header)"


def refuse_missing_columns(file: Path, required: list[str], names: list[str], what: str = "impression log") -> None:
    """ValueError naming the ``required`` columns a log file lacks (it holds ``names``; ``what``: what the file
    is, "non-displayed table", its last word what the message calls it), with what may be wrong: a feature that
    could be optional, a name differing in case or spaces, a CSV's other delimiter or missing header; else what
    each missing label means and what to write (``_missing_labels``)."""
    missing = [c for c in required if c not in names]
    if missing:
        features = [c for c in missing if c not in LABEL_COLUMNS]  # the labels are needed whatever the spec
        optional = " (a feature can instead be made optional in the spec: required = false, default = ...)"
        raise ValueError(
            f"{what} {file} lacks the columns {missing}: add them to the {what.split()[-1]}"
            + optional * bool(features)
            # a file misread (a CSV without a header or with another delimiter) or a name miscased lacks no label
            + (
                ((_headless(file, names) or _near_misses(missing, names)) + other_delimiter_hint(file))
                or _missing_labels(missing, names)
            )
        )


def _missing_labels(missing: list[str], names: list[str]) -> str:
    """What each missing label column means and what to write in it (``MISSING_LABELS``); a click column under
    another log's name (Criteo's ``label``) is named, to be renamed."""
    said = []
    for label in (c for c in missing if c in MISSING_LABELS):
        aliases = [name for name in CLICK_ALIASES if name in names] if label == "click" else []
        renamed = f"the log's {aliases[0]!r} is the click label by another name: rename it to click" if aliases else ""
        said.append(f"{label}: {renamed or MISSING_LABELS[label]}")
    return f"; {'; '.join(said)}" if said else ""


def _near_misses(missing: list[str], found: list[str]) -> str:
    """The names the file holds instead of missing ones, differing only in case or spaces (``Click``,
    `` position ``), where it says why the columns were not found."""
    near = [name for name in found if name.strip().lower() in missing and name not in missing]
    return f"; it has {near}: column names must match exactly (case and spaces)" if near else ""
