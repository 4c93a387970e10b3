"""A user's mistake ends `ctr` with one line on stderr naming it and what to do, no traceback."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from tests.support.checkout import ROOT
from tests.support.ctr_process import ctr, ctr_without
from tests.support.own_logs import CONFIG_TOML, SPEC_TOML

MISTAKES = [
    (["train", "absent", "--no-progress"], "ctr new absent --kind KIND"),
    (["sample-request"], "run from the repository root or pass --repository"),
    (["new", "mine", "--kind", "nonsense"], "unknown model kind 'nonsense': pass --kind with one of"),
    (["spec", "infer", "--logs", "absent.parquet"], "no impression log at absent.parquet"),
    # an empty folder was said after the models loaded, as holding no ".parquet or .csv" files: ctr score reads Parquet
    (["score", "."], ". holds no .parquet files (ctr score reads Parquet)"),
    (["experiment", "moore2018", "--quick", "--lambdas", "0,abc"], "--lambdas takes comma-separated numbers"),
    (["bench", "batch-sizes", "--sizes", "1,2.5"], "--sizes takes comma-separated integers; '2.5' is not one"),
    # these three said "rate and duration must be positive", naming no option
    (["bench", "loadgen", "--rates", "100,-5"], "--rates takes requests/s above 0; -5 is not"),
    (["bench", "ab", "--other-repository", "x", "--rate", "0"], "--rate takes requests/s"),
    (["bench", "harden", "--sustainable-rps", "-3"], "--sustainable-rps takes"),
    # nothing listening was exit 1, as if the service had answered
    (["evaluate", "serving", "--url", "http://127.0.0.1:1"], "--url http://127.0.0.1:1: no service answers there"),
    # a URL without http:// was "no service answers there (Request URL has an unsupported protocol 'localhost://'.)"
    (
        ["evaluate", "serving", "--url", "localhost:8000"],
        "--url localhost:8000 names no scheme: write http://localhost:8000",
    ),
]


@pytest.mark.parametrize(("args", "expected"), MISTAKES)
def test_user_mistakes_print_one_line(tmp_path, ctr_here, args, expected):
    own_process = (args, expected) == MISTAKES[0]  # one case in a process of its own, as a user runs it
    done = (ctr if own_process else ctr_here)(*args, cwd=tmp_path)
    assert done.returncode == 2, done.stderr
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: ") and expected in lines[0], done.stderr
    assert "Traceback" not in done.stderr


def test_missing_log_column_is_named(tmp_path, ctr_here):
    """`ctr spec infer`, which reads no label, proposes a spec from a log of clicks alone (it was refused as
    lacking conversion); `ctr train` names the column and what to write in it."""
    (tmp_path / "logs.csv").write_text("site,position,click\na,1,0\nb,2,1\na,2,1\n")
    done = ctr_here("spec", "infer", "--logs", "logs.csv", "--out", "spec.toml", cwd=tmp_path)
    assert done.returncode == 0 and 'name = "site"' in (tmp_path / "spec.toml").read_text(), done.stderr
    assert ctr_here("new", "mine", "--kind", "esmm", "--spec", "spec.toml", cwd=tmp_path).returncode == 0
    done = ctr("train", "mine", "--logs", "logs.csv", "--no-progress", cwd=tmp_path)
    lines = done.stderr.strip().splitlines()
    assert done.returncode == 2 and len(lines) == 1 and "lacks the columns ['conversion']" in lines[0], done.stderr
    assert "conversion: clicks only? add conversion = 0 on every row" in lines[0]


def test_bad_settings_name_every_setting_and_what_is_wrong_but_not_the_secret(tmp_path):
    done = ctr("serve", cwd=tmp_path, CTR_PORT="abc", CTR_ADMIN_TOKEN="hunter2-short", CTR_POLL_INTERVAL_S="0.001")
    assert done.returncode == 2 and len(done.stderr.strip().splitlines()) == 1, done.stderr
    assert done.stderr.startswith("error: invalid settings: CTR_PORT: Input should be a valid integer")
    assert "CTR_ADMIN_TOKEN: must be at least 16 characters" in done.stderr  # named once, not as admin_token too
    assert "CTR_POLL_INTERVAL_S: must be 0 (off) or at least 0.1 s, not 0.001" in done.stderr
    assert "hunter2" not in done.stderr and "Traceback" not in done.stderr


def test_under_json_logs_the_line_that_stops_serve_is_json_too(tmp_path):
    """The service's every line is one JSON object under CTR_LOG_FORMAT=json but the one saying why it did not
    start, which was plain text to the log shipper (an on-call audit); other commands' lines stay text."""
    done = ctr("serve", "-r", str(tmp_path), cwd=tmp_path, CTR_LOG_FORMAT="json", CTR_PORT="abc")
    assert done.returncode == 2 and len(done.stderr.strip().splitlines()) == 1, done.stderr
    line = json.loads(done.stderr)
    assert line["level"] == "ERROR" and line["logger"] == "ctr" and line["pid"] > 0 and line["ts"].endswith("+00:00")
    assert line["message"].startswith("error: invalid settings: CTR_PORT: Input should be a valid integer")
    done = ctr("train", "absent", cwd=tmp_path, CTR_LOG_FORMAT="json")  # a log format is the service's setting
    assert done.returncode == 2 and done.stderr.startswith("error: no config for model 'absent'"), done.stderr


