"""Starting a repository model (``ctr new``): ``models/NAME/config.toml`` from a kind's defaults or a copy.

The defaults are the kind's config dataclass (the ``[model]`` table) and ``TrainingConfig`` (the
``[training]`` table); ``[data]`` and ``[world]`` are left to their defaults, which only matter when
the model is trained on the built-in simulator instead of ``--logs``. The kind's own ``ctr evaluate``
report is written out (``evaluation = "retrieval"`` for esam), and a kind whose defaults are known not
to train gets a note (``KIND_NOTES``) in the file and in ``ctr new``'s output. A spec of more buckets than
``SPARSE_ADAM_ABOVE_BUCKETS`` gets ``embedding_optimizer = "sparse_adam"``, whose step is then the shorter one
(training/fitting/embedding_optimizer.py). A spec given with
``--spec`` is checked and copied to ``models/NAME/spec.toml``, where ``ctr train NAME --logs`` finds it; without
one, ``--from`` copies the other model's ``spec.toml`` with its config (a copy of a model trained on one's own
logs was refused by ``ctr train NAME --logs`` as needing a feature spec, the config alone copied). An existing
config is never overwritten; ``ctr new --exist-ok`` keeps it and says where it differs (``kept_model``).
Nothing here imports torch (~2 s of CPU): the defaults are the kinds' settings (training/models/kinds.py,
training/fitting/settings.py), so a mistake in the name, the spec, ``--from`` or the kind is said at once, and a
config is written in a fraction of a second.
"""

from __future__ import annotations

import errno
import json
import shutil
import textwrap
import tomllib
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from common.features import FeatureSpec
from common.repository import read_config, validate_model_name
from common.toml_file import read_toml
from common.whole_file import written_whole
from training.fitting.settings import SCALED_SETTINGS, SPARSE_ADAM_ABOVE_BUCKETS, TrainingConfig
from training.models.kinds import MODEL_KINDS, default_evaluation, known_kind, trains_on
from training.training_files import SPEC_FILE

# What a user of a kind's defaults must know, said in the config `ctr new` writes and in its output
KIND_NOTES = {
    "adversarial_ctr": (
        "The [model] defaults are Moore et al. 2018's (lam = 0.9999, optimizer = sgd, bias_epochs = 100). "
        "docs/moore2018.md found that they do not train: under SGD the covariance penalty leaves a network with "
        "lam >= 0.999 at its initial weights (its AUC is the untrained network's). What trains, as the served "
        'models/ctr does (`ctr new NAME --from ctr` copies it): lam = 0.99, optimizer = "adam", bias_epochs = 0 '
        'and [training] learning_rate = 0.01. It writes bypass_start = "log" (the kind\'s default, "drawn", is the '
        "paper's random start): these settings leave the bypass where it starts, and on a 40k-row log the drawn "
        "start served the lower slots above the top for 5 seeds of 8 and level with it for 2, the log's start "
        'the log\'s fall for each (docs/moore2018.md, "A small own log").'
    ),
    "esam": (
        "The [model] loss weights (lambda_da = 3.0, lambda_dc_c = 0.03, lambda_dc_p = 3.0) are the ones an earlier "
        "tuning found on the id-dominated world; in the attribute world docs/esam.md found them to collapse recall "
        "(validation hot recall@50 0.0057 against the baseline's 0.1163). The served models/esam uses lambda_da = "
        "1.0, lambda_dc_c = 0.01, lambda_dc_p = 0.03 (`ctr new NAME --from esam` copies it). epochs and batch_size "
        "are not scaled to a log's size for a retrieval model: on a small log, raise epochs and lower batch_size "
        "(the training warns when the optimiser steps are few)."
    ),
}


# [model] settings `ctr new --kind KIND` writes in place of the kind's defaults (which stay the papers', the control
# of the committed reports); the kind's note says why
KIND_SETTINGS = {"adversarial_ctr": {"bypass_start": "log"}}


