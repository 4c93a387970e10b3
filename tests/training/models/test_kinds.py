"""The kinds' torch-free names (training/models/kinds.py) are the registry's, in its order."""

from __future__ import annotations

from training.models.kinds import MODEL_KIND_NAMES
from training.models.registry import MODEL_KINDS


def test_every_kind_the_registry_builds_is_named_without_torch_and_no_other():
    """A kind added to the registry alone would be refused by `ctr new` and `ctr train` as unknown; a name
    left in kinds.py alone would pass their check and fail after torch's import."""
    assert tuple(MODEL_KINDS) == MODEL_KIND_NAMES
