"""What every peer server runs inside its batch handler: the service's model, encoder and answer.

The peers (Ray Serve, BentoML, LitServe) serve the very model the service serves, loaded by the
service's loader (same checksum checks, same ONNX Runtime session options, one intra-op thread by
default as in ``ctr bench serve``), and encode a batch of request bodies with the service's batch
encoder (``ScoringModel.encode``: one ``FeatureEncoder.encode`` call per batch, as the service's batcher
does) and answer with the service's ``served_probabilities``. So a peer answers exactly the service's
scores for the same body, and what differs between them is only the framework around the model.

Like ``bare_fastapi`` in ``ctr bench serve``, a peer checks nothing: a body the service would refuse
with a 4xx may make a peer fail. That favours the peers.
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from common.roles import one_model_in_every_role
from service.models.loader import load_newest
from service.models.scoring_model import ScoringModel
from service.score.features import FeatureRows
from service.score.pipeline import served_probabilities
from service.settings import Settings

Score = dict[str, float]
OUTPUTS = ("pctr", "pctcvr")  # what the model must have to fill both roles, as in the bench


def rows_of(body: Mapping[str, Any]) -> FeatureRows:
    """A request body's feature rows: the context shared, one column per candidate feature."""
    candidates = body["candidates"]
    names = {name for candidate in candidates for name in candidate}
    columns = {name: [candidate.get(name) for candidate in candidates] for name in names}
    return FeatureRows(dict(body.get("context") or {}), columns, len(candidates))


class PeerModel:
    """One repository model filling both scoring roles (as ``ctr bench serve`` configures the service)."""

    def __init__(self, repository: Path, name: str, intra_op_threads: int = 1) -> None:
        settings = Settings(
            model_repository=repository,
            **one_model_in_every_role(name),
            intra_op_threads=intra_op_threads,
            use_cuda=os.environ.get("CTR_USE_CUDA", "true").lower() == "true",
        )
        model = load_newest(settings, name, OUTPUTS)
        assert isinstance(model, ScoringModel), f"{name} is not a scoring model"
        self.model: ScoringModel = model

    @classmethod
    def from_env(cls) -> PeerModel:
        """The model named by ``CTR_MODEL_REPOSITORY``, ``CTR_BENCH_MODEL`` and ``CTR_INTRA_OP_THREADS``
        (how the bench runner configures every peer process)."""
        return cls(
            Path(os.environ.get("CTR_MODEL_REPOSITORY", "models")),
            os.environ.get("CTR_BENCH_MODEL", "esmm"),
            int(os.environ.get("CTR_INTRA_OP_THREADS", "1")),
        )

    def score_batch(self, bodies: Sequence[Mapping[str, Any]]) -> list[list[Score]]:
        """The scores of every body of a batch, by one encoder call and one ONNX Runtime run (a peer
        answers ``{"scores": ...}`` with them: the service's ``scores``, without its ``models``)."""
        parts = [(rows, 0, rows.n_rows) for rows in map(rows_of, bodies)]
        outputs = self.model.run(self.model.encode(parts))
        pctr, pctcvr, pcvr = served_probabilities(outputs, outputs)
        answers, start = [], 0
        for _, _, n in parts:
            stop = start + n
            triples = zip(pctr[start:stop], pctcvr[start:stop], pcvr[start:stop], strict=True)
            answers.append([{"pctr": a, "pctcvr": b, "pcvr": c} for a, b, c in triples])
            start = stop
        return answers