def default_config_toml(kind: str, total_buckets: int | None = None) -> str:
    """The config of a new ``kind`` model: the kind's [model] defaults (but for ``KIND_SETTINGS``) and the
    [training] defaults, but for ``embedding_optimizer`` over a spec of ``total_buckets`` past
    ``SPARSE_ADAM_ABOVE_BUCKETS``."""
    model_defaults = asdict(MODEL_KINDS[known_kind(kind, "pass --kind with one of")].settings())
    model_defaults |= KIND_SETTINGS.get(kind, {})
    lines = [f"# {kind} defaults written by `ctr new` (`--from MODEL` copies a tuned config instead)."]
    lines += [f"# {line}" for line in textwrap.wrap(KIND_NOTES.get(kind, ""), 100)]
    lines.append(f'kind = "{kind}"')
    if default_evaluation(kind) != "world":  # a kind whose report is not the world's impressions
        lines.append(f'evaluation = "{default_evaluation(kind)}"  # what `ctr evaluate` reports')
    scaled = trains_on(kind) == "impressions"  # a retrieval model's training is not scaled to its log
    training = {k: v for k, v in asdict(TrainingConfig()).items() if not (scaled and k in SCALED_SETTINGS)}
    # measured on impression models only; adversarial_ctr's paper defaults (optimizer = "sgd") refuse it
    large = total_buckets is not None and total_buckets > SPARSE_ADAM_ABOVE_BUCKETS
    sparse = large and scaled and model_defaults.get("optimizer", "adam") == "adam"
    if sparse:
        del training["embedding_optimizer"]  # written last, under the comment that says why
    lines += ["", "[model]", *_table(model_defaults), "", "[training]", *_table(training)]
    if scaled:
        lines.append("# epochs and batch_size left out: chosen from the log's size (README); set both to fix them")
    if sparse:
        why = (
            f"The spec's {total_buckets:,} buckets pass {SPARSE_ADAM_ABOVE_BUCKETS:,}, above which SparseAdam's step "
            "was the shorter one on a 2-core CPU (1.2-1.5x at 200,000 buckets, 3-11x at 0.7-2 million; docs/scale.md): "
            'dense "adam" moves every row of the table each step, "sparse_adam" the rows a minibatch looked up '
            '(lazy Adam: other arithmetic; "adam" trains as the shipped models do).'
        )
        lines += [f"# {line}" for line in textwrap.wrap(why, 100)]
        lines.append('embedding_optimizer = "sparse_adam"')
    return "\n".join(lines) + "\n"


def _table(values: dict[str, Any]) -> list[str]:
    # JSON spells strings, numbers, booleans and lists of them as TOML does; None has no TOML value
    return [f"{key} = {json.dumps(value)}" for key, value in values.items() if value is not None]


@dataclass(frozen=True)
class _Plan:
    """What ``ctr new`` writes: the config's text, the spec it copies (None: no spec.toml), and where they come
    from, as a message names it ("the defaults of --kind esmm", "the config of --from ctr")."""

    config: str
    spec: Path | None
    source: str


def _plan(root: Path, kind: str | None, copy_from: str | None, spec: Path | None) -> _Plan:
    """What ``new_model`` writes for these arguments, each checked."""
    if copy_from is not None:
        source = root / copy_from / "config.toml"
        if not source.is_file():
            raise FileNotFoundError(f"--from {copy_from}: no {source}; `ls {root}` lists the models")
        source_kind = read_config(root, copy_from).get("kind")
        if kind is not None and kind != source_kind:
            raise ValueError(f"--kind {kind} differs from {copy_from}'s kind {source_kind}: drop --kind or --from")
        text, said = source.read_text(encoding="utf-8"), f"the config of --from {copy_from}"
        if spec is None and (source.parent / SPEC_FILE).is_file():  # --spec replaces it: the user's choice
            spec = source.parent / SPEC_FILE
    elif kind is None:
        raise ValueError("say what to start from: --kind KIND or --from EXISTING")
    checked = None if spec is None else FeatureSpec.from_toml(spec)  # refuse a spec that would fail at training time
    if copy_from is None:
        text = default_config_toml(kind, None if checked is None else checked.total_buckets)
        said = f"the defaults of --kind {kind}"
    return _Plan(text, spec, said)


