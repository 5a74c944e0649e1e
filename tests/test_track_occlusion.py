"""utils/array_tracker.py `keep_occluded`: a head that walks behind another keeps its lost track, rather than losing it
(or the visible head's) as a duplicate of the other (ByteTrack and OC-SORT twins)."""

from __future__ import annotations

import numpy as np
import pytest

from tests.test_track_relink import ids, tracker

STILL = [150.0, 100, 170, 120]  # a 20-px head standing still


def behind(still_from: int = 1, frames: int = 40) -> list[np.ndarray]:
    """A still head (seen from frame `still_from`) and a 20-px head walking right at 2 px a frame from x1 = 100,
    undetected while its box lies less than 14 px from the still one's: frames 20-32, where its predicted box,
    coasting, overlaps the still head's by IoU up to 1. The still head is listed first."""
    out = []
    for k in range(1, frames + 1):
        x1 = 100.0 + 2 * (k - 1)
        walker = [[x1, 100, x1 + 20, 120]] if abs(x1 - STILL[0]) >= 14 else []
        out.append(np.array(([STILL] if k >= still_from else []) + walker).reshape(-1, 4))
    return out


@pytest.mark.parametrize("name", ["bytetrack.yaml", "ocsort.yaml"])
def test_a_head_hidden_behind_an_older_one_comes_back_with_its_id(name, tmp_path):
    """The walker (ID 2) is younger than the still head (ID 1): Ultralytics' duplicate removal drops its lost track
    as it passes behind, and it comes out as ID 3, a second person; with the rule (the fitted default) it is ID 2."""
    base = ids(tracker(name, tmp_path, keep_occluded=False), behind())
    out = ids(tracker(name, tmp_path), behind())
    assert base[:19] == out[:19] == [[1, 2]] * 19
    assert out[19:32] == [[1]] * 13
    assert base[-1] == [1, 3]
    assert out[-1] == [1, 2]


@pytest.mark.parametrize("name", ["bytetrack.yaml", "ocsort.yaml"])
def test_a_head_hidden_behind_a_younger_one_does_not_take_its_id(name, tmp_path):
    """The walker (ID 1) is older than the still head (ID 2, from frame 12): Ultralytics drops the still head's track
    instead, its next detection continues ID 1, and the walker comes out as ID 3; with the rule both keep theirs."""
    base = ids(tracker(name, tmp_path, keep_occluded=False), behind(still_from=12))
    out = ids(tracker(name, tmp_path), behind(still_from=12))
    assert base[-1] == [1, 3]
    assert out[19:32] == [[2]] * 13
    assert out[-1] == [1, 2]
