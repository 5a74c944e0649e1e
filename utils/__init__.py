"""Crowd-counting toolkit utilities: Mask Focal Loss, targets, counting metrics and the Ultralytics subclasses."""

from __future__ import annotations

from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]  # repository root
CACHE_DIR = ROOT / ".cache"  # generated data (synthetic crowds); git-ignored
MAX_DET = 3000  # dense crowds: Ultralytics' default of 300 would silently truncate counts
COUNT_CONF_KEY = "count_conf"  # checkpoint key of the count threshold calibrated on the validation split

__all__ = "CACHE_DIR", "COUNT_CONF_KEY", "MAX_DET", "ROOT"
