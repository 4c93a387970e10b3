"""A running service's models (``--url``) checked against the simulated world's features before day 0.

Every auction request carries all of the world's features, and a similarity call all of them too; the service
refuses a feature none of its models takes, and a request without a feature a model requires. Either was found
only once day 0's calls were refused (a service of models trained on one's own logs: ~5 s in, one name alone; a
model requiring a feature the world lacks: every call of day 0, the pipeline aborted).
"""

from __future__ import annotations

from clients.client import ModelStatus
from common.shown_url import shown_url
from training.world import feature_spec


def world_features_not_taken(models: list[ModelStatus]) -> list[str]:
    """The simulated world's features, in its order, that none of ``models`` lists among its own; none where one
    does not list them (an older service: unchecked)."""
    if any(m.features is None for m in models):
        return []
    taken = {name for m in models for name in m.features}
    return [f.name for f in feature_spec().features if f.name not in taken]


def required_features_world_lacks(models: list[ModelStatus]) -> list[str]:
    """The features ``models`` require (in their order, once each) that the simulated world has none of; none
    where a model does not list its required features (a service before ``required_features``: unchecked)."""
    world = {f.name for f in feature_spec().features}
    required = [name for m in models for name in (m.required_features or [])]
    return [name for name in dict.fromkeys(required) if name not in world]


def feature_mismatch(models: list[ModelStatus], call: str) -> str | None:
    """What keeps ``models`` from answering the world's ``call``s ("auction request", "similarity call"), said of
    them as a plural subject's predicate (``do not take ...``), or None where nothing does."""
    clauses = []
    not_taken = world_features_not_taken(models)
    if not_taken:
        clauses.append(f"do not take the simulated world's features {', '.join(not_taken)}, which every {call} carries")
    lacking = required_features_world_lacks(models)
    if lacking:
        clauses.append(f"require the features {', '.join(lacking)}, which the simulated world has none of")
    return " and ".join(clauses) or None


def check_served_features(url: str, models: list[ModelStatus]) -> None:
    """ValueError where the models the auction scores with (roles ctr and ctcvr) cannot answer its requests."""
    scoring = [m for m in models if {"ctr", "ctcvr"} & set(m.roles)]
    mismatch = feature_mismatch(scoring, "auction request")
    if mismatch is not None:
        names = ", ".join(dict.fromkeys(m.name for m in scoring))
        raise ValueError(
            f"--url {shown_url(url)}: the served models ({names}) {mismatch}: serve models trained on the world's logs "
            "(`ctr train` without --logs)"
        )
