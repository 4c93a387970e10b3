"""Where the service's event loop spends its time at one fixed rate, per answered request (py-spy).

One `ctr serve` (this checkout's service, or ``--service-root``'s), warmed up for 2 s, then open-loop load of
``--candidates``-candidate bodies at ``--rate`` for ``--seconds`` while ``py-spy record`` samples every
thread of the server at 250 Hz (``--nonblocking``: the server is not paused; ``pip install py-spy``, not
a project dependency). Printed, in µs of samples per answered request (idle threads are not sampled):
each thread's total, then the busiest files and functions by their own time, and by inclusive time.

    PYTHONPATH=. python reports/profile_service.py --rate 13000 [--candidates 1] [--service-root OTHER]

Used in docs/serving-log.md, "Outcomes told without a future: tried, not kept".
"""

from __future__ import annotations

import asyncio
import re
import subprocess
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path

from clients.bench.loadgen import run_load
from reports.fixed_rate import arguments, warmed_service

HZ = 250
TOP = 25
_FRAME = re.compile(r"^(\S+) \((.*?):\d+\)$")


def where(frame: str) -> str:
    """``function (file)`` with the file shortened to the project's or the package's path."""
    match = _FRAME.match(frame)
    if match is None:
        return frame
    path = re.sub(r".*/(site-packages|lib/python3\.\d+)/", "", match.group(2))
    return f"{match.group(1)} ({re.sub(r'^' + re.escape(str(Path.cwd())) + '/', '', path)})"


def tally(raw: Path) -> tuple[Counter, Counter, Counter, Counter]:
    """Samples per thread, per file (own time), per function (own time) and per function (inclusive)."""
    threads, files, own, inclusive = Counter(), Counter(), Counter(), Counter()
    for line in raw.read_text(encoding="utf-8").splitlines():
        if not line.strip():
            continue
        stack, count = line.rsplit(" ", 1)
        frames = stack.split(";")
        threads[frames[0]] += int(count)
        calls = [where(frame) for frame in frames[1:]]
        if not calls:
            continue
        own[calls[-1]] += int(count)
        files[calls[-1].rsplit("(", 1)[-1].rstrip(")")] += int(count)
        for call in set(calls):
            inclusive[call] += int(count)
    return threads, files, own, inclusive


def say(line: str) -> None:
    sys.stdout.write(line + "\n")


def main() -> None:
    args = arguments(__doc__.splitlines()[0], candidates=1, rate=None, seconds=10.0)
    raw = Path(tempfile.mkdtemp()) / "samples.txt"
    with warmed_service(args) as (port, pid, bodies):
        command = ["py-spy", "record", "-p", str(pid), "-r", str(HZ), "-d", str(int(args.seconds) + 1)]
        spy = subprocess.Popen(
            [*command, "-f", "raw", "--threads", "--nonblocking", "-o", str(raw)],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        time.sleep(0.5)  # py-spy attached
        result = asyncio.run(run_load("127.0.0.1", port, "/v1/score", bodies, args.rate, args.seconds))
        spy.wait()
    answered = result.statuses.get(200, 0)
    per_request = 1e6 / HZ / max(answered, 1)  # a sample is 1/HZ s of a thread that was not idle
    threads, files, own, inclusive = tally(raw)
    say(f"{answered} answered of {result.sent} sent at {args.rate:.0f}/s; µs of samples per answered request:")
    for thread, count in threads.most_common():
        say(f"  {count * per_request:6.1f}  {thread}")
    for title, counter in (("own time, by file", files), ("own time", own), ("inclusive", inclusive)):
        say(f"-- {title}")
        for name, count in counter.most_common(TOP):
            say(f"  {count * per_request:6.1f}  {name}")


if __name__ == "__main__":
    main()
