"""A checkpoint is exported only as the model config.toml describes now, and only if this code wrote it."""

from __future__ import annotations

import pytest
import torch
from typer.testing import CliRunner

from cli.main import app
from common.repository import MODEL_FILE, version_dir, versions
from tests.support.esmm_checkpoint import checkpoint
from training.fitting.checkpoint import Checkpoint
from training.model_config import ModelConfig
from training.training_files import checkpoint_path


def export(tmp_path, config: str):
    """`ctr export esmm` of esmm_checkpoint's checkpoint (kind esmm, hidden [32, 16]) under ``config``."""
    checkpoint().save(checkpoint_path(tmp_path / "work", "esmm"))
    (tmp_path / "models" / "esmm").mkdir(parents=True, exist_ok=True)
    (tmp_path / "models" / "esmm" / "config.toml").write_text(config)
    arguments = ["export", "esmm", "-r", str(tmp_path / "models"), "--work-dir", str(tmp_path / "work")]
    return CliRunner().invoke(app, arguments)


@pytest.mark.parametrize(
    ("config", "expected"),
    [  # `ctr export` published the stale checkpoint as "version 3", model.json saying kind esmm
        (
            'kind = "esmm_debiased"\n[model]\nhidden = [32, 16]\n',
            "holds a model of kind 'esmm', but config.toml now says kind = 'esmm_debiased': retrain it with `ctr "
            "train esmm`",
        ),
        (
            'kind = "esmm"\n[model]\nhidden = [32, 8]\n',
            "was trained with other [model] settings (hidden = [32, 16] in it, [32, 8] in config.toml): retrain",
        ),
    ],
)
def test_a_checkpoint_the_config_no_longer_describes_is_refused(tmp_path, config, expected):
    result = export(tmp_path, config)
    assert result.exit_code != 0 and expected in str(result.exception), result.output
    assert versions(tmp_path / "models", "esmm") == []


def test_a_setting_written_out_at_its_default_is_no_change(tmp_path):
    result = export(tmp_path, 'kind = "esmm"  # edited\n[model]\nhidden = [32, 16]\ndropout = 0.0\n')
    assert result.exit_code == 0, repr(result.exception)
    assert versions(tmp_path / "models", "esmm") == [1]


def test_exporting_the_same_checkpoint_again_publishes_nothing_and_says_which_version_holds_it(tmp_path, caplog):
    """Two exports gave versions 1 and 2 with byte-identical model.onnx, and no notice; then a notice on
    stderr alone, where a script reading stdout for the version found nothing."""
    config = 'kind = "esmm"\n[model]\nhidden = [32, 16]\n'
    assert export(tmp_path, config).exit_code == 0
    again = export(tmp_path, config)
    assert again.exit_code == 0 and "exported" not in again.output
    assert again.stdout.startswith("esmm version 1 (") and again.stdout.endswith(") already holds this export\n")
    assert versions(tmp_path / "models", "esmm") == [1]
    assert "esmm's checkpoint exports to what version 1 already holds" in caplog.text
    assert "not published again" in caplog.text


@pytest.mark.parametrize("damage", ["truncated", "removed"])
def test_exporting_again_over_a_damaged_newest_version_publishes_the_next(tmp_path, damage):
    """The duplicate check took a newest version the service refuses (its model.onnx truncated or gone)
    for the export: `ctr export`, which `ctr evaluate`'s refusal says to run, published nothing."""
    config = 'kind = "esmm"\n[model]\nhidden = [32, 16]\n'
    assert export(tmp_path, config).exit_code == 0
    model = version_dir(tmp_path / "models", "esmm", 1) / MODEL_FILE
    if damage == "truncated":
        model.write_bytes(model.read_bytes()[:-40])
    else:
        model.unlink()
    again = export(tmp_path, config)
    assert again.exit_code == 0 and "exported esmm version 2" in again.output, again.output
    assert versions(tmp_path / "models", "esmm") == [1, 2]


def saved(tmp_path, **changes):
    """esmm_checkpoint's checkpoint saved with fields of its payload changed (``...``: removed)."""
    payload = dict(vars(checkpoint()), spec=checkpoint().spec.to_dict()) | changes
    path = tmp_path / "checkpoint.pt"
    torch.save({key: value for key, value in payload.items() if value is not ...}, path)
    return path


@pytest.mark.parametrize(
    ("changes", "expected"),
    [
        ({"future_field": 1}, "is a checkpoint of another version of the code (fields ['future_field'] this version "),
        ({"position": ..., "constants": ...}, "(no ['constants', 'position'], which this version needs); retrain"),
        ({"spec": {"features": "x"}}, "holds a feature spec this version cannot read"),
    ],
)
def test_a_checkpoint_of_another_format_is_refused_naming_what_differs(tmp_path, changes, expected):
    """An extra field was a TypeError; one lacking `position` (an older format) exported as position-blind."""
    path = saved(tmp_path, **changes)
    with pytest.raises(ValueError) as raised:
        Checkpoint.load(path)
    assert str(raised.value).startswith(str(path)) and expected in str(raised.value)


def test_weights_that_do_not_fit_the_kind_are_one_line():
    stale = checkpoint()
    stale.state_dict = {key: value for key, value in stale.state_dict.items() if "cvr" not in key}
    with pytest.raises(ValueError) as raised:
        stale.build()
    message = str(raised.value)  # torch's listed every missing tensor over many lines
    assert message.startswith("the weights of checkpoint 'esmm' do not fit a model of kind esmm with its [model]")
    assert "\n" not in message and message.endswith("another version of the code; retrain it")
    assert "Missing key(s) in state_dict: " in message  # what does not fit, not only torch's title line


