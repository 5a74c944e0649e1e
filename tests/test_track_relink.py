"""utils/array_tracker.py `relink_dist`: a head back from an occlusion a little off its track's prediction keeps its ID
(ByteTrack and OC-SORT twins); farther away, or with relinking off, it starts a new track."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from ultralytics.engine.results import Boxes
from ultralytics.trackers.byte_tracker import BYTETracker
from ultralytics.trackers.oc_sort import OCSORT
from ultralytics.utils import YAML, IterableSimpleNamespace

from utils.array_tracker import fast_tracker
from utils.tracking import find_tracker, fit_thresholds

HEAD = np.array([100, 100, 120, 120], float)  # 20 x 20 px


def tracker(name: str, tmp_path, **keys):
    """detect.py's twin of Ultralytics' tracker `name`, fitted to a count threshold of 0.5, with `keys` set."""
    path, _ = fit_thresholds(find_tracker(name), 0.5, tmp_path / name)
    cfg = {**YAML.load(path), **keys}
    return fast_tracker(
        {"bytetrack.yaml": BYTETracker, "ocsort.yaml": OCSORT}[name](args=IterableSimpleNamespace(**cfg))
    )


def ids(t, frames: list[np.ndarray]) -> list[list[int]]:
    """The IDs `t` outputs in each frame of boxes (N, 4), all scored 0.9."""
    img, out = np.zeros((320, 320, 3), np.uint8), []
    for xyxy in frames:
        data = np.column_stack([xyxy, np.full(len(xyxy), 0.9), np.zeros(len(xyxy))]).reshape(-1, 6)
        res = t.update(Boxes(torch.tensor(data, dtype=torch.float32), (320, 320)).cpu().numpy(), img)
        out.append(sorted(res[:, 4].astype(int).tolist()))
    return out


def occluded(shift: float) -> list[np.ndarray]:
    """A still head for 5 frames, hidden for 3, then back `shift` px to the right for 4 frames."""
    seen, back = np.array([HEAD]), np.array([HEAD + [shift, 0, shift, 0]])
    return [seen] * 5 + [np.zeros((0, 4))] * 3 + [back] * 4


@pytest.mark.parametrize("name", ["bytetrack.yaml", "ocsort.yaml"])
def test_relink_keeps_the_id_within_reach(name, tmp_path):
    """14 px off (IoU 6 * 20 / (800 - 120) = 0.18, below the 0.2 that match_thresh 0.8 asks): with relink_dist 1 (20 px
    of a 20-px head; the fitted default in sessions 16-20) the head keeps ID 1; with relinking off, and 30 px off even
    with it, it comes back as ID 2."""
    assert ids(tracker(name, tmp_path, relink_dist=1.0), occluded(14))[-1] == [1]
    assert ids(tracker(name, tmp_path, relink_dist=None), occluded(14))[-1] == [2]
    assert ids(tracker(name, tmp_path, relink_dist=1.0), occluded(30))[-1] == [2]


@pytest.mark.parametrize("name", ["bytetrack.yaml", "ocsort.yaml"])
def test_relink_takes_the_nearest_lost_track(name, tmp_path):
    """Two still heads 40 px apart, both hidden, then one box between them, 25 px from the first centre and 15 from the
    second: within reach of both (relink_dist 1.5, 30 px), it goes to the second (ID 2) and the first stays lost."""
    two = np.array([HEAD, HEAD + [40, 0, 40, 0]])
    between = np.array([HEAD + [25, 0, 25, 0]])
    frames = [two] * 5 + [np.zeros((0, 4))] * 3 + [between] * 3
    assert ids(tracker(name, tmp_path, relink_dist=1.5), frames)[-1] == [2]
    assert ids(tracker(name, tmp_path, relink_dist=1.0), frames)[-1] == [2]  # 25 px: out of the first one's reach
    assert ids(tracker(name, tmp_path, relink_dist=None), frames)[-1] == [3]


@pytest.mark.parametrize("name", ["bytetrack.yaml", "ocsort.yaml"])
def test_a_duplicate_of_a_tracked_head_continues_no_lost_track(name, tmp_path):
    """Head A tracked throughout, head B 30 px to its right hidden after frame 5; then a second box on A, 5 px off it
    (IoU 0.6 with A's), 25 px from B's centre, within B's reach at relink_dist 1.5: being a duplicate (it could not
    start a track under new_track_max_iou 0.2), it does not carry B on: only A's ID 1 is output. A box as far from B
    but clear of A (below A, IoU 0) does continue B (ID 2)."""
    a, b = HEAD, HEAD + [30, 0, 30, 0]
    frames = [np.array([a, b])] * 5 + [np.array([a])] * 2
    dup = np.array([a, a + [5, 0, 5, 0]])
    clear = np.array([a, b + [-15, 20, -15, 20]])  # centre 25 px from B's, overlapping nothing tracked
    keys = {"relink_dist": 1.5, "new_track_max_iou": 0.2}
    assert ids(tracker(name, tmp_path, **keys), frames + [dup] * 3)[-1] == [1]
    assert ids(tracker(name, tmp_path, **keys), frames + [clear] * 3)[-1] == [1, 2]


@pytest.mark.parametrize("name", ["bytetrack.yaml", "ocsort.yaml"])
def test_new_track_rules_see_this_frames_corrections(name, tmp_path):
    """The array twins correct a frame's matched tracks in batches, so the duplicate rule for new tracks must run after
    them. A head moving down 10 px a frame stops (its track predicted 7.5 px past it, corrected to 2.2 px past it)
    with a second box 10 px above it: IoU 0.24 with the corrected box, 0.07 with the prediction; it starts no track.
    A head back 14 px off after 3 frames hidden is relinked (ID 1) with a second box 6 px farther: clear of the
    track's prediction, overlapping where the relink corrected it; it starts no track either."""
    step = [0, 10, 0, 10]
    moving = [np.array([HEAD + np.multiply(step, k)]) for k in range(6)]
    stop = moving[-1][0]
    keys = {"relink_dist": None, "new_track_max_iou": 0.2}
    assert ids(tracker(name, tmp_path, **keys), moving + [np.array([stop, stop - step])] * 3)[-3:] == [[1]] * 3
    back = HEAD + [14, 0, 14, 0]
    frames = occluded(14)[:8] + [np.array([back, back + [6, 0, 6, 0]])] * 3
    assert ids(tracker(name, tmp_path, relink_dist=1.0, new_track_max_iou=0.2), frames)[-3:] == [[1]] * 3
