"""utils/array_tracker.py `drop_exited`: a track whose head walked out of the frame ends, so the next person entering
there starts a track of their own (ByteTrack and OC-SORT twins); a head still in the frame keeps its lost track."""

from __future__ import annotations

import numpy as np
import pytest

from tests.test_track_relink import ids, tracker

SIZE = 320  # the frames of tests.test_track_relink.ids


def clipped(x1: np.ndarray, y1: float = 100.0, side: float = 20.0) -> list[np.ndarray]:
    """One head box per frame with left edges `x1`, clipped to the frame as a detector's box is; no box once it is
    wholly outside."""
    boxes = np.column_stack([x1, np.full(len(x1), y1), x1 + side, np.full(len(x1), y1 + side)]).clip(0, SIZE)
    return [b[None] if b[2] - b[0] > 0 else np.zeros((0, 4)) for b in boxes]


def exit_then_entry(gap: int) -> list[np.ndarray]:
    """A 20-px head walking right at 2 px a frame out of the right edge (last seen at frame 15, a 2-px sliver), then,
    `gap` frames later, another entering at the same place, walking left at 2 px a frame for 8 frames."""
    leaving = clipped(np.arange(290.0, 320.0, 2.0))  # 15 frames in view
    entering = clipped(np.arange(318.0, 302.0, -2.0))
    return leaving + [np.zeros((0, 4))] * gap + entering


@pytest.mark.parametrize("name", ["bytetrack.yaml", "ocsort.yaml"])
def test_a_track_that_left_the_frame_does_not_take_over_a_newcomer(name, tmp_path):
    """Without the rule the lost track, kept 30 frames, takes the newcomer 6 frames later (ID 1 again: two people
    counted as one); with it (the fitted default) the newcomer is ID 2. The leaving head keeps ID 1 while in view.
    Relinking is on, as it was when the rule came: without it ByteTrack's lost track takes neither the last sliver nor
    the newcomer (OC-SORT's recovery on last observations still takes both). `reentry_growth` is off: it would split
    the widening newcomer from the lost track itself (tests/test_track_reentry.py)."""
    base = ids(tracker(name, tmp_path, drop_exited=False, relink_dist=1.0, reentry_growth=None), exit_then_entry(6))
    out = ids(tracker(name, tmp_path, relink_dist=1.0, reentry_growth=None), exit_then_entry(6))
    assert base[:15] == out[:15] == [[1]] * 15
    assert base[-1] == [1]
    assert out[-1] == [2]


@pytest.mark.parametrize("name", ["bytetrack.yaml", "ocsort.yaml"])
def test_a_head_at_the_border_missed_for_a_frame_keeps_its_id(name, tmp_path):
    """A still head cut by the right edge (box 305-320, touching it; centre 7.5 px inside), not detected for 3 frames:
    its predicted centre is in the frame, so its track waits and takes it back (ID 1), rule on or off."""
    head = np.array([[305.0, 100, 320, 120]])
    frames = [head] * 5 + [np.zeros((0, 4))] * 3 + [head] * 3
    for keys in ({}, {"drop_exited": False}):
        assert ids(tracker(name, tmp_path, **keys), frames)[-1] == [1]


def test_without_a_frame_size_nothing_is_dropped(tmp_path):
    """Detections with no `orig_shape` (a tracker fed bare arrays) give no frame to leave: the rule does nothing."""
    t = tracker("ocsort.yaml", tmp_path)
    mean = np.zeros((3, 8))
    mean[:, :2] = [[-5, 10], [400, 10], [SIZE, SIZE]]  # left of the frame, right of it, on its corner
    assert t._exited(mean, None).tolist() == [False, False, False]
    assert t._exited(mean, (SIZE, SIZE)).tolist() == [True, True, False]
