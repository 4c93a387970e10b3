"""ONNX export into the model repository, with a parity check on every export (DESIGN.md §3).

The exported graph is the model's inference path only: features in (``categorical`` int64
``(batch, C)``, ``numeric`` float32 ``(batch, N)``), named probabilities out (``model.output_names``),
a dynamic batch axis. A model may declare further graphs (``export_graphs()``, e.g. the two towers
of a retrieval model, each over its own side's features) and constants (``export_constants()``);
a checkpoint with a catalog also gets the catalog's item embeddings. Each graph's Sigmoid nodes are
written out as 1 / (1 + exp(-x)) (precise_sigmoid.py: ONNX Runtime's Sigmoid is exact to 6e-8 absolute
only, 1 % of a 1e-5 probability). Each export is checked against
torch on fresh random inputs before it is published; a version directory appears only when the check
passes.

An export the newest version already holds (the same model.onnx and a model.json that differs only in
its version, date, provenance and the path its logs were read at: the same checkpoint exported again, or
the same weights trained on the same data in another work dir), where that version loads as the service
loads it, is not published: a second copy would serve nothing new, yet under a version policy of the
latest N it would push a different model out of serving. (A newest version the service would refuse,
damaged or copied from another, is followed by the export, as `ctr evaluate`'s refusal says to do.)
A warning line says which version holds it. A model.onnx equal to the newest's with another model.json
(other statistics, say) is published, with a warning naming what differs. The check runs when the
version is numbered, one publisher of the model at a time (``publish_version``'s lock), so two exports
of one checkpoint run at once publish one version, not two.
"""

from __future__ import annotations

import itertools
import logging
import warnings
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np
import onnx
import onnxruntime as ort
import torch
from torch import nn

from common.encoder import FeatureEncoder
from common.features import FeatureSpec
from common.provenance import provenance
from common.repository import (
    CATALOG_EMBEDDINGS,
    CATALOG_IDS,
    MANIFEST_FILE,
    MODEL_FILE,
    FileInfo,
    Manifest,
    TensorInfo,
    publish_version,
    read_manifest,
    sha256_file,
    versions,
)
from training.evaluation.served_version import served_version
from training.fitting.checkpoint import Checkpoint
from training.precise_sigmoid import precise_sigmoids

logger = logging.getLogger(__name__)

OPSET = 17
# What torch says of the TorchScript-based exporter (``dynamo=False``) this module uses: deprecated since torch
# 2.9 ("will be removed"), not yet removed in the pinned 2.13. Only these are hidden from an export's output;
# any other warning shows (a blanket filter hid every one). The torch.export-based exporter needs onnxscript
# and a check of its graphs; until then a torch without the old exporter fails `ctr export` (README).
LEGACY_EXPORTER_WARNINGS = (
    r"You are using the legacy TorchScript-based ONNX export",
    r"The feature will be removed\. Please remove usage of this function",
)
PARITY_TOLERANCE = 1e-5  # max abs difference between torch and ONNX Runtime
# ... and, for a probability, relative to torch's: 1e-5 absolute alone let 1 % through on a 1e-3 pCTCVR. The served
# models' worst today: 1.4e-6 (esam's score; esmm's 6.7e-7), on 512 fresh rows
RELATIVE_PARITY_TOLERANCE = 1e-4
# ... of the probability or of this, whichever is larger: ONNX Runtime's own Sigmoid differs from torch's by up to
# 1.4e-7 at logits below -8 (probabilities under 3e-4, 6.8 times the probability at -18, where it gives 0), so a
# tolerance relative to such a probability tested the kernel's approximation, not the export: under 1 % the
# check holds each probability to 1e-6 absolute, ten times the old absolute tolerance
RELATIVE_PARITY_FLOOR = 1e-2


class ParityError(RuntimeError):
    """The exported graph does not compute what the torch model computes."""


