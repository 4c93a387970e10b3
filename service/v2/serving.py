"""What the REST routes and the gRPC service share: finding the model version a request names, and
running checked input tensors through that version's batcher (the one ``/v1/score`` uses too)."""

from __future__ import annotations

import numpy as np

from common.repository import VERSION_NAME
from service.batching import client
from service.batching.policy import Tensors
from service.http.disconnect import Watcher
from service.http.errors import ApiError, InputError, echoed
from service.models.base import ServedModel
from service.models.scoring_model import ScoringModel
from service.models.snapshot import ServingModels
from service.v2.tensors import clipped_to_training_range


def served(models: ServingModels, name: str, version: str | None) -> ServedModel:
    """The model version a request names (its newest with no version, or an empty one); 404 when it
    is not served, 400 when the version is not written as a version is (as Triton answers it:
    INVALID_ARGUMENT over gRPC, where it was NOT_FOUND and ModelReady said false). A version is what
    names a version directory (``VERSION_NAME``): ASCII digits ("²" is a digit to str.isdigit, not to
    int), no leading zero, few enough for an int64; "01" was served as version 1 and "0" was a 404."""
    if not version:
        model = models.model(name)
    else:
        if not VERSION_NAME.fullmatch(version):
            message = f"version must be a positive integer of at most 18 digits, no leading zero, not {echoed(version)}"
            raise InputError(400, message, "version")
        model = models.model(name, int(version))
    if model is None:
        reason = models.errors.get(name)
        shown = f"model {echoed(name)}" + (f" version {version}" if version else "")
        raise ApiError(404, f"{shown} is not served" + (f": {reason}" if reason else ""))
    return model


def scoring(model: ServedModel) -> ScoringModel:
    """The model, if V2 infer can run it (a scoring model); 400 for a retrieval model."""
    if not isinstance(model, ScoringModel):
        raise InputError(400, f"model {model.name!r} is a retrieval model: query it with POST /v1/similarity")
    return model


async def run(
    models: ServingModels,
    model: ScoringModel,
    inputs: dict[str, np.ndarray],
    rows: int,
    deadline: float,
    watch_disconnect: Watcher | None = None,
) -> Tensors:
    """The model's outputs for checked inputs, through its batcher; QueueFull (503), DeadlineExceeded
    (504), ModelUnavailable (503). The numeric input is clipped to the training range, its clipped values
    counted in the version's ``ctr_feature_values_clipped_total`` once the batcher took the request
    (``client.enqueue``, as on ``/v1/score``: a refused request counts nothing). With ``watch_disconnect``
    (HTTP) a client that disconnects abandons the work; without it (gRPC) the caller's cancellation does."""
    inputs, clipped = clipped_to_training_range(inputs, model)
    queued = client.enqueue([(model, client.live_batcher(models, model), inputs)], rows, deadline, clipped)
    if watch_disconnect is not None:
        return (await client.outcomes(queued, watch_disconnect))[model]
    try:
        return await queued[0][2].future  # type: ignore[misc]
    except BaseException:
        client.abandon(queued)
        raise
