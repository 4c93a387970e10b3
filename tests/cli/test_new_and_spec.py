"""`ctr new` writes a model's config from a kind's defaults or a copy and never overwrites (`--exist-ok` keeps it);
`ctr spec infer` proposes a spec from a log's columns."""

from __future__ import annotations

import tomllib
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from typer.testing import CliRunner

from cli.main import app
from common.features import FeatureSpec
from tests.support.ctr_process import ctr_without
from training.fitting.settings import SPARSE_ADAM_ABOVE_BUCKETS
from training.logs.spec_infer import buckets_for
from training.model_config import ModelConfig
from training.models.kinds import MODEL_KINDS


def run(*args: str):
    return CliRunner().invoke(app, list(args))


def test_new_from_kind_defaults_loads_as_a_config(tmp_path):
    result = run("new", "mine", "--kind", "esmm", "-r", str(tmp_path))
    assert result.exit_code == 0, result.output
    assert f"or ctr train mine -r {tmp_path} (the world simulator's)" in " ".join(result.output.split())
    config = ModelConfig.load(tmp_path, "mine")
    assert config.kind == "esmm" and config.model["hidden"] == [360, 200, 80]
    assert config.training.epochs >= 1


def test_new_refuses_to_overwrite_and_copies_from(tmp_path):
    assert run("new", "first", "--kind", "adversarial_ctr", "-r", str(tmp_path)).exit_code == 0
    (tmp_path / "first" / "config.toml").write_text('kind = "adversarial_ctr"  # edited\n[model]\nlam = 0.5\n')
    again = run("new", "first", "--kind", "esmm", "-r", str(tmp_path))
    assert again.exit_code != 0 and "exists" in str(again.exception)
    assert "edited" in (tmp_path / "first" / "config.toml").read_text()
    assert run("new", "second", "--from", "first", "-r", str(tmp_path)).exit_code == 0
    assert tomllib.loads((tmp_path / "second" / "config.toml").read_text())["model"] == {"lam": 0.5}
    # a --kind beside --from that is not the copied config's: which one was meant is not the command's to guess
    other = run("new", "third", "--from", "first", "--kind", "esmm", "-r", str(tmp_path))
    assert other.exit_code != 0 and not (tmp_path / "third").exists()
    assert str(other.exception) == "--kind esmm differs from first's kind adversarial_ctr: drop --kind or --from"
    assert run("new", "fourth", "--from", "first", "--kind", "adversarial_ctr", "-r", str(tmp_path)).exit_code == 0


def test_new_exist_ok_keeps_the_model_and_names_where_it_first_differs(tmp_path):
    """A pipeline that ran `ctr new` on every run had to guard it (an existing model exited 2): --exist-ok keeps
    the model untouched and succeeds, saying the first key an edit changed from what this command would write."""
    config = tmp_path / "mine" / "config.toml"
    assert run("new", "mine", "--kind", "esmm", "-r", str(tmp_path)).exit_code == 0
    again = run("new", "mine", "--kind", "esmm", "--exist-ok", "-r", str(tmp_path))
    assert again.exit_code == 0, again.output
    assert again.output == f"kept {config} (--exist-ok): the same as this command would write\n"
    edited = config.read_text(encoding="utf-8").replace("learning_rate = 0.001", "learning_rate = 0.005")
    config.write_text(edited + "epochs = 3\n", encoding="utf-8")
    kept = run("new", "mine", "--kind", "esmm", "--exist-ok", "-r", str(tmp_path))
    assert kept.exit_code == 0, kept.output
    assert " ".join(kept.output.split()) == (
        f"kept {config} (--exist-ok); it differs from what this command would write at training.learning_rate: "
        "0.005 in it, 0.001 in the defaults of --kind esmm"
    )
    assert config.read_text(encoding="utf-8") == edited + "epochs = 3\n"
    config.write_text(edited.replace("learning_rate = 0.005", "learning_rate = 0.001") + "epochs = 3\n")
    added = run("new", "mine", "--kind", "esmm", "--exist-ok", "-r", str(tmp_path))
    assert "at training.epochs: 3 in it, unset in the defaults of --kind esmm" in " ".join(added.output.split())
    refused = run("new", "mine", "--kind", "esmm", "-r", str(tmp_path))  # without it, as before
    assert refused.exit_code != 0 and "--exist-ok keeps it" in str(refused.exception)


