"""Diagnostic: is a model's count right because it finds each head once, or by cancellation?

For each checkpoint, on the images of a split and at the checkpoint's stored count threshold (or --conf), every
detection is assigned to the ground-truth heads whose centre lies within σ_l (half the box diagonal) of its own centre.
Reported: detections per head, heads found once, heads found twice or more (duplicates), heads missed, detections on
no head, the median size ratio of detections to the head they sit on, and the median IoU between two detections of
the same head (below the NMS IoU, NMS cannot merge them).

Usage:
    python bench/count_diagnostics.py --weights runs/bench_u512/stock/weights/best.pt runs/bench_u512/free-mfl/weights/best.pt \
        --data data/scut_head_a.yaml --imgsz 512 --max-images 100
    python bench/count_diagnostics.py --weights runs/bench_a512/mfl  # a run folder: every weights/epoch*.pt, in order
                                                                      # (train with save_period=1 to keep them)
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import cv2
import numpy as np
import pandas as pd
import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from data.resolve import resolve_data  # noqa: E402
from utils import ROOT  # noqa: E402


def head_hits(det_xyxy: np.ndarray, gt_xyxy: np.ndarray) -> np.ndarray:
    """(D, G) bool: detection centre within σ_l = half the diagonal of the head box, of that head's centre."""
    dc = (det_xyxy[:, :2] + det_xyxy[:, 2:]) / 2
    gc = (gt_xyxy[:, :2] + gt_xyxy[:, 2:]) / 2
    radius = np.hypot(*(gt_xyxy[:, 2:] - gt_xyxy[:, :2]).T) / 2
    return np.linalg.norm(dc[:, None] - gc[None], axis=2) <= radius[None]


def diagnose(det_xyxy: np.ndarray, gt_xyxy: np.ndarray) -> dict[str, float]:
    """Counts of one image: heads found once / twice or more / missed, detections on no head, size ratios."""
    hits = head_hits(det_xyxy, gt_xyxy) if len(det_xyxy) and len(gt_xyxy) else np.zeros((len(det_xyxy), len(gt_xyxy)))
    per_head = hits.sum(0)
    nearest = hits.argmax(1)
    on_head = hits.any(1)
    wh = det_xyxy[on_head, 2:] - det_xyxy[on_head, :2]
    gwh = gt_xyxy[nearest[on_head], 2:] - gt_xyxy[nearest[on_head], :2]
    return {
        "heads": len(gt_xyxy),
        "detections": len(det_xyxy),
        "found_once": int((per_head == 1).sum()),
        "duplicated": int((per_head >= 2).sum()),
        "missed": int((per_head == 0).sum()),
        "on_no_head": int((~on_head).sum()),
        "size_ratios": (np.sqrt(wh.prod(1)) / np.sqrt(gwh.prod(1))).tolist(),
        "duplicate_ious": duplicate_ious(det_xyxy, hits).tolist(),
    }


def duplicate_ious(det_xyxy: np.ndarray, hits: np.ndarray) -> np.ndarray:
    """IoU of every pair of detections that sit on a common head."""
    from ultralytics.utils.metrics import box_iou

    same_head = np.triu(hits.astype(np.int64) @ hits.T.astype(np.int64) > 0, k=1)
    if not same_head.any():
        return np.zeros(0)
    boxes = torch.from_numpy(det_xyxy).float()
    return box_iou(boxes, boxes).numpy()[same_head]


def run(weights: str, images: list[Path], labels: list[Path], imgsz: int, conf: float | None) -> dict[str, float]:
    """Aggregate `diagnose` over the images for one checkpoint."""
    from utils.api import HeadCounter

    counter = HeadCounter(weights, conf=conf, imgsz=imgsz)
    rows = []
    for image, label in zip(images, labels, strict=True):
        im = cv2.imread(str(image))
        h, w = im.shape[:2]
        lb = np.loadtxt(label, ndmin=2).reshape(-1, 5) if label.exists() else np.zeros((0, 5))
        xywh = lb[:, 1:] * [w, h, w, h]
        gt = np.concatenate([xywh[:, :2] - xywh[:, 2:] / 2, xywh[:, :2] + xywh[:, 2:] / 2], 1)
        rows.append(diagnose(counter(im).boxes.astype(np.float64), gt))
    heads = sum(r["heads"] for r in rows)
    dets = sum(r["detections"] for r in rows)
    return {
        "weights": weights,
        "conf": counter.conf,
        "heads": heads,
        "det_per_head": dets / max(heads, 1),
        "found_once": sum(r["found_once"] for r in rows) / max(heads, 1),
        "duplicated": sum(r["duplicated"] for r in rows) / max(heads, 1),
        "missed": sum(r["missed"] for r in rows) / max(heads, 1),
        "det_on_no_head": sum(r["on_no_head"] for r in rows) / max(dets, 1),
        "median_size_ratio": float(np.median(sum((r["size_ratios"] for r in rows), []) or [np.nan])),
        "median_duplicate_iou": float(np.median(sum((r["duplicate_ious"] for r in rows), []) or [np.nan])),
    }


def expand_weights(paths: list[str]) -> list[str]:
    """Checkpoints as given, a training run folder replaced by its per-epoch checkpoints (weights/epochN.pt) by N."""
    out = []
    for path in map(Path, paths):
        if not path.is_dir():
            out.append(str(path))
            continue
        epochs = [p for p in (path / "weights").glob("epoch*.pt") if p.stem.removeprefix("epoch").isdigit()]
        epochs.sort(key=lambda p: int(p.stem.removeprefix("epoch")))
        if not epochs:
            raise SystemExit(f"{path}: no weights/epoch*.pt (train with save_period=1 to keep a checkpoint per epoch)")
        out.extend(map(str, epochs))
    return out


def main(opt: argparse.Namespace) -> pd.DataFrame:
    """Diagnose every checkpoint on the same images and print the table."""
    from ultralytics.data.utils import check_det_dataset, img2label_paths

    split = Path(check_det_dataset(resolve_data(opt.data))[opt.split])
    images = sorted(p for p in split.rglob("*") if p.suffix.lower() in {".jpg", ".jpeg", ".png"})[
        : opt.max_images or None
    ]
    labels = [Path(p) for p in img2label_paths([str(p) for p in images])]
    table = pd.DataFrame([run(w, images, labels, opt.imgsz, opt.conf) for w in expand_weights(opt.weights)])
    # Ultralytics numbers epochN.pt from 0; results.csv and the training log count epochs from 1
    table.insert(1, "epoch", table["weights"].str.extract(r"epoch(\d+)\.pt$", expand=False).astype(float) + 1)
    print(f"{len(images)} images of {split}")
    print(table.to_string(index=False, float_format=lambda v: f"{v:.3f}"))
    return table


def parse_opt(args: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument(
        "--weights",
        nargs="+",
        required=True,
        help="checkpoints to compare, or training run folders (their per-epoch checkpoints)",
    )
    p.add_argument("--data", default=str(ROOT / "data" / "scut_head_a.yaml"))
    p.add_argument("--split", default="val")
    p.add_argument("--imgsz", type=int, default=512)
    p.add_argument("--conf", type=float, default=None, help="count threshold (default: each checkpoint's stored one)")
    p.add_argument("--max-images", type=int, default=0, help="first N images of the split (0: all)")
    return p.parse_args(args)


if __name__ == "__main__":
    main(parse_opt())
