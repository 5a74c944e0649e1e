"""Shared test set-up: keep Ultralytics' settings out of the user's home and locate the optional real data."""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

import pytest

# Importing ultralytics writes settings.json; point it at a throw-away folder before any test imports it.
os.environ.setdefault("YOLO_CONFIG_DIR", tempfile.mkdtemp(prefix="yolo_cfg_"))
os.environ.setdefault("YOLO_OFFLINE", "1")

SCUT_A = Path(__file__).resolve().parents[2] / "shared" / "datasets" / "SCUT_HEAD_Part_A"


@pytest.fixture(scope="session")
def scut_a() -> Path:
    """Path to the real SCUT-Head Part A copy beside the repository; skips the test when it is absent."""
    if not SCUT_A.is_dir():
        pytest.skip(f"real SCUT-Head Part A not found at {SCUT_A} (research-use data kept outside the repo)")
    return SCUT_A
