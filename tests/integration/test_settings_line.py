"""The start's line of the settings that differ from the defaults, and where each came from
(service/effective_settings.py): nothing in the log showed that ``CTR_BATCHING=false`` or the admin routes
took effect, nor that an option of ``ctr serve`` overrode a variable."""

from __future__ import annotations

import json
import sys
from pathlib import Path

from tests.support.server import running_server
from tests.support.tiny_model import publish_tiny_esmm
from tests.support.wait import eventually

TOKEN = "a-token-of-twenty-chars"


def test_ctr_serve_says_its_settings_the_option_over_a_variable_and_a_misspelt_variable_once(tmp_path: Path) -> None:
    repository = tmp_path / "models"
    publish_tiny_esmm(repository)
    log = tmp_path / "log.txt"
    serve = [sys.executable, "-m", "cli.main", "serve", "--host", "127.0.0.1"]  # over CTR_HOST, which is no address
    settings = {"host": "nowhere.invalid", "batching": "false", "admin_token": TOKEN, "worker": "2"}
    with running_server(repository, log, command=serve, ctr_model="esmm", **settings):
        pass
    said = log.read_text(encoding="utf-8")
    line = next(line for line in said.splitlines() if "settings other than the defaults: " in line)
    assert "host=127.0.0.1 (--host, over CTR_HOST)" in line, line  # the default's value, but an option gave it
    assert "batching=false (CTR_BATCHING)" in line and "admin_token=set (CTR_ADMIN_TOKEN)" in line, line
    assert "ctr_model" not in line  # CTR_CTR_MODEL=esmm: the default
    assert TOKEN not in said
    assert said.count("CTR_WORKER is not a setting") == 1, said  # by the service, not by the command line too


def test_several_workers_say_the_settings_once_as_json_fields(tmp_path: Path) -> None:
    repository = tmp_path / "models"
    publish_tiny_esmm(repository)
    log = tmp_path / "log.txt"
    with running_server(repository, log, ctr_model="esmm", log_format="json", workers="2", request_timeout_ms="500"):
        pass
    lines = [json.loads(line) for line in log.read_text(encoding="utf-8").splitlines()]
    said = [line for line in lines if line["logger"] == "service.effective_settings"]
    assert len(said) == 1, said  # the supervisor's, not each worker's
    assert said[0]["settings"]["workers"] == 2 and said[0]["settings"]["request_timeout_ms"] == 500.0, said
    assert said[0]["settings"]["log_format"] == "json"
    assert said[0]["settings_from"]["workers"] == "CTR_WORKERS", said


def test_the_ready_line_says_the_roles_and_the_versions_served_in_words_and_json_fields(tmp_path: Path) -> None:
    """It said ``ready: roles {'ctr': 'esmm', 'ctcvr': 'esmm'}``, a Python dict's repr inside the JSON line, and
    not which versions the replica came up serving."""
    repository = tmp_path / "models"
    publish_tiny_esmm(repository)
    publish_tiny_esmm(repository, seed=1)
    log = tmp_path / "log.txt"
    with running_server(repository, log, ctr_model="esmm", log_format="json"):
        pass
    lines = [json.loads(line) for line in log.read_text(encoding="utf-8").splitlines()]
    (ready,) = [line for line in lines if line["message"].startswith("ready: ")]
    assert ready["message"] == "ready: roles ctr=esmm, ctcvr=esmm; serving esmm [2]"
    assert ready["roles"] == {"ctr": "esmm", "ctcvr": "esmm"} and ready["serving"] == {"esmm": [2]}


def test_the_not_ready_line_says_why_in_words_and_a_json_field(tmp_path: Path) -> None:
    """``not ready: {'esmm': "no versions of model 'esmm' ..."}``: a Python dict's repr, quotes of two kinds."""
    log = tmp_path / "log.txt"
    with running_server(
        tmp_path / "models", log, ready=False, ctr_model="esmm", log_format="json", poll_interval_s="5"
    ):
        eventually(lambda: "not ready: " in log.read_text(encoding="utf-8"), 30, "no not-ready line")
    lines = [json.loads(line) for line in log.read_text(encoding="utf-8").splitlines()]
    (line,) = [line for line in lines if line["message"].startswith("not ready: ")]
    why = "no versions of model 'esmm' (the model repository does not exist)"
    assert line["message"] == f"not ready: model esmm: {why}" and line["unavailable"] == {"esmm": why}
