from __future__ import annotations

import onnxruntime as ort
import pytest

from service.models.onnx import CPU, CUDA, create_session, requested_providers
from service.settings import Settings
from tests.service.tiny_model import SPEC, build_onnx


def test_cpu_when_cuda_is_not_wanted() -> None:
    assert requested_providers(use_cuda=False) == [CPU]


def test_cuda_asked_for_only_when_offered(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(ort, "get_available_providers", lambda: [CUDA, CPU])
    assert requested_providers(use_cuda=True) == [CUDA, CPU]
    monkeypatch.setattr(ort, "get_available_providers", lambda: [CPU])
    assert requested_providers(use_cuda=True) == [CPU]


def test_reports_the_provider_in_use() -> None:
    settings = Settings(intra_op_threads=1, inter_op_threads=1)
    session, provider = create_session(build_onnx(SPEC), settings)
    assert provider == session.get_providers()[0]
    if CUDA not in ort.get_available_providers():
        assert provider == CPU