def test_new_exist_ok_refuses_another_kind_and_checks_its_arguments(tmp_path):
    """A model of another kind than asked for would train other than the pipeline meant: refused, untouched;
    the arguments are checked as when the model is written."""
    assert run("new", "mine", "--kind", "esmm", "-r", str(tmp_path)).exit_code == 0
    before = (tmp_path / "mine" / "config.toml").read_bytes()
    other = run("new", "mine", "--kind", "esam", "--exist-ok", "-r", str(tmp_path))
    assert other.exit_code != 0
    assert "exists, of kind 'esmm', where this command asks for 'esam'" in str(other.exception)
    for args, expected in (["--kind", "nonsense"], "unknown model kind"), (["--from", "absent"], "--from absent"):
        wrong = run("new", "mine", *args, "--exist-ok", "-r", str(tmp_path))
        assert wrong.exit_code != 0 and expected in str(wrong.exception)
    assert (tmp_path / "mine" / "config.toml").read_bytes() == before


def test_new_exist_ok_says_a_spec_other_than_the_one_given(tmp_path):
    spec = '[[feature]]\nname = "site"\nkind = "categorical"\nside = "context"\nbuckets = 11\n'
    (tmp_path / "spec.toml").write_text(spec, encoding="utf-8")
    (tmp_path / "other.toml").write_text(spec.replace("11", "13"), encoding="utf-8")
    models, kept = tmp_path / "models", tmp_path / "models" / "mine" / "spec.toml"

    def exist_ok(given: str) -> str:
        result = run("new", "mine", "--kind", "esmm", "--spec", str(tmp_path / given), "--exist-ok", "-r", str(models))
        assert result.exit_code == 0, result.output
        return " ".join(result.output.split())

    assert run("new", "mine", "--kind", "esmm", "--spec", str(tmp_path / "spec.toml"), "-r", str(models)).exit_code == 0
    assert exist_ok("spec.toml").endswith("the same as this command would write")
    assert exist_ok("other.toml").endswith(f"its spec.toml differs from {tmp_path / 'other.toml'}")
    assert kept.read_text(encoding="utf-8") == spec
    kept.unlink()
    said = f"it has no spec.toml, where this command would copy {tmp_path / 'spec.toml'}"
    assert exist_ok("spec.toml").endswith(said)
    assert not kept.exists()


def test_new_from_a_model_with_a_spec_copies_the_spec_too(tmp_path):
    """`ctr new NAME --from OTHER` copied OTHER's config alone, so `ctr train NAME --logs` said it needed a feature
    spec (--spec) though OTHER trained on those logs with its own; a --spec given still replaces OTHER's."""
    spec = '[[feature]]\nname = "site"\nkind = "categorical"\nside = "context"\nbuckets = 11\n'
    (tmp_path / "spec.toml").write_text(spec, encoding="utf-8")
    repository = str(tmp_path / "models")
    assert run("new", "first", "--kind", "esmm", "--spec", str(tmp_path / "spec.toml"), "-r", repository).exit_code == 0
    copied = run("new", "second", "--from", "first", "-r", repository)
    assert copied.exit_code == 0, copied.output
    assert (tmp_path / "models" / "second" / "spec.toml").read_text(encoding="utf-8") == spec
    assert f"next: ctr train second -r {repository} --logs LOGS" in " ".join(copied.output.split())
    assert "--spec SPEC.toml" not in copied.output
    other = spec.replace('"site"', '"page"')
    (tmp_path / "other.toml").write_text(other, encoding="utf-8")
    assert (
        run("new", "third", "--from", "first", "--spec", str(tmp_path / "other.toml"), "-r", repository).exit_code == 0
    )
    assert (tmp_path / "models" / "third" / "spec.toml").read_text(encoding="utf-8") == other


