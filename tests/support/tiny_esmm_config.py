"""The config.toml of an esmm that `ctr train` trains on the world simulator in seconds, for the tests of
commands that train before what they test (an export, a refusal, a full disk)."""

from __future__ import annotations

TINY_ESMM = """kind = "esmm"
[model]
embedding_dim = 4
hidden = [8]
[training]
epochs = 1
[data]
days = 1
requests_per_day = 2000
heldout_requests = 500
[world]
n_users = 200
n_ads = 100
"""
