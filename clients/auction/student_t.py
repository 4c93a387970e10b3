"""Student's t critical values without SciPy: the t whose two-sided probability P(|T| <= t) is ``level``
for ``df`` degrees of freedom, by bisection on the closed form of that probability for integer df
(Abramowitz & Stegun 26.7.3 and 26.7.4). With theta = atan(t / sqrt(df)):

    odd df:  A = (2 / pi) * (theta + sin(theta) * (cos(theta) + 2/3 cos^3(theta) + (2*4)/(3*5) cos^5(theta)
                 + ... up to cos^(df-2)(theta)))                   (A = 2 theta / pi for df = 1)
    even df: A = sin(theta) * (1 + 1/2 cos^2(theta) + (1*3)/(2*4) cos^4(theta) + ... up to cos^(df-2)(theta))
"""

from __future__ import annotations

import math
from functools import cache

BISECTIONS = 200  # halvings of the bracket: far past float precision


def two_sided_probability(t: float, df: int) -> float:
    """P(|T| <= t) for Student's t with ``df`` degrees of freedom (a positive integer)."""
    theta = math.atan(t / math.sqrt(df))
    cos2 = math.cos(theta) ** 2
    if df % 2:  # odd: terms cos^k, k = 1, 3, ..., df - 2, each the last times cos^2 (k - 1) / k
        term = total = math.cos(theta)
        for k in range(3, df - 1, 2):
            term *= cos2 * (k - 1) / k
            total += term
        return 2 / math.pi * (theta + (math.sin(theta) * total if df > 1 else 0.0))
    term = total = 1.0  # even: terms cos^k, k = 0, 2, ..., df - 2, each the last times cos^2 (k - 1) / k
    for k in range(2, df - 1, 2):
        term *= cos2 * (k - 1) / k
        total += term
    return math.sin(theta) * total


@cache
def critical_value(df: int, level: float = 0.95) -> float:
    """The t with P(|T| <= t) = ``level``: the half-width of a ``level`` interval of a mean, in standard
    errors, from ``df`` + 1 values (12.706 for df = 1, 2.228 for 10, 1.984 for 100; 1.960 in the limit)."""
    if df < 1 or not 0 < level < 1:
        raise ValueError(f"need df >= 1 and 0 < level < 1, not df={df}, level={level}")
    low, high = 0.0, 1.0
    while two_sided_probability(high, df) < level:  # the bracket doubled until it holds the value
        low, high = high, 2 * high
    for _ in range(BISECTIONS):
        middle = (low + high) / 2
        low, high = (middle, high) if two_sided_probability(middle, df) < level else (low, middle)
    return (low + high) / 2
