"""The overload row's 503s as the client and the server saw them, from run.sh's folders.

    python reports/overload_onset/table.py /tmp/onset   # the table; writes summary.json beside this file

Per run: the client's figures at twice the rate (``ctr bench harden``'s report), and from the server's log of its
refusals (instrument.patch) the wait of each refused request from reaching the host to its 503, the number
that waited over 50 ms, and when the last of those came after the first refusal of the phase; the collector's
collections of the older generations or over 5 ms in the phase; where logged, how long the door's delay had
stood above its target when the door turned to refusing, its terms then (the request's wait to be read, the
loop's lag, the oldest request in hand, the expected wait of the requests in hand) and how many were in hand.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

SUMMARY = Path(__file__).with_name("summary.json")


def records(folder: Path, prefix: str) -> list:
    rows: list = []
    for path in folder.glob(f"{prefix}_*.jsonl"):
        for line in path.read_text(encoding="utf-8").splitlines():
            rows += json.loads(line)
    return sorted(rows)


def quantile(values: list[float], q: float) -> float:
    return values[min(len(values) - 1, int(q * len(values)))]


def phase(refusals: list) -> list:
    """The refusals of the twice-the-rate phase: the longest run of them without a 1.5-s gap."""
    runs, current = [], refusals[:1]
    for row in refusals[1:]:
        if row[0] - current[-1][0] > 1.5:
            runs.append(current)
            current = []
        current.append(row)
    runs.append(current)
    return max(runs, key=len)


def summarise(folder: Path) -> dict:
    report = json.loads((folder / "overload.json").read_text(encoding="utf-8"))["cases"]["overload"]
    twice = report["2x"]
    refused = phase(records(folder, "refusals"))
    start, end = refused[0][0], refused[-1][0]
    waits = sorted(row[1] for row in refused)  # [time, wait(, connection's age: logged from the third set on)]
    slow = [row[0] - start for row in refused if row[1] > 0.05]
    collections = [c for c in records(folder, "gc") if start - 1.0 <= c[0] <= end]
    # the door's first turn to "overloaded" of the phase: [time, True, [above since, waited, loop lag, oldest,
    # expected wait, in hand]] (logged from the second set of runs on)
    # (the runs started before "above since" was logged have five terms: not counted)
    turns = [t for t in records(folder, "flips") if t[1] and len(t[2]) == 6 and start - 1.0 <= t[0] <= end]
    return {
        "run": folder.name,
        "sustainable_rps": report["sustainable_rps"],
        "offered_rps": twice["offered_rps"],
        "statuses": twice["statuses"],
        "client_503_p99_ms": twice["non_200_p99_ms"],
        "client_200_p99_ms": twice["ok_p99_ms"],
        "generator_lag_p99_ms": twice["generator_lag_p99_ms"],
        "half_rate_statuses": report["0.5x"]["statuses"],
        "server_refused": len(waits),
        "server_wait_p99_ms": round(quantile(waits, 0.99) * 1000, 1),
        "server_wait_max_ms": round(waits[-1] * 1000, 1),
        "server_over_50ms": len(slow),
        "last_over_50ms_after_first_refusal_ms": round(max(slow) * 1000) if slow else None,
        "collections_young_over_5ms": sum(1 for c in collections if c[1] == 0),
        "collections_older": sum(1 for c in collections if c[1] >= 1),
        "collection_longest_ms": max((c[2] for c in collections), default=0.0),
        "door_turned_after_standing_ms": round((turns[0][0] - turns[0][2][0]) * 1000) if turns else None,
        "door_terms_at_turn_ms": [round(t * 1000, 1) for t in turns[0][2][1:5]] if turns else None,
        "in_hand_at_turn": turns[0][2][5] if turns else None,
    }


def main() -> None:
    root = Path(sys.argv[1])
    folders = sorted((f for f in root.iterdir() if (f / "overload.json").exists()), key=lambda p: (p.suffix, p.name))
    rows = [summarise(folder) for folder in folders]  # a run still going has no report yet
    SUMMARY.write_text(json.dumps(rows, indent=1) + "\n", encoding="utf-8")
    header = (
        "| run | offered | 503 p99 (client) | 200 p99 | server: wait p99 / max"
        " | > 50 ms (last, after the first refusal) | collections: young > 5 ms, older, longest"
        " | door turned after (in hand) |"
    )
    lines = [header, "|---|--:|--:|--:|--:|--:|--:|--:|"]
    for r in rows:
        last = r["last_over_50ms_after_first_refusal_ms"]
        lines.append(
            f"| {r['run']} | {r['offered_rps']:,.0f} | {r['client_503_p99_ms']} ms | {r['client_200_p99_ms']} ms"
            f" | {r['server_wait_p99_ms']} / {r['server_wait_max_ms']} ms"
            f" | {r['server_over_50ms']} of {r['server_refused']:,}"
            + (f" ({last} ms)" if last is not None else "")
            + f" | {r['collections_young_over_5ms']}, {r['collections_older']}, {r['collection_longest_ms']} ms"
            + (f" | {r['door_turned_after_standing_ms']} ms ({r['in_hand_at_turn']})" if r["in_hand_at_turn"] else " |")
            + " |"
        )
    sys.stdout.write("\n".join(lines) + "\n")


if __name__ == "__main__":
    main()
