"""Several workers' metrics summed through their shared directory (service/sibling_metrics.py)."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from service.metrics import Metrics, run_output_sums
from service.sibling_metrics import SiblingMetrics

INFO = {"provider": "CPUExecutionProvider", "sha256": "5ab1e"}  # a version's ctr_model_info labels


def counted(successes: int, batch: int, status: int) -> Metrics:
    metrics = Metrics()
    stats = metrics.model("esmm", 1, INFO)
    for _ in range(successes):
        stats.success(0.003, 0.001)
    stats.failure("deadline")
    stats.executed(
        batch, 0.002, run_output_sums({"pctr": np.full(batch, 0.25, np.float32), "embedding": np.ones(batch)})
    )
    stats.clipped["ad_price"] += successes
    metrics.responses[status] += successes
    metrics.grpc_responses["OK"] += 1
    return metrics


def test_each_worker_reports_its_own_live_counters_plus_the_others_latest(tmp_path: Path) -> None:
    first, second = SiblingMetrics(tmp_path, 0), SiblingMetrics(tmp_path, 1)
    mine, theirs = counted(3, 8, 200), counted(5, 16, 200)
    second.write(theirs, {("esmm", 1): 4})
    first.write(counted(100, 1, 500), {("esmm", 1): 100})  # its own file is never read back: live counters are
    total, pending, process = first.summed(mine, {("esmm", 1): 2})
    stats = total.models[("esmm", 1)]
    assert (stats.successes, stats.items, stats.executions, stats.failures["deadline"]) == (8, 24, 2, 2)
    assert stats.durations.count == 8 and stats.batch_sizes.count == 2
    assert stats.by_batch_size == {8: [1, 0.002], 16: [1, 0.002]}
    assert total.responses == {200: 8} and total.grpc_responses == {"OK": 2}
    assert total.info == {("esmm", 1): INFO}
    assert pending == {("esmm", 1): 6}
    assert mine.models[("esmm", 1)].successes == 3  # the live counters are not changed by the sum
    text = total.render(pending, [("esmm", 1)], process)
    assert 'ctr_inference_request_success_total{model="esmm",version="1"} 8' in text
    assert 'ctr_model_info{model="esmm",version="1",provider="CPUExecutionProvider",sha256="5ab1e"} 1' in text
    assert 'ctr_feature_values_clipped_total{model="esmm",version="1",feature="ad_price"} 8' in text
    # the probabilities served, summed over both workers' items (an embedding is no probability: not summed)
    assert stats.output_sums == {"pctr": 0.25 * 24}
    assert 'ctr_inference_output_sum_total{model="esmm",version="1",output="pctr"} 6.0' in text
    assert process["cpu_seconds"] > 0 and "process_cpu_seconds_total" in text  # both workers' (here, one process)


def test_no_counter_goes_down_between_scrapes_answered_by_different_workers(tmp_path: Path) -> None:
    """Each worker's file is written every second; between two writes the live counters run ahead of it.
    A scrape answered by worker 0 (its live count plus worker 1's file), then one answered by worker 1
    (its live count plus worker 0's file): the second read worker 0's count from before the first."""
    first, second = SiblingMetrics(tmp_path, 0), SiblingMetrics(tmp_path, 1)
    mine, theirs = counted(1, 1, 200), counted(1, 1, 200)
    first.write(mine, {})
    second.write(theirs, {})  # the periodic writes; then both count on
    for _ in range(50):
        mine.model("esmm", 1).success(0.003, 0.001)
    answered_by_first = first.summed(mine, {})[0].models[("esmm", 1)].successes
    answered_by_second = second.summed(theirs, {})[0].models[("esmm", 1)].successes
    assert answered_by_first == 52 and answered_by_second == 52  # 2 before: worker 0's stale file


def test_a_file_that_cannot_be_read_is_left_out_of_the_sum(tmp_path: Path) -> None:
    (tmp_path / "worker-1.json").write_text('{"metrics": ')  # as if cut short: never by write(), which renames
    total, pending, _ = SiblingMetrics(tmp_path, 0).summed(counted(2, 4, 200), {})
    assert total.models[("esmm", 1)].successes == 2 and pending == {}


def test_what_a_process_holds_is_rendered_whole_and_reads_nothing_once_it_stopped() -> None:
    """The gauges printed with ``:g`` lost digits past a million (16 MiB read 1.67772e+07); a stopped
    worker's last figures stayed in the others' sums until the service exited."""
    from service.http.holdings import Holdings, lines
    from service.http.overload import BodyBudget

    budget = BodyBudget(16 * 1024 * 1024)
    budget.used = 16 * 1024 * 1024
    holdings = Holdings(budget)
    holdings.connections = {object() for _ in range(3)}
    text = "\n".join(lines(holdings.figures(), "ctr"))
    assert "ctr_http_body_bytes_in_flight 16777216.0" in text and "ctr_http_open_connections 3.0" in text
    holdings.release()
    assert holdings.figures() == {"open_connections": 0, "body_bytes_in_flight": 0, "bodies_waiting": 0}


def test_histogram_lines_write_each_bound_as_a_float_and_the_sum_in_full() -> None:
    """Batch sizes were written le="1" beside durations' le="0.0005": Prometheus 3 stores le as a float, so
    a query for le="1" found nothing; a sum past 1e9 was written to 9 digits, moving in steps of 10."""
    from service.metrics import BATCH_SIZE_BUCKETS, Histogram

    sizes = Histogram(BATCH_SIZE_BUCKETS)
    sizes.observe(1)
    sizes.add([[0] * (len(BATCH_SIZE_BUCKETS) + 1), 1_234_567_890.0, 0])
    lines = list(sizes.lines("ctr_inference_batch_size", 'model="esmm",version="1"'))
    assert lines[0] == 'ctr_inference_batch_size_bucket{model="esmm",version="1",le="1.0"} 1'
    assert lines[-2] == 'ctr_inference_batch_size_sum{model="esmm",version="1"} 1234567891.0'


def test_a_version_one_worker_has_forgotten_leaves_the_sum_at_once(tmp_path: Path) -> None:
    """Each worker forgets a version no longer served once its own batcher has drained: the sum then fell to
    the other workers' part for up to a second (1000, then 300, then gone), a counter reset to Prometheus,
    which counted those 300 again as new. Now the version leaves the sum as soon as one worker has forgotten
    it, and comes back (from what each counts anew) once served again."""
    first, second = SiblingMetrics(tmp_path, 0), SiblingMetrics(tmp_path, 1)
    mine, theirs = counted(700, 1, 200), counted(300, 1, 200)
    second.write(theirs, {})
    assert first.summed(mine, {})[0].models[("esmm", 1)].successes == 1000
    mine.forget(("esmm", 1))  # the first worker's batcher has drained; the second's file still counts it
    assert ("esmm", 1) not in first.summed(mine, {})[0].models
    total, pending, process = second.summed(theirs, {})  # the second worker, reading the first's file
    assert ("esmm", 1) not in total.models
    assert "ctr_model_info" not in total.render(pending, [("esmm", 1)], process).split("# TYPE ctr_model_info")[1]
    theirs.forget(("esmm", 1))
    second.write(theirs, {})
    assert ("esmm", 1) not in first.summed(mine, {})[0].models
    for metrics in (mine, theirs):  # served again (a rollback): from 0, in both (as models/manager.py does)
        metrics.restart(("esmm", 1))
        metrics.model("esmm", 1, INFO).success(0.003, 0.001)
    second.write(theirs, {})
    assert first.summed(mine, {})[0].models[("esmm", 1)].successes == 2


def test_the_polling_worker_says_whether_polling_fails_for_the_sum(tmp_path: Path) -> None:
    """Only the worker that polls the repository knows; the others have no series of their own to add."""
    first, second = SiblingMetrics(tmp_path, 0), SiblingMetrics(tmp_path, 1)
    polling = Metrics()
    polling.polls_failing.update({"esmm": True, "esam": False})
    second.write(polling, {})
    total, pending, process = first.summed(Metrics(), {})
    text = total.render(pending, [], process)
    assert 'ctr_model_poll_failing{model="esam"} 0' in text and 'ctr_model_poll_failing{model="esmm"} 1' in text
