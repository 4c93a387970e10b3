"""ONNX Runtime sessions: provider choice, thread settings, and the provider actually in use.

CUDA is preferred when the installed onnxruntime offers ``CUDAExecutionProvider`` and the settings
allow it. onnxruntime-gpu falls back to CPU without an error when the CUDA libraries cannot be loaded,
so the provider reported is read back from the session, never assumed (DESIGN.md §6).

On CUDA a batch runs through ``session.run`` like on the CPU: ONNX Runtime copies the host arrays to the
device itself. IO binding (each input made a device ``OrtValue`` first) was built and measured on an
H200 and cost 5-17% more per run at 100 to 1,024 rows (docs/serving.md, "On a GPU"): the inputs are a
few kilobytes, and a run's cost there is the host launching the graph's kernels. TF32 matrix products
are off (``CUDA_OPTIONS``): on the H200 they moved scores by up to 4.8e-5 from the CPU's (1.2e-4 for the
tests' model), against 1.2e-7 without, beyond the export's torch-vs-ORT parity of 1e-5.
"""

from __future__ import annotations

import contextlib
import ctypes
import functools
import io
import logging
import sys
import threading

import onnxruntime as ort

from service.models.base import ModelLoadError
from service.models.external_data import UnreadableModel, external_tensors
from service.settings import Settings

logger = logging.getLogger(__name__)


CUDA = "CUDAExecutionProvider"
CPU = "CPUExecutionProvider"
CUDA_OPTIONS = {"use_tf32": "0"}  # scores as exported: float32 matrix products, not TF32 (module docstring)


CUDA_DRIVER = "libcuda.so.1"  # the host's NVIDIA driver library: no wheel carries it (the container toolkit mounts it)


def requested_providers(use_cuda: bool) -> list[str]:
    """Providers to ask for, best first: CUDA when offered, allowed and the host's driver loads, CPU always.
    Without the driver (a host without a GPU, a container run without ``--gpus``) ONNX Runtime failed to load
    its CUDA provider and wrote that as a coloured line of its own to stderr, in the middle of the JSON log
    (`make image-check IMAGE_RUNTIME=gpu`); it is said here once, in the log's format, and the CPU asked for."""
    if use_cuda and CUDA in ort.get_available_providers():
        if cuda_driver_loads():
            return [CUDA, CPU]
        say_no_cuda_driver()
    return [CPU]


@functools.cache
def cuda_driver_loads() -> bool:
    """Whether the NVIDIA driver's library loads in this process (Linux; elsewhere ONNX Runtime is asked)."""
    if not sys.platform.startswith("linux"):
        return True
    try:
        ctypes.CDLL(CUDA_DRIVER)
    except OSError:
        return False
    return True


@functools.cache
def say_no_cuda_driver() -> None:
    logger.warning(
        "onnxruntime-gpu offers CUDA but the NVIDIA driver's %s cannot be loaded (a host without a GPU, or a "
        "container run without --gpus): the models run on the CPU (CTR_USE_CUDA=false says this is meant)",
        CUDA_DRIVER,
    )


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


_PRELOAD_LOCK = threading.Lock()  # redirect_stdout swaps the process's sys.stdout: one preload at a time


@functools.cache
def load_cuda_libraries() -> None:
    """CUDA and cuDNN loaded into the process, once, by ONNX Runtime's ``preload_dlls``: from the NVIDIA
    wheels the ``gpu`` extra installs (``onnxruntime-gpu[cuda,cudnn]``), else from the library path.
    Without it the CUDA provider finds the wheels' libraries only through ``LD_LIBRARY_PATH``. What it
    prints about a library it could not load goes to the log; the session then falls back to the CPU."""
    preload = getattr(ort, "preload_dlls", None)  # onnxruntime-gpu >= 1.21
    if preload is None:
        return
    printed = io.StringIO()
    try:
        with _PRELOAD_LOCK, contextlib.redirect_stdout(printed):
            preload()
    except Exception as error:  # a failed preload leaves the library path to the provider
        printed.write(f"preload_dlls failed: {error}")
    if printed.getvalue().strip():
        logger.warning("loading the CUDA libraries: %s", " ".join(printed.getvalue().split()))


def create_session(model: bytes, settings: Settings) -> tuple[ort.InferenceSession, str]:
    """A session over the serialised model and the execution provider it actually runs on."""
    requested = requested_providers(settings.use_cuda)
    if requested[0] == CUDA:
        load_cuda_libraries()
    providers = [(name, CUDA_OPTIONS) if name == CUDA else name for name in requested]
    session = ort.InferenceSession(model, sess_options=session_options(settings), providers=providers)
    provider = session.get_providers()[0]
    if provider != requested[0]:
        logger.warning("asked ONNX Runtime for %s but the session runs on %s", requested[0], provider)
    return session, provider


def open_session(model: bytes, settings: Settings, what: str) -> tuple[ort.InferenceSession, str]:
    """``create_session``, with ONNX Runtime's own errors (invalid graphs) as ModelLoadError naming ``what``;
    a graph with a tensor whose data is in another file is refused first (external_data.py)."""
    try:
        external = external_tensors(model)
    except UnreadableModel as error:
        raise ModelLoadError(f"{what} is not an ONNX model this service can read: {error}") from None
    if external:
        name, location = external[0]
        raise ModelLoadError(
            f"{what} keeps {len(external)} tensor(s) in other files ({name[:80]!r} in {location[:80]!r}): a served "
            "model holds all its data itself (ONNX Runtime would read those files, which no sha256 in "
            "model.json covers)"
        )
    try:
        return create_session(model, settings)
    except Exception as error:  # ORT raises its own exception types for invalid graphs
        raise ModelLoadError(f"ONNX Runtime cannot load {what}: {error}") from None
