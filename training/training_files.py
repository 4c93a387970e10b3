"""The files around ``ctr train NAME``, found without torch: the feature spec the user's logs are read with,
and the checkpoint the training leaves for ``ctr export``.

The spec is ``--spec``, else the model's own ``models/NAME/spec.toml`` (``ctr new NAME --spec`` keeps it there),
else the one a shard folder's manifest names (``ctr simulate --shards``); the checkpoint is
``WORK_DIR/NAME/checkpoint.pt``. Nothing here imports torch (~2 s of CPU), so that ``ctr train`` says a log
that is not there, a spec that is missing or does not read (``check_own_logs``), and ``ctr export`` a checkpoint
that is not there (``existing_checkpoint``), at once: a typo took 2-4 s to be said.
"""

from __future__ import annotations

from pathlib import Path

from common.features import FeatureSpec
from training.logs.files import log_files, non_displayed_files
from training.logs.shard_folder import manifest_spec
from training.models.kinds import trains_on

SPEC_FILE = "spec.toml"  # a model's own feature spec (`ctr new --spec`), the default of `ctr train --logs`


def own_spec(root: Path, name: str, spec_path: Path | None) -> Path | None:
    """``spec_path`` (``--spec``), else the spec `ctr new NAME --spec` kept beside the model's config."""
    if spec_path is None and (root / name / SPEC_FILE).is_file():
        return root / name / SPEC_FILE
    return spec_path


def own_logs_spec(
    root: Path,
    name: str,
    kind: str,
    logs: Path,
    spec_path: Path | None,
    non_displayed: Path | None = None,
    *,
    streamed: bool = False,
) -> Path:
    """The feature spec the ``kind`` model ``name`` reads the user's ``logs`` with, as each trainer finds it: the
    one given or kept (``own_spec``); for an impression model without one, the one the logs' manifest names
    (shards of `ctr simulate --shards`), the files looked for first; a retrieval model reads no manifest's and
    needs ``non_displayed`` too, and trains in one process only (``streamed``: --nproc, --distributed).
    ValueError (FileNotFoundError for logs that are not there) saying what is missing. The in-memory and the
    streamed trainer both call it, and ``check_own_logs`` before torch's import."""
    spec_path = own_spec(root, name, spec_path)
    if trains_on(kind) == "queries":
        if streamed:
            raise ValueError(f"{kind} does not train on impression rows; streamed training is for those that do")
        if non_displayed is None or spec_path is None:
            raise ValueError(
                f"{kind} trained on your logs needs --non-displayed OTHER (the candidates not displayed) and "
                f"--spec SPEC.toml (or the {root / name / SPEC_FILE} that `ctr new {name} --spec` keeps)"
            )
        return spec_path
    if spec_path is None:
        log_files(logs)  # no such log: say so before asking for its spec
        spec_path = manifest_spec(logs)
    if spec_path is None:
        raise ValueError("training on your own logs needs a feature spec naming their features (--spec)")
    return spec_path


def refuse_non_displayed(kind: str, non_displayed: Path | None) -> None:
    """ValueError where ``non_displayed`` (``--non-displayed``) is given for a ``kind`` that is no retrieval model."""
    if non_displayed is not None and trains_on(kind) != "queries":
        raise ValueError(f"--non-displayed is for retrieval models; {kind} does not use it")


def check_own_logs(
    root: Path,
    name: str,
    kind: str,
    logs: Path,
    spec_path: Path | None,
    non_displayed: Path | None,
    *,
    streamed: bool,
) -> None:
    """What ``ctr train NAME --logs LOGS`` checks of the user's logs before torch's import, with the messages
    and in the order the trainers would say them later: the spec given or kept (``own_spec``) reads as a feature
    spec, ``logs`` names log files, ``--non-displayed`` is for a retrieval ``kind``, the spec the trainer
    would read (``own_logs_spec``: one is needed, a manifest's where none is given) reads too, and
    ``--non-displayed`` names files (``non_displayed_files``: said after the fit's data was built before)."""
    given = own_spec(root, name, spec_path)
    if given is not None:
        FeatureSpec.from_toml(given)
    log_files(logs)
    refuse_non_displayed(kind, non_displayed)
    read = own_logs_spec(root, name, kind, logs, spec_path, non_displayed, streamed=streamed)
    if read != given:  # a manifest's
        FeatureSpec.from_toml(read)
    if non_displayed is not None:
        non_displayed_files(non_displayed)


def checkpoint_path(work_dir: Path, name: str) -> Path:
    return work_dir / name / "checkpoint.pt"


def existing_checkpoint(path: Path) -> Path:
    """``path``, a checkpoint to be read; FileNotFoundError saying to train first where nothing is there."""
    if not path.exists():
        raise FileNotFoundError(f"no checkpoint at {path}: run `ctr train` first, or pass the --work-dir it trained in")
    return path
