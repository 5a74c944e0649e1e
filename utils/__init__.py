"""Crowd-counting toolkit utilities: Mask Focal Loss, targets, counting metrics and the Ultralytics subclasses."""

from __future__ import annotations

from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]  # repository root
CACHE_DIR = ROOT / ".cache"  # generated data (synthetic crowds); git-ignored
MAX_DET = 3000  # dense crowds: Ultralytics' default of 300 would silently truncate counts
COUNT_CONF_KEY = "count_conf"  # checkpoint key of the count threshold calibrated on the validation split
# NMS IoU of every count: train.py's validation calibrates the count threshold at it, and a threshold counts other
# boxes under another NMS. YOLOv5's validation IoU; its detect.py's 0.45 merges neighbours in dense crowds (generated
# videos of ~280 heads per frame: per-frame count MAE 48.7 at 0.45 against 10.8 at 0.6, BENCHMARKS.md session 12).
COUNT_IOU = 0.6

__all__ = "CACHE_DIR", "COUNT_CONF_KEY", "COUNT_IOU", "MAX_DET", "ROOT"
