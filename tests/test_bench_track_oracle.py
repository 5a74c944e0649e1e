"""bench/track.py's oracle: the ground-truth boxes tracked by detect.py's tracker, birth rule included."""

from __future__ import annotations

import pandas as pd
from ultralytics.utils import YAML

from bench.track import oracle_tracks
from utils.tracking import NEW_TRACK_MAX_IOU, find_tracker, fit_thresholds


def test_oracle_uses_the_products_birth_rule(tmp_path):
    """Head 1 from frame 1; head 2 appears at frame 2 overlapping it by IoU 1/3 (x 0-20 and 10-30, same rows). At
    `new_track_max_iou` 0.2 (the fitted default) head 2 never starts a track, as in detect.py; with the rule off it
    gets its own (Ultralytics' tracker alone would always give it one)."""
    rows = [(1, 1, 0, 0, 20, 20)] + [(f, i, x, 0, x + 20, 20) for f in range(2, 8) for i, x in ((1, 0), (2, 10))]
    gt = pd.DataFrame(rows, columns=["frame", "id", "x1", "y1", "x2", "y2"]).assign(vis=1.0)
    fitted, _ = fit_thresholds(find_tracker("ocsort.yaml"), 0.5, tmp_path / "ocsort.yaml")
    assert YAML.load(fitted)["new_track_max_iou"] == NEW_TRACK_MAX_IOU < 1 / 3
    assert set(oracle_tracks(gt, 7, fitted, (100, 100))["id"]) == {1}

    off = tmp_path / "off.yaml"
    YAML.save(off, {**YAML.load(fitted), "new_track_max_iou": None})
    assert set(oracle_tracks(gt, 7, str(off), (100, 100))["id"]) == {1, 2}
