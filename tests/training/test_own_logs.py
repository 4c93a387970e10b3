"""A user's own logs: a hand-written CSV and feature spec train, export and score like the simulator's."""

import onnxruntime as ort
import pytest
from typer.testing import CliRunner

from cli.main import app
from common.encoder import FeatureEncoder
from common.repository import MODEL_FILE, read_manifest, version_dir, versions
from tests.support.own_logs import CONFIG_TOML, SPEC_TOML, write_logs


@pytest.fixture
def repository(tmp_path):
    (tmp_path / "models" / "esmm").mkdir(parents=True)
    (tmp_path / "models" / "esmm" / "config.toml").write_text(CONFIG_TOML)
    write_logs(tmp_path / "logs.csv")
    (tmp_path / "spec.toml").write_text(SPEC_TOML)
    return tmp_path


def test_own_csv_logs_train_export_and_score(repository):
    runner = CliRunner()
    common = ["--repository", str(repository / "models"), "--work-dir", str(repository / "work")]
    result = runner.invoke(
        app,
        ["train", "esmm", "--logs", str(repository / "logs.csv"), "--spec", str(repository / "spec.toml"),
         "--no-progress", *common],
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    result = runner.invoke(app, ["export", "esmm", *common])
    assert result.exit_code == 0, result.output

    root = repository / "models"
    assert versions(root, "esmm") == [1]
    manifest = read_manifest(root, "esmm", 1)
    assert [f.name for f in manifest.feature_spec.features] == ["site", "creative", "bid", "weekday"]
    assert manifest.feature_spec.stats["bid"].std > 0
    assert len(manifest.data_fingerprint) == 64

    session = ort.InferenceSession(str(version_dir(root, "esmm", 1) / MODEL_FILE))
    encoded = FeatureEncoder(manifest.feature_spec).encode({"site": "s1", "creative": [0, 1], "bid": [1.0, 1.0]}, 2)
    pctr, _, pctcvr = session.run(["pctr", "pcvr", "pctcvr"], encoded.as_inputs())
    assert pctr[0] > pctr[1]  # the even creative is clicked more: the model learned from the CSV
    assert ((pctcvr >= 0) & (pctcvr <= pctr)).all()


def test_no_progress_bars_where_stderr_is_no_terminal(repository):
    """The bars were on by default: a CI job's log (``2> err``) filled with carriage-return lines."""
    common = ["--repository", str(repository / "models"), "--work-dir", str(repository / "work")]
    arguments = ["train", "esmm", "--logs", str(repository / "logs.csv"), "--spec", str(repository / "spec.toml")]
    quiet = CliRunner().invoke(app, [*arguments, *common])
    assert quiet.exit_code == 0 and "\r" not in quiet.output and "batch/s" not in quiet.output, quiet.output
    asked = CliRunner().invoke(app, [*arguments, "--progress", *common])
    assert asked.exit_code == 0 and "batch/s" in asked.output


def test_own_logs_without_a_spec_are_refused(repository):
    result = CliRunner().invoke(
        app,
        ["train", "esmm", "--logs", str(repository / "logs.csv"), "--repository", str(repository / "models"),
         "--work-dir", str(repository / "work")],
    )  # fmt: skip
    assert result.exit_code != 0
    assert "--spec" in str(result.exception)


def test_logs_missing_a_required_feature_are_refused(repository):
    text = (repository / "logs.csv").read_text().replace("creative", "creatif", 1)
    (repository / "logs.csv").write_text(text)
    result = CliRunner().invoke(
        app,
        ["train", "esmm", "--logs", str(repository / "logs.csv"), "--spec", str(repository / "spec.toml"),
         "--repository", str(repository / "models"), "--work-dir", str(repository / "work")],
    )  # fmt: skip
    assert result.exit_code != 0
    assert "creative" in str(result.exception)


@pytest.mark.parametrize("label", ["0", "1"])
def test_logs_whose_clicks_are_all_one_class_are_refused(repository, label):
    """A log without clicks trained and exported a version predicting a CTR of 1e-4, said only by the
    warning a small log gets."""
    lines = (repository / "logs.csv").read_text().splitlines()
    rows = [line.rsplit(",", 2)[0] + f",{label},0" for line in lines[1:]]
    (repository / "logs.csv").write_text("\n".join([lines[0], *rows]) + "\n")
    result = CliRunner().invoke(
        app,
        ["train", "esmm", "--logs", str(repository / "logs.csv"), "--spec", str(repository / "spec.toml"),
         "--repository", str(repository / "models"), "--work-dir", str(repository / "work"), "--no-progress"],
    )  # fmt: skip
    assert result.exit_code != 0
    assert f"click is {label} on every row of 480 impressions" in str(result.exception)
    assert not (repository / "work" / "esmm").exists() or not any((repository / "work" / "esmm").iterdir())


def test_logs_out_of_time_order_or_doubled_are_warned_of_when_training(repository, caplog):
    """The trainer holds out the last rows as the latest: a log reversed validated on its oldest rows, and a
    doubled one on copies of its training rows, without a word."""
    import logging

    lines = (repository / "logs.csv").read_text().splitlines()
    arguments = [
        *["train", "esmm", "--logs", str(repository / "logs.csv"), "--spec", str(repository / "spec.toml")],
        *["--repository", str(repository / "models"), "--work-dir", str(repository / "work"), "--no-progress"],
    ]
    caplog.set_level(logging.WARNING, logger="training.logs.log_quality")
    assert CliRunner().invoke(app, arguments).exit_code == 0
    assert "time order" not in caplog.text and "twice" not in caplog.text  # in order, each impression once
    (repository / "logs.csv").write_text("\n".join([lines[0], *reversed(lines[1:])]) + "\n")
    assert CliRunner().invoke(app, arguments).exit_code == 0
    assert "are not in time order: ts goes back at 599 rows (the first, row 1 (line 3 of the CSV))" in caplog.text
    caplog.clear()
    (repository / "logs.csv").write_text("\n".join([lines[0], *lines[1:], *lines[1:301]]) + "\n")
    assert CliRunner().invoke(app, arguments).exit_code == 0
    messages = [record.getMessage() for record in caplog.records]
    assert any(
        "hold 300 impressions twice or more (the same request_id, position, features and labels)" in m for m in messages
    )


def test_an_optional_feature_the_logs_lack_is_warned_of_when_training(repository, caplog):
    """The spec's optional `weekday` has no column in the CSV: every row read its default, without a word."""
    import logging

    caplog.set_level(logging.WARNING, logger="training.logs.log_quality")
    arguments = [
        *["train", "esmm", "--logs", str(repository / "logs.csv"), "--spec", str(repository / "spec.toml")],
        *["--repository", str(repository / "models"), "--work-dir", str(repository / "work"), "--no-progress"],
    ]
    assert CliRunner().invoke(app, arguments).exit_code == 0
    assert "have no column for the optional features ['weekday']: each row reads its default" in caplog.text
