"""A model.json holding what this release does not know (common/newer_manifest.py): said as one a newer
release wrote, naming the names, the code that wrote it and the way out, from every table of the file."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import pytest

from common.features import Feature, FeatureSpec, NumericStats
from common.newer_manifest import NEXT_STEP, NewerManifest
from common.repository import SLOT1, Manifest, TensorInfo

PROVENANCE = {"git": {"commit": "0123456789abcdef0123456789abcdef01234567", "dirty": False}, "packages": {}}


def written() -> dict[str, Any]:
    """A model.json as this release writes it, with a position and a numeric feature's statistics."""
    spec = FeatureSpec(
        (Feature("ad_id", "categorical", "candidate", buckets=4), Feature("ad_price", "numeric", "candidate")),
        {"ad_price": NumericStats(mean=10.0, std=4.0, low=0.5, high=90.0)},
    )
    manifest = Manifest(
        name="esmm",
        version=3,
        kind="esmm",
        opset=17,
        inputs=[TensorInfo("categorical", "int64", ["batch", 1]), TensorInfo("numeric", "float32", ["batch", 1])],
        outputs=[TensorInfo("pctr", "float32", ["batch"])],
        feature_spec=spec,
        onnx_sha256="0" * 64,
        position={"regime": SLOT1, "ctr_ratios": [1.0, 0.5]},
    )
    return json.loads(manifest.to_json())


def refusal(edit: Callable[[dict[str, Any]], object]) -> str:
    data = written()
    edit(data)
    with pytest.raises(NewerManifest) as raised:
        Manifest.from_json(json.dumps(data))
    return str(raised.value)


def test_a_field_a_newer_release_added_is_said_so_with_the_commit_that_wrote_it_and_what_to_do() -> None:
    """It was ``model.json is malformed: settings ['format_version'] are unknown (did you mean 'version'?);
    known: [...]``: a "setting", a typo, no next step, though the file said which code wrote it."""
    message = refusal(
        lambda data: data.update(
            format_version=2, provenance=PROVENANCE | {"packages": {"debiased-ctr": "0.2.0", "numpy": "2.0"}}
        )
    )
    assert message.startswith("model.json holds fields ['format_version'] that this release does not know: "), message
    assert "probably written by a newer release (provenance: commit 0123456789ab, debiased-ctr 0.2.0)" in message
    assert message.endswith(NEXT_STEP) and "upgrade the service" in NEXT_STEP and "roll the model back" in NEXT_STEP
    assert "did you mean" not in message and "setting" not in message and "numpy" not in message


@pytest.mark.parametrize(
    ("provenance", "said"),
    [
        (None, "(it records no provenance to say which code wrote it)"),
        ({"git": {"commit": "abcdef0123456789", "dirty": True}}, "(provenance: commit abcdef012345 with uncommitted"),
        ({"packages": {"debiased-ctr": "0+unknown"}}, "(its provenance names no commit nor release)"),
    ],
)
def test_the_writer_is_named_as_far_as_the_file_records_it(provenance: dict | None, said: str) -> None:
    message = refusal(lambda data: data.update(calibration={}, provenance=provenance or {}))
    assert said in message, message


def test_a_typo_is_offered_only_for_a_field_the_file_lacks() -> None:
    """``format_version`` beside ``version`` is no misspelling of it; ``verison`` in place of it may be."""
    message = refusal(lambda data: data.update(verison=data.pop("version")))
    assert message.startswith("model.json holds fields ['verison'] that this release does not know (did you mean ")
    assert "'version'?); if no typo, it was probably written by a newer release" in message


@pytest.mark.parametrize(
    ("edit", "said"),
    [
        (
            lambda data: data["feature_spec"]["stats"]["ad_price"].update(p99=80.0),
            "model.json feature spec stats of 'ad_price' holds fields ['p99'] that this release does not know: ",
        ),
        (
            lambda data: data["position"].update(calibration={"a": 1.0}, ctr_ratios_by_device={}),
            "model.json position holds fields ['calibration', 'ctr_ratios_by_device'] that this release does not know",
        ),
        (
            lambda data: data["position"].update(regime="slot1_per_device"),
            "model.json position regime 'slot1_per_device' is not one this release serves ('slot1' or 'logged'): ",
        ),
        (
            lambda data: data.update(constants={"b": 0.1, "temperature": 2.0}),
            "model.json constants ['temperature'] are not ones this release knows "
            "(['b', 'similarity_bias', 'similarity_scale']): it was probably written by a newer release",
        ),
        (
            lambda data: data["files"].update({"a.npy": {"sha256": "0" * 64, "dtype": "float16"}}),
            "model.json files['a.npy'] holds fields ['dtype'] that this release does not know: ",
        ),
    ],
)
def test_what_a_newer_release_may_add_inside_a_table_is_refused_as_such(
    edit: Callable[[dict[str, Any]], object], said: str
) -> None:
    """An unknown statistic was a Python error text; unknown position fields, an unknown regime and an unknown
    constant were served, the scores unchanged, though README said a field not known is refused."""
    message = refusal(edit)
    assert message.startswith(said), message
    assert message.endswith(NEXT_STEP)
