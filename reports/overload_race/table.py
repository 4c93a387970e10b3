"""The overload row's runs of docs/serving-log.md, "Requests lost at a step's end": one line per run.

    python reports/overload_race/table.py

Each JSON here is a ``ctr bench harden -r models --cases overload [--sustainable-rps 3200] --service-root
../wt/{head,direct}`` run (its ``command`` says which); the file name says the generator (``old_generator``:
clients never close an idle connection, as before this commit; ``client_idle_4``: they close one idle 4 s),
the set they were alternated in, the kind (``ladder``: the rate measured; ``fixed``: 3,200 req/s taken),
the build (``head``: the service on ASGI; ``direct``: the connection answering ``/v1/score``) and the run.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent


def lost(step: dict) -> int:
    return sum(n for status, n in step["statuses"].items() if status not in ("200", "503"))


def closed_under(steps: list[dict]) -> str:
    """Every lost request's connection: how long it had been free before the request, its answers before."""
    seen = [entry for step in steps for entry in step.get("closed_under_free_s_after_s_answers", [])]
    if not seen:
        return ""
    free = [free_s for free_s, _, _ in seen]
    answers = sorted({answers for _, _, answers in seen})
    return f"free {min(free):.2f}-{max(free):.2f} s, answers before {answers}"


def line(path: Path) -> str:
    case = json.loads(path.read_text(encoding="utf-8"))["cases"]["overload"]
    ladder, double, half = case["ladder"], case["2x"], case["0.5x"]
    ladder_lost = [lost(step) for step in ladder]
    steps = [*ladder, double, half]
    causes: dict[str, int] = {}
    for step in steps:
        for cause, n in step.get("failures", {}).items():
            causes[cause] = causes.get(cause, 0) + n
    cells = [
        path.stem,
        f"{case['sustainable_rps']:,.0f}",
        " ".join(str(n) for n in ladder_lost) or "-",
        f"{double['non_200_p99_ms']:.1f}",
        str(lost(double)),
        f"{half['statuses'].get('503', 0)} / {lost(half)}",
        ", ".join(f"{n} {cause}" for cause, n in causes.items()) + (f" ({closed_under(steps)})" if causes else ""),
    ]
    return "| " + " | ".join(cells) + " |"


def main() -> None:
    header = (
        "| run | sustainable req/s | lost in each ladder step | 2x: 503 p99 ms | 2x: lost | 0.5x: 503 / lost | "
        "why lost |\n|---|--:|---|--:|--:|--:|---|"
    )
    rows = [line(path) for path in sorted(HERE.glob("*.json"))]
    sys.stdout.write("\n".join([header, *rows]) + "\n")


if __name__ == "__main__":
    main()
