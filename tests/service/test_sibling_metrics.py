"""Several workers' metrics summed through their shared directory (service/sibling_metrics.py)."""

from __future__ import annotations

from pathlib import Path

from service.metrics import Metrics
from service.sibling_metrics import SiblingMetrics


def counted(successes: int, batch: int, status: int) -> Metrics:
    metrics = Metrics()
    stats = metrics.model("esmm", 1, "CPUExecutionProvider")
    for _ in range(successes):
        stats.success(0.003, 0.001)
    stats.failure("deadline")
    stats.executed(batch, 0.002)
    metrics.responses[status] += successes
    metrics.grpc_responses["OK"] += 1
    return metrics


def test_each_worker_reports_its_own_live_counters_plus_the_others_latest(tmp_path: Path) -> None:
    first, second = SiblingMetrics(tmp_path, 0), SiblingMetrics(tmp_path, 1)
    mine, theirs = counted(3, 8, 200), counted(5, 16, 200)
    second.write(theirs, {("esmm", 1): 4})
    first.write(counted(100, 1, 500), {("esmm", 1): 100})  # its own file is never read back: live counters are
    total, pending = first.summed(mine, {("esmm", 1): 2})
    stats = total.models[("esmm", 1)]
    assert (stats.successes, stats.items, stats.executions, stats.failures["deadline"]) == (8, 24, 2, 2)
    assert stats.durations.count == 8 and stats.batch_sizes.count == 2
    assert stats.by_batch_size == {8: [1, 0.002], 16: [1, 0.002]}
    assert total.responses == {200: 8} and total.grpc_responses == {"OK": 2}
    assert total.providers == {("esmm", 1): "CPUExecutionProvider"}
    assert pending == {("esmm", 1): 6}
    assert mine.models[("esmm", 1)].successes == 3  # the live counters are not changed by the sum
    assert 'ctr_inference_request_success_total{model="esmm",version="1"} 8' in total.render(pending, [("esmm", 1)])


def test_a_file_that_cannot_be_read_is_left_out_of_the_sum(tmp_path: Path) -> None:
    (tmp_path / "worker-1.json").write_text('{"metrics": ')  # as if cut short: never by write(), which renames
    total, pending = SiblingMetrics(tmp_path, 0).summed(counted(2, 4, 200), {})
    assert total.models[("esmm", 1)].successes == 2 and pending == {}
