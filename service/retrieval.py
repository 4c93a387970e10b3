"""The retrieval model: a two-tower version (ESAM) loaded for ``POST /v1/similarity``.

A retrieval version directory holds, besides model.onnx, the graphs its manifest lists under
``files`` (one on the ``context`` side: the query tower; one on the ``candidate`` side: the item
tower) and the catalog's item embeddings with their ids. Every file's sha256 is checked against the
manifest on the very bytes used, the towers' outputs must have the embeddings' width, and each tower
runs once before the version is served. Scores are S = sigmoid(scale * v_q . v_d + bias) with the
manifest's ``similarity_scale`` and ``similarity_bias``; top-k ranks the catalog by one matrix
product and ``np.argpartition``. Like the role models, no torch is imported here.
"""

from __future__ import annotations

import hashlib
import io
import logging
from dataclasses import dataclass, field

import numpy as np
import onnxruntime as ort

from common.encoder import FeatureEncoder
from common.repository import CATALOG_EMBEDDINGS, CATALOG_IDS, Manifest, read_manifest, version_dir, versions
from service.model_loader import ModelLoadError
from service.onnx_session import create_session
from service.settings import Settings

logger = logging.getLogger(__name__)

SIDES = {"context": "query", "candidate": "item"}  # a graph's feature side -> the tower it is


@dataclass(frozen=True, eq=False)
class Tower:
    session: ort.InferenceSession
    encoder: FeatureEncoder
    output: str

    @property
    def feature_names(self) -> frozenset[str]:
        return frozenset(f.name for f in self.encoder.spec.features)

    def embed(self, inputs: dict[str, np.ndarray]) -> np.ndarray:
        """(B, L) unit embeddings of encoded inputs."""
        return self.session.run([self.output], inputs)[0]


@dataclass(frozen=True, eq=False)
class RetrievalModel:
    manifest: Manifest
    query: Tower
    item: Tower
    embeddings: np.ndarray  # (N, L) float32, the catalog's item embeddings
    ids: np.ndarray  # (N,) str, their item ids
    provider: str
    scale: float = field(init=False)
    bias: float = field(init=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "scale", float(self.manifest.constants["similarity_scale"]))
        object.__setattr__(self, "bias", float(self.manifest.constants["similarity_bias"]))

    def probability(self, dots: np.ndarray) -> np.ndarray:
        return 1.0 / (1.0 + np.exp(-(self.scale * dots.astype(np.float64) + self.bias)))

    def score_items(self, query: dict[str, np.ndarray], items: dict[str, np.ndarray]) -> np.ndarray:
        """(n,) S(q, d) of one encoded query against n encoded items."""
        v_q = self.query.embed(query)  # (1, L)
        v_d = self.item.embed(items)  # (n, L)
        return self.probability(v_d @ v_q[0])

    def top_k(self, query: dict[str, np.ndarray], k: int) -> tuple[np.ndarray, np.ndarray]:
        """The k best catalog items for one encoded query: (indices, S), best first."""
        dots = self.embeddings @ self.query.embed(query)[0]  # (N,)
        k = min(k, dots.size)
        best = np.argpartition(-dots, k - 1)[:k]
        best = best[np.argsort(-dots[best], kind="stable")]
        return best, self.probability(dots[best])


@dataclass(frozen=True)
class RetrievalState:
    """What the similarity route serves: the model, or why there is none."""

    model: RetrievalModel | None
    error: str = ""


def _verified_bytes(directory, name: str, manifest: Manifest) -> bytes:
    info = manifest.files.get(name)
    if info is None:
        raise ModelLoadError(f"model.json lists no file {name!r}")
    try:
        data = (directory / name).read_bytes()
    except OSError as error:
        raise ModelLoadError(f"{name} cannot be read: {error.strerror or error}") from None
    if hashlib.sha256(data).hexdigest() != info.sha256:
        raise ModelLoadError(f"{name} does not match its sha256 in model.json")
    return data


