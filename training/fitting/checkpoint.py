"""A trained model on disk before export: weights plus everything needed to rebuild and describe it.

A checkpoint is exported by ``ctr export`` after the config may have changed and the code may have
moved on, so loading one checks it (``load``): a damaged file or one of another format, a field this
code does not know or one it needs and lacks (an older checkpoint without ``position`` published an
esmm_debiased model as position-blind) each end in one line naming the file and saying to retrain;
``check_against`` refuses one whose kind, [model] settings or the config sections it was trained under
(``trained_under``: [training], and [data] and [world] for the world's simulated logs) are no longer the
config's.
"""

from __future__ import annotations

import json
import logging
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from typing import TYPE_CHECKING, Any

import torch
from torch import nn

from common.features import FeatureSpec
from common.whole_file import written_whole
from training.models.kinds import model_config_of
from training.models.registry import build_model
from training.training_files import existing_checkpoint

logger = logging.getLogger(__name__)

if TYPE_CHECKING:
    from training.model_config import ModelConfig


@dataclass
class Checkpoint:
    name: str  # the repository model it will be exported as
    kind: str  # a key of MODEL_KINDS
    model_params: dict[str, Any]  # the config's [model] table
    spec: FeatureSpec  # fitted
    state_dict: dict[str, torch.Tensor]
    metrics: dict[str, Any] = field(default_factory=dict)  # numbers, and validation_by_epoch: one table each
    data_fingerprint: str = ""
    training: dict[str, Any] = field(default_factory=dict)  # settings, for model.json
    constants: dict[str, float] = field(default_factory=dict)  # values fixed into the exported graph
    # a retrieval model's catalog: raw item feature columns (the ids under ``catalog_id``), embedded
    # by the exported item graph into the version directory
    catalog: dict[str, list] = field(default_factory=dict)
    catalog_id: str = ""
    # model.json's ``position``: the regime its pCTR / pCTCVR hold for and the learned slot CTR ratios
    position: dict[str, Any] | None = None

    @classmethod
    def trained(
        cls,
        config: ModelConfig,
        spec: FeatureSpec,
        model: nn.Module,
        metrics: dict[str, float],
        fingerprint: str,
        training: dict[str, Any],
        **extra: Any,
    ) -> Checkpoint:
        """A model just trained under ``config``: its name, kind and ``[model]`` table, its weights, and the
        ``[training]`` settings with ``training`` added (model.json records both); ``extra`` sets the
        fields of one kind (an impression model's constants and position summary, a retrieval catalog)."""
        return cls(
            name=config.name,
            kind=config.kind,
            model_params=config.model,
            spec=spec,
            state_dict=model.state_dict(),
            metrics=metrics,
            data_fingerprint=fingerprint,
            training={**asdict(config.training), **training},
            **extra,
        )

    def build(self) -> nn.Module:
        model = build_model(self.kind, self.spec, self.model_params)
        try:
            model.load_state_dict(self.state_dict)
        except RuntimeError as error:  # torch lists every missing and unexpected tensor over many lines
            lines = [line.strip() for line in str(error).splitlines() if line.strip()]
            first = lines[1] if len(lines) > 1 else lines[0] if lines else type(error).__name__  # under its title
            raise ValueError(
                f"the weights of checkpoint {self.name!r} do not fit a model of kind {self.kind} with its [model] "
                f"settings ({first[:200]}): it comes from another version of the code; retrain it"
            ) from None
        return model.eval()

    def check_against(self, config: ModelConfig, path: Path) -> None:
        """ValueError unless this checkpoint (at ``path``) is a model of ``config`` as it is now: the same
        name, kind and [model] settings (as the kind reads them, so a default written out is no change), and
        the same sections it was trained under (``trained_under``; a checkpoint written before they were
        recorded is checked on its [model] alone)."""
        retrain = f"retrain it with `ctr train {config.name}` (or restore the config it was trained with)"
        if self.name != config.name:  # it would be published as the model it was trained as
            raise ValueError(
                f"{path} is a checkpoint of model {self.name!r}, not {config.name!r}: export it by that name"
            )
        if self.kind != config.kind:
            raise ValueError(
                f"{path} holds a model of kind {self.kind!r}, but config.toml now says kind = {config.kind!r}: "
                + retrain
            )
        try:
            trained = asdict(model_config_of(self.kind, self.model_params))
        except ValueError as error:
            raise ValueError(f"{path} was trained with settings this code refuses ({error}): {retrain}") from None
        wanted = asdict(model_config_of(config.kind, config.model))
        changed = [
            f"{key} = {json.dumps(trained[key])} in it, {json.dumps(wanted[key])} in config.toml"  # TOML's spelling
            for key in trained
            if trained[key] != wanted[key]
        ]
        if changed:
            raise ValueError(f"{path} was trained with other [model] settings ({'; '.join(changed)}): {retrain}")
        recorded = self.training.get(TRAINED_UNDER, {})
        if not recorded:  # trained by an earlier release: it exported silently
            logger.warning(
                "%s was trained before checkpoints recorded their [training], [data] and [world]: checked on its "
                "[model] alone, and its numeric features may have no training range to clip served values to; "
                "retrain it with `ctr train %s` for both",
                path,
                config.name,
            )
        now = trained_under(config, simulated="world" in recorded)
        changed = [
            f"[{section}] {key} = {json.dumps(value)} in it, {json.dumps(now[section].get(key))} in config.toml"
            for section, settings in recorded.items()
            for key, value in settings.items()
            if now[section].get(key) != value
        ]
        if changed:
            raise ValueError(f"{path} was trained under other settings ({'; '.join(changed)}): {retrain}")

    def save(self, path: Path) -> None:
        payload = dict(vars(self), spec=self.spec.to_dict())
        with written_whole(path) as temporary:  # a full disk left checkpoint.tmp behind, its error nameless
            torch.save(payload, temporary)

    @classmethod
    def load(cls, path: Path) -> Checkpoint:
        """The checkpoint ``save`` wrote at ``path``; ValueError, in one line naming it, for anything else."""
        existing_checkpoint(path)
        retrain = "retrain to write a checkpoint of this version with `ctr train`"
        try:
            payload = torch.load(path, map_location="cpu", weights_only=True)
        except Exception as error:  # torch raises whatever its unpickler met: EOFError, KeyError, OSError, ...
            raise ValueError(
                f"{path} cannot be read as a checkpoint ({_torch_reason(error)}): it is damaged or not "
                f"written by `ctr train`; {retrain}"
            ) from None
        if not isinstance(payload, dict):
            raise ValueError(f"{path} holds a {type(payload).__name__}, not a `ctr train` checkpoint; {retrain}")
        expected = {f.name for f in fields(cls)}
        unknown, missing = sorted(set(payload) - expected), sorted(expected - set(payload))
        if unknown or missing:
            said = []
            if unknown:
                said.append(f"fields {unknown} this version does not know")
            if missing:
                said.append(f"no {missing}, which this version needs")
            raise ValueError(f"{path} is a checkpoint of another version of the code ({' and '.join(said)}); {retrain}")
        try:
            payload["spec"] = FeatureSpec.from_dict(payload["spec"])
        except (ValueError, TypeError, AttributeError) as error:
            raise ValueError(f"{path} holds a feature spec this version cannot read ({error}); {retrain}") from None
        return cls(**payload)


