"""`ctr docs-check`: the curl examples of README.md and docs/*.md run against a live service.

The suite runs them against tiny models (the shapes of the answers must match what the pages show);
`make docs-check` runs them against the default models, where the values must match too."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
from typer.testing import CliRunner

from cli.docs_check import check, differences, extract, fingerprints, served, unlike_recorded
from cli.main import app
from common.repository import version_dir, versions
from tests.support.checkout import ROOT
from tests.support.retrieval import publish_tiny_esam

PAGES = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]

PAGE = """Some text.

```sh
ctr sample-request > body.json
curl -s -X POST localhost:8000/v1/score -d @body.json   # the README's style: the answer below
```

```json
{"scores":[{"pctr":0.5}],
 "models":{"ctr":{"name":"ctr","version":1}}}
```

```bash
curl -s localhost:8000/v2/health/live \\
  -H 'accept: application/json'
# {"status":"live"}
for i in $(seq 3); do curl -s localhost:8000/x; done
```
"""


def test_examples_are_read_with_their_setup_and_answers(tmp_path: Path) -> None:
    page = tmp_path / "page.md"
    page.write_text(PAGE)
    first, second = extract(page)
    assert (first.line, first.style, first.setup) == (5, "json", ["ctr sample-request > body.json"])
    assert first.command == "curl -s -X POST localhost:8000/v1/score -d @body.json"
    assert first.expected == {"scores": [{"pctr": 0.5}], "models": {"ctr": {"name": "ctr", "version": 1}}}
    assert (second.line, second.style, second.expected) == (14, "comment", {"status": "live"})
    assert second.command == "curl -s localhost:8000/v2/health/live -H 'accept: application/json'"


def test_shapes_and_values_are_compared() -> None:
    shown = {"scores": [{"pctr": 0.5}], "model": {"name": "esam", "version": 1}}
    assert differences(shown, {"scores": [{"pctr": 0.25}], "model": {"name": "esam", "version": 1}}, False) == []
    assert differences(shown, {"scores": [{"pctr": 0.25}], "model": {"name": "esam", "version": 1}}, True) == [
        "$.scores[0].pctr: expected 0.5, got 0.25"
    ]
    assert differences(shown, {"scores": [], "model": {"name": "esam", "version": 1}}, False) == [
        "$.scores: expected 1 item, got 0"
    ]
    assert differences(shown, {"scores": [{"pctr": "0.5"}], "model": {"name": "esam"}}, False) == [
        "$.scores[0].pctr: expected float 0.5, got str '0.5'",
        "$.model: expected keys ['name', 'version'], got ['name']",
    ]
    assert differences({"version": 1}, {"version": 1.0}, True) == []


@pytest.fixture(scope="module")
def served_repository(world_repository: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The e2e tiny ctr and esmm, and a tiny esam, in one repository (a copy: the e2e one stays as it is)."""
    root = tmp_path_factory.mktemp("docs") / "models"
    shutil.copytree(world_repository, root)
    publish_tiny_esam(root)
    return root


def test_the_pages_examples_answer_in_the_shapes_they_show(served_repository: Path, tmp_path: Path) -> None:
    examples = [e for page in PAGES for e in extract(page)]
    assert {e.path.name for e in examples} >= {"README.md", "esam.md"}
    with served(served_repository) as url:
        assert check(PAGES, url, served_repository, exact=False, write=False) == []
        page = tmp_path / "page.md"  # --update writes the answers back; then they match exactly
        page.write_text((ROOT / "docs" / "esam.md").read_text())
        assert check([page], url, served_repository, exact=False, write=True) == []
        assert check([page], url, served_repository, exact=True, write=False) == []
        assert len(extract(page)) == len(extract(ROOT / "docs" / "esam.md"))


def test_a_retrieval_model_trains_to_the_same_weights_twice(tmp_path: Path) -> None:
    """The pages show the default models' answers, so training is reproducible: ESAM's initial weights
    come from its [training] seed (they came from torch's unseeded generator before)."""
    first, second = publish_tiny_esam(tmp_path / "a" / "models"), publish_tiny_esam(tmp_path / "b" / "models")
    assert (first / "catalog_embeddings.npy").read_bytes() == (second / "catalog_embeddings.npy").read_bytes()


def test_the_record_names_each_models_newest_version_and_changes_with_its_files(
    served_repository: Path, tmp_path: Path
) -> None:
    root = tmp_path / "models"
    shutil.copytree(served_repository, root)
    (root / "lost+found").mkdir()  # no model's name: left out (it raised "model name ... must match")
    record = tmp_path / "record.json"
    assert unlike_recorded(record, root) == []  # no record: nothing to tell apart
    record.write_text(json.dumps(fingerprints(root)))
    assert set(json.loads(record.read_text())) == {"ctr", "esmm", "esam"}
    assert unlike_recorded(record, root) == []
    newest = version_dir(root, "esmm", versions(root, "esmm")[-1])
    (newest / "model.json").write_text((newest / "model.json").read_text() + " ")  # metadata only
    assert unlike_recorded(record, root) == []
    (newest / "model.onnx").write_bytes((newest / "model.onnx").read_bytes() + b"\0")  # other weights
    assert unlike_recorded(record, root) == ["esmm"]


def test_values_are_compared_only_against_the_models_the_answers_came_from(
    served_repository: Path, tmp_path: Path
) -> None:
    """A page whose shown scores are not the served model's: a mismatch while the record names the served
    models, shapes only (and a line saying so) once it names other ones."""
    page = tmp_path / "page.md"
    page.write_text((ROOT / "README.md").read_text().split("## Quick start", 1)[1].split("### Installing", 1)[0])
    assert len(extract(page)) == 1
    record = tmp_path / "record.json"
    record.write_text(json.dumps(fingerprints(served_repository)))
    with served(served_repository) as url:
        arguments = ["docs-check", str(page), "--url", url, "-r", str(served_repository)]
        arguments += ["--models-record", str(record)]
        same = CliRunner().invoke(app, arguments)
        assert same.exit_code == 1 and "$.scores[0].pctr: expected" in same.output
        record.write_text(json.dumps({"esmm": {"version": 1, "sha256": "another machine's"}}))
        other = CliRunner().invoke(app, arguments)
    assert other.exit_code == 0, other.output
    assert "values not compared: the served esmm differ" in other.output
    assert "1 example in 1 file: the answers' shapes match" in other.output
