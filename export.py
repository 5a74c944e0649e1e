"""Export a trained crowd-counting model to TorchScript, ONNX or OpenVINO, for CPUs and edge boxes without PyTorch.

Usage:
    $ python export.py --weights runs/train/exp/weights/best.pt --include onnx openvino
    $ python export.py --weights best.pt --include onnx --imgsz 608 1088 --dynamic --simplify

The exported files sit beside the weights (best.onnx, best_openvino_model/, best.torchscript) and carry the count
threshold calibrated at the end of training, the training data and the input size in their metadata, so
`python detect.py --weights best.onnx` and `python val.py --weights best_openvino_model` count exactly as with best.pt.
Both heads export: the YOLOv5 anchor head (decoded boxes, objectness × class scores) and the anchor-free YOLOv5u head.
"""

from __future__ import annotations

import os

os.environ.setdefault("YOLO_OFFLINE", "1")  # before Ultralytics is imported: no downloads, no network checks

import argparse

from utils import cli
from utils.exporter import FORMATS


def parse_opt(argv: list[str] | None = None) -> argparse.Namespace:
    """Parse YOLOv5's export flags."""
    p = argparse.ArgumentParser(description=__doc__, formatter_class=cli.HelpFormatter)
    p.add_argument("--weights", type=str, required=True, help="model checkpoint (.pt) path")
    p.add_argument(
        "--trust-weights",
        action="store_true",
        help="also load checkpoints needing more than known model classes (their pickle can run code)",
    )
    p.add_argument("--include", nargs="+", choices=FORMATS, default=["onnx"], help="formats to export")
    p.add_argument(
        "--imgsz", "--img", "--img-size", nargs="+", type=cli.image_size, default=None,
        help="input size h w, or one number for both (default: the training size)",
    )  # fmt: skip
    p.add_argument("--batch-size", type=int, default=1, help="batch size of the exported input")
    p.add_argument("--device", default="cpu", help="cuda device, i.e. 0, or cpu")
    p.add_argument("--half", action="store_true", help="FP16 weights (OpenVINO; ONNX and TorchScript on GPU)")
    p.add_argument("--dynamic", action="store_true", help="ONNX/OpenVINO/TorchScript: dynamic input size and batch")
    p.add_argument("--simplify", action="store_true", help="ONNX: simplify the graph (onnxslim; always on, as Ultralytics)")
    p.add_argument("--opset", type=int, default=None, help="ONNX opset version (default: the newest supported)")
    return p.parse_args(argv)


def main(opt: argparse.Namespace) -> list[str]:
    """Export to each format in turn and return the exported paths."""
    from utils.checkpoint import trust_weights
    from utils.exporter import export_checkpoint

    trust_weights(opt.trust_weights)
    cli.existing_file("--weights", opt.weights)
    settings = {"batch": opt.batch_size, "device": opt.device}
    settings.update({k: v for k, v in (("dynamic", opt.dynamic), ("opset", opt.opset)) if v})
    if opt.half:
        settings["quantize"] = 16  # Ultralytics 8.4's name for half precision
    if opt.imgsz:
        settings["imgsz"] = opt.imgsz * 2 if len(opt.imgsz) == 1 else opt.imgsz[:2]
    files = [export_checkpoint(opt.weights, fmt, **settings) for fmt in opt.include]
    print(f"Exported {', '.join(files)}; count with: python detect.py --weights {files[0]} --source ...")
    return files


if __name__ == "__main__":
    cli.run(main, parse_opt())
