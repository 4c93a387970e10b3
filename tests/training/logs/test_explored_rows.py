"""Which rows are explored (training/logs/explored_rows.py): 0 < propensity < 1, as the auction's slice and the world's
uniform policy log them; the in-memory and the streamed trainer both carry the flag into the training tensors."""

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from common.encoder import FeatureEncoder, fit_statistics
from training.fitting.dataset import ImpressionTensors
from training.logs.column_arrays import column_array, feature_columns
from training.logs.explored_rows import EXPLORED, explored_rows
from training.logs.stream import ShardedLogs
from training.position_ctr import position_ctr
from training.world import World, WorldConfig, feature_spec, write_logs

SMALL = WorldConfig(seed=3, n_users=2_000, n_ads=1_000)


def test_a_row_is_explored_when_its_propensity_lies_strictly_between_0_and_1():
    table = pa.table({"propensity": pa.array([1.0, 0.1, None, 0.0, 0.5, 1.5], pa.float32())})
    assert explored_rows(table).tolist() == [False, True, False, False, True, False]
    assert explored_rows(pa.table({"propensity": [1, 1]})).tolist() == [False, False]  # integers: GSP's 1
    assert explored_rows(pa.table({"click": [0, 1]})) is None  # no column: nothing said of exploration
    assert explored_rows(pa.table({"propensity": ["0.1", "1"]})) is None  # not a number: not read


def test_the_world_s_uniform_policy_logs_explored_rows_and_its_ranked_policies_none():
    world = World(SMALL)
    uniform = world.simulate(days=1, requests_per_day=300, policy="uniform", seed=1)
    feedback = world.simulate(days=1, requests_per_day=300, policy="feedback", seed=1)
    assert explored_rows(uniform).all()  # 1 / candidates on every row
    assert not explored_rows(feedback).any()  # the column is there, null


def test_both_trainers_carry_the_flag_into_the_training_tensors(tmp_path):
    world = World(SMALL)
    table = world.simulate(days=1, requests_per_day=200, policy="feedback", seed=1)
    propensity = np.where(np.arange(table.num_rows) % 4 == 0, 0.1, 1.0)
    mixed = table.set_column(table.column_names.index("propensity"), "propensity", pa.array(propensity))
    spec = feature_spec(SMALL)
    encoder = FeatureEncoder(fit_statistics(spec, feature_columns(mixed, spec)))
    tensors = ImpressionTensors.from_table(mixed, encoder).tensors
    assert tensors[EXPLORED].numpy().tolist() == (propensity < 1).tolist()
    assert EXPLORED not in ImpressionTensors.from_table(mixed.drop_columns(["propensity"]), encoder).tensors
    (tmp_path / "logs").mkdir()
    pq.write_table(mixed, tmp_path / "logs" / "part-0.parquet", row_group_size=256)
    slot_ctr = position_ctr(column_array(table, "position"), column_array(table, "click"))  # as the statistics pass
    shards = ShardedLogs(tmp_path / "logs", spec)
    parts = list(shards.tensors(shards.spans(0, shards.rows), encoder, slot_ctr))
    assert len(parts) > 1  # streamed a row group at a time
    assert np.concatenate([p.tensors[EXPLORED].numpy() for p in parts]).tolist() == (propensity < 1).tolist()
    write_logs(table.drop_columns(["propensity"]), tmp_path / "plain.parquet")
    plain = ShardedLogs(tmp_path / "plain.parquet", spec)
    assert all(EXPLORED not in p.tensors for p in plain.tensors(plain.spans(0, plain.rows), encoder, slot_ctr))