class AlreadyPublished(Exception):
    """Raised by an export's writer to drop it: ``version`` already holds the same export."""

    def __init__(self, version: int) -> None:
        super().__init__(f"version {version} holds this export")
        self.version = version


class _NamedOutputs(nn.Module):
    """Returns the model's outputs as a tuple in ``output_names`` order, as ONNX export needs."""

    def __init__(self, model: nn.Module) -> None:
        super().__init__()
        self.model = model

    def forward(self, categorical: torch.Tensor, numeric: torch.Tensor) -> tuple[torch.Tensor, ...]:
        outputs = self.model(categorical, numeric)
        return tuple(outputs[name] for name in self.model.output_names)


def random_inputs(spec: FeatureSpec, rows: int, seed: int) -> dict[str, np.ndarray]:
    """Valid model inputs: each categorical column within its feature's bucket range."""
    rng = np.random.default_rng(seed)
    offsets = np.cumsum([0] + [f.buckets for f in spec.categorical])
    categorical = np.stack([rng.integers(lo, hi, rows) for lo, hi in itertools.pairwise(offsets)], axis=1).astype(
        np.int64
    )
    numeric = rng.standard_normal((rows, len(spec.numeric))).astype(np.float32)
    return {"categorical": categorical, "numeric": numeric}


def export_onnx(model: nn.Module, spec: FeatureSpec, path: Path) -> None:
    model.eval()
    example = random_inputs(spec, 4, seed=0)
    names = list(model.output_names)
    with warnings.catch_warnings():
        for message in LEGACY_EXPORTER_WARNINGS:
            warnings.filterwarnings("ignore", message=message, category=DeprecationWarning)
        torch.onnx.export(
            _NamedOutputs(model),
            (torch.from_numpy(example["categorical"]), torch.from_numpy(example["numeric"])),
            str(path),
            input_names=["categorical", "numeric"],
            output_names=names,
            dynamic_axes={n: {0: "batch"} for n in ["categorical", "numeric", *names]},
            opset_version=OPSET,
            dynamo=False,
        )
    graph = onnx.load(str(path))
    if precise_sigmoids(graph):  # ONNX Runtime's Sigmoid is exact to 6e-8 absolute only (precise_sigmoid.py)
        onnx.save(graph, str(path))


def check_parity(
    model: nn.Module, spec: FeatureSpec, path: Path, rows: int = 512, seed: int = 1, probabilities: bool = True
) -> float:
    """Max abs difference between torch and ONNX Runtime on fresh random inputs; raises past PARITY_TOLERANCE, or,
    where the outputs are ``probabilities``, past RELATIVE_PARITY_TOLERANCE of one (a tower's embedding is no
    probability: its components near 0 hold no relative precision, so its absolute difference alone is checked)."""
    inputs = random_inputs(spec, rows, seed)
    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    feed = {i.name: inputs[i.name] for i in session.get_inputs()}
    onnx_outputs = dict(zip([o.name for o in session.get_outputs()], session.run(None, feed), strict=True))
    with torch.no_grad():
        torch_outputs = model(torch.from_numpy(inputs["categorical"]), torch.from_numpy(inputs["numeric"]))
    pairs = {name: (onnx_outputs[name], torch_outputs[name].numpy()) for name in model.output_names}
    difference = max(float(np.max(np.abs(exported - torch_value))) for exported, torch_value in pairs.values())
    if not difference <= PARITY_TOLERANCE:
        raise ParityError(f"ONNX Runtime differs from torch by {difference:.3g} (> {PARITY_TOLERANCE})")
    if probabilities:
        for name, (exported, torch_value) in pairs.items():
            check_relative_parity(name, exported, torch_value)
    return difference