TRAINED_UNDER = "config"  # the key of ``trained_under``'s record in a checkpoint's (and model.json's) training
# a retrieval model's settings that shape only the metrics in its model.json, not what it trains on (as
# [data]'s held-out settings are left out of an impression model's record)
QUERIES_FOR_METRICS = frozenset({"eval_queries"})
VIEW_FOR_METRICS = frozenset({"n_relevant", "hot_fraction"})


def trained_under(config: ModelConfig, simulated: bool) -> dict[str, dict[str, Any]]:
    """The config.toml sections a model is trained under, defaults filled in, as JSON holds them: [training]
    as the config gives it (before a small log's scaling, which model.json's own training settings show),
    and, for the world's ``simulated`` data, every [world] setting and what makes the data from it: the
    [data] settings of the logs, or a retrieval model's [queries] and [retrieval] view (a model trained on
    your logs owes nothing to any of them). Recorded in the checkpoint and model.json; ``ctr export``
    refuses a checkpoint whose config has since changed any of them."""
    from training.config_world import as_json, retrieval_config, world_settings
    from training.models.kinds import trains_on

    record = {"training": as_json(asdict(config.training))}
    if not simulated:
        return record
    record["world"] = world_settings(config)
    if trains_on(config.kind) == "queries":  # the held-out queries and the relevance metrics' settings aside
        queries, view = asdict(config.queries), asdict(retrieval_config(config.retrieval))
        record["queries"] = as_json({k: v for k, v in queries.items() if k not in QUERIES_FOR_METRICS})
        record["retrieval"] = as_json({k: v for k, v in view.items() if k not in VIEW_FOR_METRICS})
    else:
        record["data"] = config.data.training_logs()
    return record


def _torch_reason(error: Exception) -> str:
    """Why torch could not load a file, in a few words: the first sentence of its first line that does not
    speak of ``weights_only``. Its unpickler's message opens by advising to re-run ``torch.load`` with
    ``weights_only=False``, which runs whatever code a damaged or foreign file holds; the line said it."""
    lines = [line.strip() for line in str(error).splitlines() if line.strip()]
    reason = next((line for line in lines if "weights_only" not in line), "")
    reason = reason.split(". ")[0].removesuffix(".")
    return f"{type(error).__name__}: {reason}" if reason else type(error).__name__
