"""Which files of ``service/`` run code for one ``POST /v1/score`` (issue 10: "a request crossing ≤ 6 files").

Serves ``ctr serve``'s server in this process on a free loopback port (the repository's models, default
settings otherwise), sends warm-up requests on one connection, then traces two requests with a profile
hook on every thread (the event loop's and the model's): one more on that kept-alive connection (an ad
server's usual request) and one on a new connection (its set-up and close counted too). For each it
prints the files of ``service/`` whose functions were called while it was in flight, each with those
functions, then the count. Periodic work that happened to run meanwhile (the door's sampling, the
read-deadline sweep) is called then too, and is listed.

    PYTHONPATH=. python reports/files_crossed.py [--repository models] [--candidates 1]
"""

from __future__ import annotations

import argparse
import http.client
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
        kept = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
        headers = {"content-type": "application/json"}

        def on_kept_connection() -> int:
            kept.request("POST", "/v1/score", body=body, headers=headers)
            response = kept.getresponse()
            response.read()
            return response.status

        def on_new_connection() -> int:
            request = urllib.request.Request(f"{url}/v1/score", data=body, headers=headers)
            with urllib.request.urlopen(request, timeout=10) as response:
                return response.status

        for _ in range(WARM_UP_REQUESTS):
            on_kept_connection()
            on_new_connection()
        lines = []
        for label, send in (("a kept-alive connection", on_kept_connection), ("a new connection", on_new_connection)):
            time.sleep(0.2)
            called.clear()
            tracing.set()
            status = send()
            time.sleep(0.05)  # the connection's close, for a new one (urllib closes it after the answer)
            tracing.clear()
            lines.append(f"POST /v1/score, {args.candidates} candidate(s), on {label}: {status}")
            lines += [f"  service/{name}: {', '.join(sorted(called[name]))}" for name in sorted(called)]
            lines.append(f"{len(called)} files of service/ on {label}")
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