def test_serve_refuses_port_0_and_warns_of_a_misspelt_setting(tmp_path):
    done = ctr("serve", "--port", "0", cwd=tmp_path)  # was dropped as falsy: served on CTR_PORT or 8000
    assert done.returncode == 2 and "error: invalid settings: --port: Input should be greater than or" in done.stderr
    done = ctr("serve", "-r", str(tmp_path / "models"), cwd=tmp_path, CTR_WORKER="2", CTR_PORT="x")
    assert done.returncode == 2 and "CTR_PORT" in done.stderr  # bad values stop it before anything is served
    (tmp_path / "models").write_text("")
    done = ctr("serve", "-r", str(tmp_path / "models"), cwd=tmp_path)
    assert done.returncode == 2 and "is a file, not a directory of models" in done.stderr


@pytest.mark.parametrize(
    ("section", "own_process"),
    [("world", True), ("training", False), ("data", False), ("queries", False), ("retrieval", False)],
)
def test_a_misspelt_setting_in_a_config_section_is_named(tmp_path, ctr_here, section, own_process):
    (tmp_path / "models" / "typo").mkdir(parents=True)
    (tmp_path / "models" / "typo" / "config.toml").write_text(f'kind = "esmm"\n[{section}]\nn_user = 500\n')
    done = (ctr if own_process else ctr_here)("train", "typo", "--no-progress", cwd=tmp_path)
    lines = done.stderr.strip().splitlines()
    assert done.returncode == 2 and len(lines) == 1, done.stderr  # [world] was a 66-line TypeError
    assert lines[0].startswith(f"error: [{section}] settings ['n_user'] are unknown") and "; known: [" in lines[0]
    assert ("(did you mean 'n_users'?)" in lines[0]) == (section == "world")  # the nearest known setting


def test_a_misspelt_world_setting_is_named_by_the_commands_that_draw_requests(tmp_path):
    """`ctr sample-request` and `ctr bench` built the world from the raw TOML: a 20-line TypeError."""
    (tmp_path / "models" / "typo").mkdir(parents=True)
    (tmp_path / "models" / "typo" / "config.toml").write_text('kind = "esmm"\n[world]\nn_user = 100\n')
    done = ctr("sample-request", "--model", "typo", cwd=tmp_path)
    lines = done.stderr.strip().splitlines()
    assert done.returncode == 2 and len(lines) == 1 and "Traceback" not in done.stderr, done.stderr
    assert lines[0].startswith("error: [world] settings ['n_user'] are unknown (did you mean 'n_users'?)")
    from cli.bench import request_bodies  # every `ctr bench` command's bodies

    with pytest.raises(ValueError, match=r"^\[world\] settings \['n_user'\] are unknown"):
        request_bodies(tmp_path / "models", "typo", 1)


def test_wrong_kind_in_a_config_is_named_before_any_work(tmp_path):
    (tmp_path / "models" / "bad").mkdir(parents=True)
    (tmp_path / "models" / "bad" / "config.toml").write_text('kind = "esmn"\n')
    done = ctr("train", "bad", "--no-progress", cwd=tmp_path)
    assert done.returncode == 2, done.stderr
    assert "unknown model kind 'esmn': set kind in models/bad/config.toml to one of [" in done.stderr
    assert len(done.stderr.strip().splitlines()) == 1


@pytest.mark.parametrize(
    ("hidden", "args", "expected"),
    [
        ("torch", ["train", "esmm", "--no-progress"], "needs torch: the 'train' extra installs it"),
        ("pyarrow", ["sample-request"], "needs pyarrow: the 'train' extra installs it"),
        ("onnxruntime", ["serve", "--port", "8799"], "needs onnxruntime: the 'cpu' or 'gpu' extra installs it"),
    ],
)
def test_a_command_without_its_extra_names_the_extra(tmp_path, hidden, args, expected):
    (tmp_path / "models" / "esmm").mkdir(parents=True)  # `ctr train` reads its config before it imports torch
    (tmp_path / "models" / "esmm" / "config.toml").write_text('kind = "esmm"\n')
    done = ctr_without(hidden, *args, cwd=tmp_path)
    assert done.returncode == 2, done.stderr
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: this command ") and expected in lines[0], done.stderr
    assert "pip install" in lines[0] and "Traceback" not in done.stderr


UNKNOWN_KIND = "unknown model kind 'esmn': set kind in models/bad/config.toml to one of ['adversarial_ctr',"
NO_LOGS = "no impression log matches nothing/*.parquet"
LABEL_AS_FEATURE = "leak.toml: feature 'click' is a column of the log format, not a feature (the click label)"
# models/NAME/config.toml of each model the test writes: after `kind = "esmm"`, a mistake in one of its sections
CONFIGS = {
    "mine": "",
    "model_key": "[model]\nhiden = [16]",
    "model_range": "[model]\ndropout = 1.5",
    "training_key": "[training]\nn_user = 500",
    "training_range": "[training]\nearly_stop_patience = 1",
    "data_value": '[data]\nheldout_policy = "unifrm"',
    "world_key": "[world]\nn_user = 100",
    "queries_range": "[queries]\nn_targets = 0",
    "retrieval_key": "[retrieval]\nn_candidate = 100",
    "evaluation": 'evaluation = "wrld"',
}
MODEL_KEY = "[model] settings ['hiden'] are not esmm settings (did you mean 'hidden'?)"
TRAINING_KEY = "[training] settings ['n_user'] are unknown"
WORLD_KEY = "[world] settings ['n_user'] are unknown (did you mean 'n_users'?)"
NO_SPEC = "training on your own logs needs a feature spec naming their features (--spec)"
OUT_FOLDER = "--out folder is a directory: name the file to write"


