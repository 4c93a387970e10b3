"""Scratch measurement behind docs/serving.md "Small batches on the event loop": what a 17-row ONNX Runtime
run costs a second thread when the main thread is alone, busy in Python (holding the GIL, as a loaded
event loop is), or sleeping in system calls; and, with no second thread at all, what it costs right after
the running thread has slept as long as a GIL hand-over makes it wait (``--idle-ms``, 5 ms: the
interpreter's switch interval), which tells the cost of waiting from the cost of the hand-over itself;
then two kernels timed the same way, hot and after a sleep: a product touching 288 KB of weights (one row
through a 360 x 200 float32 layer, the shape of the towers' first layer) and a Python loop touching
almost no memory, which tell caches gone cold from a processor slow to wake.
Run from the repository root after `ctr prepare`: `PYTHONPATH=. python reports/gil_handover.py`.
"""

import sys
import threading
import time
from pathlib import Path

import numpy as np

from cli.bench import request_bodies
from clients.bench.serve import RawOrt

raw = RawOrt(Path("models"), "esmm", request_bodies(Path("models"), "esmm", 100), 1)
batch = {k: np.ascontiguousarray(v[:17]) for k, v in raw.inputs[0].items()}


def worker(n: int, out: list) -> None:
    t0, c0 = time.perf_counter(), time.thread_time()
    for _ in range(n):
        raw.model.run(batch)
    out.append(((time.perf_counter() - t0) / n * 1e6, (time.thread_time() - c0) / n * 1e6))


def after_sleep(call, n: int, idle_s: float) -> tuple[float, float]:
    """Mean wall and CPU µs of ``call()`` started right after this thread slept ``idle_s``, alone in the
    process (0: back to back)."""
    wall = cpu = 0.0
    for _ in range(n):
        time.sleep(idle_s)
        t0, c0 = time.perf_counter(), time.thread_time()
        call()
        wall, cpu = wall + time.perf_counter() - t0, cpu + time.thread_time() - c0
    return wall / n * 1e6, cpu / n * 1e6


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

idle_ms = float(sys.argv[sys.argv.index("--idle-ms") + 1]) if "--idle-ms" in sys.argv else 5.0
for idle in (0.5, idle_ms):
    wall, cpu = after_sleep(lambda: raw.model.run(batch), 400, idle / 1e3)
    label = f"alone, after {idle:g} ms asleep"
    sys.stdout.write(f"{label:30s} wall {wall:7.0f} us/run   the run's thread CPU {cpu:7.0f} us/run (the run alone)\n")

weights = np.random.default_rng(0).random((360, 200), dtype=np.float32)
row = np.ones((1, 360), dtype=np.float32)


def python_loop() -> int:
    total = 0
    for i in range(2000):
        total += i
    return total


for label, kernel in (("360 x 200 layer, one row", lambda: row @ weights), ("2,000-step Python loop", python_loop)):
    hot, short, long = (f"{after_sleep(kernel, 300, idle_s)[1]:6.1f}" for idle_s in (0.0, 0.0025, 0.01))
    sys.stdout.write(f"{label:30s} CPU us: hot {hot}, after 2.5 ms asleep {short}, after 10 ms {long}\n")
