from __future__ import annotations

from pathlib import Path

import pytest
from pydantic import ValidationError

from service.settings import Settings, invalid_settings, unknown_variables
from tests.support.checkout import ROOT

README = ROOT / "README.md"


def test_defaults() -> None:
    settings = Settings()
    assert (settings.host, settings.port) == ("127.0.0.1", 8000)
    assert settings.model_repository == Path("models")
    assert settings.roles == {"ctr": "esmm", "ctcvr": "esmm"}  # one model: pCTR x pCVR fitted together
    assert settings.max_candidates == 1000
    assert settings.max_body_bytes == 4 * 1024 * 1024
    assert settings.use_cuda is True


def test_environment_prefix(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("CTR_PORT", "9001")
    monkeypatch.setenv("CTR_MODEL_REPOSITORY", str(tmp_path))
    monkeypatch.setenv("CTR_CTR_MODEL", "debiased_ctr")
    monkeypatch.setenv("CTR_USE_CUDA", "false")
    monkeypatch.setenv("CTR_LOG_LEVEL", "debug")
    settings = Settings()
    assert settings.port == 9001
    assert settings.model_repository == tmp_path
    assert settings.roles == {"ctr": "debiased_ctr", "ctcvr": "esmm"}
    assert settings.use_cuda is False
    assert settings.log_level == "DEBUG"


@pytest.mark.parametrize(
    ("field", "value", "words"),
    [
        ("port", 0, "port"),
        ("port", 70000, "port"),
        ("ctr_model", "../etc", "model name"),
        ("ctcvr_model", "", "model name"),
        ("max_candidates", 0, "max_candidates"),
        ("max_body_bytes", -1, "max_body_bytes"),
        ("intra_op_threads", -1, "intra_op_threads"),
        ("log_level", "loud", "log_level"),
        ("warmup_batch_sizes", (1, 0), "warm-up"),
        ("workers", 0, "workers"),
        ("poll_interval_s", 0.001, "poll_interval_s must be 0 (off) or at least 0.1 s, not 0.001"),
        ("poll_interval_s", -1, "poll_interval_s"),
    ],
)
def test_bad_values_fail_at_start_up(field: str, value: object, words: str) -> None:
    with pytest.raises(ValidationError) as raised:
        Settings(**{field: value})
    assert words in str(raised.value)


FLOAT_SETTINGS = [name for name, field in Settings.model_fields.items() if field.annotation is float]


@pytest.mark.parametrize("name", FLOAT_SETTINGS)
@pytest.mark.parametrize("text", ["inf", "-inf", "nan", "Infinity"])
def test_every_float_setting_is_finite(monkeypatch: pytest.MonkeyPatch, name: str, text: str) -> None:
    """``CTR_KEEP_ALIVE_S=inf`` crashed ``ctr serve`` with a traceback, ``CTR_POLL_INTERVAL_S=inf`` never loaded,
    ``CTR_REQUEST_TIMEOUT_MS=inf`` had no deadline: each is refused at start, naming the variable."""
    monkeypatch.setenv(f"CTR_{name.upper()}", text)
    with pytest.raises(ValidationError) as raised:
        Settings()
    assert invalid_settings(raised.value).startswith(f"invalid settings: CTR_{name.upper()}: ")


@pytest.mark.parametrize(
    ("field", "largest"),
    [
        ("request_timeout_ms", 3_600_000),
        ("retry_after_s", 3600),
        ("poll_interval_s", 86400),
        ("drain_timeout_s", 86400),
        ("drain_idle_s", 86400),
        ("keep_alive_s", 3600),
        ("keep_alive_grace_s", 3600),
        ("header_timeout_s", 3600),
        ("body_timeout_s", 3600),
        ("grpc_min_ping_interval_s", 3600),
        ("shed_wait_ms", 3_600_000),
        ("shed_interval_ms", 3_600_000),
        ("intra_op_threads", 1024),
        ("inter_op_threads", 1024),
    ],
)
def test_time_and_thread_settings_have_an_upper_bound(field: str, largest: int) -> None:
    """``CTR_KEEP_ALIVE_S=1e300`` sent a 301-digit header, ``CTR_RETRY_AFTER_S=1e11`` a 3,000-year wait: an hour
    (a day for draining and polling) is more than an operator could mean, a typo's extra digits are refused;
    ``CTR_INTRA_OP_THREADS=100000`` started 32,000 threads (16.9 GB) before SIGTERM could stop it."""
    room = {"drain_timeout_s": 86400} if field == "drain_idle_s" else {}  # the idle time is within the drain
    assert getattr(Settings(**{field: largest - 1, **room}), field) == largest - 1
    with pytest.raises(ValidationError, match=f"{field}\n  Input should be less than or equal to {largest}"):
        Settings(**{field: largest + 1})


INT_SETTINGS = [name for name, field in Settings.model_fields.items() if field.annotation is int]


@pytest.mark.parametrize("name", [*INT_SETTINGS, "warmup_batch_sizes"])
def test_every_integer_setting_past_64_bits_is_refused_in_one_line(monkeypatch: pytest.MonkeyPatch, name: str) -> None:
    """``CTR_MAX_CANDIDATES=99999999999999999999`` crashed ``ctr serve`` with a traceback (orjson writing the
    start-up line: "Integer exceeds 64-bit range"), where any other wrong value is refused naming its variable."""
    monkeypatch.setenv(f"CTR_{name.upper()}", "99999999999999999999")
    with pytest.raises(ValidationError) as raised:
        Settings()
    line = invalid_settings(raised.value)
    assert line.startswith(f"invalid settings: CTR_{name.upper()}: ") and "\n" not in line, line


def test_a_64_bit_count_is_taken() -> None:
    assert Settings(max_candidates=2**63 - 1).max_candidates == 2**63 - 1
    assert Settings(warmup_batch_sizes=(1, 2**63 - 1)).warmup_batch_sizes == (1, 2**63 - 1)


@pytest.mark.parametrize("text", ["0", "0.0004", "-1"])
def test_the_grpc_ping_interval_is_a_millisecond_or_more(monkeypatch: pytest.MonkeyPatch, text: str) -> None:
    """grpc-core counts the interval in whole milliseconds, and at 0 every ping is let through: a ping flood
    too. The refusal names the variable."""
    monkeypatch.setenv("CTR_GRPC_MIN_PING_INTERVAL_S", text)
    with pytest.raises(ValidationError) as raised:
        Settings()
    assert invalid_settings(raised.value) == (
        "invalid settings: CTR_GRPC_MIN_PING_INTERVAL_S: Input should be greater than or equal to 0.001"
    )
    assert Settings(grpc_min_ping_interval_s=0.001).grpc_min_ping_interval_s == 0.001


@pytest.mark.parametrize("seconds", [0, 0.1, 30])
def test_polling_is_off_or_at_most_ten_times_a_second(seconds: float) -> None:
    assert Settings(poll_interval_s=seconds).poll_interval_s == seconds


def test_the_readme_names_every_setting() -> None:
    listed = README.read_text().split("Settings (environment, prefix `CTR_`", 1)[1].split("\n\n", 1)[0]
    missing = [name.upper() for name in Settings.model_fields if f"`{name.upper()}`" not in listed]
    assert not missing, f"README.md's settings paragraph does not name {missing}"


def _documented(default: object) -> str:
    """A default as the settings table writes it: ``true``, ``1,64``, ``5`` for 5.0, ``unset`` for none."""
    if default is None:
        return "unset"
    if isinstance(default, bool):
        return str(default).lower()
    if isinstance(default, tuple):
        return ",".join(map(str, default))
    return f"{default:g}" if isinstance(default, float) else str(default)


def test_the_settings_table_gives_every_default() -> None:
    """The README named each setting and sent the operator to service/settings.py for its default and unit
    (``python -m service --help`` to ``ctr serve --help``, which lists three): docs/serving.md's table gives
    each, and its defaults are the code's."""
    section = (ROOT / "docs" / "serving.md").read_text().split("\n## Settings (`CTR_*`", 1)[1].split("\n## ", 1)[0]
    rows = [line.split(" | ") for line in section.splitlines() if line.startswith("| `CTR_")]
    table = {row[0].removeprefix("| `").removesuffix("`"): row[1] for row in rows}
    assert len(table) == len(rows), "a setting is in the table twice"
    expected = {f"CTR_{name.upper()}": field.default for name, field in Settings.model_fields.items()}
    assert sorted(table) == sorted(expected)
    for variable, default in expected.items():
        cell = table[variable]
        shown = cell.split("`")[1] if cell.startswith("`") else cell
        assert shown == _documented(default), f"{variable}: the table says {cell!r}, the code {default!r}"


@pytest.mark.parametrize(("idle", "timeout"), [(20, 20), (30, 20), (5, 4.5)])
def test_idle_connections_are_closed_within_the_drain(idle: float, timeout: float) -> None:
    """CTR_DRAIN_IDLE_S >= CTR_DRAIN_TIMEOUT_S made every SIGTERM with one idle keep-alive connection wait the whole
    drain and log uvicorn's "timeout graceful shutdown exceeded"."""
    with pytest.raises(ValidationError) as raised:
        Settings(drain_idle_s=idle, drain_timeout_s=timeout)
    assert invalid_settings(raised.value) == (
        f"invalid settings: CTR_DRAIN_IDLE_S ({idle:g} s) must be less than CTR_DRAIN_TIMEOUT_S ({timeout:g} s): "
        "idle connections are closed within the drain"
    )
    assert Settings(drain_idle_s=timeout - 0.5, drain_timeout_s=timeout).drain_idle_s == timeout - 0.5


def test_a_drain_timeout_under_the_default_idle_time_halves_it() -> None:
    """CTR_DRAIN_TIMEOUT_S=0.9 alone was refused for CTR_DRAIN_IDLE_S's default of 1 s, never set: the idle time
    left at its default is half a drain that short."""
    assert Settings(drain_timeout_s=0.9).drain_idle_s == 0.45
    assert Settings(drain_timeout_s=20).drain_idle_s == 1.0


def test_several_workers_take_an_admin_token_and_a_grpc_port() -> None:
    """Admin operations reach every worker (sibling_admin.py); each worker serves gRPC on the port."""
    settings = Settings(workers=2, admin_token="a-token-of-16-chars", grpc_port=9001)
    assert (settings.workers, settings.grpc_port) == (2, 9001)


def test_warm_up_sizes_read_as_a_comma_list_or_json(monkeypatch: pytest.MonkeyPatch) -> None:
    for text in ("1,64", "[1, 64]", " 1 , 64 "):
        monkeypatch.setenv("CTR_WARMUP_BATCH_SIZES", text)
        assert Settings().warmup_batch_sizes == (1, 64)
    monkeypatch.setenv("CTR_WARMUP_BATCH_SIZES", "")
    with pytest.raises(ValidationError, match="needs at least one batch size"):
        Settings()
    monkeypatch.setenv("CTR_WARMUP_BATCH_SIZES", "1,x")
    with pytest.raises(ValidationError, match="positive integers separated by commas, not '1,x'"):
        Settings()


def test_a_repository_that_is_a_file_is_refused(tmp_path: Path) -> None:
    (tmp_path / "models").write_text("")
    with pytest.raises(ValidationError, match="is a file, not a directory of models"):
        Settings(model_repository=tmp_path / "models")
    assert Settings(model_repository=tmp_path / "absent").model_repository == tmp_path / "absent"  # may come later


def test_a_ctr_variable_that_is_no_setting_is_named_with_the_nearest_one() -> None:
    environment = {"CTR_WORKER": "2", "CTR_POLL_INTERVAL": "1", "CTR_PORT": "1", "CTR_BENCH_MODEL": "x", "HOME": "/"}
    assert unknown_variables(environment) == [
        "CTR_POLL_INTERVAL is not a setting; ignored (did you mean CTR_POLL_INTERVAL_S?)",
        "CTR_WORKER is not a setting; ignored (did you mean CTR_WORKERS?)",
    ]


def test_a_variable_like_a_key_of_a_model_s_serving_table_says_where_that_key_is_set() -> None:
    """``CTR_MAX_BATCH_SIZ`` was answered "did you mean CTR_WARMUP_BATCH_SIZES?": no setting of the service."""
    environment = {"CTR_MAX_BATCH_SIZ": "8", "CTR_MAX_QUEUE_DELAY_US": "100", "CTR_MAX_CANDIDATE": "9"}
    assert unknown_variables(environment) == [
        "CTR_MAX_BATCH_SIZ is not a setting; ignored "
        "(max_batch_size is set in each model's config.toml [serving], not in the environment)",
        "CTR_MAX_CANDIDATE is not a setting; ignored (did you mean CTR_MAX_CANDIDATES?)",
        "CTR_MAX_QUEUE_DELAY_US is not a setting; ignored "
        "(max_queue_delay_us is set in each model's config.toml [serving], not in the environment)",
    ]


def test_an_empty_model_repository_is_refused_as_an_empty_host_is(monkeypatch: pytest.MonkeyPatch) -> None:
    """``CTR_MODEL_REPOSITORY=`` was ``Path("")``: the current directory, served without a word."""
    monkeypatch.setenv("CTR_MODEL_REPOSITORY", " ")
    with pytest.raises(ValidationError) as refused:
        Settings()
    assert invalid_settings(refused.value) == (
        "invalid settings: CTR_MODEL_REPOSITORY: must not be empty (unset it for the default, models)"
    )


@pytest.mark.parametrize(
    ("variable", "value", "said"),
    [
        ("CTR_ADMIN_TOKEN", "short", "must be at least 16 characters (or empty to turn admin routes off)"),
        ("CTR_HOST", "[]", "must not be empty"),
        ("CTR_LOG_LEVEL", "loud", "must be one of CRITICAL, ERROR, WARNING, INFO, DEBUG, not 'loud'"),
        ("CTR_POLL_INTERVAL_S", "0.01", "must be 0 (off) or at least 0.1 s, not 0.01"),
        ("CTR_WARMUP_BATCH_SIZES", "a,b", "takes positive integers separated by commas, not 'a,b'"),
    ],
)
def test_a_refusal_names_its_variable_once(
    monkeypatch: pytest.MonkeyPatch, variable: str, value: str, said: str
) -> None:
    """``CTR_ADMIN_TOKEN: admin_token must be at least 16 characters``: the variable, then the field's name."""
    monkeypatch.setenv(variable, value)
    with pytest.raises(ValidationError) as refused:
        Settings()
    assert invalid_settings(refused.value) == f"invalid settings: {variable}: {said}"


def test_the_log_format_and_the_event_loop_take_any_case(monkeypatch: pytest.MonkeyPatch) -> None:
    """As CTR_LOG_LEVEL does: ``CTR_LOG_FORMAT=JSON`` and ``CTR_EVENT_LOOP=UVLOOP`` were refused."""
    monkeypatch.setenv("CTR_LOG_FORMAT", "JSON")
    monkeypatch.setenv("CTR_EVENT_LOOP", "UVLOOP")
    settings = Settings()
    assert (settings.log_format, settings.event_loop) == ("json", "uvloop")


def test_a_bracketed_ipv6_host_is_its_address(monkeypatch: pytest.MonkeyPatch) -> None:
    """``CTR_HOST=[::1]``, as the start-up line writes it (``http://[::1]:8000``), did not resolve: "cannot
    listen on [[::1]]:8000 (CTR_HOST): Name or service not known"."""
    monkeypatch.setenv("CTR_HOST", " [::1] ")
    assert Settings().host == "::1"
    monkeypatch.setenv("CTR_HOST", "[]")
    with pytest.raises(ValidationError, match="host must not be empty"):
        Settings()


@pytest.mark.parametrize("word", ["none", "None", " NONE "])
def test_none_in_every_role_is_a_service_without_roles(monkeypatch: pytest.MonkeyPatch, word: str) -> None:
    monkeypatch.setenv("CTR_CTR_MODEL", word)
    monkeypatch.setenv("CTR_CTCVR_MODEL", "none")
    settings = Settings()
    assert settings.roles == {} and settings.ctr_model == settings.ctcvr_model == "none"
    assert Settings().retrieval_model == "esam"


@pytest.mark.parametrize("alone", ["ctr_model", "ctcvr_model"])
def test_none_in_one_role_alone_is_refused_naming_the_variables(alone: str) -> None:
    with pytest.raises(ValidationError) as refused:
        Settings(**{alone: "none"})
    line = invalid_settings(refused.value)
    assert f"CTR_{alone.upper()} none alone: a score needs every role" in line
    assert "CTR_CTR_MODEL=none CTR_CTCVR_MODEL=none" in line and "\n" not in line


def test_none_names_no_retrieval_model() -> None:
    with pytest.raises(ValidationError) as refused:
        Settings(retrieval_model="None")
    assert "CTR_RETRIEVAL_MODEL: 'None' names no model" in invalid_settings(refused.value)
