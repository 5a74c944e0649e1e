"""Shared helpers of the speed benchmarks: interleaved timing, the machine header, peak memory, markdown tables.

Other engineers' jobs share the CPU, so absolute times drift; every comparison is therefore timed within one run with
its contenders interleaved (ABBA order: each round starts one contender later, which cancels a linear drift) and
reported as a ratio of medians, next to the machine load.
"""

from __future__ import annotations

import ctypes
import os
import platform
import re
import shlex
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path

import torch

THREADS_HELP = (
    "torch threads; 0 = every core, as our training, val and detect paths use. Default 1: on a 2-core machine shared "
    "with other jobs, two OpenMP threads wait on each other whenever one is descheduled, and timings turn into "
    "scheduler noise (see BENCHMARKS.md, 'Machine and conditions'); use 0 on an idle machine"
)


def sync(device: torch.device) -> None:
    """Wait for queued CUDA work, so wall times cover it."""
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def interleaved_times(
    contenders: dict[str, Callable[[], object]], repeats: int, device: torch.device, warmup: int = 1
) -> dict[str, list[float]]:
    """Time each contender `repeats` times, interleaved, after `warmup` untimed rounds.

    Round r runs the contenders starting at index r (A B, B A, A B, ... for two), so slow drifts of the machine load
    hit every contender alike.

    Args:
        contenders (dict[str, Callable]): Name -> function to time (called with no arguments).
        repeats (int): Timed rounds.
        device (torch.device): Synchronised around each call when it is a CUDA device.
        warmup (int): Untimed rounds first (allocator, thread pool and autograd warm-up).

    Returns:
        (dict[str, list[float]]): Name -> wall times in seconds, in round order.
    """
    names = list(contenders)
    times: dict[str, list[float]] = {n: [] for n in names}
    for r in range(warmup + repeats):
        for k in range(len(names)):
            name = names[(r + k) % len(names)]
            sync(device)
            t = time.perf_counter()
            contenders[name]()
            sync(device)
            if r >= warmup:
                times[name].append(time.perf_counter() - t)
    return times


def med(times: list[float]) -> float:
    """Median of a list of times."""
    return statistics.median(times)


def spread(times: list[float]) -> str:
    """Relative spread of repeated times: (max - min) / median, as a percentage string."""
    m = statistics.median(times)
    return f"±{50 * (max(times) - min(times)) / m:.0f}%" if m > 0 else "n/a"


def load() -> str:
    """The 1, 5 and 15 minute load averages, e.g. '5.2 4.9 3.0'."""
    return " ".join(f"{x:.1f}" for x in os.getloadavg())


def cpu_model() -> str:
    """CPU model name from /proc/cpuinfo (platform.processor() elsewhere)."""
    try:
        text = Path("/proc/cpuinfo").read_text()
        return re.search(r"^model name\s*:\s*(.+)$", text, re.MULTILINE).group(1).strip()
    except (OSError, AttributeError):
        return platform.processor() or "unknown"


def machine_header(device: torch.device) -> str:
    """Markdown lines naming the command, the machine, torch's threads and the load when called."""
    import ultralytics

    cores = os.cpu_count()
    usable = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else cores
    gpu = f", GPU {torch.cuda.get_device_name(device)}" if device.type == "cuda" else ""
    env = [f"{k}={os.environ[k]}" for k in ("OMP_WAIT_POLICY", "GOMP_SPINCOUNT", "MKL_NUM_THREADS") if k in os.environ]
    cmd = " ".join(shlex.quote(a) for a in [*env, Path(sys.executable).name, *sys.argv])
    return "\n".join(
        (
            f"- command: `{cmd}`",
            f"- machine: {cpu_model()}, {cores} cores ({usable} usable){gpu}; device {device}",
            f"- software: Python {platform.python_version()}, torch {torch.__version__}, "
            f"ultralytics {ultralytics.__version__}",
            f"- load average (1/5/15 min) at start: {load()}",
        )
    )


def markdown_table(headers: list[str], rows: list[list[object]]) -> str:
    """A GitHub markdown table, numbers right-aligned."""
    cells = [[str(c) for c in row] for row in rows]
    widths = [max(len(h), *(len(r[i]) for r in cells)) if cells else len(h) for i, h in enumerate(headers)]
    line = lambda r: "| " + " | ".join(c.rjust(w) for c, w in zip(r, widths)) + " |"  # noqa: E731
    return "\n".join((line(headers), "|" + "|".join("-" * (w + 1) + ":" for w in widths) + "|", *map(line, cells)))


class PeakMemory:
    """Peak memory a block of code adds on top of what is in use when it starts, in MiB.

    CUDA: `torch.cuda.max_memory_allocated` after resetting the peak (tensor memory of the caching allocator).
    CPU: the process' resident set. Freed heap pages are first handed back to the kernel (glibc `malloc_trim`), then
    the kernel's RSS high-water mark is reset (`echo 5 > /proc/self/clear_refs`, Linux >= 4.0); the result is VmHWM
    after the block minus VmRSS before it, i.e. tensors, autograd buffers and allocator overhead the block needed at
    its peak. `value` is None where the kernel offers no reset.

    Examples:
        >>> with PeakMemory(torch.device("cpu")) as mem:
        ...     x = torch.ones(10_000_000)
        >>> mem.value  # about 38 MiB
    """

    def __init__(self, device: torch.device):
        """Measure on `device`."""
        self.device, self.value = device, None
        self._base = 0.0

    def __enter__(self) -> PeakMemory:
        """Record the baseline and reset the peak."""
        if self.device.type == "cuda":
            torch.cuda.synchronize(self.device)
            torch.cuda.reset_peak_memory_stats(self.device)
            self._base = torch.cuda.memory_allocated(self.device)
            return self
        try:
            ctypes.CDLL("libc.so.6").malloc_trim(0)
            Path("/proc/self/clear_refs").write_text("5")
            self._base = _proc_status_kib("VmRSS") * 1024
        except OSError:
            self._base = None
        return self

    def __exit__(self, *exc) -> None:
        """Read the peak."""
        if self.device.type == "cuda":
            torch.cuda.synchronize(self.device)
            self.value = (torch.cuda.max_memory_allocated(self.device) - self._base) / 2**20
        elif self._base is not None:
            self.value = (_proc_status_kib("VmHWM") * 1024 - self._base) / 2**20

    @staticmethod
    def method(device: torch.device) -> str:
        """One line saying what `value` measures on `device`."""
        if device.type == "cuda":
            return "torch.cuda.max_memory_allocated() during the step minus memory_allocated() before it"
        return (
            "CPU resident set: VmHWM after the step minus VmRSS before it, with freed heap returned to the kernel "
            "(malloc_trim) and the RSS high-water mark reset (/proc/self/clear_refs) just before the step"
        )


def _proc_status_kib(key: str) -> int:
    """A kB field of /proc/self/status."""
    return int(re.search(rf"^{key}:\s+(\d+)", Path("/proc/self/status").read_text(), re.MULTILINE).group(1))


def untrained_checkpoint(path: Path, cfg: str) -> Path:
    """Save a freshly built yolov5n-mfl as a checkpoint detect.py and val.py can load (no count threshold stored)."""
    from models.yolo import AnchorDetectionModel

    torch.manual_seed(0)
    model = AnchorDetectionModel(cfg, nc=1, verbose=False).eval()
    model.names = {0: "head"}
    torch.save({"model": model, "train_args": {"imgsz": 640}}, path)
    return path