@pytest.mark.parametrize(
    ("args", "expected"),
    [
        (["train", "absent"], "no config for model 'absent'"),
        (["evaluate", "absent"], "no config for model 'absent'"),
        (["train", "bad"], UNKNOWN_KIND),
        (["evaluate", "bad"], UNKNOWN_KIND),
        # the whole config, each of its sections: each was said only after torch's import
        (["train", "model_key"], MODEL_KEY),
        (["evaluate", "model_key"], MODEL_KEY),
        (["train", "model_range"], "[model] dropout must be in [0, 1), not 1.5"),
        (["train", "training_key"], TRAINING_KEY),
        (["evaluate", "training_key"], TRAINING_KEY),
        (["train", "training_range"], "[training] early_stop_patience = 1 needs keep_best_epoch = true"),
        (["evaluate", "data_value"], "[data] heldout_policy = 'unifrm': expected one of feedback, popularity"),
        (["train", "world_key"], WORLD_KEY),
        (["evaluate", "world_key"], WORLD_KEY),
        (["train", "queries_range"], "[queries] train_queries, eval_queries and n_targets must be >= 1"),
        (["train", "retrieval_key"], "[retrieval] settings ['n_candidate'] are unknown (did you mean 'n_candidates'?)"),
        (["evaluate", "evaluation"], "unknown evaluation 'wrld': set evaluation in models/evaluation/config.toml"),
        (["train", "mine", "--logs", "nothing/*.parquet"], NO_LOGS),
        (["train", "mine", "--logs", "nothing/*.parquet", "--distributed"], NO_LOGS),
        (["train", "mine", "--logs", "nothing/*.parquet", "--nproc", "2"], NO_LOGS),
        (["train", "mine", "--logs", "logs.parquet", "--spec", "leak.toml"], LABEL_AS_FEATURE),
        # what the trainers asked of --logs after torch's import: a spec (a manifest's where none is given)...
        (["train", "mine", "--logs", "logs.parquet"], NO_SPEC),
        (["train", "mine", "--logs", "logs.parquet", "--nproc", "2"], NO_SPEC),
        (["train", "mine", "--logs", "shards"], "shards/_spec.toml is not valid TOML"),
        # ... --non-displayed, for a retrieval kind alone, which needs it and a spec and trains in one process
        (["train", "mine", "--logs", "logs.parquet", "--non-displayed", "logs.parquet"], "--non-displayed is for"),
        (["train", "esam", "--logs", "logs.parquet"], "esam trained on your logs needs --non-displayed OTHER"),
        (["train", "esam", "--logs", "logs.parquet", "--distributed"], "esam does not train on impression rows"),
        (
            ["train", "esam", "--logs", "logs.parquet", "--spec", "spec.toml", "--non-displayed", "nothing.parquet"],
            "--non-displayed: no table at nothing.parquet",
        ),
        (["new", "x", "--kind", "nonsense"], "unknown model kind 'nonsense': pass --kind with one of"),
        (["new", "x", "--kind", "esmm", "--spec", "logs.parquet"], "logs.parquet is not valid TOML: 'utf-8' codec"),
        (["new", "leak", "--kind", "esmm_debiased", "--spec", "leak.toml"], LABEL_AS_FEATURE),
        # a training given --work-dir W left its checkpoint there, where `ctr export` without it does not look
        (
            ["export", "absent"],
            "no checkpoint at artifacts/absent/checkpoint.pt: run `ctr train` first, or pass the --work-dir it "
            "trained in",
        ),
        (["experiment", "esam", "--quick", "--out", "folder"], "--out folder is a directory: name the file to write"),
        (["experiment", "moore2018", "--quick", "--lambdas", "0,abc"], "--lambdas takes comma-separated numbers"),
        # each experiment's options and the repository models it reads: their settings classes imported torch
        (["experiment", "cvr", "--out", "folder"], OUT_FOLDER),
        (["experiment", "cvr", "--heldout-policy", "unifrm"], "heldout_policy must be 'feedback' or 'uniform', not"),
        (["experiment", "cvr", "--method", "UNBIAS"], "methods must be among ['BASE', 'AMAN', "),
        (["experiment", "cvr", "-r", "nowhere"], "no config for model 'cvr_base': expected nowhere/cvr_base/config"),
        (["experiment", "cvr-diagnosis", "--out", "folder"], OUT_FOLDER),
        (["experiment", "cvr-diagnosis", "-r", "nowhere"], "no config for model 'esmm': expected nowhere/esmm/"),
        (["experiment", "moore2018", "--out", "folder"], OUT_FOLDER),
        (["experiment", "moore2018-checks", "--out", "folder"], OUT_FOLDER),
        (["experiment", "esam", "--world", "idz"], "[retrieval] world must be one of ('attributes', 'ids'), got 'idz'"),
    ],
)
def test_a_mistake_is_said_before_torch_is_imported(tmp_path, args, expected):
    """A misspelt model name, kind, setting or log, a spec that does not read, took 2-4 s to say: torch's import
    (~2 s of CPU) came first. With torch hidden, the mistake is still what is said, in one line, so the command
    never reached torch."""
    done = ctr_without("torch", *args, cwd=_mistakes(tmp_path))
    lines = done.stderr.strip().splitlines()
    assert done.returncode == 2 and len(lines) == 1 and lines[0].startswith(f"error: {expected}"), done.stderr


