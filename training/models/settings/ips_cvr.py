"""IPS-CVR's ``[model]`` settings (training/models/ips_cvr.py): ESMM's, with the propensity, its floor, the
self-normalisation and the CVR risk's weight."""

from __future__ import annotations

from dataclasses import dataclass

from training.models.settings.esmm import ESMMConfig

PROPENSITIES = ("model", "oracle")


@dataclass
class IPSCVRConfig(ESMMConfig):
    propensity_floor: float = 0.01  # pCTR is clipped below at this before 1 / pCTR (weights <= 100)
    self_normalize: bool = True  # SNIPS: divide the weighted loss by sum(o / p) instead of N
    cvr_weight: float = 1.0  # lambda_c, the weight of the CVR risk beside the CTR loss
    propensity: str = "model"  # "model": the CTR tower's pCTR; "oracle": the batch's true P(click | x, position)

    def __post_init__(self) -> None:
        super().__post_init__()
        if not 0.0 < self.propensity_floor <= 1.0:
            raise ValueError(f"propensity_floor must be in (0, 1], not {self.propensity_floor}")
        if self.cvr_weight < 0:
            raise ValueError(f"cvr_weight must be >= 0, not {self.cvr_weight}")
        if self.propensity not in PROPENSITIES:
            raise ValueError(f"propensity must be one of {PROPENSITIES}, not {self.propensity!r}")
