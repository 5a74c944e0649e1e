"""`CountingExporter`: Ultralytics' exporter for both our heads, with the counting metadata in the exported file.

Ultralytics' exporter switches its own `Detect` heads to export mode (decoded output only); our YOLOv5 anchor head
(`models.head.AnchorDetect`) gets the same switch here. The count threshold calibrated at the end of training, the
training data and the head's class join Ultralytics' metadata (ONNX metadata_props, OpenVINO's metadata.yaml,
TorchScript's config), where `utils.checkpoint.read_count_conf` and `read_train_args` find them again.
"""

from __future__ import annotations

from copy import deepcopy
from pathlib import Path

import torch
from ultralytics.engine.exporter import Exporter
from ultralytics.utils import DEFAULT_CFG

from models.head import AnchorDetect
from utils import COUNT_CONF_KEY
from utils.checkpoint import count_conf_of

FORMATS = ("torchscript", "onnx", "openvino")  # YOLOv5's --include choices we support and test


class CountingExporter(Exporter):
    """Export a counting model; the exported file counts as the checkpoint does (same threshold, same boxes).

    Examples:
        >>> exporter = CountingExporter(overrides={"format": "onnx", "imgsz": 640})
        >>> path = exporter(model, extra={"count_conf": 0.3})
    """

    def __init__(self, cfg=DEFAULT_CFG, overrides: dict | None = None, _callbacks: dict | None = None):
        """Ultralytics' exporter, adding our metadata once its own is built (its `on_export_start` callback)."""
        super().__init__(cfg, {"mode": "export", **(overrides or {})}, _callbacks)
        self.extra_metadata: dict = {}
        self.add_callback("on_export_start", lambda e: e.metadata.update(e.extra_metadata))

    def __call__(self, model: torch.nn.Module, extra: dict | None = None) -> str:
        """Export a copy of `model` whose anchor heads return decoded boxes only; `extra` joins the metadata."""
        model = deepcopy(model)
        for m in model.modules():
            if isinstance(m, AnchorDetect):
                m.export, m.format, m.dynamic = True, self.args.format, self.args.dynamic
        self.extra_metadata = dict(extra or {})
        return super().__call__(model)


def export_checkpoint(weights: str | Path, fmt: str, **overrides) -> str:
    """Export one of our checkpoints (or a stock Ultralytics one) to `fmt`, beside it, with the counting metadata.

    Args:
        weights (str | Path): `.pt` checkpoint.
        fmt (str): One of FORMATS.
        **overrides: Exporter settings (imgsz, half, dynamic, simplify, batch, device).

    Returns:
        (str): Path of the exported file or folder.
    """
    from ultralytics.nn.tasks import load_checkpoint as load_model

    if fmt not in FORMATS:
        raise ValueError(f"--include {fmt}: not supported, choose from {', '.join(FORMATS)}")
    model, ckpt = load_model(str(weights), device="cpu", fuse=True)  # through utils.checkpoint: restricted
    args = ckpt.get("train_args") or {}
    extra = {COUNT_CONF_KEY: count_conf_of(ckpt), "data": args.get("data")}
    defaults = {"imgsz": args.get("imgsz", 640), "batch": 1, "device": "cpu"}
    exporter = CountingExporter(overrides={**defaults, **overrides, "format": fmt})
    return exporter(model, {k: v for k, v in extra.items() if v is not None})
