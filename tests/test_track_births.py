"""utils/track_births.py: a second box on a tracked head starts no track; a new head, even one next to a tracked head,
still does; without the YAML key the tracker is Ultralytics' own."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from ultralytics.engine.results import Boxes
from ultralytics.trackers.bot_sort import BOTSORT
from ultralytics.trackers.byte_tracker import BYTETracker
from ultralytics.trackers.oc_sort import OCSORT
from ultralytics.utils import YAML, IterableSimpleNamespace

from utils.array_tracker import fast_tracker
from utils.tracking import NEW_TRACK_MAX_IOU, find_tracker, fit_thresholds

HEADS = np.array([[100, 100, 120, 120], [200, 150, 220, 170], [40, 250, 60, 270]], float)  # 20 x 20 px, still
DUPLICATE = [5, 0, 5, 0]  # 5 px to the right: IoU 15 * 20 / (400 + 400 - 300) = 0.6 with its head
NEIGHBOUR = [19, 0, 19, 0]  # 19 px: IoU 1 * 20 / (800 - 20) = 0.026, a head just touching another


def run(tracker, frames: int = 8) -> set[int]:
    """Track the three heads alone for 3 frames, then with a duplicate on each (score 0.7) and, from frame 4, a new
    head touching the first (IoU 0.026) and one far from all; return the IDs output in the last frame."""
    img = np.zeros((320, 320, 3), np.uint8)
    for k in range(1, frames + 1):
        xyxy, conf = HEADS, [0.9] * 3
        if k > 3:
            xyxy = np.concatenate([HEADS, HEADS + DUPLICATE, HEADS[:1] + NEIGHBOUR, [[250, 30, 270, 50]]])
            conf = [0.9] * 3 + [0.7] * 3 + [0.9, 0.9]
        data = np.column_stack([xyxy, conf, np.zeros(len(xyxy))])
        out = tracker.update(Boxes(torch.tensor(data, dtype=torch.float32), (320, 320)).cpu().numpy(), img)
    return set(out[:, 4].astype(int).tolist())


@pytest.mark.parametrize(
    "name, stock", [("bytetrack.yaml", BYTETracker), ("botsort.yaml", BOTSORT), ("ocsort.yaml", OCSORT)]
)
def test_duplicates_start_no_track(name, stock, tmp_path):
    """Fitted (new_track_max_iou, between the two IoUs): 5 tracks at the end, the 3 heads, the neighbour and the far head. Ultralytics'
    own tracker on the same YAML without the key: 8, each duplicate tracked as a person."""
    path, _ = fit_thresholds(find_tracker(name), 0.5, tmp_path / name)
    cfg = {**YAML.load(path), "gmc_method": "none"}
    assert cfg["new_track_max_iou"] == NEW_TRACK_MAX_IOU and 0.026 < NEW_TRACK_MAX_IOU < 0.6
    assert len(run(fast_tracker(stock(args=IterableSimpleNamespace(**cfg))))) == 5
    del cfg["new_track_max_iou"]
    assert len(run(fast_tracker(stock(args=IterableSimpleNamespace(**cfg))))) == 8
