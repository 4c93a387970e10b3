"""The scoring pipeline: request bytes -> checked feature rows -> each role model's batcher -> response bytes.

The body is parsed with orjson and checked by hand, without a pydantic object per candidate (those
cost about three times the throughput); ``features.checked_rows`` checks every value against the role
models' feature kinds, so that what it accepts always encodes. Each role model's batcher (one model
filling both roles is run once) gets a small request's rows raw, and its batch worker encodes them with
the rest of its batch (one encoder call for many small requests is what lets batching take the cost of
encoding out of them); a large one (``ALONE_ROWS`` candidates and more, which the worker would encode
alone anyway) is encoded here, beside its checks, so the batch thread, the bottleneck at 100 candidates,
only runs the model (`ctr bench serve --cases service_100` against the commit before, interleaved:
+1.7 and +10.7 %, docs/serving-log.md); its values clipped to a training range are counted once the batchers
took it (``client.enqueue``: a request refused there, a 503 of a full queue, counts none), as a small
request's are counted by the batch that encodes them. The answer takes each role's score (common/roles.py)
and derives pCVR.

``respond`` is ``render(prepare(...), await outcomes(queue(...)))``; each step is its own function. ``start``
is the same without awaiting, for a request answered by its connection (http/protocol.py's direct routes).
"""

from __future__ import annotations

import asyncio
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np
import orjson

from service.batching import client
from service.http.body import INLINE_BODY_BYTES, load_object
from service.http.disconnect import Watcher
from service.http.errors import ApiError, InputError, ModelUnavailable
from service.models.scoring_model import ScoringModel
from service.models.snapshot import ServingModels
from service.score.features import ALONE_ROWS, FeatureRows, checked_rows
from service.score.versions import pinned_models
from service.settings import Settings

BODY_KEYS = frozenset({"context", "candidates", "versions"})


@dataclass(frozen=True)
class PreparedRequest:
    """A validated request: its raw feature rows, the model filling each role, and what each model's
    batcher is given."""

    n_candidates: int
    roles: dict[str, ScoringModel]  # role -> model, in ROLES order
    rows: FeatureRows  # checked
    # distinct model -> its batch input: the rows (encoded with their batch) or, for a large request,
    # its tensors already encoded
    inputs: dict[ScoringModel, FeatureRows | dict[str, np.ndarray]]
    # a large request's values clipped in its encoding, counted once the batchers took it (None: a small one)
    clipped: client.Clipped | None = None

    @property
    def models(self) -> tuple[ScoringModel, ...]:
        """The distinct models to run (one model filling two roles runs once)."""
        return tuple(self.inputs)

    def encoded(self, model: ScoringModel) -> dict[str, np.ndarray]:
        """The request's input tensors for one model, as its batch would encode them (a large request's
        as ``prepare`` did)."""
        inputs = self.inputs.get(model)
        if inputs is not None and not isinstance(inputs, FeatureRows):
            return inputs
        return model.encode([(self.rows, 0, self.n_candidates)])

    def served(self, outputs: dict[Any, dict[str, np.ndarray]]) -> tuple[list[float], list[float], list[float]]:
        """(pctr, pctcvr, pcvr) per candidate from each model's outputs (``served_probabilities``)."""
        return served_probabilities(outputs[self.roles["ctr"]], outputs[self.roles["ctcvr"]])


async def respond(
    body: bytes, models: ServingModels, settings: Settings, deadline: float, watch_disconnect: Watcher
) -> bytes:
    """The response body for a request body, through the batchers; its work is dropped if the client
    leaves (``watch_disconnect`` tells). Raises ApiError for anything the client must fix."""
    if len(body) <= INLINE_BODY_BYTES:
        prepared = prepare(body, models, settings)
    else:
        prepared = await asyncio.to_thread(prepare, body, models, settings)
    return render(prepared, await client.outcomes(queue(prepared, models, deadline), watch_disconnect))


Answered = Callable[[bytes | None, BaseException | None], None]  # (response body, None) or (None, error)


def start(
    body: bytes, models: ServingModels, settings: Settings, deadline: float, watch_disconnect: Watcher, done: Answered
) -> None:
    """``respond`` for a small body (``INLINE_BODY_BYTES`` at most) without awaiting: what is refused
    before anything is queued raises ApiError here; the rest comes to ``done``, once, on the event loop."""
    prepared = prepare(body, models, settings)

    def answered(outputs: dict[Any, dict[str, np.ndarray]] | None, error: BaseException | None) -> None:
        if outputs is None:
            done(None, error)
            return
        try:
            answer = render(prepared, outputs)
        except Exception as failure:
            done(None, failure)
            return
        done(answer, None)

    client.when_done(queue(prepared, models, deadline), watch_disconnect, answered)


def queue(prepared: PreparedRequest, models: ServingModels, deadline: float) -> client.Queued:
    """The request queued in the batcher of each model it needs (none if one refuses)."""
    requests = [(model, client.live_batcher(models, model), inputs) for model, inputs in prepared.inputs.items()]
    return client.enqueue(requests, prepared.n_candidates, deadline, prepared.clipped)


