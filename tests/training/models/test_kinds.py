"""The kinds' torch-free table (training/models/kinds.py) and the registry's networks name the same kinds, in its
order, and each network's own defaults are its kind's settings."""

from __future__ import annotations

import pytest

from tests.support.model_batches import SPEC
from training.models.kinds import MODEL_KINDS
from training.models.registry import NETWORKS


def test_every_kind_the_registry_builds_is_named_without_torch_and_no_other():
    """A kind added to the registry alone would be refused by `ctr new` and `ctr train` as unknown; a name
    left in kinds.py alone would pass their check and fail after torch's import."""
    assert tuple(NETWORKS) == tuple(MODEL_KINDS)


@pytest.mark.parametrize("kind", sorted(MODEL_KINDS))
def test_a_network_built_without_settings_has_its_kinds_defaults(kind):
    """The settings `ctr new` writes and `ctr train` checks (the kind's row) are the class the network takes."""
    assert type(NETWORKS[kind](SPEC).config) is MODEL_KINDS[kind].settings
