"""The files around ``ctr train NAME``, found without torch: the feature spec the user's logs are read with,
and the checkpoint the training leaves for ``ctr export``.

The spec is ``--spec``, else the model's own ``models/NAME/spec.toml`` (``ctr new NAME --spec`` keeps it there),
else the one a shard folder's manifest names (``ctr simulate --shards``); the checkpoint is
``WORK_DIR/NAME/checkpoint.pt``. Nothing here imports torch (~2 s of CPU), so that ``ctr train`` says a log
that is not there or a spec that does not read (``check_own_logs``), and ``ctr export`` a checkpoint that is not
there (``existing_checkpoint``), at once: a typo took 2-4 s to be said.
"""

from __future__ import annotations

from pathlib import Path

from common.features import FeatureSpec
from training.logs.files import log_files
from training.logs.shard_folder import manifest_spec

SPEC_FILE = "spec.toml"  # a model's own feature spec (`ctr new --spec`), the default of `ctr train --logs`


def own_spec(root: Path, name: str, spec_path: Path | None) -> Path | None:
    """``spec_path`` (``--spec``), else the spec `ctr new NAME --spec` kept beside the model's config."""
    if spec_path is None and (root / name / SPEC_FILE).is_file():
        return root / name / SPEC_FILE
    return spec_path


def logs_spec(logs: Path, spec_path: Path | None) -> Path:
    """The feature spec the user's ``logs`` are read with: ``spec_path``, else the one their manifest names
    (shards of `ctr simulate --shards`); ValueError with neither. The in-memory and the streamed trainer
    both call it after ``own_spec``, so a model's own spec wins over a manifest's in both."""
    if spec_path is None:
        log_files(logs)  # no such log: say so before asking for its spec
        spec_path = manifest_spec(logs)
    if spec_path is None:
        raise ValueError("training on your own logs needs a feature spec naming their features (--spec)")
    return spec_path


def check_own_logs(root: Path, name: str, logs: Path, spec_path: Path | None) -> None:
    """What ``ctr train NAME --logs LOGS`` checks of the user's logs before torch's import, with the messages
    the trainers would say later: the spec given or kept (``own_spec``) reads as a feature spec, then ``logs``
    names log files (without a spec, the impression trainers look for the files first too: ``logs_spec``). A spec
    that is to come from a manifest, or is missing, is left to the trainer: a retrieval model reads no
    manifest's and asks for ``--spec`` beside ``--non-displayed``."""
    spec_path = own_spec(root, name, spec_path)
    if spec_path is not None:
        FeatureSpec.from_toml(spec_path)
    log_files(logs)


def checkpoint_path(work_dir: Path, name: str) -> Path:
    return work_dir / name / "checkpoint.pt"


def existing_checkpoint(path: Path) -> Path:
    """``path``, a checkpoint to be read; FileNotFoundError saying to train first where nothing is there."""
    if not path.exists():
        raise FileNotFoundError(f"no checkpoint at {path}: run `ctr train` first")
    return path
