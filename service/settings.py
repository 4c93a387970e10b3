"""Service settings: one ``Settings`` object, read from ``CTR_*`` environment variables.

Validators run when the object is built, so a bad value stops the service at start-up with a message
that names the setting, never at the first request.
"""

from __future__ import annotations

import difflib
import logging
from collections.abc import Mapping
from pathlib import Path
from typing import Annotated, Literal

from pydantic import Field, SecretStr, ValidationError, field_validator, model_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

from common.features import MAX_CATEGORY_CHARS
from common.repository import validate_model_name
from common.roles import NO_MODEL, ROLE, ROLES, role_variables

LOG_LEVELS = ("CRITICAL", "ERROR", "WARNING", "INFO", "DEBUG")
PREFIX = "CTR_"
# CTR_ variables that other parts of the project read (benchmark servers, the Locust file, torchrun's
# processes, the GPU runs' patched service: reports/h200/run_way_variant.patch), never settings of the service
OTHER_VARIABLES = frozenset(
    {"CTR_BENCH_MODEL", "CTR_BENCH_MODEL_THREAD", "CTR_BENCH_RUN_WAY", "CTR_LOCUST_REPOSITORY", "CTR_PROCESS_ERRORS"}
)
MIN_POLL_INTERVAL_S = 0.1  # each poll lists and reads every model's directory: at 1 ms, ~40 % of a core idle
# Upper bounds no operator could legitimately exceed, so that a typo (1e300, an extra digit) or ``inf`` is refused at
# start, not a service with no deadline, no slow-sender protection, a poll that never comes or a 301-digit header:
HOUR_S = 3600  # a request's deadline, a connection's keep-alive, header and body time-outs, Retry-After
DAY_S = 24 * HOUR_S  # draining at SIGTERM, polling the repository
HOUR_MS = HOUR_S * 1000  # a request's deadline, the shedding's wait and interval
# ONNX Runtime starts this many threads per session as it loads: CTR_INTRA_OP_THREADS=100000 (a typo) took a 2-core
# machine's process to 32,000 threads and 16.9 GB, deaf to SIGTERM for 10 minutes; no machine has this many CPUs
MAX_THREADS = 1024
# A count or size is a 64-bit integer: a larger one (CTR_MAX_CANDIDATES=99999999999999999999) crashed ``ctr serve``
# with a traceback as its start-up line wrote it (orjson), where every other wrong value is a line naming it
MAX_INT = 2**63 - 1
Count = Annotated[int, Field(gt=0, le=MAX_INT)]  # a count or size of one or more, a 64-bit integer

logger = logging.getLogger(__name__)


