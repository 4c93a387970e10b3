"""The served models' features against the simulated world's, as ``--url`` checks them before day 0."""

from __future__ import annotations

from clients.auction.served_features import feature_mismatch
from clients.client import ModelStatus
from training.world import feature_spec

WORLD = [f.name for f in feature_spec().features]


def served(features: list[str] | None, required: list[str] | None) -> ModelStatus:
    return ModelStatus("m", ["ctr"], True, features=features, required_features=required)


def test_a_model_taking_and_requiring_only_world_features_answers_every_call() -> None:
    assert feature_mismatch([served(WORLD, ["user_id", "ad_id"])], "auction request") is None


def test_both_problems_are_named_in_one_sentence() -> None:
    """A renamed feature is both: the world's name is taken by no model, the new one is required of every call."""
    renamed = [name if name != "device" else "device_type" for name in WORLD]
    assert feature_mismatch([served(renamed, ["user_id", "device_type"])], "similarity call") == (
        "do not take the simulated world's features device, which every similarity call carries and require the "
        "features device_type, which the simulated world has none of"
    )


def test_another_model_taking_a_feature_is_enough_but_each_model_s_requirements_count() -> None:
    first, second = served([*WORLD[:5], "site"], ["site"]), served(WORLD[5:], [])
    assert feature_mismatch([first, second], "auction request") == (
        "require the features site, which the simulated world has none of"
    )


def test_a_service_that_does_not_say_is_not_checked() -> None:
    assert feature_mismatch([served(None, None)], "auction request") is None
    assert feature_mismatch([served(WORLD, None)], "auction request") is None
