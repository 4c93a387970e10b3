"""ONNX Runtime sessions: provider choice, thread settings, and the provider actually in use.

CUDA is preferred when the installed onnxruntime offers ``CUDAExecutionProvider`` and the settings
allow it. onnxruntime-gpu falls back to CPU without an error when the CUDA libraries cannot be loaded,
so the provider reported is read back from the session, never assumed (DESIGN.md §6).

On CUDA a batch runs through ``session.run`` like on the CPU: ONNX Runtime copies the host arrays to the
device itself. IO binding (each input made a device ``OrtValue`` first) was built and measured on an
H200 and cost 10-15% per run at 100 to 1,024 rows (docs/serving.md, "On a GPU"): the inputs are a few
kilobytes, and a run's cost there is the host launching the graph's kernels. TF32 matrix products are
off (``CUDA_OPTIONS``): on the H200 they moved pCTR by up to 1.2e-4 from the CPU's, against 1.2e-7
without, beyond the export's torch-vs-ORT parity of 1e-5.
"""

from __future__ import annotations

import logging

import onnxruntime as ort

from service.models.base import ModelLoadError
from service.settings import Settings

logger = logging.getLogger(__name__)


CUDA = "CUDAExecutionProvider"
CPU = "CPUExecutionProvider"
CUDA_OPTIONS = {"use_tf32": "0"}  # scores as exported (module docstring); TF32 buys nothing on this small a model


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
    providers = [(name, CUDA_OPTIONS) if name == CUDA else name for name in requested]
    session = ort.InferenceSession(model, sess_options=session_options(settings), providers=providers)
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
