"""The image's pins (locks/image-cpu.txt, image-gpu.txt; `make image-lock`) against pyproject.toml: each
dependency the image installs (the base ones, its runtime's extra and `grpc`) is pinned at a version its
range allows, for every Python the project allows, no torch among them, and the Dockerfile and
`make image-check` install with the lock. A range changed in pyproject without `make image-lock` fails here,
not in an image build."""

from __future__ import annotations

import re
import tomllib
from pathlib import Path

import pytest
from packaging.markers import Marker
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name
from packaging.version import Version

from tests.support.checkout import ROOT

PROJECT = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))["project"]
PYTHONS = ("3.11", "3.12", "3.13", "3.14")  # requires-python >= 3.11
PIN = re.compile(r"^(?P<name>[A-Za-z0-9_.\-]+)==(?P<version>\S+)(?:\s*;\s*(?P<marker>.+))?$")


def pins(lock: Path, python: str) -> dict[str, Version]:
    """The lock's pins that apply on Linux x86-64 under ``python``."""
    found = {}
    for line in lock.read_text(encoding="utf-8").splitlines():
        pin = PIN.match(line.strip())
        if pin is None:
            continue
        environment = {"python_version": python, "python_full_version": f"{python}.0", "sys_platform": "linux",
                       "platform_system": "Linux", "platform_machine": "x86_64", "implementation_name": "cpython",
                       "platform_python_implementation": "CPython", "os_name": "posix"}  # fmt: skip
        if pin["marker"] is None or Marker(pin["marker"]).evaluate(environment):
            found[canonicalize_name(pin["name"])] = Version(pin["version"])
    return found


@pytest.mark.parametrize("runtime", ["cpu", "gpu"])
@pytest.mark.parametrize("python", PYTHONS)
def test_the_image_lock_pins_every_dependency_within_pyproject_s_ranges(runtime: str, python: str) -> None:
    lock = ROOT / "locks" / f"image-{runtime}.txt"
    pinned = pins(lock, python)
    wanted = [
        *PROJECT["dependencies"],
        *PROJECT["optional-dependencies"][runtime],
        *PROJECT["optional-dependencies"]["grpc"],
    ]
    for text in wanted:
        requirement = Requirement(text)
        name = canonicalize_name(requirement.name)
        assert name in pinned, f"{lock.name} pins no {name} (pyproject: {text}): run make image-lock"
        assert requirement.specifier.contains(pinned[name], prereleases=True), (
            f"{lock.name} pins {name}=={pinned[name]}, outside pyproject's {text}: run make image-lock"
        )
    assert "torch" not in pinned  # the image holds no trainer
    other = "onnxruntime-gpu" if runtime == "cpu" else "onnxruntime"
    assert other not in pinned  # the two provide one module


def test_the_image_and_its_check_install_with_the_lock() -> None:
    dockerfile = (ROOT / "Dockerfile").read_text(encoding="utf-8")
    assert (
        "COPY locks/image-${RUNTIME}.txt" in dockerfile
        and "pip install --no-cache-dir -c /wheels/image-lock.txt" in dockerfile
    )
    steps = (ROOT / ".ci" / "image_steps.sh").read_text(encoding="utf-8")
    assert 'lock="locks/image-$RUNTIME.txt"' in steps and '-c "$lock"' in steps
