"""The models the service is serving: one immutable snapshot of role -> loaded model.

Routes read the snapshot from ``app.state.models``; a reload (service/model_manager.py) builds a new
snapshot and swaps the reference, so a request sees one consistent set of models from start to end.
A model may serve several versions (its version policy); ``loaded`` holds the newest, which the roles
use, and ``versions`` all of them. Each served version has its batcher in ``batchers``.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from dataclasses import dataclass, field
from functools import cached_property
from typing import TYPE_CHECKING, Any

from service.model_loader import LoadedModel, ModelLoadError, load_latest
from service.settings import ROLE_OUTPUTS, Settings

if TYPE_CHECKING:
    from service.batching import Batcher

logger = logging.getLogger(__name__)


class RegimeMismatch(ModelLoadError):
    """The role models' probabilities hold for different positions; they are never served together."""


CONFLICT = "conflict"  # the kind of a feature name two role models declare with different kinds


@dataclass(frozen=True)
class ServingModels:
    roles: Mapping[str, str]  # role ("ctr", "ctcvr") -> repository model name
    loaded: Mapping[str, LoadedModel]  # model name -> the version being served
    errors: Mapping[str, str]  # model name -> why no version of it is served
    versions: Mapping[str, Mapping[int, LoadedModel]] = field(default_factory=dict)  # every served version
    batchers: Mapping[LoadedModel, Batcher] = field(default_factory=dict)  # keyed by the model object

    def __post_init__(self) -> None:
        if not self.versions and self.loaded:
            object.__setattr__(self, "versions", {name: {m.version: m} for name, m in self.loaded.items()})

    def model(self, name: str, version: int | None = None) -> LoadedModel | None:
        """The named version of a served model (its newest when ``version`` is None)."""
        if version is None:
            return self.loaded.get(name)
        return self.versions.get(name, {}).get(version)

    def batcher(self, model: LoadedModel) -> Batcher | None:
        return self.batchers.get(model)

    @property
    def ready(self) -> bool:
        return all(name in self.loaded for name in self.roles.values())

    @cached_property
    def role_feature_kinds(self) -> dict[str, str]:
        """Feature name -> the kind of value the role models take for it (``CONFLICT``: no value suits
        both); computed once per snapshot, since every /v1/score request checks its values against it."""
        kinds: dict[str, str] = {}
        for model in dict.fromkeys(m for m in map(self.for_role, ("ctr", "ctcvr")) if m is not None):
            for name, kind in model.feature_kinds.items():
                kinds[name] = kind if kinds.get(name, kind) == kind else CONFLICT
        return kinds

    def for_role(self, role: str) -> LoadedModel | None:
        return self.loaded.get(self.roles[role])

    def unavailable(self) -> dict[str, str]:
        """Model name -> reason, for each model a role needs that is not loaded."""
        return {
            name: self.errors.get(name, "not loaded")
            for name in dict.fromkeys(self.roles.values())
            if name not in self.loaded
        }

    def regime_conflict(self) -> str | None:
        """Why the ctr and ctcvr role models cannot be combined (their served probabilities hold for
        different positions), or None. Checked before a snapshot is served."""
        ctr, ctcvr = self.for_role("ctr"), self.for_role("ctcvr")
        if ctr is None or ctcvr is None or ctr.manifest.regime == ctcvr.manifest.regime:
            return None
        return (
            f"position regimes differ: ctr model {ctr.name!r} version {ctr.version} serves {ctr.manifest.regime!r}, "
            f"ctcvr model {ctcvr.name!r} version {ctcvr.version} serves {ctcvr.manifest.regime!r}; "
            "pctr, pctcvr and pcvr must hold for the same slot (model.json position.regime; a version exported "
            "before position regimes existed is position-blind: retrain it, `ctr train NAME && ctr export NAME`)"
        )

    def describe(self) -> list[dict[str, Any]]:
        entries = []
        for name in dict.fromkeys(self.roles.values()):
            roles = [role for role, model in self.roles.items() if model == name]
            model = self.loaded.get(name)
            if model is None:
                entries.append({"name": name, "roles": roles, "ready": False, "error": self.errors.get(name)})
            else:
                served = sorted(self.versions.get(name, {model.version: model}))
                entries.append({**model.describe(), "roles": roles, "ready": True, "versions": served})
        return entries


def required_outputs(roles: Mapping[str, str]) -> dict[str, set[str]]:
    """Model name -> the outputs its roles need, for each model a role names."""
    needs: dict[str, set[str]] = {}
    for role, name in roles.items():
        needs.setdefault(name, set()).update([ROLE_OUTPUTS[role]] if role in ROLE_OUTPUTS else [])
    return needs


def load_serving_models(settings: Settings) -> ServingModels:
    """Load the newest good version of each model a role names; a model with none is left out."""
    needs = required_outputs(settings.roles)
    loaded: dict[str, LoadedModel] = {}
    errors: dict[str, str] = {}
    for name, outputs in needs.items():
        try:
            loaded[name] = load_latest(settings.model_repository, name, settings, outputs)
        except ModelLoadError as error:
            logger.error("model %s is not served: %s", name, error)
            errors[name] = str(error)
    models = ServingModels(dict(settings.roles), loaded, errors)
    conflict = models.regime_conflict()
    if conflict is not None:
        raise RegimeMismatch(conflict)
    return models
