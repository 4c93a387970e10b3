"""Figures written whole or not at all (training/figure_file.py): a PNG written in place by a process that hit
its file-size limit destroyed the figure there and left a truncated one."""

from __future__ import annotations

import json
import re
import subprocess
import sys
import textwrap

from tests.support.checkout import ROOT

# draws a figure larger than the limit set after the first one is written: the second write must fail
SCRIPT = textwrap.dedent(
    """
    import json, resource, signal, sys
    from pathlib import Path
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import numpy as np
    from training.figure_file import save_figure

    path = Path(sys.argv[1])
    small = plt.figure(figsize=(1, 1))
    save_figure(small, path, dpi=50)
    before = path.read_bytes().hex()
    signal.signal(signal.SIGXFSZ, signal.SIG_IGN)  # the write gets EFBIG instead of the process a signal
    resource.setrlimit(resource.RLIMIT_FSIZE, (len(before) // 2 + 200, resource.RLIM_INFINITY))
    big = plt.figure(figsize=(8, 8))
    big.gca().scatter(*np.random.default_rng(0).random((2, 5000)))
    try:
        save_figure(big, path, dpi=100)
        error = None
    except OSError as raised:
        error = [raised.errno, getattr(raised, "__notes__", [])]
    print(json.dumps({"before": before, "error": error}))
    """
)


def test_a_figure_cut_by_the_file_size_limit_leaves_the_png_before(tmp_path) -> None:
    path = tmp_path / "figures" / "cvr.png"
    result = subprocess.run(
        [sys.executable, "-c", SCRIPT, str(path)], cwd=ROOT, capture_output=True, text=True, check=True
    )
    outcome = json.loads(result.stdout)
    assert outcome["error"] is not None, "the larger figure fitted under the limit: the test proves nothing"
    assert f"(while writing {path})" in outcome["error"][1]
    assert path.read_bytes() == bytes.fromhex(outcome["before"]) and path.read_bytes().startswith(b"\x89PNG")
    assert [p.name for p in path.parent.iterdir()] == ["cvr.png"]  # no temporary file left behind


def test_the_helper_loads_no_matplotlib() -> None:
    """Importing it costs a command that writes no figure nothing: the figure comes in drawn."""
    code = "import sys, training.figure_file; print('matplotlib' in sys.modules)"
    result = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, check=True)
    assert result.stdout.strip() == "False"


def test_every_figure_goes_through_the_helper() -> None:
    """A ``savefig`` of its own writes in place again: seven modules did, each its own way."""
    own = ROOT / "training" / "figure_file.py"
    sources = [
        p for folder in ("common", "service", "training", "clients", "cli") for p in (ROOT / folder).rglob("*.py")
    ]
    drawing = [p for p in sources if p != own and re.search(r"\.savefig\(", p.read_text(encoding="utf-8"))]
    callers = [str(p.relative_to(ROOT)) for p in drawing]
    assert callers == []
