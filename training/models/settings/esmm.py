"""ESMM's ``[model]`` settings (training/models/esmm.py): the towers' sizes, a shared or per-tower embedding,
the CTR tower's position bypass and the user-ad interaction."""

from __future__ import annotations

from dataclasses import dataclass

from training.models.settings.adversarial_ctr import BYPASS_STARTS
from training.models.settings.towers import TowersConfig


@dataclass
class ESMMConfig(TowersConfig):
    share_embedding: bool = True  # False: ESMM-NS, one embedding table per tower
    position_bypass: bool = False  # True: the CTR tower's position bypass; pCTR / pCTCVR served for slot 1
    bypass_units: int = 1  # the bypass's hidden units (Moore et al.: 1)
    interaction: bool = False  # True: each tower's logit adds the user-ad embedding product (interaction.py)
    bypass_start: str = "drawn"  # the bypass's start: "drawn" (random weights), "log" (the slot CTRs) or "explored"

    def __post_init__(self) -> None:
        super().__post_init__()
        if self.bypass_units < 1:
            raise ValueError(f"bypass_units must be >= 1, not {self.bypass_units}")
        if self.bypass_start not in BYPASS_STARTS:
            raise ValueError(f"bypass_start must be one of {list(BYPASS_STARTS)}, not {self.bypass_start!r}")
        # the bypass's settings without the bypass were read and ignored: trained as if never written
        if not self.position_bypass:
            written = [f"bypass_start = {self.bypass_start!r}"] * (self.bypass_start != "drawn")
            written += [f"bypass_units = {self.bypass_units}"] * (self.bypass_units != 1)
            if written:
                raise ValueError(f"{', '.join(written)} set without position_bypass = true: there is no bypass to set")
