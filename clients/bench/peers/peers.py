"""The servers ``ctr bench peers`` runs: name -> (the module run as ``python -m MODULE --port N``, the
distribution it needs); "service" is ours. A module of its own, so that the command line names them
(``--peers``, its help and its check) without importing the runner and NumPy with it."""

from __future__ import annotations

PEERS: dict[str, tuple[str, str]] = {
    "service": ("service", "debiased-ctr"),
    "ray_serve": ("clients.bench.peers.ray_app", "ray"),
    "bentoml": ("clients.bench.peers.bentoml_app", "bentoml"),
    "litserve": ("clients.bench.peers.litserve_app", "litserve"),
}
