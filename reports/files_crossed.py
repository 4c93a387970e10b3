"""Which files of ``service/`` run code for one ``POST /v1/score`` (issue 10: "a request crossing ≤ 6 files").

Serves ``ctr serve``'s server in this process on a free loopback port (the repository's models, default
settings otherwise), sends warm-up requests, then one request traced by a profile hook on every thread
(the event loop's and the model's), and prints the files of ``service/`` whose functions were called
while it was in flight, each with those functions, then the count. Periodic work that happened to run
meanwhile (the door's sampling, the read-deadline sweep) is called then too, and is listed.

    PYTHONPATH=. python reports/files_crossed.py [--repository models] [--candidates 1]
"""

from __future__ import annotations

import argparse
import os
import sys
import threading
import time
import urllib.request
from collections import defaultdict
from pathlib import Path

from cli.bench import request_bodies
from clients.service_process import free_port

SERVICE = str(Path(__file__).resolve().parents[1] / "service") + os.sep
WARM_UP_REQUESTS = 20


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--repository", type=Path, default=Path("models"))
    parser.add_argument("--model", default="esmm")
    parser.add_argument("--candidates", type=int, default=1)
    args = parser.parse_args()
    port = free_port()
    os.environ.update(
        CTR_MODEL_REPOSITORY=str(args.repository.resolve()),
        CTR_CTR_MODEL=args.model,
        CTR_CTCVR_MODEL=args.model,
        CTR_PORT=str(port),
        CTR_LOG_LEVEL="WARNING",
        CTR_ACCESS_LOG="false",
    )
    body = request_bodies(args.repository, args.model, args.candidates, count=1)[0]
    tracing = threading.Event()
    called: dict[str, set[str]] = defaultdict(set)

    def hook(frame, event, _arg):  # sys.setprofile's signature
        if event == "call" and tracing.is_set() and frame.f_code.co_filename.startswith(SERVICE):
            called[frame.f_code.co_filename[len(SERVICE) :]].add(frame.f_code.co_name)

    def client() -> None:
        url = f"http://127.0.0.1:{port}"
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            try:
                urllib.request.urlopen(f"{url}/v2/health/ready", timeout=1).close()
                break
            except OSError:
                time.sleep(0.2)
        request = urllib.request.Request(f"{url}/v1/score", data=body, headers={"content-type": "application/json"})
        for _ in range(WARM_UP_REQUESTS):
            urllib.request.urlopen(request, timeout=10).read()
        time.sleep(0.2)
        tracing.set()
        with urllib.request.urlopen(request, timeout=10) as response:
            status = response.status
        tracing.clear()
        lines = [f"POST /v1/score, {args.candidates} candidate(s): {status}"]
        lines += [f"  service/{name}: {', '.join(sorted(called[name]))}" for name in sorted(called)]
        lines.append(f"{len(called)} files of service/")
        sys.stdout.write("\n".join(lines) + "\n")
        sys.stdout.flush()
        os._exit(0)  # nothing to keep: the server need not drain (SIGTERM would make uvicorn exit -15)

    from service.server import serve  # after the environment: the settings read it

    sys.setprofile(hook)
    threading.setprofile(hook)
    threading.Thread(target=client, daemon=True).start()
    serve()


if __name__ == "__main__":
    main()
