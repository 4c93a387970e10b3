"""A served model version's configuration in the shape of Triton's model configuration (``GET
/v2/models/{name}[/versions/{v}]/config``, gRPC ``ModelConfig``), where the service's settings map:

- ``max_batch_size``: a request of this many rows is always taken, as Triton's clients read it
  (perf_analyzer and batching clients size requests by it): the smaller of ``CTR_MAX_CANDIDATES`` (more is
  a 413) and the batcher's items per run (``[serving] max_batch_size``). With ``CTR_MAX_CANDIDATES``
  the larger, requests up to it are taken too, split across runs: the figure is a bound a client can
  rely on, not the service's limit.
  It was the batcher's 1024 alone, and a request of 1,001-1,024 rows that the configuration allowed
  was refused. As in Triton, ``dims`` then leave out the batch axis, and each per-row output (shape
  ``(batch,)``) is ``dims [1]`` reshaped to ``[]``;
- ``dynamic_batching``: ``max_queue_delay_microseconds`` from ``max_queue_delay_us``; no preferred
  sizes, as the batcher fills a batch up to its cap, what Triton does without them (absent with
  ``CTR_BATCHING=false``);
- ``instance_group``: ``instances`` batches at once, on the GPU or CPU the session actually runs on;
- ``version_policy``: ``latest`` / ``specific`` / ``all`` as in ``[serving] version_policy``.

What has no counterpart in the service (optimisation policies, sequence batching, ensembles, model
warm-up entries) is left out. The dict is the REST body, and the gRPC service parses it into the
protobuf message, so both say the same.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from service.batching.policy import BatchConfig
from service.models.base import ServedModel
from service.models.config import ServingConfig, VersionPolicy
from service.models.snapshot import ServingModels
from service.v2.protocol import PLATFORM

DATA_TYPES = {"int64": "TYPE_INT64", "float32": "TYPE_FP32", "float64": "TYPE_FP64"}  # numpy dtype -> Triton's


def model_config(
    model: ServedModel, batch: BatchConfig | None, policy: VersionPolicy | None, max_rows: int
) -> dict[str, Any]:
    """Triton's model configuration of ``model`` batched with ``batch`` (None: not batched), taking at
    most ``max_rows`` rows a request."""
    max_batch = min(batch.max_batch_size, max_rows) if batch is not None else 0
    config: dict[str, Any] = {
        "name": model.name,
        "platform": PLATFORM,
        "backend": "onnxruntime",
        "max_batch_size": max_batch,
        "input": [_tensor(x.name, x.dtype, x.shape, max_batch > 0) for x in model.manifest.inputs],
        "output": [_tensor(x.name, x.dtype, x.shape, max_batch > 0) for x in model.manifest.outputs],
    }
    if policy is not None:
        config["version_policy"] = _policy(policy)
    if batch is not None and batch.enabled:
        config["dynamic_batching"] = {"max_queue_delay_microseconds": batch.max_queue_delay_us}
    if batch is not None:
        kind = "KIND_GPU" if model.provider.startswith("CUDA") else "KIND_CPU"
        config["instance_group"] = [{"name": model.name, "kind": kind, "count": batch.instances}]
    return config


def served_config(
    model: ServedModel, models: ServingModels, configs: Mapping[str, ServingConfig], max_rows: int
) -> dict[str, Any]:
    """The configuration of a served version: its batcher's settings, its model's version policy
    (``configs``: the model manager's ``[serving]`` tables by model name) and the request row limit."""
    batcher = models.batcher(model)
    serving = configs.get(model.name)
    policy = serving.version_policy if serving else None
    return model_config(model, batcher.config if batcher is not None else None, policy, max_rows)


def _tensor(name: str, dtype: str, shape: list[int | str], batched: bool) -> dict[str, Any]:
    dims = [d if isinstance(d, int) else -1 for d in (shape[1:] if batched else shape)]
    tensor: dict[str, Any] = {"name": name, "data_type": DATA_TYPES[dtype], "dims": dims or [1]}
    if not dims:  # a per-row scalar: Triton's convention for it
        tensor["reshape"] = {"shape": []}
    return tensor


def _policy(policy: VersionPolicy) -> dict[str, Any]:
    if policy.specific:
        return {"specific": {"versions": list(policy.specific)}}
    if policy.latest is None:
        return {"all": {}}
    return {"latest": {"num_versions": policy.latest}}
