"""How many CPU threads the CNN trains and predicts with.

On a machine whose cores are shared with other busy processes, OpenMP
threads wait at every barrier for a descheduled sibling, so two threads can
be several times slower than one (docs/cnn.md has the measurements). Hence:

* training: every core (at most 2) when the machine is idle, else one
  (:func:`auto_threads`), "idle" judged from the CPU time all processes used
  over the last 0.2 s (``/proc/stat``; elsewhere the 1-minute load average,
  which lags by minutes);
* predictions: one thread up to 64 images (a server's micro-batches), else
  up to two (:func:`inference_threads`), for PyTorch and ONNX Runtime alike.
"""

from __future__ import annotations

import contextlib
import os
import time
from collections.abc import Iterator

__all__ = ["auto_threads", "busy_cores", "inference_threads", "torch_threads"]


@contextlib.contextmanager
def torch_threads(n: int) -> Iterator[None]:
    """Run torch ops with ``n`` intra-op threads, restoring the previous setting."""
    import torch

    before = torch.get_num_threads()
    if n != before:
        torch.set_num_threads(n)
    try:
        yield
    finally:
        if n != before:
            torch.set_num_threads(before)


def inference_threads(n_images: int) -> int:
    """Threads to predict ``n_images`` with: one up to 64 images, else up to two."""
    return 1 if n_images <= 64 else min(2, os.cpu_count() or 1)


def auto_threads() -> int:
    """Threads for training: every core (at most 2) on an idle machine, else 1."""
    return 1 if busy_cores() >= 0.5 else min(2, os.cpu_count() or 1)


def busy_cores(interval: float = 0.2) -> float:
    """Cores in use by all processes, measured over ``interval`` seconds (load average where /proc/stat is missing)."""
    def sample() -> tuple[int, int]:
        with open("/proc/stat", encoding="ascii") as f:
            fields = [int(v) for v in f.readline().split()[1:]]
        return sum(fields), fields[3] + fields[4]  # total, idle + iowait (clock ticks)

    try:
        total0, idle0 = sample()
        time.sleep(interval)
        total1, idle1 = sample()
    except (OSError, ValueError, IndexError):
        try:
            return os.getloadavg()[0]
        except OSError:
            return 0.0
    total = total1 - total0
    return (os.cpu_count() or 1) * (total - (idle1 - idle0)) / total if total > 0 else 0.0