def check_relative_parity(name: str, exported: np.ndarray, torch_value: np.ndarray) -> None:
    """ParityError naming the output and its worst row where ONNX Runtime's probability differs from torch's by
    more than RELATIVE_PARITY_TOLERANCE of torch's, or of RELATIVE_PARITY_FLOOR for a probability under it (in
    float64)."""
    exported64, torch64 = exported.astype(np.float64), torch_value.astype(np.float64)
    relative = np.abs(exported64 - torch64) / np.maximum(np.abs(torch64), RELATIVE_PARITY_FLOOR)
    worst = int(np.argmax(relative))  # no NaN: a NaN or infinite output failed the absolute check before
    if not relative[worst] <= RELATIVE_PARITY_TOLERANCE:
        raise ParityError(
            f"ONNX Runtime's {name} differs from torch's by {relative[worst]:.3g} of the probability "
            f"(> {RELATIVE_PARITY_TOLERANCE}): {exported64[worst]:.6g} against {torch64[worst]:.6g}"
        )


def _tensor_infos(values: list) -> list[TensorInfo]:
    infos = []
    for value in values:
        dtype = {"tensor(int64)": "int64", "tensor(float)": "float32"}.get(value.type, value.type)
        infos.append(TensorInfo(value.name, dtype, [d if isinstance(d, int) else "batch" for d in value.shape]))
    return infos


def export_graphs(model: nn.Module, spec: FeatureSpec, directory: Path) -> tuple[dict[str, FileInfo], float]:
    """The further graphs a model declares (``export_graphs()``: file name -> (graph, feature side);
    e.g. a two-tower model's towers), each exported on its side's features and parity-checked."""
    declared = model.export_graphs() if hasattr(model, "export_graphs") else {}
    files: dict[str, FileInfo] = {}
    worst = 0.0
    for file_name, (graph, side) in declared.items():
        path = directory / file_name
        side_spec = spec.for_side(side)
        export_onnx(graph, side_spec, path)
        worst = max(worst, check_parity(graph, side_spec, path, probabilities=False))  # embeddings
        session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
        files[file_name] = FileInfo(
            sha256_file(path), side, _tensor_infos(session.get_inputs()), _tensor_infos(session.get_outputs())
        )
    return files, worst


def embed_catalog(checkpoint: Checkpoint, graphs: dict[str, FileInfo], directory: Path) -> dict[str, FileInfo]:
    """Run the exported candidate-side graph over the checkpoint's catalog and store the embeddings
    (``catalog_embeddings.npy``, float32 (N, L)) and the item ids (``catalog_ids.npy``) beside it."""
    if not checkpoint.catalog:
        return {}
    item_graphs = [name for name, info in graphs.items() if info.side == "candidate"]
    if len(item_graphs) != 1:
        raise ValueError(f"a catalog needs exactly one candidate-side graph to embed it, found {item_graphs}")
    ids = np.asarray(checkpoint.catalog[checkpoint.catalog_id], dtype=str)
    encoded = FeatureEncoder(checkpoint.spec.for_side("candidate")).encode(checkpoint.catalog, len(ids))
    session = ort.InferenceSession(str(directory / item_graphs[0]), providers=["CPUExecutionProvider"])
    (embeddings,) = session.run(None, encoded.as_inputs())
    np.save(directory / CATALOG_EMBEDDINGS, embeddings.astype(np.float32), allow_pickle=False)
    np.save(directory / CATALOG_IDS, ids, allow_pickle=False)
    return {name: FileInfo(sha256_file(directory / name)) for name in (CATALOG_EMBEDDINGS, CATALOG_IDS)}


@dataclass(frozen=True)
class Exported:
    """What one export did: published ``version``, or found that ``version`` (the newest, published by an
    earlier export or by another process meanwhile) already holds the same export and published nothing."""

    version: int
    published: bool


def export_checkpoint(checkpoint: Checkpoint, root: Path) -> int:
    """``publish_checkpoint``'s version: the one published, or the one that already held this export."""
    return publish_checkpoint(checkpoint, root).version


