"""True, position-free click and conversion probabilities, and the examination model.

    true_ctr = sigmoid(base_ctr + alpha * u.v + ad_bias + hour(h) + device)
    true_cvr = sigmoid(base_cvr + beta * u.w + rho * u.v - gamma * log_price_z + age + device)
    examination(k) = (1 / k) ** eta,   P(click | shown at k) = examination(k) * true_ctr

The rho term makes CVR correlated with CTR, so clicked impressions convert more often than
unclicked ones would: the sample-selection bias that ESMM-style models must undo.
All functions take index arrays that broadcast against each other (e.g. users (R, 1), ads (R, S)).
"""

from __future__ import annotations

import numpy as np

from training.world.config import WorldConfig
from training.world.population import Population


def sigmoid(x: np.ndarray) -> np.ndarray:
    return 1.0 / (1.0 + np.exp(-x))


def hour_effect(config: WorldConfig, hour: np.ndarray) -> np.ndarray:
    """Click logit shift of each hour (0..23): a cosine peaking at ``peak_hour``, mean 0 over a day."""
    phase = 2.0 * np.pi * (np.asarray(hour, dtype=np.float64) - config.peak_hour) / 24.0
    return config.hour_amplitude * np.cos(phase)


def _dot(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    return np.einsum("...d,...d->...", a, b)


def click_logit(
    population: Population,
    config: WorldConfig,
    users: np.ndarray,
    ads: np.ndarray,
    hour: np.ndarray | None = None,
) -> np.ndarray:
    users, ads = np.broadcast_arrays(np.asarray(users), np.asarray(ads))
    p = population
    logit = (
        config.base_ctr_logit
        + config.alpha * _dot(p.user_latent[users], p.ad_latent[ads])
        + p.ad_bias[ads]
        + np.asarray(config.device_ctr_logit)[p.user_device[users]]
    )
    if hour is not None:
        logit = logit + hour_effect(config, np.broadcast_to(np.asarray(hour, dtype=np.int64), logit.shape))
    return logit


def conversion_logit(population: Population, config: WorldConfig, users: np.ndarray, ads: np.ndarray) -> np.ndarray:
    users, ads = np.broadcast_arrays(np.asarray(users), np.asarray(ads))
    p = population
    u = p.user_latent[users]
    return (
        config.base_cvr_logit
        + config.beta * _dot(u, p.ad_conv_latent[ads])
        + config.rho * _dot(u, p.ad_latent[ads])
        - config.gamma * p.ad_log_price_z[ads]
        + config.age_cvr * p.user_age_z[users]
        + np.asarray(config.device_cvr_logit)[p.user_device[users]]
    )


def true_ctr(
    population: Population,
    config: WorldConfig,
    users: np.ndarray,
    ads: np.ndarray,
    hour: np.ndarray | None = None,
) -> np.ndarray:
    return sigmoid(click_logit(population, config, users, ads, hour))


def true_cvr(population: Population, config: WorldConfig, users: np.ndarray, ads: np.ndarray) -> np.ndarray:
    return sigmoid(conversion_logit(population, config, users, ads))


def examination(config: WorldConfig) -> np.ndarray:
    """(n_slots,) probability that a user examines slot k = 1..n_slots."""
    return (1.0 / np.arange(1, config.n_slots + 1)) ** config.eta
