"""Facts about the machine we run on: cores, how busy the other processes keep them, peak memory.

Native code (llama.cpp's OpenMP threads, torch's intra-op pool) runs best with one thread per core
that nobody else wants; these helpers say how many that is, on Linux, macOS and Windows alike.
"""

from __future__ import annotations

import os
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass

from lmassist.errors import ModelLoadError


def available_cpus() -> int:
    """Logical CPUs this process may run on (its affinity mask where the OS has one)."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:  # macOS, Windows
        return max(1, os.cpu_count() or 1)


def physical_cores() -> int:
    """Physical cores available to us: llama.cpp and torch run slower on hyper-threads than without."""
    import psutil

    physical = psutil.cpu_count(logical=False) or 0
    logical = psutil.cpu_count(logical=True) or 0
    available = available_cpus()
    if physical and logical:
        # Scale by the affinity mask: a container given 2 of 16 logical CPUs on an 8-core SMT host
        # gets 1 core's worth of siblings, or 2 cores; never more than it may run on.
        share = max(1, round(physical * available / logical))
        return max(1, min(available, share))
    return available


def rusage_to_mb(maxrss: int) -> float:
    """``ru_maxrss`` in MiB: the kernel reports KiB on Linux and bytes on macOS."""
    return maxrss / 2**20 if sys.platform == "darwin" else maxrss / 1024


@dataclass
class CpuSample:
    """Busy CPU seconds of the whole machine and of this process at one moment."""

    at: float
    machine_busy: float
    ours: float

    @classmethod
    def now(cls) -> CpuSample:
        import psutil

        times = psutil.cpu_times()
        idle = times.idle + getattr(times, "iowait", 0.0)
        busy = sum(times) - idle
        mine = psutil.Process().cpu_times()
        return cls(time.monotonic(), busy, mine.user + mine.system)

    def others_busy(self, earlier: CpuSample) -> float:
        """Cores' worth of CPU that processes other than ours used between two samples."""
        wall = self.at - earlier.at
        if wall <= 0:
            return 0.0
        others = (self.machine_busy - earlier.machine_busy) - (self.ours - earlier.ours)
        return max(0.0, others / wall)


def free_cores(cores: int, others_busy: float) -> int:
    """How many threads to run on ``cores`` cores when other processes keep ``others_busy`` busy.

    A spinning thread that shares its core with a busy process costs far more than it gains (the
    OpenMP barrier waits on the slowest thread), so a core counts as taken once another process
    uses more than about half of it.
    """
    return max(1, min(cores, int(cores - others_busy + 0.5)))


def others_busy_now(seconds: float = 0.1) -> float:
    """Sample how many cores other processes keep busy, over ``seconds``."""
    first = CpuSample.now()
    time.sleep(seconds)
    return CpuSample.now().others_busy(first)


class ThreadGovernor:
    """How many threads a backend computes with, chosen from what the machine is doing.

    OpenMP threads (llama.cpp's, torch's) spin while they wait for each other, so a thread that
    shares its core with a busy process stalls all the others: beside one busy process, two threads
    on two cores ran at a fraction of one thread's speed. With ``threads = auto`` we use the cores
    that other processes leave free, measured over the last moments (while the model loaded, while
    it sat idle between replies, and every :data:`INTERVAL` seconds while it works), and ``apply``
    the new count between two decode steps when that changes. A fixed count turns this off.
    """

    INTERVAL = 0.5  # seconds between re-checks while computing
    MIN_WINDOW = 0.05  # a shorter look at the machine says nothing: CPU times tick every 10 ms

    def __init__(self, apply: Callable[[int], None], cores: int, fixed: int | None = None, since: CpuSample | None = None) -> None:
        self._apply = apply
        self.cores = cores
        self.fixed = fixed
        self.threads = fixed or cores
        self._last = since or CpuSample.now()
        self._looked = False  # until the first look, the count is a guess (all cores)

    def tick(self, force: bool = False) -> None:
        """Re-check the machine if :data:`INTERVAL` has passed (or, with ``force``, if any time has)."""
        if self.fixed:
            return
        waited = time.monotonic() - self._last.at
        if not self._looked and waited < self.MIN_WINDOW:
            time.sleep(self.MIN_WINDOW - waited)  # a model that loads in no time: look once, briefly
        elif waited < (self.MIN_WINDOW if force else self.INTERVAL):
            return
        self._looked = True
        sample = CpuSample.now()
        threads = free_cores(self.cores, sample.others_busy(self._last))
        self._last = sample
        if threads != self.threads:
            self.threads = threads
            self._apply(threads)


def thread_setting(value: object, key: str) -> int | None:
    """A ``*.threads`` setting: a fixed count of threads, or None for ``auto`` (from the machine's load)."""
    if value is None or value == 0 or (isinstance(value, str) and value.strip().lower() in ("", "auto", "0")):
        return None
    if isinstance(value, bool) or (isinstance(value, float) and not value.is_integer()):
        raise ModelLoadError(f"{key} must be 'auto' or a whole number of threads, not {value!r}")
    try:
        threads = int(value)  # type: ignore[call-overload]
    except (TypeError, ValueError):
        raise ModelLoadError(f"{key} must be 'auto' or a whole number of threads, not {value!r}") from None
    if threads < 1:
        raise ModelLoadError(f"{key} must be 'auto' or at least 1, not {threads}")
    return threads


def pick_device(requested: str | None = None) -> str:
    """CUDA, then Apple MPS, then CPU; a requested device that is not there is a one-line error."""
    import torch

    want = (requested or "auto").strip().lower()
    if want == "auto":
        if torch.cuda.is_available():
            return "cuda"
        mps = getattr(torch.backends, "mps", None)
        if mps is not None and mps.is_available():
            return "mps"
        return "cpu"
    if want == "cpu":
        return "cpu"
    if want == "gpu" or want.startswith("cuda"):
        if not torch.cuda.is_available():
            why = "this torch build has no CUDA" if torch.version.cuda is None else "no CUDA GPU is visible"
            raise ModelLoadError(f"--device {requested} was asked for, but {why}; use --device cpu (or auto)")
        index = want.partition(":")[2]
        if index and (not index.isdigit() or int(index) >= torch.cuda.device_count()):
            raise ModelLoadError(f"--device {requested}: there are {torch.cuda.device_count()} CUDA device(s)")
        return "cuda" if want == "gpu" else want
    if want == "mps":
        mps = getattr(torch.backends, "mps", None)
        if mps is None or not mps.is_available():
            raise ModelLoadError("--device mps was asked for, but Apple MPS is not available here; use --device cpu")
        return "mps"
    raise ModelLoadError(f"unknown device {requested!r}; use auto, cpu, cuda, cuda:N or mps")