def publish_checkpoint(checkpoint: Checkpoint, root: Path) -> Exported:
    """Export, check parity, write model.json and publish a new version atomically; or, when the newest
    version holds the same export (see the module docstring), publish nothing and say which holds it. Whether
    this call published is decided under the publishing lock: a list of versions read before it named a
    version another process published meanwhile as this call's."""
    model = checkpoint.build()

    def write(directory: Path, version: int) -> None:
        onnx_path = directory / MODEL_FILE
        export_onnx(model, checkpoint.spec, onnx_path)
        difference = check_parity(model, checkpoint.spec, onnx_path)
        files, graph_difference = export_graphs(model, checkpoint.spec, directory)
        files |= embed_catalog(checkpoint, files, directory)
        difference = max(difference, graph_difference)
        session = ort.InferenceSession(str(onnx_path), providers=["CPUExecutionProvider"])
        manifest = Manifest(
            name=checkpoint.name,
            version=version,
            kind=checkpoint.kind,
            opset=OPSET,
            inputs=_tensor_infos(session.get_inputs()),
            outputs=_tensor_infos(session.get_outputs()),
            feature_spec=checkpoint.spec,
            onnx_sha256=sha256_file(onnx_path),
            constants={
                **checkpoint.constants,
                **(model.export_constants() if hasattr(model, "export_constants") else {}),
            },
            metrics={**checkpoint.metrics, "export_parity_max_abs_diff": difference},
            data_fingerprint=checkpoint.data_fingerprint,
            training=dict(checkpoint.training, model=checkpoint.model_params),
            files=files,
            position=checkpoint.position,
            provenance=provenance(),
        )
        (directory / MANIFEST_FILE).write_text(manifest.to_json(), encoding="utf-8")

    def check(directory: Path) -> None:  # one publisher at a time: a concurrent export's version is seen
        check_against_newest(root, Manifest.from_json((directory / MANIFEST_FILE).read_text(encoding="utf-8")))

    try:
        version = publish_version(root, checkpoint.name, write, check)
    except AlreadyPublished as published:
        return Exported(published.version, published=False)
    logger.info("exported %s version %d to %s", checkpoint.name, version, root / checkpoint.name / str(version))
    return Exported(version, published=True)


def check_against_newest(root: Path, manifest: Manifest) -> None:
    """AlreadyPublished when the newest version of ``manifest``'s model holds the same export; a warning
    when only its model.onnx is the same (see the module docstring)."""
    published = versions(root, manifest.name)
    if not published:
        return
    try:
        newest = read_manifest(root, manifest.name, published[-1])
    except (OSError, ValueError, KeyError, TypeError):  # a version the service refuses too: not this export
        return
    if newest.onnx_sha256 != manifest.onnx_sha256:
        return
    ours, theirs = compared(manifest), compared(newest)
    differing = sorted(key for key in ours if ours[key] != theirs.get(key))
    if not differing:
        try:
            served_version(root, manifest.name, published[-1])
        except Exception as refused:  # damaged, copied from another, or failing where no check looked
            logger.warning("%s; publishing this export as a new version", refused)
            return
        logger.warning(
            "%s's checkpoint exports to what version %d already holds (model.onnx sha256 %s..., the same model.json): "
            "not published again",
            manifest.name,
            published[-1],
            newest.onnx_sha256[:12],
        )
        raise AlreadyPublished(published[-1])
    logger.warning(
        "%s: model.onnx is the same as version %d's (sha256 %s...); model.json differs in %s",
        manifest.name,
        published[-1],
        newest.onnx_sha256[:12],
        differing,
    )


def compared(manifest: Manifest) -> dict[str, Any]:
    """What of ``manifest`` tells one export from another: all but when, by which code and where from it
    was made (its version, date and provenance) and the path its logs were read at (simulated logs lie in
    the work dir; the data fingerprint beside it says whether they are the same data)."""
    fields = asdict(manifest)
    for key in ("version", "created", "provenance"):
        fields.pop(key)
    fields["training"] = {key: value for key, value in fields["training"].items() if key != "logs"}
    return fields
