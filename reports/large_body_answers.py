"""What ``ctr bench harden``'s large-bodies case is answered, by status *and* error message: the bench counts
statuses alone, and a 503 may be the door's (requests waiting too long to be read) or the large bodies'
budget's (no share of ``CTR_BODY_BYTES_IN_FLIGHT`` in time).

Sends ``--bodies`` concurrent invalid V2 infer bodies of about 3.9 MB (the bench's own body) to each running
service given, ``--rounds`` times, alternating between them, and prints each round's answers::

    CTR_PORT=19901 PYTHONPATH=OLD_CHECKOUT python -m cli.main serve &   # one service a checkout
    CTR_PORT=19902 ctr serve &
    PYTHONPATH=. python reports/large_body_answers.py http://127.0.0.1:19901 http://127.0.0.1:19902 --rounds 2

Used in docs/serving-log.md, "Issue 12's ratios and the hardening rows on a slow day".
"""

from __future__ import annotations

import argparse
import asyncio
import sys
from collections import Counter

import httpx

from clients.bench.harden import invalid_infer_body

BODY_BYTES = 3_900_000  # the bench's (``ctr bench harden``'s large_bodies)


async def answers(url: str, model: str, bodies: int, payload: bytes) -> Counter[tuple[int, str]]:
    """(status, error message) of each of ``bodies`` concurrent posts of ``payload``."""
    counted: Counter[tuple[int, str]] = Counter()

    async def one(client: httpx.AsyncClient) -> None:
        reply = await client.post(
            f"{url}/v2/models/{model}/infer", content=payload, headers={"content-type": "application/json"}
        )
        counted[(reply.status_code, reply.json().get("error", ""))] += 1

    async with httpx.AsyncClient(timeout=30, limits=httpx.Limits(max_connections=bodies)) as client:
        await asyncio.gather(*(one(client) for _ in range(bodies)))
    return counted


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("urls", nargs="+")
    parser.add_argument("--model", default="esmm")
    parser.add_argument("--bodies", type=int, default=96)
    parser.add_argument("--rounds", type=int, default=1)
    arguments = parser.parse_args()
    payload = invalid_infer_body(BODY_BYTES)
    for round_number in range(1, arguments.rounds + 1):
        for url in arguments.urls:
            counted = asyncio.run(answers(url, arguments.model, arguments.bodies, payload))
            lines = [f"round {round_number}  {url}"]
            lines += [f"  {count:4d} x {status}  {message[:90]}" for (status, message), count in counted.most_common()]
            sys.stdout.write("\n".join(lines) + "\n")


if __name__ == "__main__":
    main()
