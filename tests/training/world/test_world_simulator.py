"""The world simulator: determinism, log schema, labels, examination, policies, Zipf, truth."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from common.features import FeatureSpec
from training.world import LOG_SCHEMA, World, WorldConfig, feature_spec, write_logs
from training.world.truth import hour_effect

SMALL = WorldConfig(seed=3, n_users=2_000, n_ads=1_000)
DAYS, REQUESTS = 3, 4_000


@pytest.fixture(scope="module")
def world() -> World:
    return World(SMALL)


@pytest.fixture(scope="module")
def logs(world: World) -> dict[str, pa.Table]:
    return {
        policy: world.simulate(days=DAYS, requests_per_day=REQUESTS, policy=policy, seed=1)
        for policy in ("feedback", "popularity", "uniform")
    }


def column(table: pa.Table, name: str) -> np.ndarray:
    return table[name].to_numpy()


def by_position(table: pa.Table, name: str) -> np.ndarray:
    position = column(table, "position")
    values = column(table, name).astype(np.float64)
    return np.array([values[position == k].mean() for k in range(1, SMALL.n_slots + 1)])


# -- determinism ------------------------------------------------------------------------------


def test_same_seed_gives_identical_tables(world: World, logs: dict[str, pa.Table]) -> None:
    again = World(SMALL).simulate(days=DAYS, requests_per_day=REQUESTS, policy="feedback", seed=1)
    assert again.equals(logs["feedback"])


def test_different_seeds_give_different_tables(world: World) -> None:
    a = world.simulate(days=1, requests_per_day=500, policy="popularity", seed=1)
    b = world.simulate(days=1, requests_per_day=500, policy="popularity", seed=2)
    c = World(WorldConfig(seed=4, n_users=2_000, n_ads=1_000)).simulate(
        days=1, requests_per_day=500, policy="popularity", seed=1
    )
    assert not a.equals(b)
    assert not a.equals(c)


def test_simulate_seed_defaults_to_config_seed(world: World) -> None:
    default = world.simulate(days=1, requests_per_day=300, policy="uniform")
    explicit = world.simulate(days=1, requests_per_day=300, policy="uniform", seed=SMALL.seed)
    assert default.equals(explicit)


def test_policies_share_the_same_traffic(logs: dict[str, pa.Table]) -> None:
    users = {policy: column(table, "user_idx") for policy, table in logs.items()}
    assert np.array_equal(users["feedback"], users["uniform"])
    assert np.array_equal(users["popularity"], users["uniform"])


# -- schema -------------------------------------------------------------------------------------


def test_schema_and_size(logs: dict[str, pa.Table]) -> None:
    for table in logs.values():
        assert table.schema.equals(LOG_SCHEMA)
        assert table.num_rows == DAYS * REQUESTS * SMALL.n_slots
        assert table.column_names[:2] == ["request_id", "ts"]


def test_request_ids_are_unique_per_request_and_ts_increase(logs: dict[str, pa.Table]) -> None:
    table = logs["feedback"]
    ids = table["request_id"].to_pylist()
    assert len(set(ids)) == DAYS * REQUESTS
    assert ids[0] == "d0-r0" and ids[-1] == f"d{DAYS - 1}-r{REQUESTS - 1}"
    ts = column(table, "ts")
    assert np.all(np.diff(ts) >= 0)
    day = (ts - SMALL.start_ts) // 86_400
    assert np.array_equal(np.unique(day), np.arange(DAYS))


def test_positions_and_string_features(world: World, logs: dict[str, pa.Table]) -> None:
    table = logs["popularity"]
    position = column(table, "position").reshape(-1, SMALL.n_slots)
    assert np.all(position == np.arange(1, SMALL.n_slots + 1))
    ads = column(table, "ad_idx").reshape(-1, SMALL.n_slots)
    assert all(len(set(row)) == SMALL.n_slots for row in ads[:200])  # distinct ads per request
    user_idx, ad_idx = column(table, "user_idx"), column(table, "ad_idx")
    assert table["user_id"].to_pylist()[:50] == [f"u{i}" for i in user_idx[:50]]
    assert table["ad_id"].to_pylist()[:50] == [f"a{i}" for i in ad_idx[:50]]
    assert set(table["device"].to_pylist()) <= {"mobile", "desktop", "tablet"}
    assert set(table["hour"].to_pylist()) <= {str(h) for h in range(24)}
    assert np.all(column(table, "ad_price") > 0)
    quality = column(table, "ad_quality")
    assert np.all((quality >= 0) & (quality <= 1))


# -- labels and examination ---------------------------------------------------------------------


def test_conversion_only_when_clicked_and_potential_everywhere(logs: dict[str, pa.Table]) -> None:
    for table in logs.values():
        click, conversion = column(table, "click"), column(table, "conversion")
        potential = column(table, "conversion_potential")
        assert set(np.unique(click)) <= {0, 1}
        assert np.array_equal(conversion, click * potential)
        assert potential[click == 0].sum() > 0  # z is drawn for unclicked impressions too
        assert abs(potential.mean() - column(table, "true_cvr").mean()) < 0.01


def test_examination_is_inverse_position_power(world: World, logs: dict[str, pa.Table]) -> None:
    table = logs["uniform"]
    expected = (1.0 / column(table, "position")) ** SMALL.eta
    np.testing.assert_allclose(column(table, "examination"), expected, rtol=1e-6)
    eta2 = World(WorldConfig(seed=3, n_users=100, n_ads=100, eta=2.0))
    np.testing.assert_allclose(eta2.examination(), 1.0 / np.arange(1, 6) ** 2)


def test_observed_ctr_decreases_with_position_under_feedback(logs: dict[str, pa.Table]) -> None:
    ctr = by_position(logs["feedback"], "click")
    assert np.all(np.diff(ctr) < 0), ctr


def test_uniform_policy_is_position_free_and_feedback_is_not(logs: dict[str, pa.Table]) -> None:
    uniform = by_position(logs["uniform"], "true_ctr")
    assert uniform.max() - uniform.min() < 0.1 * uniform.mean(), uniform
    feedback = by_position(logs["feedback"], "true_ctr")
    assert feedback[0] > 1.1 * feedback[-1], feedback
    propensity = column(logs["uniform"], "propensity")
    np.testing.assert_allclose(propensity, 1.0 / SMALL.n_candidates)
    assert logs["feedback"]["propensity"].null_count == logs["feedback"].num_rows


# -- population and truth -----------------------------------------------------------------------


def test_zipf_head_takes_a_large_share_of_impressions(logs: dict[str, pa.Table]) -> None:
    counts = np.bincount(column(logs["uniform"], "ad_idx"), minlength=SMALL.n_ads)
    top = np.sort(counts)[::-1][: SMALL.n_ads // 100]
    assert top.sum() / counts.sum() > 0.2  # 1% of the ads, over 20% of impressions (about 0.3 here)
    assert np.count_nonzero(counts) > SMALL.n_ads // 2  # and a long tail still gets shown


def test_ctr_and_cvr_are_correlated_but_distinct(logs: dict[str, pa.Table]) -> None:
    # Measured on this world (uniform): corr about 0.5; true CVR 0.18 clicked vs 0.12 unclicked.
    table = logs["uniform"]
    ctr, cvr, click = column(table, "true_ctr"), column(table, "true_cvr"), column(table, "click")
    corr = np.corrcoef(ctr, cvr)[0, 1]
    assert 0.2 < corr < 0.95, corr
    assert 0.03 < ctr.mean() < 0.15 and 0.05 < cvr.mean() < 0.2
    clicked, unclicked = cvr[click == 1].mean(), cvr[click == 0].mean()
    assert clicked > unclicked + 0.02, (clicked, unclicked)


def test_true_probabilities_match_the_log(world: World, logs: dict[str, pa.Table]) -> None:
    table = logs["feedback"].slice(0, 1_000)
    users, ads = table["user_idx"], table["ad_idx"]
    hours = np.array(table["hour"].to_pylist(), dtype=np.int64)
    np.testing.assert_allclose(world.true_ctr(users, ads, hours), column(table, "true_ctr"), rtol=1e-5)
    np.testing.assert_allclose(world.true_ctr(users, ads, table["hour"]), column(table, "true_ctr"), rtol=1e-5)
    np.testing.assert_allclose(world.true_cvr(users, ads), column(table, "true_cvr"), rtol=1e-5)
    grid = world.true_ctr(np.arange(10)[:, None], np.arange(20)[None, :])
    assert grid.shape == (10, 20) and np.all((grid > 0) & (grid < 1))
    with pytest.raises(ValueError, match="ad indices"):
        world.true_cvr([0], [SMALL.n_ads])


def test_invalid_arguments_are_rejected(world: World) -> None:
    with pytest.raises(ValueError, match="policy"):
        world.simulate(days=1, requests_per_day=10, policy="random")
    with pytest.raises(ValueError, match="n_slots"):
        WorldConfig(n_slots=30, n_candidates=20)


# -- requests, spec, parquet --------------------------------------------------------------------


def test_sample_request_matches_feature_spec(world: World) -> None:
    spec = feature_spec(SMALL)
    body = world.sample_request(n_candidates=10, seed=0)
    assert set(body) == {"context", "candidates"}
    context_names = {f.name for f in spec.features if f.side == "context"}
    candidate_names = {f.name for f in spec.features if f.side == "candidate"}
    assert set(body["context"]) == context_names
    assert len(body["candidates"]) == 10
    assert all(set(c) == candidate_names for c in body["candidates"])
    assert len({c["ad_id"] for c in body["candidates"]}) == 10
    for values in [body["context"], *body["candidates"]]:
        for name, value in values.items():
            expected = str if spec.by_name[name].kind == "categorical" else float
            assert type(value) is expected, (name, value)
    assert body == world.sample_request(n_candidates=10, seed=0)
    assert body != world.sample_request(n_candidates=10, seed=1)


def test_feature_spec_names_log_columns(logs: dict[str, pa.Table]) -> None:
    spec = feature_spec()
    assert isinstance(spec, FeatureSpec) and len(spec.features) == 10
    assert {f.name for f in spec.features} <= set(logs["feedback"].column_names)
    by_name = spec.by_name
    assert by_name["user_id"].required and by_name["ad_id"].required
    assert by_name["user_id"].buckets >= 2 * WorldConfig().n_users
    assert not by_name["hour"].required and not by_name["device"].required
    assert FeatureSpec.from_dict(spec.to_dict()) == spec


def test_write_logs_round_trip(tmp_path, logs: dict[str, pa.Table]) -> None:
    table = logs["uniform"].slice(0, 5_000)
    path = write_logs(table, tmp_path / "sub" / "logs.parquet")
    assert pq.read_table(path).equals(table)
    assert [p.name for p in path.parent.iterdir()] == ["logs.parquet"]  # no temporary file left


def test_write_logs_writes_where_the_path_says_whatever_it_holds(tmp_path, logs, monkeypatch) -> None:
    """pyarrow reads a path string itself: a "~/x" went to $HOME as the temporary file, which the rename,
    reading the path as Python does, then did not find, leaving it there."""
    home, work = tmp_path / "home", tmp_path / "work"
    home.mkdir()
    work.mkdir()
    monkeypatch.setenv("HOME", str(home))
    monkeypatch.chdir(work)
    path = write_logs(logs["uniform"].slice(0, 10), "~/x.parquet")
    assert path == Path("~/x.parquet") and pq.read_table(work / "~" / "x.parquet").num_rows == 10
    assert list(home.iterdir()) == []


def test_clicks_follow_examination_times_the_true_ctr(logs: dict[str, pa.Table]) -> None:
    """P(click | shown at k) = examination(k) * true_ctr: per slot of the uniform log, the clicks counted are the
    sum of those products over its impressions (a click drawn on true_ctr alone, the position dropped, is what a
    debiased model's ground truth would then lack: every slot clicked as slot 1)."""
    table = logs["uniform"]
    expected = by_position(table, "examination") * by_position(table, "true_ctr")
    ratio = by_position(table, "click") / expected
    np.testing.assert_allclose(ratio, 1.0, rtol=0.25)


@pytest.mark.parametrize("peak_hour", [20, 3])
def test_the_hour_effect_peaks_at_the_peak_hour_and_averages_zero_over_a_day(peak_hour: int) -> None:
    config = WorldConfig(peak_hour=peak_hour, hour_amplitude=0.15)
    effect = hour_effect(config, np.arange(24))
    assert int(np.argmax(effect)) == peak_hour and effect[peak_hour] == pytest.approx(0.15)
    assert int(np.argmin(effect)) == (peak_hour + 12) % 24
    assert effect.mean() == pytest.approx(0.0, abs=1e-12)