class Settings(BaseSettings):
    # allow_inf_nan=False: every float setting is finite (``CTR_KEEP_ALIVE_S=inf`` crashed in keep_alive_hint,
    # ``CTR_POLL_INTERVAL_S=inf`` started a service that never loaded, ``CTR_REQUEST_TIMEOUT_MS=inf`` had no deadline)
    model_config = SettingsConfigDict(env_prefix=PREFIX, extra="ignore", frozen=True, allow_inf_nan=False)

    host: str = "127.0.0.1"  # address uvicorn binds
    port: Annotated[int, Field(ge=1, le=65535)] = 8000
    # KServe V2 gRPC service on this port (same host, process and batchers); 0: off. Needs the grpc extra.
    grpc_port: Annotated[int, Field(ge=0, le=65535)] = 0
    # The shortest interval between a client's keepalive pings that the gRPC port lets through, calls in flight
    # or not (v2/grpc/server.py); a client pinging faster is sent GOAWAY "too_many_pings" on its third ping too
    # soon. At least 1 ms (grpc-core counts whole ones, and 0 lets a ping flood through), at most an hour
    grpc_min_ping_interval_s: Annotated[float, Field(ge=0.001, le=HOUR_S)] = 5.0
    model_repository: Path = Path("models")  # <name>/<version>/{model.onnx, model.json}
    # Which repository model fills each role (common/roles.py): by default the debiased ESMM fills both,
    # pctr and pcvr from one model, pctcvr their product; CTR_CTR_MODEL=ctr takes pctr from the
    # position-debiasing adversarial model instead (README, "API"). "none" in both: no scoring roles, a service
    # of the retrieval model alone (/v1/similarity; ready once it is loaded, /v1/score answers 404)
    ctr_model: str = ROLE["ctr"].default_model
    ctcvr_model: str = ROLE["ctcvr"].default_model
    max_candidates: Count = 1000  # per request; more is answered 413
    retrieval_model: str = "esam"  # the two-tower model behind /v1/similarity (503 there until exported)
    max_top_k: Count = 1000  # largest k /v1/similarity accepts
    max_body_bytes: Count = 4 * 1024 * 1024  # larger bodies are answered 413
    max_string_chars: Count = MAX_CATEGORY_CHARS  # longest categorical string value accepted
    intra_op_threads: Annotated[int, Field(ge=0, le=MAX_THREADS)] = 0  # ORT threads per operator; 0: its default
    inter_op_threads: Annotated[int, Field(ge=0, le=MAX_THREADS)] = 0  # ORT threads across operators; 0: default
    intra_op_spinning: bool = False  # ORT threads busy-wait between runs: CPU the event loop needs
    use_cuda: bool = True  # use CUDAExecutionProvider when onnxruntime offers it
    # batch sizes run once at load, before ready; CTR_WARMUP_BATCH_SIZES=1,64 (or a JSON list)
    warmup_batch_sizes: Annotated[tuple[int, ...], NoDecode] = (1, 64)
    log_level: str = "INFO"
    # a line per request, HTTP's (uvicorn.access) and gRPC's (service.grpc.access); false: failures' alone
    access_log: bool = True  # (http/failure_lines.py)
    log_format: Literal["text", "json"] = "text"  # json: one JSON object per line (structured logs)
    batching: bool = True  # dynamic batching per model ([serving] in config.toml); false: one run per request
    # deadline; a request may ask for less (504). At most an hour
    request_timeout_ms: Annotated[float, Field(gt=0, le=HOUR_MS)] = 1000.0
    retry_after_s: Annotated[int, Field(ge=1, le=HOUR_S)] = 1  # Retry-After on 503 when a queue is full; <= an hour
    admin_token: SecretStr | None = None  # bearer token for /v2/repository/...; unset: admin routes are off
    # reload when the repository changes, polling it this often; 0: off. At least MIN_POLL_INTERVAL_S, at most a day
    poll_interval_s: Annotated[float, Field(ge=0, le=DAY_S)] = 0.0
    # on SIGTERM, the longest wait for in-flight work (at most a day), and the time after which idle keep-alive
    # connections are closed (less than drain_timeout_s)
    drain_timeout_s: Annotated[float, Field(gt=0, le=DAY_S)] = 20.0
    drain_idle_s: Annotated[float, Field(ge=0, le=DAY_S)] = 1.0
    # An idle keep-alive connection's time after a response, told to clients (``Keep-Alive: timeout=5``);
    # the server closes it ``keep_alive_grace_s`` later, so a client that honours the hint has closed it
    # that long before, not as a request of its own is on the way (Node's keepAliveTimeoutBuffer). Each at most an hour
    keep_alive_s: Annotated[float, Field(gt=0, le=HOUR_S)] = 5.0
    keep_alive_grace_s: Annotated[float, Field(ge=0, le=HOUR_S)] = 1.0
    # A request's headers within this of its first bytes (408), and a new connection's first bytes within this
    # of its start (closed without a word otherwise); its body within body_timeout_s after the headers (408
    # otherwise). Each at most an hour
    header_timeout_s: Annotated[float, Field(gt=0, le=HOUR_S)] = 10.0
    body_timeout_s: Annotated[float, Field(gt=0, le=HOUR_S)] = 10.0
    body_bytes_in_flight: Count = 16 * 1024 * 1024  # large bodies read and parsed at once
    # Once the service's queueing delay (a new request's wait to be read, the oldest inference request's
    # time in hand, or the requests in hand ÷ the recent answer rate) stands above this for
    # ``shed_interval_ms``, inference requests that find it above are refused 503 at their headers, until
    # it stays under for as long (http/overload.py); 0: off. A refusal comes about this long after its
    # request arrived, so 25 ms keeps the refusals' p99 under 50 ms at twice the sustainable rate
    shed_wait_ms: Annotated[float, Field(ge=0, le=HOUR_MS)] = 25.0
    # How long the delay must stand above ``shed_wait_ms`` to be a queue and not a stall (CoDel's
    # interval, and its default): with 20 ms, pauses of the process of 50-60 ms (a host's steal, a long
    # collection) under a light load drew refusals of requests that would all have been answered, with
    # 50 ms now and then; with 100 ms none, and twice the sustainable rate is still refused within the
    # overload row's 50 ms (docs/serving.md, "Pauses are not overload"). Each at most an hour (1e300 was taken)
    shed_interval_ms: Annotated[float, Field(gt=0, le=HOUR_MS)] = 100.0
    # The event loop uvicorn runs: "asyncio" accepted new connections within tens of ms at twice the
    # sustainable rate where "uvloop" left them in the kernel's accept queue for 0.3-2 s (docs/serving.md)
    event_loop: Literal["asyncio", "uvloop", "auto"] = "asyncio"
    # Processes serving the port, each with its own event loop, models and batchers (workers.py): one event
    # loop answers ~15,000 1-candidate requests/s on a 2-core machine with the other core mostly idle
    # (docs/serving.md, "Several worker processes"). Each loads every model: memory grows with the count
    workers: Annotated[int, Field(ge=1, le=64)] = 1

    @field_validator(*(role.settings_key for role in ROLES))  # a new role's checked too
    @classmethod
    def _role_model(cls, value: str) -> str:
        """A model's name, or ``NO_MODEL`` (any case) for no model in the role."""
        return NO_MODEL if value.strip().lower() == NO_MODEL else validate_model_name(value)

    @field_validator("retrieval_model")
    @classmethod
    def _model_name(cls, value: str) -> str:
        if value.strip().lower() == NO_MODEL:  # validate_model_name's "reserved" spoke of the roles
            raise ValueError(
                f"{value!r} names no model; a scoring service needs no retrieval model (it is ready without one, "
                "/v1/similarity answering 503): unset CTR_RETRIEVAL_MODEL for the default, esam"
            )
        return validate_model_name(value)

    @model_validator(mode="after")
    def _scoring_roles(self) -> Settings:
        """Every role filled, or none (a retrieval service): a score needs them all (pcvr = pctcvr / pctr)."""
        variables = dict(zip(ROLES, role_variables(), strict=True))
        empty = [variable for role, variable in variables.items() if getattr(self, role.settings_key) == NO_MODEL]
        if empty and len(empty) < len(ROLES):
            named = ", ".join(empty)
            every = " ".join(f"{variable}={NO_MODEL}" for variable in variables.values())
            raise ValueError(
                f"{named} {NO_MODEL} alone: a score needs every role (pcvr = pctcvr / pctr); name a model in each, "
                f"or {NO_MODEL} in each ({every}) for a service of the retrieval model alone"
            )
        return self

    @model_validator(mode="after")
    def _grpc_port(self) -> Settings:
        if self.grpc_port == self.port:
            raise ValueError(f"CTR_GRPC_PORT ({self.grpc_port}) must differ from CTR_PORT ({self.port})")
        return self

    @model_validator(mode="after")
    def _drain_times(self) -> Settings:
        """Idle connections are closed within the drain: one idle keep-alive connection made every SIGTERM wait
        the whole CTR_DRAIN_TIMEOUT_S and log uvicorn's "timeout graceful shutdown exceeded" otherwise. A
        CTR_DRAIN_IDLE_S left at its default under a drain timeout of a second or less is half the timeout: an
        operator who shortened the drain alone (``CTR_DRAIN_TIMEOUT_S=0.9``) was refused for a default never set."""
        if self.drain_idle_s >= self.drain_timeout_s and "drain_idle_s" not in self.model_fields_set:
            object.__setattr__(self, "drain_idle_s", self.drain_timeout_s / 2)  # frozen: set once, as it is built
        if self.drain_idle_s >= self.drain_timeout_s:
            raise ValueError(
                f"CTR_DRAIN_IDLE_S ({self.drain_idle_s:g} s) must be less than CTR_DRAIN_TIMEOUT_S "
                f"({self.drain_timeout_s:g} s): idle connections are closed within the drain"
            )
        return self

    @model_validator(mode="after")
    def _body_budget(self) -> Settings:
        if self.body_bytes_in_flight < self.max_body_bytes:
            raise ValueError(
                f"CTR_BODY_BYTES_IN_FLIGHT ({self.body_bytes_in_flight}) must hold one body of CTR_MAX_BODY_BYTES "
                f"({self.max_body_bytes})"
            )
        return self

    @field_validator("admin_token")
    @classmethod
    def _admin_token(cls, value: SecretStr | None) -> SecretStr | None:
        if value is None or not value.get_secret_value():
            return None
        if len(value.get_secret_value()) < 16:
            raise ValueError("admin_token must be at least 16 characters (or empty to turn admin routes off)")
        return value

    @field_validator("host")
    @classmethod
    def _host(cls, value: str) -> str:
        """The host as an address to bind: an IPv6 one may be given as a URL writes it, ``[::1]``, as the
        start-up line says it (``http://[::1]:8000``); getaddrinfo refused the brackets ("cannot listen on
        [[::1]]:8000 (CTR_HOST): Name or service not known"), so every consumer is given ``::1``."""
        host = value.strip()
        if host.startswith("[") and host.endswith("]"):
            host = host[1:-1].strip()
        if not host:
            raise ValueError("host must not be empty")
        return host

    @field_validator("model_repository", mode="before")
    @classmethod
    def _repository_named(cls, value: object) -> object:
        """An empty ``CTR_MODEL_REPOSITORY=`` is refused as an empty host is: ``Path("")`` is the current
        directory, which then served whatever folders stood there, or nothing, without a word."""
        if isinstance(value, str) and not value.strip():
            raise ValueError("model_repository must not be empty (unset it for the default, models)")
        return value

    @field_validator("model_repository")
    @classmethod
    def _repository(cls, value: Path) -> Path:
        if value.exists() and not value.is_dir():
            raise ValueError(f"model_repository {str(value)!r} is a file, not a directory of models")
        return value

    @field_validator("warmup_batch_sizes", mode="before")
    @classmethod
    def _comma_separated(cls, value: object) -> object:
        """``CTR_WARMUP_BATCH_SIZES=1,64`` as well as the JSON list ``[1, 64]``."""
        if isinstance(value, str):
            text = value.strip().removeprefix("[").removesuffix("]")
            parts = [part.strip() for part in text.split(",") if part.strip()]
            if not all(part.isdigit() for part in parts):
                raise ValueError(f"warmup_batch_sizes takes positive integers separated by commas, not {value!r}")
            return tuple(int(part) for part in parts)
        return value

    @field_validator("warmup_batch_sizes")
    @classmethod
    def _warmup(cls, value: tuple[int, ...]) -> tuple[int, ...]:
        if not value:
            raise ValueError("warmup_batch_sizes needs at least one batch size (a model is run once before ready)")
        if any(size < 1 for size in value):
            raise ValueError(f"warm-up batch sizes must be positive, not {list(value)}")
        if any(size > MAX_INT for size in value):
            raise ValueError(f"warm-up batch sizes must be at most {MAX_INT} (a 64-bit integer), not {list(value)}")
        return value

    @field_validator("poll_interval_s")
    @classmethod
    def _poll_interval(cls, value: float) -> float:
        if 0 < value < MIN_POLL_INTERVAL_S:
            raise ValueError(f"poll_interval_s must be 0 (off) or at least {MIN_POLL_INTERVAL_S} s, not {value}")
        return value

    @field_validator("log_format", "event_loop", mode="before")
    @classmethod
    def _any_case(cls, value: object) -> object:
        """``CTR_LOG_FORMAT=JSON`` and ``CTR_EVENT_LOOP=UVLOOP`` as well, as ``CTR_LOG_LEVEL`` takes any case:
        the literals alone were refused written in capitals."""
        return value.strip().lower() if isinstance(value, str) else value

    @field_validator("log_level")
    @classmethod
    def _log_level(cls, value: str) -> str:
        level = value.strip().upper()
        if level not in LOG_LEVELS:
            raise ValueError(f"log_level must be one of {', '.join(LOG_LEVELS)}, not {value!r}")
        return level

    @property
    def roles(self) -> dict[str, str]:
        """Role -> repository model name (common/roles.py); empty for a service of the retrieval model alone
        (every role ``NO_MODEL``)."""
        return {role.name: model for role in ROLES if (model := getattr(self, role.settings_key)) != NO_MODEL}

    @property
    def log_level_number(self) -> int:
        return logging.getLevelNamesMapping()[self.log_level]


