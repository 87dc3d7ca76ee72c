"""Where training runs: the device, one process or many (``torchrun`` / DDP), and stopping together.

Under ``torchrun`` (environment variables ``RANK``/``WORLD_SIZE``) each process joins the group —
NCCL on GPUs, gloo on CPU — takes one GPU, and wraps the model in DistributedDataParallel; only rank
0 validates, prints and writes checkpoints. A single process needs none of it and gets no-ops.
"""

from __future__ import annotations

import contextlib
import os
import signal
from dataclasses import dataclass
from typing import Any

import torch
import torch.distributed as tdist
import torch.nn as nn
from torch.nn.parallel import DistributedDataParallel

from lmassist import system

try:
    import resource
except ImportError:  # Windows
    resource = None  # type: ignore[assignment]


@dataclass
class Dist:
    rank: int = 0
    world: int = 1
    local_rank: int = 0
    owned: bool = False  # we created the process group, so we tear it down

    @property
    def main(self) -> bool:
        return self.rank == 0

    def agree(self, done: float, stop: bool) -> tuple[float, bool]:
        """The run's progress (0 → 1) and whether to stop, the same on every rank (their maximum),
        so that all ranks stop at the same step."""
        flags = torch.tensor([done, float(stop)])
        if self.world > 1:
            tdist.all_reduce(flags, op=tdist.ReduceOp.MAX)
        return float(flags[0]), bool(flags[1] > 0)

    def wrap(self, model: nn.Module, device: torch.device) -> nn.Module:
        """The module to train: ``model`` itself, or in DDP (which averages gradients) when distributed."""
        if self.world <= 1:
            return model
        return DistributedDataParallel(model, device_ids=[device.index] if device.type == "cuda" else None)

    def close(self) -> None:
        """Wait for every rank, then leave the process group if we joined it."""
        if self.world > 1:
            tdist.barrier()
            if self.owned:
                tdist.destroy_process_group()


def setup_distributed(device_type: str) -> Dist:
    """Join the process group when started by torchrun; a no-op for a single process."""
    world = int(os.environ.get("WORLD_SIZE", "1"))
    if world <= 1:
        return Dist()
    owned = not tdist.is_initialized()
    if owned:
        tdist.init_process_group(backend="nccl" if device_type == "cuda" else "gloo")
    return Dist(tdist.get_rank(), tdist.get_world_size(), int(os.environ.get("LOCAL_RANK", "0")), owned)


def pick_device(requested: str | None, dist: Dist) -> torch.device:
    """The checked device, one GPU per process of a distributed run; training never picks MPS itself."""
    device = torch.device(system.pick_device(requested or ("cuda" if torch.cuda.is_available() else "cpu")))
    if device.type == "cuda" and device.index is None:
        return torch.device("cuda", dist.local_rank % torch.cuda.device_count())
    return device


def start(requested: str | None, threads: int | None) -> tuple[Dist, torch.device]:
    """Join the run's processes (if any), take this process's device and set its CPU threads:
    ``threads`` if given, else the cores shared out among the processes of a CPU run."""
    probe = torch.device(requested) if requested else torch.device("cuda" if torch.cuda.is_available() else "cpu")
    dist = setup_distributed(probe.type)
    device = pick_device(requested, dist)
    if device.type == "cuda":
        torch.cuda.set_device(device)
    if threads:
        torch.set_num_threads(threads)
    elif dist.world > 1 and device.type == "cpu":
        torch.set_num_threads(max(1, (os.cpu_count() or 1) // dist.world))
    return dist, device


def autocast(device: torch.device) -> Any:
    """bf16 autocast on a CUDA GPU that has it; full precision elsewhere."""
    if device.type == "cuda" and torch.cuda.is_bf16_supported():
        return torch.autocast("cuda", dtype=torch.bfloat16)
    return contextlib.nullcontext()


def peak_memory_mb(device: torch.device) -> float | None:
    """Peak memory so far: allocated GPU memory on CUDA, else the process's peak resident set."""
    if device.type == "cuda":
        return torch.cuda.max_memory_allocated(device) / 2**20
    if resource is None:
        return None
    return system.rusage_to_mb(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss)


class StopFlag:
    """Turns the first Ctrl+C/SIGTERM into "stop after this step and save"; a second one aborts."""

    def __init__(self) -> None:
        self.set = False
        self._old: dict[int, Any] = {}

    def __enter__(self) -> StopFlag:
        with contextlib.suppress(ValueError):  # only the main thread may install handlers
            for sig in (signal.SIGINT, signal.SIGTERM):
                self._old[sig] = signal.signal(sig, self._handle)
        return self

    def _handle(self, signum: int, frame: Any) -> None:
        if self.set:
            raise KeyboardInterrupt
        self.set = True

    def __exit__(self, *exc: object) -> None:
        for sig, handler in self._old.items():
            signal.signal(sig, handler)