def new_model(
    root: Path, name: str, kind: str | None = None, copy_from: str | None = None, spec: Path | None = None
) -> Path:
    """Write ``root/name/config.toml`` (and ``spec.toml`` with ``spec``, else ``copy_from``'s); returns the
    config's path."""
    validate_model_name(name)
    target = root / name / "config.toml"
    if target.exists():
        raise FileExistsError(f"{target} exists: pick another NAME, or edit that file (--exist-ok keeps it)")
    plan = _plan(root, kind, copy_from, spec)
    created = _made_folder(target.parent)
    try:  # each file whole: a full disk left an empty config.toml that refused a retry ("exists") and then trained
        with written_whole(target) as temporary:
            temporary.write_text(plan.config, encoding="utf-8")
        if plan.spec is not None:
            with written_whole(target.parent / SPEC_FILE) as temporary:
                shutil.copyfile(plan.spec, temporary)
    except BaseException:
        if created:  # nothing of a half-made model is left
            shutil.rmtree(target.parent, ignore_errors=True)
        else:  # a folder there before (a model's versions) is not this command's: only the config it wrote goes
            target.unlink(missing_ok=True)
        raise
    return target


def kept_model(
    root: Path, name: str, kind: str | None = None, copy_from: str | None = None, spec: Path | None = None
) -> str | None:
    """``ctr new --exist-ok``: None where ``root/name/config.toml`` does not exist (``new_model`` writes it);
    else the line saying it was kept, untouched, and where it first differs from what ``new_model`` would write
    (its config's first key of another value, in the order that config would list them, then the spec given).
    An edited config is the usual reason to rerun the command (a pipeline's) and is kept; a model of another kind
    than the one asked for is refused (ValueError), as training it would not train what the command asked for."""
    validate_model_name(name)
    target = root / name / "config.toml"
    if not target.exists():
        return None
    plan = _plan(root, kind, copy_from, spec)  # the arguments are checked as if it did not exist
    kept, planned = read_config(root, name), tomllib.loads(plan.config)
    if kept.get("kind") != planned.get("kind"):
        raise ValueError(
            f"{target} exists, of kind {kept.get('kind')!r}, where this command asks for {planned.get('kind')!r}: "
            f"pick another NAME, or remove {target} to have it written again"
        )
    line = f"kept {target} (--exist-ok)"
    difference = _first_difference(kept, planned)
    if difference is not None:
        key, in_kept, in_planned = difference
        shown = f"{_shown(in_kept)} in it, {_shown(in_planned)} in {plan.source}"
        return f"{line}; it differs from what this command would write at {key}: {shown}"
    kept_spec = target.parent / SPEC_FILE
    if plan.spec is not None and not kept_spec.is_file():
        return f"{line}; it has no {SPEC_FILE}, where this command would copy {plan.spec}"
    if plan.spec is not None and read_toml(kept_spec) != read_toml(plan.spec):
        return f"{line}; its {SPEC_FILE} differs from {plan.spec}"
    return f"{line}: the same as this command would write"


_UNSET = object()


def _first_difference(kept: dict[str, Any], planned: dict[str, Any], prefix: str = "") -> tuple[str, Any, Any] | None:
    """The first dotted key (``training.learning_rate``) whose value differs between two TOML tables, with its
    value in each (``_UNSET`` where a table lacks it): ``planned``'s keys in its order, then those only ``kept``
    has."""
    for key in [*planned, *(key for key in kept if key not in planned)]:
        one, other = kept.get(key, _UNSET), planned.get(key, _UNSET)
        if isinstance(one, dict) and isinstance(other, dict):
            found = _first_difference(one, other, f"{prefix}{key}.")
            if found is not None:
                return found
        elif one != other:
            return f"{prefix}{key}", one, other
    return None


def _shown(value: Any) -> str:
    """A config's value as TOML spells it (JSON does for strings, numbers, booleans and lists), or "unset"."""
    return "unset" if value is _UNSET else json.dumps(value)


def _made_folder(folder: Path) -> bool:
    """Make ``folder`` (and the folders above it); whether this call made it. A folder the system refuses to
    make a folder in is named (it said ``ROOT/NAME: Permission denied`` of the model's folder, which did not
    exist, where ``ROOT`` refused)."""
    try:
        folder.mkdir(parents=True)
    except FileExistsError:
        if not folder.is_dir():
            raise
        return False
    except OSError as error:
        if error.filename is None or error.errno not in (errno.EACCES, errno.EPERM, errno.EROFS):
            raise
        refused = Path(error.filename).parent  # mkdir's error names the folder it could not make in this one
        made = Path(error.filename).name
        said = f"{error.strerror}, so {made}/ cannot be made in it: pass -r with a folder you may write"
        raise type(error)(error.errno, said, str(refused)) from error
    return True