@pytest.mark.parametrize(
    ("kind", "buckets", "expected"),
    [
        ("esmm_debiased", SPARSE_ADAM_ABOVE_BUCKETS + 1, "sparse_adam"),
        ("cvr_base", SPARSE_ADAM_ABOVE_BUCKETS + 1, "sparse_adam"),
        ("esmm_debiased", SPARSE_ADAM_ABOVE_BUCKETS, "adam"),
        ("adversarial_ctr", SPARSE_ADAM_ABOVE_BUCKETS + 1, "adam"),  # its paper's SGD refuses sparse_adam
    ],
)
def test_new_over_a_spec_of_many_buckets_chooses_sparse_adam_and_says_why(tmp_path, kind, buckets, expected):
    """Past SPARSE_ADAM_ABOVE_BUCKETS the table's dense Adam update made the step the longer one (docs/scale.md)."""
    spec = f'[[feature]]\nname = "site"\nkind = "categorical"\nside = "context"\nbuckets = {buckets}\n'
    (tmp_path / "spec.toml").write_text(spec, encoding="utf-8")
    result = run("new", "mine", "--kind", kind, "--spec", str(tmp_path / "spec.toml"), "-r", str(tmp_path / "models"))
    assert result.exit_code == 0, result.output
    assert ModelConfig.load(tmp_path / "models", "mine").training.embedding_optimizer == expected
    text = (tmp_path / "models" / "mine" / "config.toml").read_text(encoding="utf-8")
    assert (f"The spec's {buckets:,} buckets pass" in text) == (expected == "sparse_adam")


def test_new_without_a_spec_keeps_dense_adam(tmp_path):
    assert run("new", "mine", "--kind", "esmm_debiased", "-r", str(tmp_path)).exit_code == 0
    assert ModelConfig.load(tmp_path, "mine").training.embedding_optimizer == "adam"


# What `ctr new K --kind K` wrote for each kind before its defaults were read without torch, one file each (and one
# over a spec past SPARSE_ADAM_ABOVE_BUCKETS); a deliberate change of a default is written here too
NEW_DEFAULTS = Path(__file__).parent / "new_defaults"


@pytest.mark.parametrize(
    ("kind", "buckets"),
    [*((kind, None) for kind in sorted(MODEL_KINDS)), ("esmm_debiased", SPARSE_ADAM_ABOVE_BUCKETS + 1)],
)
def test_new_writes_each_kinds_defaults_without_torch(tmp_path, kind, buckets):
    """`ctr new` imported torch (~2 s of CPU) to read a kind's defaults; with torch hidden it writes the same file."""
    spec, expected = [], NEW_DEFAULTS / f"{kind}.toml"
    if buckets is not None:
        spec, expected = ["--spec", "spec.toml"], NEW_DEFAULTS / f"{kind}_over_{buckets}_buckets.toml"
        text = f'[[feature]]\nname = "site"\nkind = "categorical"\nside = "context"\nbuckets = {buckets}\n'
        (tmp_path / "spec.toml").write_text(text, encoding="utf-8")
    done = ctr_without("torch", "new", kind, "--kind", kind, *spec, cwd=tmp_path)
    assert done.returncode == 0 and done.stderr == "", done.stderr
    assert done.stdout.startswith(f"wrote models/{kind}/config.toml; next: ctr train {kind} "), done.stdout
    written = (tmp_path / "models" / kind / "config.toml").read_text(encoding="utf-8")
    assert written == expected.read_text(encoding="utf-8")