def unknown_variables(environment: Mapping[str, str]) -> list[str]:
    """A line for each ``CTR_`` variable in ``environment`` that is no setting (a misspelt one is
    otherwise ignored without a word: ``CTR_WORKER=2`` serves one process), with the nearest setting, or,
    where a key of a model's ``[serving]`` table is nearer (``CTR_MAX_BATCH_SIZ``), that it is set there:
    the nearest setting (CTR_WARMUP_BATCH_SIZES) sent the operator to the wrong one."""
    settings = {PREFIX + name.upper() for name in Settings.model_fields}
    unknown = [name for name in sorted(environment) if name.upper().startswith(PREFIX)]
    unknown = [name for name in unknown if name.upper() not in settings | OTHER_VARIABLES]
    if not unknown:
        return []
    from service.models.config import SERVING_KEYS  # numpy's import, for a variable that is no setting alone

    serving = {PREFIX + key.upper(): key for key in SERVING_KEYS}
    lines = []
    for variable in unknown:
        near = difflib.get_close_matches(variable.upper(), sorted(settings | serving.keys()), n=1, cutoff=0.7)
        if near and near[0] in serving:
            hint = f" ({serving[near[0]]} is set in each model's config.toml [serving], not in the environment)"
        else:
            hint = f" (did you mean {near[0]}?)" if near else ""
        lines.append(f"{variable} is not a setting; ignored{hint}")
    return lines


def warn_of_unknown_variables(environment: Mapping[str, str]) -> None:
    """Each of ``unknown_variables`` as a warning: by ``ctr serve`` once its log is set up, and by every other
    ``ctr`` command (cli/main.py), where ``CTR_CTR_MODL=ctr ctr prepare`` said "nothing to train" alone."""
    for line in unknown_variables(environment):
        logger.warning(line)


def invalid_settings(error: ValidationError) -> str:
    """The settings' errors on one line: each ``CTR_`` variable and what is wrong with it, never the value
    given (an admin token is a secret), where pydantic's first line says only how many errors there were."""
    problems = []
    for problem in error.errors(include_url=False, include_input=False, include_context=False):
        field = ".".join(str(part) for part in problem["loc"])
        text = problem["msg"].removeprefix("Value error, ")
        # the variable named once: "CTR_ADMIN_TOKEN: admin_token must be ..." named it twice, in two spellings
        text = text.removeprefix(f"{field} ") if field and text.startswith(f"{field} ") else text
        problems.append(f"CTR_{field.upper()}: {text}" if field else text)
    return "invalid settings: " + "; ".join(problems)
