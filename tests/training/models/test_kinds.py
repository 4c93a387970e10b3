"""The kinds' torch-free table (training/models/kinds.py) and the registry's networks name the same kinds, in its
order, and each network's own defaults are its kind's settings."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.support.model_batches import SPEC
from training.models.kinds import MODEL_KINDS, config_kind, model_config_of
from training.models.registry import NETWORKS
from training.new_model import default_config_toml


def test_every_kind_the_registry_builds_is_named_without_torch_and_no_other():
    """A kind added to the registry alone would be refused by `ctr new` and `ctr train` as unknown; a name
    left in kinds.py alone would pass their check and fail after torch's import."""
    assert tuple(NETWORKS) == tuple(MODEL_KINDS)


@pytest.mark.parametrize("kind", sorted(MODEL_KINDS))
def test_a_network_built_without_settings_has_its_kinds_defaults(kind):
    """The settings `ctr new` writes and `ctr train` checks (the kind's row) are the class the network takes."""
    assert type(NETWORKS[kind](SPEC).config) is MODEL_KINDS[kind].settings


def test_an_unknown_kind_is_refused_in_one_wording_wherever_it_is_named():
    """`ctr new --kind`, a config's kind and a checkpoint's (``model_config_of``) were refused in three wordings;
    each is one refusal now, the list of kinds after its own hint."""
    path = Path("models/mine/config.toml")
    refusals = [
        (lambda: default_config_toml("esmn"), "pass --kind with one of"),
        (lambda: config_kind({"kind": "esmn"}, path), "set kind in models/mine/config.toml to one of"),
        (lambda: model_config_of("esmn", {}), "this code knows"),
    ]
    for refuse, hint in refusals:
        with pytest.raises(ValueError) as refused:
            refuse()
        assert str(refused.value) == f"unknown model kind 'esmn': {hint} {sorted(MODEL_KINDS)}"


def test_a_config_without_a_kind_is_refused_naming_its_file():
    with pytest.raises(
        ValueError, match=r"^models/mine/config\.toml must say which kind of model it is \(kind = \.\.\.\)$"
    ):
        config_kind({"model": {}}, Path("models/mine/config.toml"))
