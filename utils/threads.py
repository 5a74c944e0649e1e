"""One place that decides how many CPU threads torch uses on each of our paths.

Importing Ultralytics sets OMP_NUM_THREADS=1 and its `select_device` sets torch to `cpu_count - 1` threads, which on
a 2-core machine leaves inference on a single core (a yolov5n 640 px image: 97 ms on 1 thread, 66 ms on 2, identical
detections). Inference (val.py, detect.py) has no data-loader workers competing for the cores, so it takes them all.
"""

from __future__ import annotations

import os

import torch


def use_all_cores() -> int:
    """Let torch use every CPU core; call after Ultralytics' device selection, which resets the count.

    Returns:
        (int): The number of threads now in use.
    """
    n = os.cpu_count() or 1
    torch.set_num_threads(n)
    return n
