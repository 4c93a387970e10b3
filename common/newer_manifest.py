"""A model.json holding what this release does not know: most likely written by a newer release.

model.json is written by the exporter, not by hand, so a field, a statistic, a constant or a position
regime this release does not know is most likely one a newer release added (a rollback of the service,
or a model copied from a newer repository), and serving without it could answer other scores than the
version was exported for (a constant that scales a score, a regime of another slot). Such a version is
refused, as any bad version is, but said as what it probably is: which names, the code that wrote the
file (its ``provenance``, common/provenance.py, when recorded) and the way out: that release or a later
one, or an older version of the model. A name one letter off a field the file lacks is still offered as
a typo (``verison``); one beside the field it resembles is not (``format_version`` beside ``version``).
"""

from __future__ import annotations

from typing import Any

from common.config_table import UnknownKeys, did_you_mean
from common.version import DISTRIBUTION, UNKNOWN_VERSION

NEXT_STEP = (
    "upgrade the service to that release or a later one to serve it, or roll the model back: keep an older "
    "version serving (remove or move this one; the service passes over it meanwhile) or export the checkpoint "
    "again with this release"
)


class NewerManifest(ValueError):
    """A model.json this release cannot serve faithfully: it holds names a newer release wrote."""


def newer_manifest(unknown: str, data: Any, typo_hint: str = "") -> NewerManifest:
    """The refusal of a model.json (``data``, as JSON holds it) for ``unknown``: what it holds that this
    release does not know, said from the file's name on (``model.json constants ['temperature'] ...``)."""
    if typo_hint:
        why = f"{typo_hint}; if no typo, it was probably written by a newer release"
    else:
        why = ": it was probably written by a newer release"
    return NewerManifest(f"{unknown}{why} ({written_by(data)}); {NEXT_STEP}")


def unknown_fields(where: str, error: UnknownKeys, data: Any) -> NewerManifest:
    """The refusal of a model.json whose table ``where`` (``model.json``, ``model.json files['a.npy']``)
    holds fields this release does not know; the typo hint names only known fields the table lacks."""
    absent = [name for name in error.known if name not in error.present]
    return newer_manifest(
        f"{where} holds fields {error.unknown} that this release does not know",
        data,
        did_you_mean(error.unknown, absent),
    )


def refuse_unknown_names(where: str, names: Any, known: tuple[str, ...], data: Any) -> None:
    """NewerManifest when the keys of ``names`` (model.json's table ``where``: ``model.json constants``)
    are not all among ``known``."""
    unknown = sorted(set(names) - set(known))
    if unknown:
        absent = [name for name in known if name not in names]
        said = f"{where} {unknown} are not ones this release knows ({sorted(known)})"
        raise newer_manifest(said, data, did_you_mean(unknown, absent))


def written_by(data: Any) -> str:
    """The code that wrote a model.json, as its ``provenance`` records it: ``provenance: commit 1a2b3c4d5e6f,
    debiased-ctr 0.2.0``; what is missing or not of its type is left out."""
    provenance = data.get("provenance") if isinstance(data, dict) else None
    if not isinstance(provenance, dict) or not provenance:
        return "it records no provenance to say which code wrote it"
    said = []
    git = provenance.get("git")
    if isinstance(git, dict) and isinstance(git.get("commit"), str):
        dirty = " with uncommitted changes" if git.get("dirty") is True else ""
        said.append(f"commit {git['commit'][:12]}{dirty}")
    packages = provenance.get("packages")
    if isinstance(packages, dict):
        said += [
            f"{name} {version}"
            for name, version in packages.items()
            if name == DISTRIBUTION and isinstance(version, str) and version != UNKNOWN_VERSION
        ]
    return f"provenance: {', '.join(said)}" if said else "its provenance names no commit nor release"
