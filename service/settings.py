"""Service settings: one ``Settings`` object, read from ``CTR_*`` environment variables.

Validators run when the object is built, so a bad value stops the service at start-up with a message
that names the setting, never at the first request.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Annotated

from pydantic import Field, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from common.repository import validate_model_name

ROLE_OUTPUTS = {"ctr": "pctr", "ctcvr": "pctcvr"}  # the output a model must have to fill each role
LOG_LEVELS = ("CRITICAL", "ERROR", "WARNING", "INFO", "DEBUG")


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="CTR_", extra="ignore", frozen=True)

    host: str = "127.0.0.1"  # address uvicorn binds
    port: Annotated[int, Field(ge=1, le=65535)] = 8000
    model_repository: Path = Path("models")  # <name>/<version>/{model.onnx, model.json}
    # Which repository model fills each role: the position-debiased adversarial CTR model gives pctr,
    # ESMM gives pctcvr (pcvr = pctcvr / pctr then mixes the two, clipped to [0, 1]).
    ctr_model: str = "ctr"
    ctcvr_model: str = "esmm"
    max_candidates: Annotated[int, Field(gt=0)] = 1000  # per request; more is answered 413
    max_body_bytes: Annotated[int, Field(gt=0)] = 4 * 1024 * 1024  # larger bodies are answered 413
    max_string_chars: Annotated[int, Field(gt=0)] = 1024  # longest categorical string value accepted
    intra_op_threads: Annotated[int, Field(ge=0)] = 0  # ONNX Runtime threads per operator; 0 = its default
    inter_op_threads: Annotated[int, Field(ge=0)] = 0  # ONNX Runtime threads across operators; 0 = default
    use_cuda: bool = True  # use CUDAExecutionProvider when onnxruntime offers it
    warmup_batch_sizes: tuple[int, ...] = (1, 64)  # batch sizes run once at load, before ready
    log_level: str = "INFO"
    access_log: bool = True  # uvicorn's per-request log line

    @field_validator("ctr_model", "ctcvr_model")
    @classmethod
    def _model_name(cls, value: str) -> str:
        return validate_model_name(value)

    @field_validator("host")
    @classmethod
    def _host(cls, value: str) -> str:
        if not value.strip():
            raise ValueError("host must not be empty")
        return value.strip()

    @field_validator("warmup_batch_sizes")
    @classmethod
    def _warmup(cls, value: tuple[int, ...]) -> tuple[int, ...]:
        if any(size < 1 for size in value):
            raise ValueError(f"warm-up batch sizes must be positive, not {list(value)}")
        return value

    @field_validator("log_level")
    @classmethod
    def _log_level(cls, value: str) -> str:
        level = value.strip().upper()
        if level not in LOG_LEVELS:
            raise ValueError(f"log_level must be one of {', '.join(LOG_LEVELS)}, not {value!r}")
        return level

    @property
    def roles(self) -> dict[str, str]:
        """Role -> repository model name."""
        return {"ctr": self.ctr_model, "ctcvr": self.ctcvr_model}

    @property
    def log_level_number(self) -> int:
        return logging.getLevelNamesMapping()[self.log_level]