def load_retrieval_version(settings: Settings, name: str, version: int) -> RetrievalModel:
    root = settings.model_repository
    directory = version_dir(root, name, version)
    try:
        manifest = read_manifest(root, name, version)
    except (OSError, ValueError, KeyError, TypeError) as error:
        raise ModelLoadError(f"model.json cannot be read: {error}") from None
    if not {"similarity_scale", "similarity_bias"} <= set(manifest.constants):
        raise ModelLoadError("model.json has no similarity_scale / similarity_bias: not a retrieval model")
    towers: dict[str, Tower] = {}
    provider = ""
    for file_name, info in manifest.files.items():
        if info.side not in SIDES:
            continue
        if SIDES[info.side] in towers or len(info.outputs) != 1:
            raise ModelLoadError(f"{file_name}: expected one graph per side with one output")
        try:
            session, provider = create_session(_verified_bytes(directory, file_name, manifest), settings)
            encoder = FeatureEncoder(manifest.feature_spec.for_side(info.side))
        except ModelLoadError:
            raise
        except Exception as error:  # ORT's own exception types, or a spec without that side
            raise ModelLoadError(f"{file_name} cannot be loaded: {error}") from None
        towers[SIDES[info.side]] = Tower(session, encoder, info.outputs[0].name)
    if set(towers) != {"query", "item"}:
        raise ModelLoadError(f"a retrieval version needs a query and an item tower, found {sorted(towers)}")
    try:
        embeddings = np.load(io.BytesIO(_verified_bytes(directory, CATALOG_EMBEDDINGS, manifest)), allow_pickle=False)
        ids = np.load(io.BytesIO(_verified_bytes(directory, CATALOG_IDS, manifest)), allow_pickle=False)
    except ValueError as error:
        raise ModelLoadError(f"catalog arrays cannot be read: {error}") from None
    if embeddings.ndim != 2 or ids.shape != (embeddings.shape[0],) or embeddings.shape[0] == 0:
        raise ModelLoadError(f"catalog embeddings {embeddings.shape} and ids {ids.shape} do not match")
    model = RetrievalModel(manifest, towers["query"], towers["item"], embeddings.astype(np.float32), ids, provider)
    _warm_up(model)
    return model


def _warm_up(model: RetrievalModel) -> None:
    """Each tower once on zero inputs: its width must be the catalog's, its output finite."""
    for tower in (model.query, model.item):
        spec = tower.encoder.spec
        inputs = {
            "categorical": np.zeros((2, len(spec.categorical)), dtype=np.int64),
            "numeric": np.zeros((2, len(spec.numeric)), dtype=np.float32),
        }
        try:
            output = tower.embed(inputs)
        except Exception as error:
            raise ModelLoadError(f"warm-up failed: {error}") from None
        if output.shape != (2, model.embeddings.shape[1]) or not np.isfinite(output).all():
            raise ModelLoadError(f"tower output {output.shape} does not fit catalog {model.embeddings.shape}")


def load_retrieval(settings: Settings) -> RetrievalState:
    """The newest loadable version of ``settings.retrieval_model``; a state with the reason otherwise."""
    name = settings.retrieval_model
    available = versions(settings.model_repository, name)
    if not available:
        logger.warning("no retrieval model: no versions of %r; /v1/similarity answers 503", name)
        return RetrievalState(None, f"no versions of retrieval model {name!r} under {settings.model_repository}")
    for version in reversed(available):
        try:
            model = load_retrieval_version(settings, name, version)
        except ModelLoadError as error:
            logger.warning("retrieval model %s version %d refused: %s", name, version, error)
            continue
        logger.info(
            "retrieval model %s version %d loaded (%d catalog items, provider %s)",
            name, version, len(model.ids), model.provider,
        )  # fmt: skip
        return RetrievalState(model)
    return RetrievalState(None, f"no loadable version of retrieval model {name!r}")
