"""The project's name and version, as its installed distribution says (pyproject.toml is their one source).

``ctr --version``, the OpenAPI document and the Open Inference Protocol's server metadata (REST and
gRPC) all report this. Run from a checkout that was never installed (``PYTHONPATH=.``), the version is
not known and says so.
"""

from __future__ import annotations

from importlib import metadata

DISTRIBUTION = "debiased-ctr"
UNKNOWN_VERSION = "0+unknown"  # a PEP 440 local version: sorts before every release, never mistaken for one


def _installed_version() -> str:
    try:
        return metadata.version(DISTRIBUTION)
    except metadata.PackageNotFoundError:
        return UNKNOWN_VERSION


VERSION = _installed_version()
