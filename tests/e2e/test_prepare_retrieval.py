"""`ctr prepare` also trains and exports the retrieval model when it has a config and no version."""

from __future__ import annotations

from pathlib import Path

from typer.testing import CliRunner

from cli.main import app
from common.repository import versions
from tests.support.retrieval import TINY_ESAM_CONFIG
from tests.support.tiny_model import publish_tiny_esmm


def test_prepare_exports_the_retrieval_model_once(tmp_path: Path) -> None:
    root = tmp_path / "models"
    publish_tiny_esmm(root)
    (root / "esam").mkdir()
    (root / "esam" / "config.toml").write_text(TINY_ESAM_CONFIG)
    command = ["prepare", "--repository", str(root), "--work-dir", str(tmp_path / "work")]
    runner = CliRunner(env={"CTR_CTR_MODEL": "esmm"})  # the tiny repository's esmm fills both roles
    first = runner.invoke(app, command)
    assert first.exit_code == 0, first.output + repr(first.exception)
    assert versions(root, "esam") == [1] and versions(root, "esmm") == [1]
    # a line as it starts, once trained and once exported
    assert "[1/1] training + exporting esam" in first.output and "[1/1] esam trained in " in first.output
    assert "[1/1] esam done in " in first.output and "exported as version 1" in first.output
    again = runner.invoke(app, command)
    assert again.exit_code == 0 and "every served model has an exported version" in again.output


def test_prepare_names_a_failed_model_and_its_log(tmp_path: Path) -> None:
    root = tmp_path / "models"
    publish_tiny_esmm(root)
    (root / "esam").mkdir()
    (root / "esam" / "config.toml").write_text(TINY_ESAM_CONFIG.replace('kind = "esam"', 'kind = "esam_typo"'))
    command = ["prepare", "--repository", str(root), "--work-dir", str(tmp_path / "work"), "--step", "[2/3]"]
    result = CliRunner(env={"CTR_CTR_MODEL": "esmm"}).invoke(app, command)
    assert result.exit_code == 1
    assert "[2/3] esam failed after" in result.output
    assert str(tmp_path / "work" / "esam" / "prepare.log") in result.output
    assert "esam_typo" in result.output  # the log's tail: the error line of `ctr train`
    assert versions(root, "esam") == []
