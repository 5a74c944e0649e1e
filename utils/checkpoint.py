"""Read the crowd-counting extras that train.py stores in its checkpoints."""

from __future__ import annotations

from pathlib import Path

from utils import COUNT_CONF_KEY


def count_conf_of(ckpt: dict) -> float | None:
    """Return the count threshold stored in a loaded checkpoint: a top-level key, or an attribute of its model.

    train.py attaches it to the model (`model.count_conf`) so that it travels with every copy Ultralytics makes
    (last.pt, best.pt, the stripped final checkpoints, and models loaded by the predictor).
    """
    value = ckpt.get(COUNT_CONF_KEY)
    if value is None:
        model = ckpt.get("model") or ckpt.get("ema")
        value = getattr(model, COUNT_CONF_KEY, None)
    return None if value is None else float(value)


def read_count_conf(weights: str | Path) -> float | None:
    """Return the count threshold calibrated at the end of training, or None if the checkpoint has none.

    Args:
        weights (str | Path): Path to a `.pt` checkpoint written by train.py (or any Ultralytics checkpoint).

    Returns:
        (float | None): The stored confidence threshold used for counting.
    """
    from ultralytics.nn.tasks import torch_safe_load

    ckpt, _ = torch_safe_load(str(weights))
    return count_conf_of(ckpt) if isinstance(ckpt, dict) else None


def read_train_args(weights: str | Path) -> dict:
    """Return the training arguments stored in a checkpoint (data, imgsz, ...), empty when it has none."""
    from ultralytics.nn.tasks import torch_safe_load

    ckpt, _ = torch_safe_load(str(weights))
    args = ckpt.get("train_args") if isinstance(ckpt, dict) else None
    return dict(args or {})