def test_the_checkpoint_of_a_config_passes(tmp_path):
    (tmp_path / "esmm").mkdir()
    (tmp_path / "esmm" / "config.toml").write_text('kind = "esmm"\n[model]\nhidden = [32, 16]\n')
    checkpoint().check_against(ModelConfig.load(tmp_path, "esmm"), tmp_path / "checkpoint.pt")


def trained_under_defaults(**sections) -> Checkpoint:
    """esmm_checkpoint's checkpoint as `ctr train` records it on the world's logs under the default [training],
    [data] and [world], ``sections`` changing some (``{"training": {"learning_rate": 0.01}}``)."""
    from dataclasses import replace

    from training.fitting.checkpoint import TRAINED_UNDER, trained_under
    from training.fitting.settings import TrainingConfig
    from training.model_config import DataConfig

    config = ModelConfig(
        name="esmm",
        kind="esmm",
        model={"hidden": [32, 16]},
        training=replace(TrainingConfig(), **sections.get("training", {})),
        data=replace(DataConfig(), **sections.get("data", {})),
    )
    stale = checkpoint()
    stale.training = {"impressions": 100, TRAINED_UNDER: trained_under(config, simulated=True)}
    return stale


def test_a_checkpoint_trained_under_other_training_or_data_settings_is_refused_naming_them(tmp_path):
    """It exported without a word, though `ctr export --help` said such a checkpoint is refused."""
    stale = trained_under_defaults(training={"learning_rate": 0.01}, data={"requests_per_day": 4000})
    path = tmp_path / "checkpoint.pt"
    (tmp_path / "esmm").mkdir()
    (tmp_path / "esmm" / "config.toml").write_text('kind = "esmm"\n[model]\nhidden = [32, 16]\n')
    with pytest.raises(ValueError) as raised:
        stale.check_against(ModelConfig.load(tmp_path, "esmm"), path)
    message = str(raised.value)
    assert "[training] learning_rate = 0.01 in it, 0.001 in config.toml" in message
    assert "[data] requests_per_day = 4000 in it, 40000 in config.toml" in message
    assert message.endswith("retrain it with `ctr train esmm` (or restore the config it was trained with)")


def test_held_out_settings_and_unchanged_sections_are_no_change(tmp_path):
    """The held-out day is no part of what the model was trained on."""
    (tmp_path / "esmm").mkdir()
    config = 'kind = "esmm"\n[model]\nhidden = [32, 16]\n[data]\nheldout_seed = 7\n[training]\nlearning_rate = 0.001\n'
    (tmp_path / "esmm" / "config.toml").write_text(config)
    trained_under_defaults().check_against(ModelConfig.load(tmp_path, "esmm"), tmp_path / "checkpoint.pt")
    (tmp_path / "esmm" / "config.toml").write_text(config + "[world]\nn_users = 300\n")
    with pytest.raises(ValueError, match=r"\[world\] n_users = 20000 in it, 300 in config.toml"):
        trained_under_defaults().check_against(ModelConfig.load(tmp_path, "esmm"), tmp_path / "checkpoint.pt")


def test_a_world_retrieval_checkpoint_records_its_world_queries_and_view(tmp_path):
    """ESAM trained on the world's queries recorded its [training] alone: a checkpoint trained under another
    [world], [queries] or [retrieval] exported without a word."""
    from dataclasses import replace

    from training.fitting.checkpoint import TRAINED_UNDER, trained_under

    (tmp_path / "esam").mkdir()
    (tmp_path / "esam" / "config.toml").write_text('kind = "esam"\n')
    trained = trained_under(ModelConfig.load(tmp_path, "esam"), simulated=True)
    assert set(trained) == {"training", "world", "queries", "retrieval"}
    stale = replace(checkpoint(), name="esam", kind="esam", model_params={}, training={TRAINED_UNDER: trained})
    stale.check_against(ModelConfig.load(tmp_path, "esam"), tmp_path / "checkpoint.pt")
    changed_metrics_only = 'kind = "esam"\n[queries]\neval_queries = 50\n[retrieval]\nn_relevant = 20\n'
    (tmp_path / "esam" / "config.toml").write_text(changed_metrics_only)  # the held-out metrics' settings
    stale.check_against(ModelConfig.load(tmp_path, "esam"), tmp_path / "checkpoint.pt")
    (tmp_path / "esam" / "config.toml").write_text('kind = "esam"\n[queries]\ntrain_queries = 500\n')
    with pytest.raises(ValueError, match=r"\[queries\] train_queries = 16000 in it, 500 in config.toml"):
        stale.check_against(ModelConfig.load(tmp_path, "esam"), tmp_path / "checkpoint.pt")


def test_a_checkpoint_of_an_earlier_release_exports_with_a_warning_saying_what_it_lacks(tmp_path, caplog):
    """It exported silently, checked on [model] alone and with no training range to clip served values to."""
    import logging

    (tmp_path / "esmm").mkdir()
    (tmp_path / "esmm" / "config.toml").write_text('kind = "esmm"\n[model]\nhidden = [32, 16]\n[data]\ndays = 3\n')
    with caplog.at_level(logging.WARNING, logger="training.fitting.checkpoint"):
        checkpoint().check_against(ModelConfig.load(tmp_path, "esmm"), tmp_path / "checkpoint.pt")
    assert "checked on its [model] alone" in caplog.text and "retrain it with `ctr train esmm`" in caplog.text
