"""The scoring roles: which repository model fills which part of a ``/v1/score`` answer.

One table, read by the service (settings, loading, the score pipeline, ``/v1/models``) and by the
training side (which model a report compares against). A role is filled by the newest served version
of the model its setting names; that model must have the role's outputs.

What reads the table follows a new row: the settings (``Settings.roles``), loading and the outputs each
model must have, the position-regime and feature checks across the roles' models, ``/v1/models``, the
``models`` object of a ``/v1/score`` answer. What it does not: the numbers of an answer, ``pctr``,
``pctcvr`` and ``pcvr`` (service/score/pipeline.py ``render``, score/schemas.py ``Score``, the typed
client's ``Score``), are read from the ``ctr`` and ``ctcvr`` roles by name, since each is defined by
them (README, "What the three numbers mean"). So a role is one row here, the ``Settings`` field its
``settings_key`` names (and its line in README's settings), and its model; a role that answers a number
of its own is that number too, in those three places. Another column (a regime that must agree across
the roles' models, say) is one field of ``Role``.

A new role's model is named by its environment variable (``CTR_<SETTINGS_KEY>``): ``ctr serve`` and ``ctr
score`` have options for the two default roles only. The auction simulator prices by ``ctr`` and ``ctcvr``
and leaves others aside. Tests and the README's answer pin the two default roles (``ctr docs-check
--update`` rewrites the answer; the settings, score-route and position-regime tests name both): they
fail until the new role is written in.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Role:
    name: str  # as the /v1/score "models" object and /v1/models "roles" name it
    outputs: tuple[str, ...]  # graph outputs the filling model must have; the first is the role's score
    settings_key: str  # the Settings field (environment CTR_<KEY>) naming the repository model
    default_model: str  # the repository model that fills the role unless the settings say otherwise


ROLES: tuple[Role, ...] = (
    # debiased ESMM fills both roles: its pCTR and pCVR are fitted together, so pCTR x pCVR is calibrated
    # (docs/cvr.md, "What the service answers"); "ctr", the adversarial CTR model, with CTR_CTR_MODEL=ctr
    Role("ctr", ("pctr",), "ctr_model", "esmm"),
    Role("ctcvr", ("pctcvr",), "ctcvr_model", "esmm"),  # ESMM: entire-space click-and-convert
)
ROLE = {role.name: role for role in ROLES}
# What a role's setting takes to fill no role: a service whose every role setting says it (``CTR_CTR_MODEL=none
# CTR_CTCVR_MODEL=none``) serves its retrieval model alone (``/v1/similarity``); no model may be named so
# (common/repository.py ``is_model_name``), so the word never names a model's folder by accident
NO_MODEL = "none"


def one_model_in_every_role(model: str) -> dict[str, str]:
    """Settings (``Settings`` field -> model name) that serve ``model`` in every role, as the benches do."""
    return {role.settings_key: model for role in ROLES}


def role_variables(roles: tuple[Role, ...] = ROLES) -> list[str]:
    """Each role's environment variable (``CTR_CTR_MODEL``, ...), in table order: what a message names."""
    return [f"CTR_{role.settings_key.upper()}" for role in roles]


def role_outputs() -> list[str]:
    """Each role's score (the first of its outputs), in table order: what a model serving every role is
    loaded for by the benches."""
    return [role.outputs[0] for role in ROLES]
