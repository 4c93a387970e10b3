"""asyncio's debug mode under ``ctr serve`` as the interpreter asks for it (service/server.py ``ServiceServer.run``):
on Python 3.11 uvicorn's runner was given ``debug=False``, and ``python -X dev`` or ``PYTHONASYNCIODEBUG=1`` left
the service's loop out of debug mode without a word (an audit looking for slow callbacks saw none)."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

from tests.support.checkout import ROOT
from tests.support.loop_debug import debug_of_loop_served_on
from tests.support.protocol_server import LOOPS


@pytest.mark.parametrize("loop", LOOPS)
def test_the_loop_is_in_debug_mode_when_pythonasynciodebug_asks(loop: str, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PYTHONASYNCIODEBUG", "1")
    assert debug_of_loop_served_on(loop)
    monkeypatch.setenv("PYTHONASYNCIODEBUG", "")  # empty: not asked, as asyncio reads it
    assert debug_of_loop_served_on(loop) is bool(sys.flags.dev_mode)


def test_the_loop_is_in_debug_mode_under_python_x_dev() -> None:
    environment = {k: v for k, v in os.environ.items() if k != "PYTHONASYNCIODEBUG"} | {"PYTHONPATH": str(ROOT)}
    probe = "from tests.support.loop_debug import debug_of_loop_served_on as d; print(d('asyncio'), d('uvloop'))"
    said = subprocess.run(
        [sys.executable, "-X", "dev", "-c", probe], env=environment, capture_output=True, text=True, timeout=60
    )
    assert said.stdout.split() == ["True", "True"], said.stderr
