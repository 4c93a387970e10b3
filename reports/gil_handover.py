"""Scratch measurement behind docs/serving.md "Small batches on the event loop": what a 17-row ONNX Runtime
run costs a second thread when the main thread is alone, busy in Python (holding the GIL, as a loaded
event loop is), or sleeping in system calls. Run from the repository root after `ctr prepare`:
`PYTHONPATH=. python reports/gil_handover.py`.
"""

import sys
import threading
import time
from pathlib import Path

import numpy as np

from cli.bench import request_bodies
from clients.bench_serve import RawOrt

raw = RawOrt(Path("models"), "esmm", request_bodies(Path("models"), "esmm", 100), 1)
batch = {k: np.ascontiguousarray(v[:17]) for k, v in raw.inputs[0].items()}


def worker(n: int, out: list) -> None:
    t0, c0 = time.perf_counter(), time.thread_time()
    for _ in range(n):
        raw.model.run(batch)
    out.append(((time.perf_counter() - t0) / n * 1e6, (time.thread_time() - c0) / n * 1e6))


for label, busy in (("alone", None), ("main thread busy in Python", "py"), ("main thread in syscalls", "io")):
    out: list = []
    thread = threading.Thread(target=worker, args=(2000, out))
    thread.start()
    while thread.is_alive():
        if busy == "py":
            x = 0
            for i in range(10000):
                x += i
        elif busy == "io":
            time.sleep(0.0001)
        else:
            thread.join()
    thread.join()
    sys.stdout.write(f"{label:30s} wall {out[0][0]:7.0f} us/run   the run's thread CPU {out[0][1]:7.0f} us/run\n")