@pytest.mark.parametrize(
    ("args", "expected"),
    [(["--kind", "nonsense"], "unknown model kind"), (["--from", "absent"], "no "), ([], "--kind KIND or --from")],
)
def test_new_names_the_mistake(tmp_path, args, expected):
    result = run("new", "mine", *args, "-r", str(tmp_path))
    assert result.exit_code != 0 and expected in str(result.exception)
    assert not (tmp_path / "mine").exists()


def test_spec_infer_kinds_sides_buckets_and_defaults(tmp_path):
    rng = np.random.default_rng(0)
    requests, slots = 300, 3
    rows = requests * slots
    bid = rng.uniform(0, 1, rows)
    bid[::7] = np.nan
    pq.write_table(
        pa.table(
            {
                "request_id": np.repeat(np.arange(requests), slots).astype(str),
                "ts": np.arange(rows),
                "site": np.repeat(rng.choice(["a", "b", "c"], requests), slots),
                "creative": rng.integers(0, 50, rows),
                "bid": pa.array(bid, from_pandas=True),
                "constant": np.ones(rows),
                "position": np.tile(np.arange(1, slots + 1), requests),
                "click": np.zeros(rows, np.int64),
                "conversion": np.zeros(rows, np.int64),
            }
        ),
        tmp_path / "log.parquet",
    )
    result = run("spec", "infer", "--logs", str(tmp_path / "log.parquet"))
    assert result.exit_code == 0, result.output
    assert "left out: 'constant'" in result.output and "left out: 'request_id'" in result.output
    spec = FeatureSpec.from_dict(tomllib.loads(result.output))
    features = spec.by_name
    assert set(features) == {"site", "creative", "bid"}
    assert features["site"].kind == "categorical" and features["site"].side == "context"
    assert features["creative"].kind == "categorical" and features["creative"].side == "candidate"
    assert features["creative"].buckets == buckets_for(50) == 211  # the next prime >= 4 x 50
    assert features["bid"].kind == "numeric" and not features["bid"].required
    assert features["bid"].default == pytest.approx(float(np.nanmedian(bid)))
    written = tmp_path / "specs" / "mine.toml"  # its folder made, as a report's (it was "No such file")
    assert run("spec", "infer", "--logs", str(tmp_path / "log.parquet"), "--out", str(written)).exit_code == 0
    assert written.read_text() + "\n" == result.output
    written.write_text(written.read_text() + "# edited by hand\n")  # the proposal is edited, then inferred again
    again = run("spec", "infer", "--logs", str(tmp_path / "log.parquet"), "--out", str(written))
    assert isinstance(again.exception, FileExistsError) and "pass --overwrite" in str(again.exception)
    assert written.read_text().endswith("# edited by hand\n")  # kept
    replaced = run("spec", "infer", "--logs", str(tmp_path / "log.parquet"), "--out", str(written), "--overwrite")
    assert replaced.exit_code == 0 and written.read_text() + "\n" == result.output


