"""A learning rate that cannot train is said naming ``[training] learning_rate``: a non-finite one at once,
one so large that the loss diverges once an epoch's loss is nan or inf (a tiny own-logs world). Both are
ValueErrors, which the CLI says in one line with a non-zero exit (cli/errors.py)."""

from pathlib import Path

import pytest
from typer.testing import CliRunner

from cli.main import app
from tests.support.own_logs import CONFIG_TOML, SPEC_TOML, write_logs
from training.fitting.fit import TrainingDiverged
from training.fitting.settings import TrainingConfig


@pytest.mark.parametrize("rate", [float("inf"), float("nan"), 0.0, -1.0])
def test_a_learning_rate_that_is_not_a_positive_finite_number_is_refused(rate: float) -> None:
    with pytest.raises(ValueError, match=r"^\[training\] learning_rate must be a positive finite number, not "):
        TrainingConfig(learning_rate=rate)


def train(tmp_path: Path, learning_rate: str) -> BaseException | None:
    """``ctr train esmm`` on 600 rows of own logs with ``learning_rate``: the error it ended with, if any."""
    (tmp_path / "models" / "esmm").mkdir(parents=True)
    config = CONFIG_TOML.replace("learning_rate = 0.01", f"learning_rate = {learning_rate}")
    (tmp_path / "models" / "esmm" / "config.toml").write_text(config, encoding="utf-8")
    write_logs(tmp_path / "logs.csv")
    (tmp_path / "spec.toml").write_text(SPEC_TOML, encoding="utf-8")
    arguments = ["train", "esmm", "--logs", str(tmp_path / "logs.csv"), "--spec", str(tmp_path / "spec.toml")]
    common = ["--no-progress", "--repository", str(tmp_path / "models"), "--work-dir", str(tmp_path / "work")]
    result = CliRunner().invoke(app, [*arguments, *common])
    assert result.exit_code != 0, result.output
    return result.exception


@pytest.mark.parametrize("learning_rate", ["inf", "nan"])
def test_ctr_train_refuses_a_non_finite_learning_rate_naming_the_key(tmp_path: Path, learning_rate: str) -> None:
    """``inf`` trained to a nan loss and exited 0 with a checkpoint; ``nan`` failed in torch's own words."""
    error = train(tmp_path, learning_rate)
    assert isinstance(error, ValueError)
    assert str(error).startswith("[training] learning_rate must be a positive finite number"), error


def test_a_diverging_run_ends_saying_so(tmp_path: Path) -> None:
    """A learning rate of 1e30 drives the loss to nan in its first epoch: the run stops there, saying so (a
    diverging run ended in a bare ZeroDivisionError in position_bypass.py's summary)."""
    error = train(tmp_path, "1e30")
    assert isinstance(error, TrainingDiverged)
    assert str(error) == "training diverged: epoch 1's loss is nan; lower [training] learning_rate"
