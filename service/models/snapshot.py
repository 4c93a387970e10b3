"""The models the service is serving: one immutable snapshot, swapped whole on every change.

Routes read the snapshot from ``app.state.models``; a reload (manager.py) builds a new snapshot and
swaps the reference, so a request sees one consistent set of models from start to end. The roles
(common/roles.py: ``ctr``, ``ctcvr``) are filled by the newest served version of the models the
settings name, unless a ``/v1/score`` request pins another served one (``pinned``); the retrieval model
serves ``/v1/similarity`` and is optional (the service is ready without it), unless the settings fill no role
(``CTR_CTR_MODEL=none CTR_CTCVR_MODEL=none``): a retrieval service, ready once its retrieval model is loaded, and
answering ``/v1/score`` 404 (score/pipeline.py ``role_models``). A model may serve several
versions (its version policy); ``loaded`` holds the newest and ``versions`` all of them. Each served
version has its batcher in ``batchers``.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from functools import cached_property
from typing import TYPE_CHECKING, Any

from common.roles import NO_MODEL, ROLES, role_variables
from service.models.base import ModelLoadError
from service.models.retrieval_model import RetrievalModel
from service.models.scoring_model import ScoringModel
from service.settings import Settings

if TYPE_CHECKING:
    from service.batching.batcher import Batcher
    from service.models.base import ServedModel
    from service.models.refusal import Refusal


class StartRefused(ModelLoadError):
    """The service refuses to start, said in one line (server.py drops uvicorn's copy of the traceback)."""


class RoleConflict(StartRefused):
    """The role models cannot be served together: their probabilities hold for different positions, or
    a feature one of them requires is of another kind for the other (no request could be answered)."""


class NothingWouldLoad(StartRefused):
    """A role model (a retrieval service's retrieval model) is not served at start, and nothing would load it
    later (no polling, no admin API): the process would stay not ready for good, where a supervisor restarting
    it would find the models published meanwhile (Kubernetes restarts a container that exits, never one that is
    only not ready)."""


CONFLICT = "conflict"  # the kind of a feature name two role models declare with different kinds
NO_VERSIONS = "no versions"  # how the loader's message starts when the repository has none of a model
RETRIEVAL_ROLE = "retrieval"  # how /v1/models names the retrieval model's part


@dataclass(frozen=True)
class ServingModels:
    roles: Mapping[str, str]  # role ("ctr", "ctcvr") -> repository model name
    loaded: Mapping[str, ServedModel]  # model name -> the version being served
    errors: Mapping[str, str]  # model name -> why no version of it is served
    versions: Mapping[str, Mapping[int, ServedModel]] = field(default_factory=dict)  # every served version
    batchers: Mapping[ServedModel, Batcher] = field(default_factory=dict)  # keyed by the model object
    retrieval_name: str | None = None  # the model behind /v1/similarity
    refused: Mapping[tuple[str, int], Refusal] = field(default_factory=dict)  # (name, version) -> why, files

    def __post_init__(self) -> None:
        if not self.versions and self.loaded:
            object.__setattr__(self, "versions", {name: {m.version: m} for name, m in self.loaded.items()})

    @classmethod
    def empty(cls, settings: Settings, reason: str) -> ServingModels:
        """Nothing served yet (or any more), every model for ``reason``."""
        names = [*settings.roles.values(), settings.retrieval_model]
        return cls(settings.roles, {}, dict.fromkeys(names, reason), retrieval_name=settings.retrieval_model)

    @property
    def names(self) -> list[str]:
        """Every model the settings name: the role models, then the retrieval model."""
        names = dict.fromkeys(self.roles.values())
        if self.retrieval_name is not None:
            names[self.retrieval_name] = None
        return list(names)

    def model(self, name: str, version: int | None = None) -> ServedModel | None:
        """The named version of a served model (its newest when ``version`` is None)."""
        if version is None:
            return self.loaded.get(name)
        return self.versions.get(name, {}).get(version)

    def batcher(self, model: ServedModel) -> Batcher | None:
        return self.batchers.get(model)

    @property
    def pending(self) -> dict[tuple[str, int], int]:
        """(name, version) -> the requests waiting in or running through its batcher."""
        return {(model.name, model.version): batcher.pending_requests for model, batcher in self.batchers.items()}

    @property
    def served(self) -> list[tuple[str, int]]:
        """Every (name, version) served."""
        return [(name, version) for name, by_version in self.versions.items() for version in by_version]

    @property
    def required(self) -> list[str]:
        """The models the service is not ready without: the role models, or a retrieval service's (no roles) its
        retrieval model."""
        return list(dict.fromkeys(self.roles.values())) if self.roles else [self.retrieval_name or ""]

    @property
    def ready(self) -> bool:
        if not self.roles:
            return self.retrieval is not None
        return all(isinstance(self.loaded.get(name), ScoringModel) for name in self.roles.values())

    def for_role(self, role: str) -> ScoringModel | None:
        model = self.loaded.get(self.roles[role])
        return model if isinstance(model, ScoringModel) else None

    @cached_property
    def role_models(self) -> dict[str, ScoringModel] | None:
        """Role -> the model filling it, in ROLES order; None unless every role is filled (never, in a retrieval
        service: the settings name no role)."""
        models = {role.name: self.for_role(role.name) for role in ROLES if role.name in self.roles}
        return None if not models or any(m is None for m in models.values()) else models  # type: ignore[return-value]

    def pinned(self, chosen: Mapping[str, ServedModel]) -> tuple[ServingModels, str | None]:
        """This snapshot with each of ``chosen`` (model name -> one of its served versions: a request's
        ``versions``, score/versions.py) filling that model's roles, and why those role models cannot be
        combined (``role_conflict``) or None. The same batchers serve it (every served version has one).
        Made once for each combination asked for and kept with this snapshot (a reload makes a new one, so
        at most one per combination of served versions), so that a pinned request costs a lookup, not the
        role models' feature kinds and conflict worked out again."""
        key = tuple(sorted((name, model.version) for name, model in chosen.items()))
        found = self._pinned.get(key)
        if found is None:
            view = replace(self, loaded={**self.loaded, **chosen})
            found = self._pinned[key] = (view, view.role_conflict())
        return found

    @cached_property
    def _pinned(self) -> dict[tuple[tuple[str, int], ...], tuple[ServingModels, str | None]]:
        return {}

    @cached_property
    def role_feature_kinds(self) -> dict[str, str]:
        """Feature name -> the kind of value the role models take for it (``CONFLICT``: no value suits
        them all); computed once per snapshot, since every /v1/score request checks its values against it."""
        kinds: dict[str, str] = {}
        for model in dict.fromkeys(m for m in map(self.for_role, self.roles) if m is not None):
            for name, kind in model.feature_kinds.items():
                kinds[name] = kind if kinds.get(name, kind) == kind else CONFLICT
        return kinds

    def role_conflict(self) -> str | None:
        """Why the role models cannot be combined, or None; checked before a snapshot is served, across
        every role of the table (common/roles.py: a third role's model was combined unchecked). Their
        served probabilities hold for different positions (model.json ``position.regime``), or a feature
        one requires is categorical for one and numeric for another: only null suits both, and a required
        feature cannot be null, so every request would be refused (the service said it was ready, and
        answered each request 422)."""
        if self.role_models is None:
            return None
        filled = list(self.role_models.items())
        (first_role, first), *others = filled
        for role, model in others:
            if model.manifest.regime != first.manifest.regime:
                settings = " and ".join(role_variables(ROLES))
                return (
                    f"position regimes differ: {first_role} model {first.name!r} version {first.version} serves "
                    f"{first.manifest.regime!r}, {role} model {model.name!r} version {model.version} serves "
                    f"{model.manifest.regime!r}; pctr, pctcvr and pcvr must hold for the same slot (model.json "
                    f"position.regime): serve one model in every role ({settings} the same), pair position-blind "
                    "models (kind esmm, or a version exported before position regimes existed) with each other, "
                    "or train the position-blind one as a slot-1 kind (esmm_debiased)"
                )
        required = {f.name for _, model in filled for f in model.required_features}
        clashing = sorted(
            name for name, kind in self.role_feature_kinds.items() if kind == CONFLICT and name in required
        )
        if clashing:
            name = clashing[0]
            takers = " and ".join(
                f"{model.feature_kinds[name]} for {role} model {model.name!r} version {model.version}"
                for role, model in filled
                if name in model.feature_kinds
            )
            return (
                f"feature {name!r} is {takers}, and required: no request could be answered (features of both "
                f"kinds: {clashing}); serve role models whose feature specs agree"
            )
        return None

    @property
    def retrieval(self) -> RetrievalModel | None:
        model = self.loaded.get(self.retrieval_name) if self.retrieval_name is not None else None
        return model if isinstance(model, RetrievalModel) else None

    def scores_nothing(self) -> str:
        """Why a retrieval service (no roles) answers no score: its ``/v1/score`` 404's message."""
        variables = " and ".join(role_variables(ROLES))
        return (
            f"/v1/score is not served here: {variables} are {NO_MODEL}, so this service fills no scoring role and "
            f"serves its retrieval model {self.retrieval_name!r} alone (/v1/similarity); send scoring requests to a "
            "service with role models"
        )

    def retrieval_unavailable(self) -> str:
        """Why ``/v1/similarity`` cannot answer (its 503's reason), or "" when it can."""
        name = self.retrieval_name
        model = self.loaded.get(name) if name is not None else None
        if isinstance(model, RetrievalModel):
            return ""
        if model is None:
            return f"no retrieval model {name!r}: {self.errors.get(name, 'not loaded') if name else 'none named'}"
        return (
            f"model {name!r} version {model.version} is of kind {model.kind!r}, not a retrieval model (two towers "
            "and similarity constants): CTR_RETRIEVAL_MODEL names the model behind /v1/similarity"
        )

    def unavailable(self) -> dict[str, str]:
        """Model name -> reason, for each model a role needs that is not loaded, or is loaded and scores
        nothing (a retrieval model named for a scoring role: the reason was empty); in a retrieval service (no
        roles), its retrieval model when it cannot answer."""
        if not self.roles:
            name = self.retrieval_name or ""
            model = self.loaded.get(name)
            if model is None:
                return {name: self.errors.get(name, "not loaded")}
            return {} if self.retrieval is not None else {name: self.retrieval_unavailable()}
        reasons = {}
        for name in dict.fromkeys(self.roles.values()):
            model = self.loaded.get(name)
            if model is None:
                reasons[name] = self.errors.get(name, "not loaded")
            elif not isinstance(model, ScoringModel):
                roles = [role for role, named in self.roles.items() if named == name]
                answers = f"of kind {model.kind!r}, which answers /v1/similarity"
                reasons[name] = f"{answers}, it cannot fill the role(s) {roles}"
        return reasons

    def describe(self) -> list[dict[str, Any]]:
        """The ``/v1/models`` entries: each model a role names, then the retrieval model (when the
        repository has versions of it)."""
        entries = []
        for name in self.names:
            roles = [role for role, model in self.roles.items() if model == name]
            model = self.loaded.get(name)
            if name == self.retrieval_name and (model is None or isinstance(model, RetrievalModel)):
                roles.append(RETRIEVAL_ROLE)
            optional = name == self.retrieval_name and name not in self.roles.values() and bool(self.roles)
            if model is None and optional and self.errors.get(name, "").startswith(NO_VERSIONS):
                continue  # optional, and not in the repository: nothing to say
            if model is None:
                entries.append({"name": name, "roles": roles, "ready": False, "error": self.errors.get(name)})
            elif not roles:  # named for retrieval only, and no retrieval model
                entries.append(
                    {
                        **model.describe(),
                        "roles": [RETRIEVAL_ROLE],
                        "ready": False,
                        "error": self.retrieval_unavailable(),
                    }
                )
            else:
                served = dict(sorted(self.versions.get(name, {model.version: model}).items()))
                sha256 = {str(version): each.manifest.onnx_sha256 for version, each in served.items()}
                entries.append(
                    {
                        **model.describe(),
                        "roles": roles,
                        "ready": True,
                        "versions": list(served),
                        "version_sha256": sha256,
                    }
                )
        return entries


def required_outputs(roles: Mapping[str, str]) -> dict[str, set[str]]:
    """Model name -> the outputs its roles need (common/roles.py), for each model a role names."""
    outputs = {role.name: role.outputs for role in ROLES}
    needs: dict[str, set[str]] = {}
    for role, name in roles.items():
        needs.setdefault(name, set()).update(outputs.get(role, ()))
    return needs