@pytest.mark.parametrize(
    ("args", "expected"),
    [
        (["experiment", "cvr-diagnosis", "--variant", "nope"], " for --variant: variants must be among ['served', "),
        (["experiment", "moore2018", "--adversary-loss", "cov"], ": adversary_loss must be one of ['correlation', "),
        (["experiment", "moore2018", "--lambdas", "0,1"], ": lam must be in [0, 1) (1 would drop the click loss)"),
    ],
)
def test_a_bad_option_value_is_said_before_torch_is_imported(tmp_path, args, expected):
    """An option's value its experiment's settings refuse is a usage error, said under the command's usage line, and
    with torch hidden it still is: it came after torch's import (~2 s of CPU)."""
    done = ctr_without("torch", *args, cwd=_mistakes(tmp_path))
    lines = done.stderr.strip().splitlines()
    assert done.returncode == 2 and lines[0].startswith("Usage: ") and "Traceback" not in done.stderr, done.stderr
    assert lines[-1].startswith(f"Error: Invalid value{expected}"), done.stderr


def _mistakes(folder: Path) -> Path:
    """``folder`` with what the mistakes above are made of: models/NAME/config.toml of each of CONFIGS (after
    ``kind = "esmm"``), of an unknown kind (bad) and of a retrieval model (esam); a log that is no Parquet file;
    a spec that names a label as a feature, and one that reads; a folder; shards whose manifest names a spec that
    does not read."""
    for name, text in {
        **{name: f'kind = "esmm"\n{mistake}' for name, mistake in CONFIGS.items()},
        "bad": 'kind = "esmn"',
        "esam": 'kind = "esam"',
    }.items():
        (folder / "models" / name).mkdir(parents=True)
        (folder / "models" / name / "config.toml").write_text(text + "\n")
    (folder / "logs.parquet").write_bytes(b"PAR1\x15\x04\xb4\xb4\x00\xff")
    (folder / "leak.toml").write_text('[[feature]]\nname = "click"\nkind = "numeric"\nside = "candidate"\n')
    (folder / "spec.toml").write_text(
        '[[feature]]\nname = "ad_id"\nkind = "categorical"\nside = "candidate"\nbuckets = 100\n'
    )
    (folder / "folder").mkdir()
    (folder / "shards").mkdir()
    (folder / "shards" / "part-0.parquet").write_bytes(b"PAR1")
    (folder / "shards" / "_manifest.json").write_text('{"spec": "_spec.toml"}')
    (folder / "shards" / "_spec.toml").write_text("[[feature]\n")
    return folder


def test_a_missing_module_no_extra_declares_is_a_bug_and_keeps_its_traceback(tmp_path):
    done = ctr_without("numpy", "sample-request", cwd=tmp_path)  # numpy is a base dependency
    assert done.returncode == 1 and "Traceback" in done.stderr and "No module named 'numpy'" in done.stderr
    assert "error: this command" not in done.stderr


def test_logs_that_do_not_exist_are_said_before_their_spec_is_asked_for(tmp_path):
    (tmp_path / "models" / "mine").mkdir(parents=True)
    (tmp_path / "models" / "mine" / "config.toml").write_text('kind = "esmm"\n')
    done = ctr("train", "mine", "--logs", "nothing/*.parquet", "--no-progress", cwd=tmp_path)
    assert done.returncode == 2 and "no impression log matches nothing/*.parquet" in done.stderr, done.stderr
    done = ctr("train", "mine", "--logs", "nothing/*.parquet", "--distributed", "--no-progress", cwd=tmp_path)
    assert done.returncode == 2 and "no impression log matches nothing/*.parquet" in done.stderr, done.stderr


def test_a_grpc_port_without_the_grpc_extra_is_one_line_before_any_model_loads(tmp_path):
    """From the lifespan the hint came at the end of a 61-line traceback, after the models had loaded."""
    done = ctr_without("grpc", "serve", "-r", str(tmp_path), cwd=tmp_path, CTR_GRPC_PORT="18799", CTR_PORT="18798")
    assert done.returncode == 3, done.stderr
    assert "CTR_GRPC_PORT is set but the gRPC server cannot be imported" in done.stderr
    assert "pip install -e '.[grpc]'" in done.stderr and "Traceback" not in done.stderr


