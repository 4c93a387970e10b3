"""The models the service is serving: one immutable snapshot of role -> loaded model.

Routes read the snapshot from ``app.state.models``; a reload (a later issue) builds a new snapshot and
swaps the reference, so a request sees one consistent set of models from start to end.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from service.model_loader import LoadedModel, ModelLoadError, load_latest
from service.settings import ROLE_OUTPUTS, Settings

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class ServingModels:
    roles: Mapping[str, str]  # role ("ctr", "ctcvr") -> repository model name
    loaded: Mapping[str, LoadedModel]  # model name -> the version being served
    errors: Mapping[str, str]  # model name -> why no version of it is served

    @property
    def ready(self) -> bool:
        return all(name in self.loaded for name in self.roles.values())

    def for_role(self, role: str) -> LoadedModel | None:
        return self.loaded.get(self.roles[role])

    def unavailable(self) -> dict[str, str]:
        """Model name -> reason, for each model a role needs that is not loaded."""
        return {
            name: self.errors.get(name, "not loaded")
            for name in dict.fromkeys(self.roles.values())
            if name not in self.loaded
        }

    def describe(self) -> list[dict[str, Any]]:
        entries = []
        for name in dict.fromkeys(self.roles.values()):
            roles = [role for role, model in self.roles.items() if model == name]
            model = self.loaded.get(name)
            if model is None:
                entries.append({"name": name, "roles": roles, "ready": False, "error": self.errors.get(name)})
            else:
                entries.append({**model.describe(), "roles": roles, "ready": True})
        return entries


def load_serving_models(settings: Settings) -> ServingModels:
    """Load the newest good version of each model a role names; a model with none is left out."""
    needs: dict[str, set[str]] = {}
    for role, name in settings.roles.items():
        needs.setdefault(name, set()).add(ROLE_OUTPUTS[role])
    loaded: dict[str, LoadedModel] = {}
    errors: dict[str, str] = {}
    for name, outputs in needs.items():
        try:
            loaded[name] = load_latest(settings.model_repository, name, settings, outputs)
        except ModelLoadError as error:
            logger.error("model %s is not served: %s", name, error)
            errors[name] = str(error)
    return ServingModels(dict(settings.roles), loaded, errors)
