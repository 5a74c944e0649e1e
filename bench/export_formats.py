"""Benchmark: a trained model exported by export.py counts as its .pt does, and how fast each format runs on CPU.

1. Parity on the val split: val.py's validator on the .pt, the ONNX file and the OpenVINO folder (exported at the
   training size), each with the threshold its own metadata stores. Per image: how many counts differ from the .pt;
   MAE, RMSE and mAP50 per format. Goal: >= 99 % of images identical, |MAE - MAE(.pt)| <= 0.05, mAP50 within 0.002.
2. Throughput of the counting API (detect.py's predictor, batch 1) per format over the same val images at 640x640
   and 608x1088 (exports with those input sizes), interleaved, as a ratio to the .pt in the same run.
   Goal: the best format >= 1.5x the .pt.

Usage:
    python bench/export_formats.py --weights runs/train/exp/weights/best.pt --data data/scut_head_a.yaml
"""

from __future__ import annotations

import argparse
import shutil
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.common import load, machine_header, markdown_table, med, spread  # noqa: E402
from utils import ROOT  # noqa: E402

FORMATS = ("pt", "onnx", "openvino")


def export_all(weights: Path, folder: Path, imgsz: list[int]) -> dict[str, Path]:
    """Copy the weights into `folder` and export them there at `imgsz`; return format -> model path."""
    from utils.exporter import export_checkpoint

    folder.mkdir(parents=True, exist_ok=True)
    pt = folder / "best.pt"
    shutil.copyfile(weights, pt)
    return {"pt": pt, **{fmt: Path(export_checkpoint(pt, fmt, imgsz=imgsz)) for fmt in FORMATS[1:]}}


def parity(models: dict[str, Path], data: str, imgsz: int, project: Path) -> tuple[str, dict]:
    """Validate each format on the val split; table of MAE/RMSE/mAP50 and per-image count differences."""
    from utils.validator import CountingValidator

    counts, rows, metrics = {}, [], {}
    for fmt, w in models.items():
        v = CountingValidator(
            save_dir=project / f"val-{fmt}",
            args=dict(model=str(w), data=data, imgsz=imgsz, batch=1, conf=0.001, iou=0.6, plots=False),
        )
        m = v()
        r = v.report
        counts[fmt] = r.pred
        metrics[fmt] = {"MAE": r.errors["MAE"], "RMSE": r.errors["RMSE"], "mAP50": m["metrics/mAP50(B)"]}
    for fmt in models:
        same = float(np.mean(counts[fmt] == counts["pt"]))
        d = metrics[fmt]
        rows.append(
            [
                fmt,
                f"{d['MAE']:.3f}",
                f"{d['RMSE']:.3f}",
                f"{d['mAP50']:.4f}",
                f"{100 * same:.1f} %",
                f"{d['MAE'] - metrics['pt']['MAE']:+.3f}",
                f"{d['mAP50'] - metrics['pt']['mAP50']:+.4f}",
            ]
        )
    table = markdown_table(["format", "MAE", "RMSE", "mAP50", "images with the .pt's count", "ΔMAE", "ΔmAP50"], rows)
    return table, metrics


def throughput(weights: Path, images: list[Path], folder: Path, repeats: int) -> str:
    """Images per second of the counting API per format at 640x640 and 608x1088, interleaved rounds."""
    import cv2

    from utils.api import HeadCounter

    frames = [cv2.imread(str(p)) for p in images]
    rows = []
    for hw in ([640, 640], [608, 1088]):
        models = export_all(weights, folder / f"{hw[0]}x{hw[1]}", hw)
        counters = {fmt: HeadCounter(m, imgsz=hw) for fmt, m in models.items()}
        times = {fmt: [] for fmt in counters}
        for r in range(repeats + 1):
            for fmt, c in counters.items():
                t = time.perf_counter()
                for f in frames:
                    c(f)
                if r:  # the first round warms up
                    times[fmt].append(time.perf_counter() - t)
        base = len(frames) / med(times["pt"])
        for fmt, ts in times.items():
            ips = len(frames) / med(ts)
            rows.append([f"{hw[0]}x{hw[1]}", fmt, f"{ips:.2f}", spread(ts), f"{ips / base:.2f}x"])
    return markdown_table(["input h x w", "format", "images/s", "spread", "vs .pt"], rows)


def main(opt: argparse.Namespace) -> None:
    """Run both parts and write bench/results/export_formats.md."""
    from ultralytics.data.utils import check_det_dataset

    from data.resolve import resolve_data
    from utils.checkpoint import read_train_args

    data = resolve_data(opt.data)
    imgsz = opt.imgsz or int(read_train_args(opt.weights).get("imgsz", 640))
    val_dir = Path(check_det_dataset(data)["val"])
    images = sorted(p for p in val_dir.rglob("*") if p.suffix.lower() in {".jpg", ".jpeg", ".png"})
    with tempfile.TemporaryDirectory() as tmp:
        models = export_all(Path(opt.weights), Path(tmp) / "parity", [imgsz, imgsz])
        table, _ = parity(models, data, imgsz, Path(tmp))
        speed = throughput(Path(opt.weights), images[: opt.speed_images], Path(tmp), opt.repeats)
    text = "\n\n".join([
        machine_header(torch.device("cpu")),
        f"Parity on {len(images)} val images ({data}), imgsz {imgsz}, each format at its stored threshold:",
        table,
        f"Counting API throughput over {opt.speed_images} val images, batch 1, {opt.repeats} interleaved rounds "
        f"(load when done: {load()}):",
        speed,
    ])  # fmt: skip
    out = ROOT / "bench" / "results" / "export_formats.md"
    out.write_text(text + "\n")
    print(text)


def parse_opt(args: list[str] | None = None) -> argparse.Namespace:
    """Command-line options."""
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--weights", required=True, help="trained .pt checkpoint")
    p.add_argument("--data", default=str(ROOT / "data" / "scut_head_a.yaml"), help="data YAML with a val split")
    p.add_argument("--imgsz", type=int, default=0, help="parity input size (default: the training size)")
    p.add_argument("--speed-images", type=int, default=40, help="val images timed per round")
    p.add_argument("--repeats", type=int, default=3, help="timed rounds per format and size")
    return p.parse_args(args)


if __name__ == "__main__":
    main(parse_opt())
