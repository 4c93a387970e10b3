"""Open Inference Protocol (KServe V2) bodies as pydantic models, for the OpenAPI document and the
test that checks every 2xx body against them (the routes parse and answer by hand: protocol.py)."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

# An input's datatype: a served model's inputs are int64 and float32 (scoring_model.INPUT_DTYPES), and a
# request's FP64 is always refused (400 "datatype must be FP32"); an output's is its graph's, which no
# load check holds to float32
InputDatatype = Literal["INT64", "FP32"]
Datatype = Literal["INT64", "FP32", "FP64"]
Nested = list[int | float] | list[list[int | float]]

INFER_EXAMPLE = {  # one encoded row for the default served models (7 categorical ids, 3 numeric values)
    "id": "r1",
    "inputs": [
        {
            "name": "categorical",
            "datatype": "INT64",
            "shape": [1, 7],
            "data": [[17, 40003, 40065, 40101, 40953, 50197, 50603]],
        },
        {"name": "numeric", "datatype": "FP32", "shape": [1, 3], "data": [[0.4, 1.2, -0.3]]},
    ],
    "outputs": [{"name": "pctr"}],
}


class ServerMetadata(BaseModel):
    name: str
    version: str
    extensions: list[str]


class TensorMetadata(BaseModel):
    name: str
    datatype: Datatype
    shape: list[int] = Field(description="-1 for the batch dimension.")


class InputMetadata(TensorMetadata):
    datatype: InputDatatype


class ModelMetadata(BaseModel):
    name: str
    versions: list[str]
    platform: str
    inputs: list[InputMetadata]
    outputs: list[TensorMetadata]


class ModelReady(BaseModel):
    name: str
    version: str | None = None
    ready: bool


class InferInput(BaseModel):
    name: str = Field(description="An input the model metadata lists.")
    datatype: InputDatatype
    shape: list[int] = Field(description="[rows, width]")
    data: Nested | None = Field(
        default=None, description="Row-major values, flat or nested (absent for a binary tensor)."
    )
    parameters: dict[str, Any] | None = Field(
        default=None,
        description="Binary tensor data extension: {'binary_data_size': N}, the tensor's N raw little-endian "
        "bytes following the JSON header (whose size the Inference-Header-Content-Length header gives).",
    )


class RequestedOutput(BaseModel):
    name: str
    parameters: dict[str, Any] | None = Field(
        default=None, description="{'binary_data': true} answers this output as raw bytes after the JSON header."
    )


class InferRequest(BaseModel):
    model_config = ConfigDict(json_schema_extra={"examples": [INFER_EXAMPLE]})

    id: str | None = None
    inputs: list[InferInput] = Field(min_length=1)
    outputs: list[RequestedOutput] | None = Field(default=None, description="Default: every output.")
    parameters: dict[str, Any] | None = Field(
        default=None, description="{'binary_data_output': true} answers every output in binary by default."
    )


class InferOutput(BaseModel):
    name: str
    datatype: Datatype
    shape: list[int]
    data: list[float] | None = Field(default=None, description="Absent for a binary output.")
    parameters: dict[str, int] | None = Field(default=None, description="{'binary_data_size': N} for a binary output.")


class InferResponse(BaseModel):
    model_name: str
    model_version: str
    id: str | None = None
    outputs: list[InferOutput]


class RepositoryIndexRequest(BaseModel):
    """Triton's repository index request (its other fields are ignored, as Triton ignores them)."""

    ready: bool = Field(default=False, description="true: list only the versions served (state READY).")


class LoadedModel(BaseModel):
    name: str
    versions: list[int] = Field(description="The versions served once the load is done.")


class UnloadedModel(BaseModel):
    name: str
    unloaded: Literal[True]


class RepositoryModel(BaseModel):
    name: str
    version: str | None = None
    state: Literal["READY", "UNAVAILABLE"]
    reason: str = ""


class ConfigTensor(BaseModel):
    name: str
    data_type: Literal["TYPE_INT64", "TYPE_FP32", "TYPE_FP64"]
    dims: list[int] = Field(description="Without the batch axis when max_batch_size > 0; -1: variable.")
    reshape: dict[str, list[int]] | None = None


class DynamicBatching(BaseModel):
    max_queue_delay_microseconds: int


class InstanceGroup(BaseModel):
    name: str
    kind: Literal["KIND_CPU", "KIND_GPU"]
    count: int


class ModelConfig(BaseModel):
    """Triton's model configuration, where the service's settings map (service/v2/model_config.py)."""

    name: str
    platform: str
    backend: str
    max_batch_size: int
    input: list[ConfigTensor]
    output: list[ConfigTensor]
    version_policy: dict[str, dict[str, Any]] | None = None
    dynamic_batching: DynamicBatching | None = None
    instance_group: list[InstanceGroup] | None = None


class Duration(BaseModel):
    count: int
    ns: int


class InferStatistics(BaseModel):
    success: Duration
    fail: Duration
    queue: Duration
    compute_input: Duration
    compute_infer: Duration
    compute_output: Duration
    cache_hit: Duration
    cache_miss: Duration


class BatchStatistics(BaseModel):
    batch_size: int
    compute_input: Duration
    compute_infer: Duration
    compute_output: Duration


class ModelStatistics(BaseModel):
    name: str
    version: str
    last_inference: int = Field(description="Milliseconds since the epoch of the last model run (0: none).")
    inference_count: int = Field(description="Items (rows) run.")
    execution_count: int = Field(description="Model runs (batches).")
    inference_stats: InferStatistics
    batch_stats: list[BatchStatistics]


class Statistics(BaseModel):
    """Triton's statistics extension (service/v2/statistics.py says what each figure is here)."""

    model_stats: list[ModelStatistics]
