"""utils/array_tracker.py: ByteTrack and OC-SORT on arrays give Ultralytics' outputs frame by frame on a hard crowd
(missed heads, duplicate boxes, tracks lost and found again, tracks removed for age); OC-SORT's directions against
hand-computed values."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from ultralytics.engine.results import Boxes
from ultralytics.trackers.bot_sort import BOTSORT
from ultralytics.trackers.byte_tracker import BYTETracker
from ultralytics.trackers.oc_sort import OCSORT
from ultralytics.trackers.utils import matching
from ultralytics.utils import YAML, IterableSimpleNamespace

from data.synthetic_video import crowd_tracks
from utils.array_tracker import NO_FRAME, ArrayBYTETracker, ArrayOCSORT, assign, fast_tracker
from utils.batched_tracker import BatchedBOTSORT
from utils.track_births import DuplicateBirths
from utils.tracking import ARRAY_RULES_OFF, find_tracker, fit_thresholds


class StockByteTrack(DuplicateBirths, BYTETracker):
    """Ultralytics' ByteTrack with our birth rule, the reference of ArrayBYTETracker."""


class StockOCSORT(DuplicateBirths, OCSORT):
    """Ultralytics' OC-SORT with our birth rule, the reference of ArrayOCSORT."""


def hard_crowd(frames: int, seed: int):
    """Detections of a generated crowd (about 150 heads a frame at 480 px): boxes jittered, a fifth of the heads
    missed in each frame, one in ten seen twice (a shifted second box), scores spread over both association stages."""
    gt = crowd_tracks(300, frames, 480, seed=seed)
    rng = np.random.default_rng(seed)
    for k in range(1, frames + 1):
        xyxy = gt[gt.frame == k][["x1", "y1", "x2", "y2"]].to_numpy() + rng.normal(0, 1.5, (1, 4))
        xyxy = xyxy[rng.random(len(xyxy)) > 0.2]
        xyxy = np.concatenate([xyxy, xyxy[rng.random(len(xyxy)) < 0.1] + rng.normal(0, 2, (1, 4))])
        data = np.column_stack([xyxy, rng.uniform(0.05, 0.95, len(xyxy)), np.zeros(len(xyxy))])
        yield Boxes(torch.tensor(data, dtype=torch.float32), (480, 480)).cpu().numpy()


@pytest.mark.parametrize(
    "name, stock, ours, settings",
    [
        ("bytetrack.yaml", StockByteTrack, ArrayBYTETracker, {}),
        ("bytetrack.yaml", StockByteTrack, ArrayBYTETracker, {"fuse_score": True}),
        ("ocsort.yaml", StockOCSORT, ArrayOCSORT, {}),
        ("ocsort.yaml", StockOCSORT, ArrayOCSORT, {"use_byte": True, "fuse_score": True}),
    ],
)
def test_array_trackers_give_ultralytics_outputs(name, stock, ours, settings, tmp_path):
    """70 frames of the hard crowd: the same boxes, IDs, scores and detection indices, in the same order, every frame;
    the run did lose tracks and find them again after 2 frames or more, and removed tracks."""
    path, _ = fit_thresholds(find_tracker(name), 0.3, tmp_path / name)
    cfg = IterableSimpleNamespace(**{**YAML.load(path), **ARRAY_RULES_OFF, **settings})  # rules Ultralytics lacks
    a, b = ours(cfg), stock(args=cfg)
    seen = {}  # track ID -> frames output
    for k, det in enumerate(hard_crowd(70, seed=5), 1):
        x, y = a.update(det, None), b.update(det, None)
        assert x.shape == y.shape and len(x) > 60, k
        np.testing.assert_allclose(x, y, rtol=1e-6, atol=1e-4, err_msg=f"frame {k}")
        for i in y[:, 4].astype(int):
            seen.setdefault(i, []).append(k)
    assert max(np.diff(f).max(initial=0) for f in seen.values()) > 2  # found again after missing 2+ frames
    assert len(a.removed_ids) > 50