def test_a_spec_inferred_from_a_log_trains_on_that_log(tmp_path):
    """Booleans and integer columns with gaps are proposed as categorical and train (read as 0/1 and as
    integers, not as floats the encoder refuses); the simulator's ground truth and the logging policy's
    propensity are left out, with why."""
    rng = np.random.default_rng(1)
    rows = 900
    click = (rng.random(rows) < 0.3).astype(np.int64)
    hour = pa.array([None if i % 40 == 0 else i % 24 for i in range(rows)], pa.int64())
    pq.write_table(
        pa.table(
            {
                "request_id": [f"r{i // 3}" for i in range(rows)],
                "site": [f"s{i % 5}" for i in range(rows)],
                "returning": rng.random(rows) < 0.5,
                "hour": hour,
                "bid": rng.uniform(0.1, 2.0, rows),
                "propensity": np.full(rows, 1 / 3),
                "true_ctr": rng.random(rows),
                "user_idx": rng.integers(0, 100, rows),
                "position": np.tile([1, 2, 3], rows // 3),
                "click": click,
                "conversion": click * (rng.random(rows) < 0.3),
            }
        ),
        tmp_path / "log.parquet",
    )
    result = run("spec", "infer", "--logs", str(tmp_path / "log.parquet"), "--out", str(tmp_path / "spec.toml"))
    assert result.exit_code == 0, result.output
    proposed = (tmp_path / "spec.toml").read_text()
    assert "# left out: 'true_ctr': the world simulator's ground truth" in proposed
    assert "# left out: 'user_idx': the world simulator's ground truth" in proposed
    assert "# left out: 'propensity': the logging policy's probability" in proposed
    spec = FeatureSpec.from_dict(tomllib.loads(proposed))
    assert set(spec.by_name) == {"site", "returning", "hour", "bid"}
    assert spec.by_name["hour"].kind == "categorical" and not spec.by_name["hour"].required

    models = str(tmp_path / "models")
    assert run("new", "mine", "--kind", "esmm", "--spec", str(tmp_path / "spec.toml"), "-r", models).exit_code == 0
    trained = run("train", "mine", "--logs", str(tmp_path / "log.parquet"), "-r", models,
                  "--work-dir", str(tmp_path / "work"), "--no-progress")  # fmt: skip
    assert trained.exit_code == 0, trained.output


def test_an_esam_scaffold_is_evaluated_on_retrieval_and_its_hint_names_the_non_displayed_table(tmp_path):
    """The scaffold lacked evaluation = "retrieval": `ctr evaluate` ran the impression report and said the
    model was trained on features other than the world's; the hint left out --non-displayed."""
    result = run("new", "k_esam", "--kind", "esam", "-r", str(tmp_path))
    assert result.exit_code == 0, result.output
    written = (tmp_path / "k_esam" / "config.toml").read_text()
    assert 'evaluation = "retrieval"' in written
    assert "epochs = 2" in written and "chosen from the log's size" not in written  # a retrieval model's are not
    # its default loss weights collapse recall in the attribute world (docs/esam.md): said, with what trains
    said = " ".join(line.lstrip("# ") for line in written.splitlines() if line.startswith("#"))
    assert "lambda_da = 3.0" in written and "(validation hot recall@50 0.0057 against the baseline's 0.1163)" in said
    assert "--from esam" in " ".join(result.output.split())
    assert ModelConfig.load(tmp_path, "k_esam").evaluation == "retrieval"
    assert f"ctr train k_esam -r {tmp_path} --logs DISPLAYED --non-displayed OTHER --spec SPEC.toml" in " ".join(
        result.output.split()
    )
    (tmp_path / "older").mkdir()
    (tmp_path / "older" / "config.toml").write_text('kind = "esam"\n')  # scaffolded before: the kind's report
    assert ModelConfig.load(tmp_path, "older").evaluation == "retrieval"


def test_the_adversarial_ctr_scaffold_keeps_the_papers_defaults_and_says_what_trains(tmp_path):
    """Its defaults (the paper's) gave held-out AUC 0.44 on a user's logs, with nothing said anywhere."""
    result = run("new", "adv", "--kind", "adversarial_ctr", "-r", str(tmp_path))
    assert result.exit_code == 0, result.output
    output = " ".join(result.output.split())
    assert "note: The [model] defaults are Moore et al. 2018's" in output and "docs/moore2018.md" in output
    assert 'lam = 0.99, optimizer = "adam", bias_epochs = 0 and [training] learning_rate = 0.01' in output
    text = (tmp_path / "adv" / "config.toml").read_text()
    assert "# docs/moore2018.md found that they do not train" in " ".join(text.split())
    config = ModelConfig.load(tmp_path, "adv")
    assert (config.model["lam"], config.model["optimizer"], config.model["bias_epochs"]) == (0.9999, "sgd", 100)
    copied = run("new", "adv2", "--from", "adv", "-r", str(tmp_path))
    assert copied.exit_code == 0 and "note:" not in copied.output  # a copied config is its author's
