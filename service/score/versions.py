"""A ``/v1/score`` request's ``versions``: which served version of a role model scores it.

A model serving several versions (its ``version_policy``) fills the roles with its newest; an online
experiment needs the others too: the ad server assigns a user to an arm and sends the arm's version
(A/B, canary), or scores a request a second time with the other one (shadow). ``{"versions": {"esmm": 1}}``
has version 1 of ``esmm`` fill every role ``esmm`` fills (one request reads one snapshot and one version of
each model: its pctr and pcvr never come from two versions), through that version's own batcher. Only a
served version can be named: the service loads nothing for a request.
"""

from __future__ import annotations

from typing import Any

from common.encoder import whole_number
from service.http.errors import ApiError, InputError, echoed, echoed_json, echoed_key
from service.models.base import ServedModel
from service.models.snapshot import ServingModels

FIELD = "versions"
# the 404 of /v1/score in its OpenAPI document (endpoint.py): only a pinned version can be not found
PINNED_VERSION_NOT_SERVED = "A version named in `versions` is not served; the message names the served ones."


def pinned_models(models: ServingModels, versions: Any) -> ServingModels:
    """``models`` with the versions a request names filling their roles (``ServingModels.pinned``): 422 for a
    value that is not an object of model name -> version number, or a name that fills no role here; 404 for
    a version not served (naming the served ones); 422 when the versions named cannot score together (the
    role models' position regimes or feature kinds differ: ``role_conflict``)."""
    if type(versions) is not dict:
        raise InputError(422, f"{FIELD} must be an object of model name -> served version number", FIELD)
    role_models = dict.fromkeys(models.roles.values())
    chosen: dict[str, ServedModel] = {}
    for name, version in versions.items():
        if name not in role_models:
            raise InputError(
                422,
                f"model {echoed(name)} fills no role of this service; its role models are {list(role_models)}",
                f"{FIELD}.{echoed_key(name)}",
            )
        field = f"{FIELD}.{name}"
        # bool is no int here (true is not version 1); a whole-number float is the integer it is, as for a
        # categorical feature: Jackson (a double field) and RapidJSON write version 1 as 1.0
        number = version if type(version) is int else whole_number(version)
        if number is None or number < 0:
            shown = f"the string {echoed_json(version)}" if type(version) is str else echoed_json(version)
            raise InputError(422, f"{field} must be a non-negative integer version, not {shown}", field)
        served = models.versions.get(name, {})
        model = served.get(number)
        if model is None:
            raise ApiError(
                404, f"model {name!r} version {number} is not served (served versions: {sorted(served)})", field
            )
        chosen[name] = model
    view, conflict = models.pinned(chosen)
    if view.role_models is None:  # a version of a role model that scores nothing (a retrieval model's kind)
        reasons = "; ".join(f"model {name!r}: {why}" for name, why in view.unavailable().items())
        raise InputError(422, f"the versions named cannot fill the roles: {reasons}", FIELD)
    if conflict is not None:
        raise InputError(422, f"the versions named cannot score together: {conflict}", FIELD)
    return view
