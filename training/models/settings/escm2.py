"""ESCM²'s ``[model]`` settings (training/models/escm2.py): IPS-CVR's, with the counterfactual risk's estimator,
DR's imputation and the global CTCVR risk's weight."""

from __future__ import annotations

from dataclasses import dataclass

from training.models.settings.ips_cvr import IPSCVRConfig

ESTIMATORS = ("ips", "dr")
IMPUTATIONS = ("direct", "error")


@dataclass
class ESCM2Config(IPSCVRConfig):
    estimator: str = "dr"  # the counterfactual CVR risk: "ips" (ESCM²-IPS) or "dr" (ESCM²-DR)
    ctcvr_weight: float = 1.0  # lambda_g, the weight of the global CTCVR risk
    imputation: str = "direct"  # DR's imputed conversion s: "direct" model on clicks, or "error" (the control)

    def __post_init__(self) -> None:
        super().__post_init__()
        if self.estimator not in ESTIMATORS:
            raise ValueError(f"estimator must be one of {ESTIMATORS}, not {self.estimator!r}")
        if self.ctcvr_weight < 0:
            raise ValueError(f"ctcvr_weight must be >= 0, not {self.ctcvr_weight}")
        if self.imputation not in IMPUTATIONS:
            raise ValueError(f"imputation must be one of {IMPUTATIONS}, not {self.imputation!r}")