def test_directions_by_hand(tmp_path):
    """OC-SORT's direction (delta_t 3) from histories of 5 frames: centre moving +1 px in x per frame over frames
    1-5 -> from frame 2 to 5, (1, 0); seen at frames 4 and 5 only, 3 px down -> from 4 to 5, (0, 1); standing still
    -> (0, 0) but has a direction; seen once -> none."""
    path, _ = fit_thresholds(find_tracker("ocsort.yaml"), 0.3, tmp_path / "ocsort.yaml")
    t = ArrayOCSORT(IterableSimpleNamespace(**YAML.load(path)))
    frames = np.array([[1, 2, 3, 4, 5], [NO_FRAME, NO_FRAME, NO_FRAME, 4, 5], [1, 2, 3, 4, 5], [NO_FRAME] * 4 + [5]])
    box = np.array([10, 10, 20, 20], np.float32)
    boxes = np.tile(box, (4, 5, 1))
    boxes[0] += np.arange(5, dtype=np.float32)[:, None] * [1, 0, 1, 0]
    boxes[1, 4] += [0, 3, 0, 3]
    unit, moving = t._directions(frames, boxes)
    np.testing.assert_allclose(unit, [[1, 0], [0, 1], [0, 0], [0, 0]], atol=1e-6)
    assert moving.tolist() == [True, True, True, False]


def test_fast_tracker_picks_the_twin_of_a_fresh_tracker(tmp_path):
    """ByteTrack and OC-SORT go to arrays, BoT-SORT to batched corrections, each with the same settings; a tracker
    that has already run keeps its state and is returned as it is, and so is one whose match_thresh reaches 1."""
    for name, cls, twin in [
        ("bytetrack.yaml", BYTETracker, ArrayBYTETracker),
        ("ocsort.yaml", OCSORT, ArrayOCSORT),
        ("botsort.yaml", BOTSORT, BatchedBOTSORT),
    ]:
        cfg = IterableSimpleNamespace(**{**YAML.load(find_tracker(name)), "gmc_method": "none"})
        fresh = fast_tracker(cls(args=cfg))
        assert type(fresh) is twin and fresh.args is cfg
        used = cls(args=cfg)
        used.update(next(hard_crowd(1, seed=0)), np.zeros((480, 480, 3), np.uint8))
        assert fast_tracker(used) is used
    loose = OCSORT(args=IterableSimpleNamespace(**{**YAML.load(find_tracker("ocsort.yaml")), "match_thresh": 1.0}))
    assert fast_tracker(loose) is loose  # boxes that do not overlap could match: Ultralytics' own tracker runs


@pytest.mark.parametrize(
    "name, stock, ours", [("bytetrack.yaml", BYTETracker, ArrayBYTETracker), ("ocsort.yaml", OCSORT, ArrayOCSORT)]
)
@pytest.mark.parametrize("back", [35, 36])
def test_a_track_removed_for_age_comes_back_only_the_next_frame(name, stock, ours, back, tmp_path):
    """One still head seen in frames 1-3, then not until `back`: lost at frame 4 and removed for age at 34
    (track_buffer 30), it is still matched at 35 and keeps ID 1, as in Ultralytics, which drops removed tracks one
    frame late; at 36 it is a new, unconfirmed track: nothing is output."""
    path, _ = fit_thresholds(find_tracker(name), 0.3, tmp_path / name)
    cfg = IterableSimpleNamespace(**YAML.load(path))
    head = Boxes(torch.tensor([[100, 100, 120, 120, 0.9, 0]]), (320, 320)).cpu().numpy()
    a, b = ours(cfg), stock(args=cfg)
    for k in range(1, back + 1):
        det = head if k <= 3 or k == back else head[:0]
        x, y = a.update(det, None), b.update(det, None).reshape(-1, 8)  # Ultralytics' empty output is (0,)
        np.testing.assert_allclose(x, y, rtol=1e-6, atol=1e-4, err_msg=f"frame {k}")
    assert x[:, 4].tolist() == ([1.0] if back == 35 else [])


def test_assign_on_pairs_is_ultralytics_linear_assignment():
    """Random sparse costs (every other pair costs 1): the same matches and unmatched rows and columns as lapjv on
    the dense matrix, with groups of one pair, contested groups and empty rows all present."""
    rng = np.random.default_rng(0)
    for trial in range(20):
        n, m = rng.integers(1, 60, 2)
        dense = np.ones((n, m), np.float32)
        i, j = np.nonzero(rng.random((n, m)) < 3 / max(n, m))
        dense[i, j] = rng.uniform(0, 1, len(i)).astype(np.float32)
        r, c, ur, uc = assign((n, m), (i, j, dense[i, j]), 0.8)
        matches, u_rows, u_cols = matching.linear_assignment(dense, thresh=0.8)
        assert np.array_equal(np.c_[r, c], np.asarray(matches, int).reshape(-1, 2)), trial
        assert ur.tolist() == list(u_rows) and uc.tolist() == list(u_cols)
