"""How often the two-process training command fails at its exit (docs/scale.md, "exit").

Runs ``ctr train esmm --nproc 2 --export`` on the tiny world of tests/training/fitting/test_distributed_train.py
(4 shards of 4,000 rows; its config tests/support/streamed_esmm_config.py) ``--runs`` times, each into a fresh
repository, and counts the runs that exited non-zero or printed "terminate called"; each failing run's stderr is
kept beside ``--out``.

    PYTHONPATH=. python reports/torchrun_exits.py --runs 70 --out reports/torchrun_exits.json
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from tests.support.streamed_esmm_config import STREAMED_ESMM
from training.world import World, WorldConfig
from training.world.shards import write_shards


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--runs", type=int, default=70)
    parser.add_argument("--out", type=Path, default=Path("reports/torchrun_exits.json"))
    arguments = parser.parse_args()
    failures = []
    started = time.monotonic()
    with tempfile.TemporaryDirectory() as directory:
        root = Path(directory)
        world = World(WorldConfig(seed=0, n_users=2000, n_ads=500))
        write_shards(world, root / "shards", shards=4, rows_per_shard=4000, row_group_rows=1000)
        for run in range(arguments.runs):
            models = root / f"models{run}"
            (models / "esmm").mkdir(parents=True)
            (models / "esmm" / "config.toml").write_text(STREAMED_ESMM, encoding="utf-8")
            command = [sys.executable, "-m", "cli.main", "train", "esmm", "--repository", str(models),
                       "--logs", str(root / "shards" / "*.parquet"), "--work-dir", str(root / f"work{run}"),
                       "--nproc", "2", "--export", "--no-progress"]  # fmt: skip
            result = subprocess.run(command, capture_output=True, text=True, timeout=600, check=False)
            if result.returncode != 0 or "terminate called" in result.stderr:
                log = arguments.out.with_name(f"{arguments.out.stem}_run{run}.stderr")
                log.write_text(result.stderr, encoding="utf-8")
                failures.append({"run": run, "exit_code": result.returncode, "stderr": str(log)})
            sys.stdout.write(f"run {run}: exit {result.returncode}\n")
            sys.stdout.flush()
    report = {
        "command": f"PYTHONPATH=. python reports/torchrun_exits.py --runs {arguments.runs}",
        "runs": arguments.runs,
        "failed": len(failures),
        "failures": failures,
        "seconds": round(time.monotonic() - started, 1),
    }
    arguments.out.write_text(json.dumps(report, indent=2) + "\n", encoding="utf-8")
    sys.stdout.write(json.dumps({k: v for k, v in report.items() if k != "failures"}) + "\n")


if __name__ == "__main__":
    main()
