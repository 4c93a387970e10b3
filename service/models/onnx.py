"""ONNX Runtime sessions: provider choice, thread settings, and the provider actually in use.

CUDA is preferred when the installed onnxruntime offers ``CUDAExecutionProvider`` and the settings
allow it. onnxruntime-gpu falls back to CPU without an error when the CUDA libraries cannot be loaded,
so the provider reported is read back from the session, never assumed (DESIGN.md §6).

On CUDA a batch's inputs are bound (``run_bound``: ONNX Runtime's IO binding): each input is copied to
the device once, as one contiguous block, and the outputs come back to host memory, without the
per-run feed conversion of ``session.run``.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence

import numpy as np
import onnxruntime as ort

from service.models.base import ModelLoadError
from service.settings import Settings

logger = logging.getLogger(__name__)


CUDA = "CUDAExecutionProvider"
CPU = "CPUExecutionProvider"


def requested_providers(use_cuda: bool) -> list[str]:
    """Providers to ask for, best first: CUDA when offered and allowed, CPU always."""
    if use_cuda and CUDA in ort.get_available_providers():
        return [CUDA, CPU]
    return [CPU]


def session_options(settings: Settings) -> ort.SessionOptions:
    options = ort.SessionOptions()
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    if settings.intra_op_threads:
        options.intra_op_num_threads = settings.intra_op_threads
    if settings.inter_op_threads:
        options.inter_op_num_threads = settings.inter_op_threads
    options.add_session_config_entry("session.intra_op.allow_spinning", "1" if settings.intra_op_spinning else "0")
    options.log_severity_level = 3  # errors only; ORT's warnings about fallbacks are reported by us
    return options


def create_session(model: bytes, settings: Settings) -> tuple[ort.InferenceSession, str]:
    """A session over the serialised model and the execution provider it actually runs on."""
    requested = requested_providers(settings.use_cuda)
    session = ort.InferenceSession(model, sess_options=session_options(settings), providers=requested)
    provider = session.get_providers()[0]
    if provider != requested[0]:
        logger.warning("asked ONNX Runtime for %s but the session runs on %s", requested[0], provider)
    return session, provider


def open_session(model: bytes, settings: Settings, what: str) -> tuple[ort.InferenceSession, str]:
    """``create_session``, with ONNX Runtime's own errors (invalid graphs) as ModelLoadError naming ``what``."""
    try:
        return create_session(model, settings)
    except Exception as error:  # ORT raises its own exception types for invalid graphs
        raise ModelLoadError(f"ONNX Runtime cannot load {what}: {error}") from None


def run_bound(
    session: ort.InferenceSession, feed: Mapping[str, np.ndarray], outputs: Sequence[str], device: str = "cuda"
) -> list[np.ndarray]:
    """``session.run(outputs, feed)`` through an IO binding: the inputs copied to ``device`` (an
    ``OrtValue`` each), the outputs bound to host memory. Any provider runs it (the tests run it on CPU
    too); the service binds on CUDA, where it saves the per-run host-to-device copies of the feed."""
    binding = session.io_binding()
    for name, array in feed.items():
        binding.bind_ortvalue_input(name, ort.OrtValue.ortvalue_from_numpy(np.ascontiguousarray(array), device, 0))
    for name in outputs:
        binding.bind_output(name, "cpu")
    session.run_with_iobinding(binding)
    return binding.copy_outputs_to_cpu()