def prepare(body: bytes, models: ServingModels, settings: Settings) -> PreparedRequest:
    """Parse and check a body completely (and encode a large one): after this, encoding and running it
    cannot fail on its account."""
    roles = role_models(models)  # a service not ready answers 503 before reading the body
    context, candidates, versions = parse_body(body, settings.max_candidates)
    if versions is not None:  # versions pinned by the request (an online experiment's arm): they fill the roles
        models = pinned_models(models, versions)
        roles = role_models(models)
    return checked_request(context, candidates, roles, models.role_feature_kinds, settings.max_string_chars)


def checked_request(
    context: dict[str, Any],
    candidates: list[Any],
    roles: dict[str, ScoringModel],
    kinds: dict[str, str],
    max_string_chars: int,
) -> PreparedRequest:
    """A parsed request checked (``checked_rows``, against ``kinds``: the role models' feature kinds) and, if
    large, encoded, its clipped values not counted yet (``queue`` counts them); ``ctr score`` prepares each
    request of a file here too (training/offline_scores.py)."""
    distinct = tuple(dict.fromkeys(roles.values()))
    rows = checked_rows(context, candidates, distinct, kinds, max_string_chars)
    n = len(candidates)
    if n < ALONE_ROWS:
        return PreparedRequest(n, roles, rows, dict.fromkeys(distinct, rows))
    clipped = {model.encoder: Counter() for model in distinct}
    inputs: dict[ScoringModel, FeatureRows | dict[str, np.ndarray]] = {
        model: model.encode([(rows, 0, n)], clipped[model.encoder]) for model in distinct
    }
    return PreparedRequest(n, roles, rows, inputs, clipped)


def render(prepared: PreparedRequest, outputs: dict[Any, dict[str, np.ndarray]]) -> bytes:
    """The served probabilities per candidate (``served_probabilities``), and the model version behind
    each role."""
    pctr, pctcvr, pcvr = prepared.served(outputs)
    scores = [{"pctr": a, "pctcvr": b, "pcvr": c} for a, b, c in zip(pctr, pctcvr, pcvr, strict=True)]
    refs = {role: {"name": model.name, "version": model.version} for role, model in prepared.roles.items()}
    return orjson.dumps({"scores": scores, "models": refs})


def served_probabilities(
    ctr_outputs: dict[str, np.ndarray], ctcvr_outputs: dict[str, np.ndarray]
) -> tuple[list[float], list[float], list[float]]:
    """(pctr, pctcvr, pcvr) per candidate, all for one slot (the role models' regimes are checked equal).

    pctr is the ctr model's; pcvr is the ctcvr model's own pCVR output, so it ranks and calibrates as
    that model learned it, and pctcvr = pctr * pcvr, so the identity holds exactly between the numbers
    served. A ctcvr model without a pcvr output gives pctcvr: held to [0, pctr] (a click-and-convert
    probability above the click probability would serve a pcvr past 1, and one beside a pctr of 0 a
    conversion nobody could click to), and pcvr = pctcvr / pctr (``held_to_clicks``)."""
    pctr = ctr_outputs["pctr"].tolist()
    if "pcvr" not in ctcvr_outputs:
        pctcvr, pcvr = held_to_clicks(pctr, ctcvr_outputs["pctcvr"].tolist())
        return pctr, pctcvr, pcvr
    pcvr = ctcvr_outputs["pcvr"].tolist()
    return pctr, [a * c for a, c in zip(pctr, pcvr, strict=True)], pcvr


def held_to_clicks(pctr: list[float], pctcvr: list[float]) -> tuple[list[float], list[float]]:
    """(pctcvr held to [0, pctr], pcvr = that / pctr, 0 where pctr is 0): ESMM's identity pctcvr = pctr * pcvr
    and 0 <= pctcvr <= pctr hold between the numbers served (pctcvr was served as the model gave it, 0.3
    beside a pctr of 0.1 with a pcvr of 1)."""
    held = [min(max(b, 0.0), a) for a, b in zip(pctr, pctcvr, strict=True)]
    return held, [b / a if a > 0.0 else 0.0 for a, b in zip(pctr, held, strict=True)]


def role_models(models: ServingModels) -> dict[str, ScoringModel]:
    """Role -> the model filling it; 503 naming what is missing when a role is not filled, 404 in a service
    that fills no role (a retrieval service: no scoring model is ever served, as V2 answers a model not served)."""
    roles = models.role_models
    if roles is None:
        if not models.roles:
            raise ApiError(404, models.scores_nothing())
        reasons = "; ".join(f"model {name!r}: {why}" for name, why in models.unavailable().items())
        raise ModelUnavailable(f"not ready: {reasons}")
    return roles


def parse_body(body: bytes, max_candidates: int) -> tuple[dict[str, Any], list[Any], Any]:
    """The request's context object and candidate list, structurally checked, and its ``versions`` as sent
    (None without one: score/versions.py checks it against the served versions)."""
    data = load_object(body, BODY_KEYS, "'candidates' (and optionally 'context' and 'versions')")
    context = data.get("context")
    if context is None:
        context = {}
    elif type(context) is not dict:
        raise InputError(422, "context must be an object of feature values", "context")
    if "candidates" not in data:
        raise InputError(422, "candidates is required", "candidates")
    candidates = data["candidates"]
    if type(candidates) is not list:
        raise InputError(422, "candidates must be a list of objects", "candidates")
    if not candidates:
        raise InputError(422, "candidates must not be empty", "candidates")
    if len(candidates) > max_candidates:
        raise InputError(413, f"{len(candidates)} candidates; at most {max_candidates} per request", "candidates")
    return context, candidates, data.get("versions")
