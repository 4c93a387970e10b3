"""Open Inference Protocol (KServe V2) bodies as pydantic models, for the OpenAPI document and the
test that checks every 2xx body against them (the routes parse and answer by hand: protocol.py)."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

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


class ModelMetadata(BaseModel):
    name: str
    versions: list[str]
    platform: str
    inputs: list[TensorMetadata]
    outputs: list[TensorMetadata]


class ModelReady(BaseModel):
    name: str
    version: str | None = None
    ready: bool


class InferInput(BaseModel):
    name: str = Field(description="An input the model metadata lists.")
    datatype: Datatype
    shape: list[int] = Field(description="[rows, width]")
    data: Nested = Field(description="Row-major values, flat or nested.")


class RequestedOutput(BaseModel):
    name: str


class InferRequest(BaseModel):
    model_config = ConfigDict(json_schema_extra={"examples": [INFER_EXAMPLE]})

    id: str | None = None
    inputs: list[InferInput] = Field(min_length=1)
    outputs: list[RequestedOutput] | None = Field(default=None, description="Default: every output.")


class InferOutput(BaseModel):
    name: str
    datatype: Datatype
    shape: list[int]
    data: list[float]


class InferResponse(BaseModel):
    model_name: str
    model_version: str
    id: str | None = None
    outputs: list[InferOutput]


class RepositoryModel(BaseModel):
    name: str
    version: str | None = None
    state: Literal["READY", "UNAVAILABLE"]
    reason: str = ""
