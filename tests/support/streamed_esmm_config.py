"""The config.toml of the esmm that the streamed-training tests train under torchrun on 4 world shards of 4,000
rows (tests/training/fitting/test_distributed_train.py), and that `reports/torchrun_exits.py` trains again and
again to count aborts at exit (docs/scale.md, "exit")."""

from __future__ import annotations

STREAMED_ESMM = """
kind = "esmm"
[model]
embedding_dim = 6
hidden = [32, 16]
[training]
epochs = 2
batch_size = 256
learning_rate = 0.003
validation_fraction = 0.25
[world]
seed = 0
n_users = 2000
n_ads = 500
"""