@pytest.mark.parametrize(
    ("config", "expected"),
    [  # each was a traceback of 42-79 lines, most after the logs had been simulated
        ('[training]\nlearning_rate = "0.01"', '[training] learning_rate = "0.01": expected a number, not a string'),
        ("[training]\nepochs = 1.5", "[training] epochs = 1.5: expected an integer, not a number with a fraction"),
        ("[training]\nseed = 0.5", "[training] seed = 0.5: expected an integer"),
        ("[model]\nhidden = 16", "[model] hidden = 16: expected a list of integers, not an integer"),
        ('[model]\nembedding_dim = "8"', '[model] embedding_dim = "8": expected an integer, not a string'),
        ('[data]\ndays = "1"', '[data] days = "1": expected an integer, not a string (write it without quotes)'),
        ('[world]\nseed = "x"', '[world] seed = "x": expected an integer, not a string'),
        ('[data]\nheldout_policy = "unifrm"', "[data] heldout_policy = 'unifrm': expected one of feedback, popularity"),
        # the held-out day was the first training day, request for request: metrics on the training rows
        ("[data]\nseed = 7\nheldout_seed = 7", "[data] heldout_seed = seed = 7: the held-out day would be the first"),
        # read as true (a non-empty string): trained and exported with the bypass on
        ('[model]\nposition_bypass = "false"', '[model] position_bypass = "false": expected true or false'),
        ('[model]\nshare_embedding = "false"', '[model] share_embedding = "false": expected true or false'),
        # misspelt sections and keys were ignored: trained with the defaults, exit 0
        ("[trainig]\nepochs = 1", "settings ['trainig'] are unknown (did you mean 'training'?); known: ['data',"),
        ('evalution = "world"', "settings ['evalution'] are unknown (did you mean 'evaluation'?)"),
        # a table's setting above every header was "unknown", naming no table to write it under
        ("epochs = 2", "epochs is a [training] setting: write it under [training]"),
        ('evaluation = "wrld"', "unknown evaluation 'wrld': set evaluation in models/mine/config.toml to one of"),
        ("[model]\nhiden = [16]", "[model] settings ['hiden'] are not esmm settings (did you mean 'hidden'?)"),
        ("[model]\ndropout = 1.5", "[model] dropout must be in [0, 1), not 1.5"),
        ("[model]\nembedding_dim = 0", "[model] embedding_dim must be >= 1, not 0"),
        # the explored start's name, misspelt: one of the three named
        (
            '[model]\nbypass_start = "explore"',
            "bypass_start must be one of ['drawn', 'log', 'explored'], not 'explore'",
        ),
        # the bypass's start without the bypass: read and ignored, trained as if never written
        (
            '[model]\nbypass_start = "log"',
            "bypass_start = 'log' set without position_bypass = true: there is no bypass to set",
        ),
    ],
)
def test_a_config_mistake_is_one_line_before_any_log_is_simulated(tmp_path, ctr_here, config, expected):
    (tmp_path / "models" / "mine").mkdir(parents=True)
    top, _, rest = config.partition("[")
    text = f'kind = "esmm"\n{top}' + (f"[{rest}" if rest else "")
    (tmp_path / "models" / "mine" / "config.toml").write_text(text + "\n")
    own_process = config.startswith("[model]\nhiden")  # one case in a process of its own, as a user runs it
    done = (ctr if own_process else ctr_here)("train", "mine", "--no-progress", cwd=tmp_path)
    lines = done.stderr.strip().splitlines()
    assert done.returncode == 2 and len(lines) == 1 and expected in lines[0], done.stderr
    assert not (tmp_path / "artifacts").exists()  # nothing simulated: `[model] hiden` came after 1M impressions


def test_a_spec_with_a_label_as_a_feature_is_refused_by_ctr_new(tmp_path):
    (tmp_path / "leak.toml").write_text('[[feature]]\nname = "click"\nkind = "numeric"\nside = "candidate"\n')
    done = ctr("new", "leak", "--kind", "esmm_debiased", "--spec", "leak.toml", cwd=tmp_path)
    assert done.returncode == 2 and len(done.stderr.strip().splitlines()) == 1, done.stderr
    assert "feature 'click' is a column of the log format, not a feature (the click label)" in done.stderr
    assert not (tmp_path / "models" / "leak").exists()


@pytest.mark.parametrize("damage", ["truncated", "text"])
def test_a_damaged_checkpoint_is_one_line_naming_it(tmp_path, damage):
    """A truncated checkpoint.pt was a 51-line traceback ending in torch's "checkpoint file is corrupted"."""
    import torch

    (tmp_path / "models" / "mine").mkdir(parents=True)
    (tmp_path / "models" / "mine" / "config.toml").write_text('kind = "esmm"\n')
    path = tmp_path / "artifacts" / "mine" / "checkpoint.pt"
    path.parent.mkdir(parents=True)
    torch.save({"name": "mine", "weights": torch.zeros(1000)}, path)
    path.write_bytes(path.read_bytes()[:600] if damage == "truncated" else b"not a checkpoint")
    done = ctr("export", "mine", cwd=tmp_path)
    lines = done.stderr.strip().splitlines()
    assert done.returncode == 2 and len(lines) == 1, done.stderr
    assert lines[0].startswith(f"error: {Path('artifacts/mine/checkpoint.pt')} cannot be read as a checkpoint (")
    assert "damaged or not written by `ctr train`; retrain" in lines[0]
    # torch's advice to load it with weights_only=False would run whatever code a foreign file holds
    assert "weights_only" not in lines[0] and "arbitrary code" not in lines[0]


def boxed(done: subprocess.CompletedProcess) -> str:
    """A usage error's text, out of the box typer draws it in and the lines it wraps it over."""
    return " ".join(done.stderr.replace("│", " ").split())


PATHS_IN_THE_WAY = [
    (["simulate", "--out", "folder", "--days", "1", "--requests-per-day", "10"], "--out folder is a directory"),
    (["simulate", "--out", "file", "--shards", "2", "--rows-per-shard", "9"], "--out file is a file, not a dir"),
    # the version is checked before the evaluation: the path is checked before that
    (["evaluate", "esmm", "--version", "99", "--out", "folder"], "--out folder is a directory"),
    (["evaluate", "esmm", "--version", "99", "--out", "file/x.json"], "file is a file, not a directory to write"),
    (["spec", "infer", "--logs", "absent.parquet", "--out", "folder"], "--out folder is a directory"),
    (["auction", "--candidates", "2", "--out", "folder"], "--out folder is a directory"),
    (["experiment", "esam", "--quick", "--plot", "folder"], "--plot folder is a directory"),
    (["new", "mine", "--kind", "esmm", "--spec", "folder"], "folder is a directory, where a file is expected"),
    # a quoted ~ made a folder "./~" and left a temporary file in $HOME; "-" wrote a file named "-";
    # logs.csv held Parquet's bytes
    (["simulate", "--out", "~/w.parquet", "--days", "1"], "'~' is not expanded here"),
    (["evaluate", "esmm", "--out", "~/e.json"], "'~' is not expanded here"),
    (["spec", "infer", "--logs", "absent.parquet", "--out", "-"], "writes a file, not to standard output"),
    # a spec is edited by hand once proposed: inferring it again wrote over the edits
    (["spec", "infer", "--logs", "absent.parquet", "--out", "file"], "--out file exists (a spec edited since"),
    (["simulate", "--out", "logs.csv", "--days", "1"], "the logs are written as Parquet; name the file .parquet"),
]


