"""PyTorch's own data parallelism for the fit loop: processes started by ``torchrun``, gradients
averaged by DistributedDataParallel (gloo on CPU, NCCL on GPU).

Models own their loss and their training phases (training/fitting/fit.py); the phases step through
``fit.descend``, which computes each loss through the DDP wrapper installed here, so a model needs no
change to train on several processes. A model whose phases stepped some other way would see its
replicas drift apart; ``check_replicas_agree`` refuses that after training rather than export it.
"""

from __future__ import annotations

import logging
import os
import resource
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

import torch
import torch.distributed as dist
from torch import nn
from torch.nn.parallel import DistributedDataParallel

from training.fitting.fit import LOSS_ROUTE

logger = logging.getLogger(__name__)

CPU = torch.device("cpu")


@dataclass(frozen=True)
class Processes:
    """This process's place among the training processes (one process: rank 0 of 1, no group)."""

    rank: int = 0
    world_size: int = 1
    local_rank: int = 0
    device: torch.device = CPU

    @property
    def is_main(self) -> bool:
        return self.rank == 0

    @property
    def grouped(self) -> bool:
        return dist.is_available() and dist.is_initialized()

    def gather(self, value: Any) -> list[Any]:
        """Every process's ``value``, in rank order, on every process."""
        if not self.grouped:
            return [value]
        values: list[Any] = [None] * self.world_size
        dist.all_gather_object(values, value)
        return values

    def mean(self, value: float) -> float:
        """The mean of ``value`` over the processes."""
        if not self.grouped:
            return value
        tensor = torch.tensor([value], dtype=torch.float64, device=self.device)
        dist.all_reduce(tensor)
        return float(tensor.item()) / self.world_size

    def barrier(self) -> None:
        if self.grouped:
            dist.barrier()


def started_by_torchrun() -> bool:
    return "WORLD_SIZE" in os.environ  # torchrun describes the group in the environment


@contextmanager
def processes(distributed: bool) -> Iterator[Processes]:
    """Join the process group that ``torchrun`` describes in the environment (RANK, WORLD_SIZE, ...),
    or run alone when not ``distributed`` or not started by torchrun; leave the group on exit."""
    if not distributed or not started_by_torchrun():
        if distributed:
            logger.warning("--distributed outside torchrun: training as one process")
        yield Processes()
        return
    local_rank = int(os.environ.get("LOCAL_RANK", "0"))
    if torch.cuda.is_available():
        device = torch.device("cuda", local_rank)
        torch.cuda.set_device(device)
        backend = "nccl"
    else:
        device, backend = torch.device("cpu"), "gloo"
    dist.init_process_group(backend=backend)
    group = Processes(dist.get_rank(), dist.get_world_size(), local_rank, device)
    logger.info("process %d of %d (%s, %s)", group.rank, group.world_size, backend, device)
    try:
        yield group
    finally:
        dist.destroy_process_group()


class _Objective(nn.Module):
    """The module DDP wraps: its forward is whichever loss ``descend`` asks for."""

    def __init__(self, model: nn.Module) -> None:
        super().__init__()
        self.model = model

    def forward(self, loss_of: Callable[[dict], torch.Tensor], batch: dict) -> torch.Tensor:
        return loss_of(batch)


@contextmanager
def averaged_gradients(model: nn.Module, group: Processes) -> Iterator[None]:
    """While open, every ``fit.descend`` step averages its gradients over the processes.

    Wrapping broadcasts rank 0's parameters and buffers to the others. Parameters that a loss does
    not reach (the adversary's during the predictors' step) are expected: ``find_unused_parameters``.
    """
    if not group.grouped:
        yield
        return
    device_ids = [group.device.index] if group.device.type == "cuda" else None
    wrapper = DistributedDataParallel(_Objective(model), device_ids=device_ids, find_unused_parameters=True)
    token = LOSS_ROUTE.set(wrapper)
    try:
        yield
    finally:
        LOSS_ROUTE.reset(token)


def check_replicas_agree(model: nn.Module, group: Processes) -> None:
    """Raise if the processes' copies of the model differ (gradients that DDP did not average)."""
    if not group.grouped:
        return
    with torch.no_grad():
        local = torch.stack([p.double().sum() for p in model.parameters()])  # (P,)
        high, low = local.clone(), local.clone()
        dist.all_reduce(high, op=dist.ReduceOp.MAX)
        dist.all_reduce(low, op=dist.ReduceOp.MIN)
    drift = float((high - low).abs().max())
    if drift > 1e-6 * (1.0 + float(local.abs().max())):
        raise RuntimeError(
            f"the {group.world_size} processes' models differ after training (by {drift:.3g}): the model's "
            "training phases must step through training.fitting.fit.descend for DDP to average their gradients"
        )


def end_torchrun_process() -> None:
    """End this process now with status 0, its output flushed, past the interpreter's and the C++ runtime's
    teardown; outside torchrun, nothing.

    In torch 2.13 a process that built DistributedDataParallel keeps its gloo process group, and gloo's
    threads (``gloo_tcp_loop``, two ``pt_gloo_runloop``), running after ``destroy_process_group``: in a
    few lines outside this project too (DDP built over a Linear, then deleted with its module, then the
    group destroyed: the threads stay; without DDP they go). At exit the runtime's teardown raced them
    and can abort the process ("terminate called without an active exception", SIGABRT, no Python
    frame), failing a run whose work was done: rarely (about 2 in 190 runs of the test's two-process
    command, reports/torchrun_exits.py; docs/scale.md). Everything the command produces is written by
    then; only the teardown is skipped.
    """
    if not started_by_torchrun():
        return
    logging.shutdown()
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(0)


def cpu_seconds() -> float:
    """CPU time (user + system) this process has used so far."""
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def peak_rss_mib() -> tuple[float, float]:
    """(this process, its largest finished child e.g. a DataLoader worker): peak resident memory in MiB."""
    own = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    children = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024
    return round(own, 1), round(children, 1)
