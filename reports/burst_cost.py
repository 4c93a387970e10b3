"""What short bursts cost under a light load: refusals at the door and the answers' latency, this
checkout's service against another's (``--service-root``), both up for the whole run, trials alternated.

Each trial offers ``--rate`` requests/s of the harden bench's 10-candidate body for ``--seconds``, with
``--burst-rate`` more a second from 1 s on for one of ``--bursts-ms``, through the harden bench's
``offer`` (its clients: up to 2,048 connections, 512 opened before the trial, the server pinned to one
core and the generator to the other); every burst length is tried ``--repeats`` times a side, in ABBA
order. Printed per burst length and side: each trial's 503s, its 200s' p99 and its slowest answer (ms,
from the intended send). JSON to ``--out``.

    PYTHONPATH=. python reports/burst_cost.py --service-root OTHER [--rate 3000 --burst-rate 9000] --out F
        [--this-env CTR_SHED_INTERVAL_MS=200]   # this side's server with a setting of its own

Used in docs/serving-log.md, "What a burst costs at the door".
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
from contextlib import ExitStack
from pathlib import Path

from cli.bench import request_bodies
from clients.bench.harden import offer, pinned_apart, unpin
from clients.bench.loadgen import burst_schedule, run_load
from clients.bench.serve import server

BURST_AT_S = 1.0
WARM_UP_S = 2.0


def say(line: str) -> None:
    sys.stdout.write(line + "\n")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--service-root", type=Path, required=True)
    parser.add_argument("--rate", type=float, default=3000.0)
    parser.add_argument("--burst-rate", type=float, default=9000.0)
    parser.add_argument("--bursts-ms", default="50,100,200,400")
    parser.add_argument("--seconds", type=float, default=3.0)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--repository", type=Path, default=Path("models"))
    parser.add_argument("--model", default="esmm")
    parser.add_argument("--this-env", action="append", default=[], help="KEY=VALUE for this side's server")
    parser.add_argument("--out", type=Path, required=True)
    args = parser.parse_args()
    this_env = dict(item.split("=", 1) for item in args.this_env)
    (body,) = request_bodies(args.repository, args.model, 10, count=1)
    roots = {"this": None, "other": args.service_root}
    trials: list[dict] = []
    with ExitStack() as stack:
        envs = {"this": this_env, "other": {}}
        servers = {side: stack.enter_context(server("service", args.repository, args.model, envs[side], 1, root))
                   for side, root in roots.items()}  # fmt: skip
        for port, _ in servers.values():
            asyncio.run(run_load("127.0.0.1", port, "/v1/score", [body], args.rate, WARM_UP_S))
        for burst_ms in (int(b) for b in args.bursts_ms.split(",")):
            times = burst_schedule(args.rate, args.seconds, args.burst_rate, BURST_AT_S, burst_ms / 1000)
            for repeat in range(args.repeats):
                for side in ("this", "other") if repeat % 2 == 0 else ("other", "this"):
                    port, pid = servers[side]
                    pinned_apart(pid)
                    try:
                        step = offer(port, body, args.rate, args.seconds, times=times)
                    finally:
                        unpin()
                    trials.append({"burst_ms": burst_ms, "side": side, "repeat": repeat, **step})
    say(f"{args.rate:.0f} req/s of 10 candidates, bursts of +{args.burst_rate:.0f} req/s from {BURST_AT_S} s")
    say(f"{'burst ms':>8}  {'side':<5}  {'503s per trial':<20}  {'200 p99 ms':<20}  slowest ms")
    for burst_ms in sorted({t["burst_ms"] for t in trials}):
        for side in roots:
            mine = [t for t in trials if t["burst_ms"] == burst_ms and t["side"] == side]
            refused = " ".join(str(t["statuses"].get("503", 0)) for t in mine)
            p99 = " ".join(f"{t['ok_p99_ms']}" for t in mine)
            slowest = " ".join(f"{t['slowest_ms']}" for t in mine)
            say(f"{burst_ms:>8}  {side:<5}  {refused:<20}  {p99:<20}  {slowest}")
    report = {"command": " ".join(sys.argv), "service_root": str(args.service_root), "this_env": this_env}
    report["trials"] = trials
    args.out.write_text(json.dumps(report, indent=1), encoding="utf-8")
    say(f"wrote {args.out}")


if __name__ == "__main__":
    main()