@pytest.mark.parametrize(("args", "expected"), PATHS_IN_THE_WAY)
def test_a_folder_or_file_in_the_way_of_a_path_is_one_line_before_the_work(tmp_path, ctr_here, args, expected):
    """A folder as --out was a traceback (IsADirectoryError), a file above it `[Errno 17] File exists`, said
    after the whole evaluation; --plot FOLDER wrote FOLDER.png beside it."""
    (tmp_path / "folder").mkdir()
    (tmp_path / "file").write_text("")
    own_process = (args, expected) == PATHS_IN_THE_WAY[0]  # one case in a process of its own, as a user runs it
    done = (ctr if own_process else ctr_here)(*args, cwd=tmp_path)
    lines = done.stderr.strip().splitlines()
    assert done.returncode == 2 and len(lines) == 1 and expected in lines[0], done.stderr
    assert sorted(path.name for path in tmp_path.iterdir()) == ["file", "folder"]  # nothing written
    assert list((tmp_path / "folder").iterdir()) == []


def test_a_name_starting_with_a_tilde_no_shell_would_expand_is_written(tmp_path):
    """The check for a quoted ~ refused ``~backup.parquet`` too, which a shell leaves as it is (no such user)."""
    done = ctr("simulate", "--out", "~backup.PARQUET", "--days", "1", "--requests-per-day", "10", cwd=tmp_path)
    assert done.returncode == 0 and (tmp_path / "~backup.PARQUET").is_file(), done.stderr


def test_esam_says_the_picture_it_writes():
    """`--plot t/pic` said `wrote ... t/pic` where matplotlib wrote t/pic.png."""
    from cli.experiment import picture_path

    assert picture_path(Path("t/pic"), Path("r/e.json")) == Path("t/pic.png")
    assert picture_path(Path("t/pic.svg"), Path("r/e.json")) == Path("t/pic.svg")
    assert picture_path(None, Path("r/e.json")) == Path("r/e.png")


def test_a_binary_file_read_as_text_is_named(tmp_path):
    """A binary file as --spec, or to docs-check, said only `'utf-8' codec can't decode byte 0xb4 in position 7`."""
    (tmp_path / "logs.parquet").write_bytes(b"PAR1\x15\x04\xb4\xb4\x00\xff")
    done = ctr("new", "mine", "--kind", "esmm", "--spec", "logs.parquet", cwd=tmp_path)
    assert done.returncode == 2
    assert done.stderr.startswith("error: logs.parquet is not valid TOML: 'utf-8'"), done.stderr
    from cli.docs_check import extract  # docs-check starts a service before it reads a page: read it alone

    notes = tmp_path / "notes.md"
    notes.write_bytes(b"# Notes\n\xb4\xb4")
    with pytest.raises(ValueError, match=r"notes\.md is not UTF-8 text \(invalid start byte at byte 8\)"):
        extract(notes)


def test_row_group_rows_without_shards_is_refused(tmp_path):
    """--row-group-rows (read with --shards only) was ignored without a word."""
    done = ctr("simulate", "--out", "logs.parquet", "--row-group-rows", "5", "--days", "1", cwd=tmp_path)
    assert done.returncode == 2 and "--row-group-rows is not read without --shards" in boxed(done), done.stderr
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize(
    ("args", "expected"),
    [  # were `expected non-negative integer` and `n_candidates must be in 1..5000`: no option named
        (["--seed", "-1"], "Invalid value for '--seed'"),
        (["-n", "100000000"], "Invalid value for '--candidates' / '-n': 100000000 is more than the 5000 ads"),
    ],
)
def test_sample_request_names_the_option_out_of_range(tmp_path, args, expected):
    done = ctr("sample-request", "-r", str(ROOT / "models"), *args, cwd=tmp_path)
    assert done.returncode == 2 and expected in boxed(done), done.stderr


@pytest.mark.parametrize("option", ["--seed", "--world-seed"])
def test_simulate_names_the_seed_option_out_of_range(tmp_path, option):
    """Were `seed and start_day must be non-negative, got -1 and 0` and `seed must be a non-negative integer`: neither
    named the option typed, the first named one no one typed."""
    done = ctr("simulate", option, "-1", "--days", "1", "--out", str(tmp_path / "logs.parquet"), cwd=tmp_path)
    assert done.returncode == 2 and f"Invalid value for '{option}'" in boxed(done), done.stderr
    assert not (tmp_path / "logs.parquet").exists()


