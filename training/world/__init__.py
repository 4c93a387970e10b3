"""A seeded, deterministic simulated ad marketplace: the ground truth behind every experiment.

Users and ads with latent vectors and attributes, Zipf ad popularity, true position-free click and
conversion probabilities, a position-based examination model and logging policies that make the
logs a feedback loop (DESIGN.md, "The world simulator"). Logs follow DESIGN.md §1.
"""

from training.world.config import DEVICES, POLICIES, WorldConfig
from training.world.features import feature_spec
from training.world.logs import LOG_SCHEMA, write_logs
from training.world.world import World

__all__ = ["DEVICES", "LOG_SCHEMA", "POLICIES", "World", "WorldConfig", "feature_spec", "write_logs"]
