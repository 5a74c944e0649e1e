"""Read the crowd-counting extras that train.py stores in its checkpoints."""

from __future__ import annotations

from pathlib import Path

from utils import COUNT_CONF_KEY


def read_count_conf(weights: str | Path) -> float | None:
    """Return the count threshold calibrated at the end of training, or None if the checkpoint has none.

    Args:
        weights (str | Path): Path to a `.pt` checkpoint written by train.py (or any Ultralytics checkpoint).

    Returns:
        (float | None): The stored confidence threshold used for counting.
    """
    from ultralytics.nn.tasks import torch_safe_load

    ckpt, _ = torch_safe_load(str(weights))
    value = ckpt.get(COUNT_CONF_KEY) if isinstance(ckpt, dict) else None
    return None if value is None else float(value)