def test_sample_request_refuses_a_model_of_its_own_logs_features(tmp_path):
    """`ctr sample-request --model mine`, mine trained on its own logs (`ctr new mine --spec`), printed the world's
    body, which mine's service refuses (422: 'user_id' is not a feature of the served models)."""
    from training.config_world import world_config
    from training.world import feature_spec

    mine = tmp_path / "models" / "mine"
    mine.mkdir(parents=True)
    (mine / "config.toml").write_text(CONFIG_TOML, encoding="utf-8")
    (mine / "spec.toml").write_text(SPEC_TOML, encoding="utf-8")
    done = ctr("sample-request", "--model", "mine", cwd=tmp_path)
    assert done.returncode == 2 and not done.stdout, done.stderr
    [line] = done.stderr.strip().splitlines()
    assert line.startswith("error: mine reads the features of models/mine/spec.toml, not the world simulator's"), line
    assert "it requires ['bid', 'creative', 'site'], which the world lacks" in line
    # a spec of the world's own features (a log `ctr simulate` wrote) fits the body, drawn as before
    world_spec = feature_spec(world_config({})).to_toml()
    (mine / "spec.toml").write_text(world_spec, encoding="utf-8")
    done = ctr("sample-request", "--model", "mine", "-n", "2", cwd=tmp_path)
    assert done.returncode == 0 and len(json.loads(done.stdout)["candidates"]) == 2, done.stderr
    # the world's features and one more it requires: the world draws none it does not take, but lacks that one
    site = '\n[[feature]]\nname = "site"\nkind = "categorical"\nside = "context"\nbuckets = 100\nrequired = true\n'
    (mine / "spec.toml").write_text(world_spec + site, encoding="utf-8")
    done = ctr("sample-request", "--model", "mine", cwd=tmp_path)
    assert done.returncode == 2 and not done.stdout, done.stderr
    assert "not the world simulator's, which sample-request draws: it requires ['site'], which the world lacks" in (
        done.stderr
    )


def test_an_exported_admin_token_is_not_read_without_a_service(tmp_path):
    """CTR_ADMIN_TOKEN in the environment made `ctr auction` alone refuse "--repository and --admin-token are
    for a running service (--url)"; given on the command line, it still is refused. (Refused candidates stop
    the run at the next check, before any auction.)"""
    token = {"CTR_ADMIN_TOKEN": "0123456789abcdef0123"}
    done = ctr("auction", "--quick", "--candidates", "3", "--out", "a.json", "--work-dir", "wd", cwd=tmp_path, **token)
    assert done.returncode == 2 and "error: candidates (3) must exceed slots (3)" in done.stderr, done.stderr
    done = ctr("auction", "--quick", "--admin-token", token["CTR_ADMIN_TOKEN"], cwd=tmp_path)
    assert done.returncode == 2 and "--repository and --admin-token are for a running service" in done.stderr


def test_an_address_that_cannot_be_listened_on_names_the_option_given(tmp_path):
    """A port taken, or a host that does not resolve, said `(CTR_PORT)` though --port or --host was given."""
    import socket

    with socket.socket() as holder:
        holder.bind(("127.0.0.1", 0))
        holder.listen()
        port = str(holder.getsockname()[1])
        done = ctr("serve", "-r", str(ROOT / "models"), "--port", port, cwd=tmp_path)
        assert f"cannot listen on 127.0.0.1:{port} (--port): Address already in use" in done.stderr, done.stderr
        done = ctr("serve", "-r", str(ROOT / "models"), cwd=tmp_path, CTR_PORT=port)
        assert f"cannot listen on 127.0.0.1:{port} (CTR_PORT)" in done.stderr, done.stderr
    done = ctr("serve", "-r", str(ROOT / "models"), "--host", "999.1.1.1", "--port", port, cwd=tmp_path)
    assert f"cannot listen on 999.1.1.1:{port} (--host)" in done.stderr, done.stderr


def test_a_setting_given_as_an_option_is_named_so_inside_a_message_too(monkeypatch):
    """``--port 9000`` beside ``CTR_GRPC_PORT=9000`` said "CTR_GRPC_PORT (9000) must differ from CTR_PORT
    (9000)": only a message's leading name was rewritten."""
    from cli.options import settings_with_options

    monkeypatch.setenv("CTR_GRPC_PORT", "9000")
    with pytest.raises(ValueError, match=r"CTR_GRPC_PORT \(9000\) must differ from --port \(9000\)"):
        settings_with_options({"port": 9000})


def test_an_option_named_by_one_command_is_not_named_by_the_next():
    """The names a bind error gives its settings were only ever added to: after one in-process `ctr serve
    --port`, a port from CTR_PORT was blamed on --port."""
    import errno

    from cli.options import settings_with_options
    from service import binding

    taken = OSError(errno.EADDRINUSE, "Address already in use")
    settings_with_options({"port": 9001})
    assert binding._at_fault(taken, "port") == "--port"
    settings_with_options({"port": None, "model_repository": None})
    assert binding._at_fault(taken, "port") == "CTR_PORT"
    assert set(binding.SETTING_NAMES) == {"host", "port", "grpc_port"}


@pytest.mark.parametrize(
    ("raised", "code", "said"),
    [
        ("PermissionError(13, 'Permission denied', 'out.json')", 2, "error: out.json: Permission denied"),
        ("PermissionError(1, 'Operation not permitted')", 1, "Traceback"),  # a signal's or socket's: a bug's
        # a read-only mount (tests/cli/test_read_only_repository.py mounts one): a traceback, exit 1
        ("OSError(30, 'Read-only file system', 'models/esmm')", 2, "error: models/esmm: Read-only file system"),
    ],
)
def test_a_permission_error_is_a_users_mistake_only_about_a_path(tmp_path, raised, code, said):
    done = command_raising(raised, cwd=tmp_path)
    assert done.returncode == code and said in done.stderr, done.stderr


STORAGE_FAILED = ": the storage there failed (a disk's error, a network mount gone stale or not answering): check it"


