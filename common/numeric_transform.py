"""A numeric feature's transform: what its raw values become before they are standardised.

Counts (clicks of a user, views of an ad, Criteo's I1-I13) are mostly 0-10 with a tail to 10^5: standardised
as they are, the tail sets the std and almost every row lands in a sliver near the mean, which the network
can hardly tell apart. ``transform = "log1p"`` on a numeric feature (opt-in, in the spec) standardises
``log(1 + x)`` instead. The feature's fitted ``mean``, ``std``, ``low`` and ``high`` are then of the
transformed values, and the encoder (common/encoder.py, shared by the trainer and the service) applies it, so
training and serving cannot differ. ``log1p`` takes counts: values from 0 up (a negative count is a logging
mistake, not one to fold into the model silently), refused below in a log as in a request.
"""

from __future__ import annotations

from typing import Any

import numpy as np

LOG1P = "log1p"
# transform -> the smallest value it takes (its domain is [smallest, +inf))
DOMAIN_LOW = {LOG1P: 0.0}


def outside_domain(transform: str) -> str:
    """Why a value is refused for a feature with ``transform`` (FeatureError's reason, a 422's words)."""
    return f'must be at least {DOMAIN_LOW[transform]:g} (transform = "{transform}" takes counts)'


def in_domain(transform: str, values: Any) -> Any:
    """Where ``values`` (a float, or a float64 array without NaN) are ones ``transform`` takes."""
    return values >= DOMAIN_LOW[transform]


def transformed(transform: str | None, values: Any) -> Any:
    """``values`` (a float or a float64 array, in the domain) as the feature's transform makes them; as they are
    for a feature without one. NaN stays NaN."""
    if transform is None:
        return values
    return np.log1p(values)
