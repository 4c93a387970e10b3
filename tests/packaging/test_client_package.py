"""The Python client as `pip install .[cpu]` ships it (README: "the module `clients.client`, on httpx"; no torch nor
pyarrow): `clients.client` gives every public name it lists in a fresh process that cannot import torch or pyarrow,
and imports nothing of the other clients (the benchmarks, the auction)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap

from tests.support.checkout import ROOT

# A fresh process where importing torch or pyarrow fails as it does where the `train` extra is not installed
SCRIPT = textwrap.dedent(
    """
    import json, sys

    class Absent:
        def find_spec(self, name, path=None, target=None):
            if name.partition(".")[0] in ("torch", "pyarrow"):
                raise ModuleNotFoundError(f"No module named {name!r}", name=name)
            return None

    sys.meta_path.insert(0, Absent())
    import clients.client as client

    print(json.dumps({"missing": [name for name in client.__all__ if not hasattr(client, name)],
                      "modules": sorted(name for name in sys.modules if name.startswith("clients."))}))
    """
)


def test_the_client_imports_its_public_names_without_torch_or_pyarrow() -> None:
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    done = subprocess.run(
        [sys.executable, "-c", SCRIPT], cwd=ROOT, env=env, capture_output=True, text=True, timeout=60, check=True
    )
    report = json.loads(done.stdout.strip().splitlines()[-1])
    assert report["missing"] == []
    assert report["modules"] and all(name.startswith("clients.client") for name in report["modules"])