@pytest.mark.parametrize(
    ("raised", "said"),
    [
        ("OSError(5, 'Input/output error', 'models/esmm')", f"error: models/esmm: Input/output error{STORAGE_FAILED}"),
        ("OSError(116, 'Stale file handle', 'm/1')", f"error: m/1: Stale file handle{STORAGE_FAILED}"),
        ("TimeoutError(110, 'Connection timed out', 'm')", f"error: m: Connection timed out{STORAGE_FAILED}"),
        # a dead FUSE mount's: the service retried a version refused on it while ctr prepare ended in a traceback
        (
            "OSError(107, 'Transport endpoint is not connected', 'm')",
            f"error: m: Transport endpoint is not connected{STORAGE_FAILED}",
        ),
        ("TimeoutError(110, 'Connection timed out')", "Traceback"),  # a socket's, not the storage's
    ],
)
def test_storage_failing_under_a_path_is_one_line_exit_1(tmp_path, raised, said):
    """``ctr prepare`` on a model folder that could not be listed (EIO) ended in a 90-line traceback."""
    done = command_raising(raised, cwd=tmp_path)
    assert done.returncode == 1 and said in done.stderr, done.stderr
    if "Traceback" not in said:
        assert done.stderr.strip().splitlines() == [said + " (dmesg, the mount) and run the command again"]


def command_raising(raised: str, cwd: Path) -> subprocess.CompletedProcess:
    """A command of a ``UserErrorTyper`` that raises ``raised`` (Python source), run in a process of its own."""
    program = (
        "from cli.errors import UserErrorTyper\napp = UserErrorTyper()\n"
        f"@app.command()\ndef go():\n    raise {raised}\n@app.command()\ndef other():\n    pass\napp()"
    )
    env = {"PYTHONPATH": str(ROOT)}
    return subprocess.run(
        [sys.executable, "-c", program, "go"], cwd=cwd, env=env, capture_output=True, text=True, timeout=60
    )


def test_prepare_without_torch_is_one_line_before_any_training_process_starts(tmp_path):
    """It printed each model's "training + exporting" line, started a process that failed with the missing
    module, and ended "esam failed after 0 s (exit code 2)"; the hint now names the distribution's extra too,
    for an install from a wheel, not only the checkout's `pip install -e`."""
    (tmp_path / "models" / "esam").mkdir(parents=True)
    (tmp_path / "models" / "esam" / "config.toml").write_text((ROOT / "models" / "esam" / "config.toml").read_text())
    shutil.copytree(ROOT / "models" / "esmm", tmp_path / "models" / "esmm", ignore=shutil.ignore_patterns("[0-9]*"))
    (tmp_path / "models" / "esmm" / "1").mkdir()  # a version directory: only esam would be trained
    done = ctr_without("torch", "prepare", "-r", str(tmp_path / "models"), cwd=tmp_path)
    assert done.returncode == 2, done.stderr
    assert "training + exporting" not in done.stdout and not (tmp_path / "artifacts").exists()
    assert done.stderr.strip().splitlines() == [
        "error: this command needs torch: the 'train' extra installs it: pip install 'debiased-ctr[train]' "
        "(in a checkout of debiased-ctr: pip install -e '.[train]')"
    ]


def test_prepare_finds_torch_absent_as_an_install_without_it_does(tmp_path):
    """Where torch is not installed, ``find_spec`` answers None (the test above hides it by raising from a
    finder instead): the same one line, before any process starts."""
    (tmp_path / "models" / "esam").mkdir(parents=True)
    (tmp_path / "models" / "esam" / "config.toml").write_text((ROOT / "models" / "esam" / "config.toml").read_text())
    shutil.copytree(ROOT / "models" / "esmm", tmp_path / "models" / "esmm", ignore=shutil.ignore_patterns("[0-9]*"))
    (tmp_path / "models" / "esmm" / "1").mkdir()
    absent = (
        "import importlib.util, runpy, sys\n"
        "real = importlib.util.find_spec\n"
        "importlib.util.find_spec = lambda name, *rest: None if name == 'torch' else real(name, *rest)\n"
        "sys.argv = ['ctr', 'prepare', '-r', 'models']\n"
        "runpy.run_module('cli.main', run_name='__main__')\n"
    )
    env = {"PYTHONPATH": str(ROOT), "PATH": "/usr/bin:/bin"}
    done = subprocess.run(
        [sys.executable, "-c", absent], cwd=tmp_path, env=env, capture_output=True, text=True, timeout=60
    )
    assert done.returncode == 2 and "needs torch: the 'train' extra installs it" in done.stderr, done.stderr
    assert "training + exporting" not in done.stdout and not (tmp_path / "artifacts").exists()


def test_every_command_reads_the_repository_from_ctr_model_repository(tmp_path, ctr_here, monkeypatch):
    """`ctr serve`, `prepare` and `score` read CTR_MODEL_REPOSITORY (the image sets it); `sample-request`
    and `train` looked for a models/ folder where they ran: the README's body-making step failed there."""
    monkeypatch.setenv("CTR_MODEL_REPOSITORY", str(ROOT / "models"))
    done = ctr_here("sample-request", "--candidates", "2", "--seed", "1", cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    assert len(json.loads(done.stdout)["candidates"]) == 2
    refused = ctr_here("train", "absent", "--no-progress", cwd=tmp_path)
    assert f"expected {ROOT / 'models' / 'absent' / 'config.toml'};" in refused.stderr, refused.stderr


def test_evaluate_reads_the_repository_from_ctr_model_repository(tmp_path, ctr_here, monkeypatch):
    """`ctr evaluate` declared a --repository of its own, without the variable: where it was set, the versions
    it looked for were those of a models/ folder where it ran, not of the repository the service served."""
    repository = tmp_path / "served"
    (repository / "esmm" / "3").mkdir(parents=True)
    monkeypatch.setenv("CTR_MODEL_REPOSITORY", str(repository))
    refused = ctr_here("evaluate", "esmm", "--version", "7", "--out", str(tmp_path / "report.json"), cwd=tmp_path)
    assert refused.returncode == 2 and "has no version 7; exported: [3]" in refused.stderr, refused.stderr
