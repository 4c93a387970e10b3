"""The simulated world a config's ``[world]`` and ``[retrieval]`` overrides describe, built in one place.

A model's ``config.toml`` (training/model_config.py) and the experiments' configs keep ``[world]`` and
``[retrieval]`` as the overrides they read, not as ``WorldConfig``/``RetrievalConfig``; every command
that simulates from them builds its world here, through ``built``'s checks, so that a misspelt setting
is one line naming it (``[world] settings ['n_user'] are unknown (did you mean 'n_users'?)``) wherever
it is read: ``ctr sample-request`` and ``ctr bench`` built the world from the raw TOML and ended in a
TypeError traceback where ``ctr train`` named the setting. Nothing here imports torch, so the clients
that only draw request bodies (``ctr bench``, clients/bench/locustfile.py) stay without it.
"""

from __future__ import annotations

import json
from dataclasses import asdict
from pathlib import Path
from typing import Any, Protocol

from common.config_layout import read_checked_config
from common.config_table import built
from common.features import FeatureSpec
from training.world import World, WorldConfig, feature_spec
from training.world.retrieval import RetrievalConfig, RetrievalView


class WorldOverrides(Protocol):
    """A config holding ``[world]`` overrides (a ModelConfig, an experiment's config)."""

    world: dict[str, Any]


class RetrievalOverrides(WorldOverrides, Protocol):
    """A config holding ``[world]`` and ``[retrieval]`` overrides."""

    retrieval: dict[str, Any]


def world_config(overrides: dict[str, Any]) -> WorldConfig:
    """The WorldConfig of ``[world]`` ``overrides``; ValueError naming the first setting it does not take."""
    return built(WorldConfig, overrides, "[world]")


def retrieval_config(overrides: dict[str, Any]) -> RetrievalConfig:
    """The RetrievalConfig of ``[retrieval]`` ``overrides``; ValueError naming the first setting it does not take."""
    return built(RetrievalConfig, overrides, "[retrieval]")


def world_of(config: WorldOverrides) -> World:
    """The world simulator of ``config``'s [world]."""
    return World(world_config(config.world))


def world_settings(config: WorldOverrides) -> dict[str, Any]:
    """Every setting of ``config``'s world, the defaults filled in, as JSON holds them: what a report or a
    checkpoint records of the world it simulated (the overrides alone say nothing of a changed default)."""
    return as_json(asdict(world_config(config.world)))


def as_json(settings: dict[str, Any]) -> dict[str, Any]:
    """Settings as JSON holds them (tuples as lists): the form a record of them is written and compared in."""
    return json.loads(json.dumps(settings))


def world_spec(config: WorldOverrides) -> FeatureSpec:
    """The feature spec of the logs of ``config``'s world, sized to it (without building the world)."""
    return feature_spec(world_config(config.world))


def retrieval_view_of(config: RetrievalOverrides) -> RetrievalView:
    """The retrieval view of ``config``'s world, under its [retrieval] settings."""
    return RetrievalView(world_of(config), retrieval_config(config.retrieval))


def repository_world(root: Path, name: str) -> World:
    """The world of repository model ``name``'s [world], its config's layout and [world] checked as
    ``ctr train`` checks them; without loading the model kinds (torch), for the commands that only
    draw request bodies from it."""
    return World(world_config(read_checked_config(root, name).get("world", {})))
