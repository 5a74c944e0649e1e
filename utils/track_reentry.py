"""Which matches of a tracker hand a head leaving the frame over to a head entering it at the same place.

A head walking out through a border of the frame ends there as a sliver (its box is clipped to the frame), and a head
entering at the same place starts as one. The two slivers overlap, so association by IoU continues the leaving head's
track on the entering head, and two people count as one. Tracking the true boxes of the densest 600-frame generated
videos, such hand-overs were about half of the people left without a track of their own (BENCHMARKS.md, session 22).
A single box cannot tell the two heads apart; the track's recent boxes can: they narrowed into a sliver at the
border, and the detection is wider again.
"""

from __future__ import annotations

import numpy as np

BORDER_PX = 2.0  # a box side this close to the frame's edge (pixels) touches it
SLIVER = 0.3  # a box narrower across a border than this share of its length along it is mostly out of the frame
OUT = np.array([-1, -1, 1, 1], np.float32)  # outward normal of the left, top, right and bottom borders, per xyxy side
ACROSS, ALONG = [0, 1, 0, 1], [1, 0, 1, 0]  # per border, the box's width or height across it, and along it


def reentries(recent: np.ndarray, seen: np.ndarray, det: np.ndarray, shape: tuple, growth: float) -> np.ndarray:
    """Which track-detection matches join a head that left through a border to one entering there.

    For one border: the narrowest of the track's recent boxes that touch it is a sliver (narrower across the border
    than SLIVER times its length along it); an earlier recent box was wider across it, and the detection, touching
    the border too, is wider again, each by more than `growth` times that length. A head that keeps leaving only
    narrows; one standing at the border narrows and widens by its boxes' jitter, within `growth`.

    Args:
        recent (np.ndarray): (N, K, 4) xyxy last observed boxes of the matched tracks, oldest first.
        seen (np.ndarray): (N, K) bool, which of those slots hold a box.
        det (np.ndarray): (N, 4) xyxy boxes of the detections they are matched to.
        shape (tuple): The frame's (height, width).
        growth (float): Narrowing before and widening after the sliver, in lengths along the border.

    Returns:
        (np.ndarray): (N,) bool, True where the detection is a new head entering where the track left.
    """
    edge = np.array([0, 0, shape[1], shape[0]], np.float32)
    size = recent[..., 2:] - recent[..., :2]
    across, along = size[..., ACROSS], size[..., ALONG]  # (N, K, 4): per box and border
    touching = ((recent - edge) * OUT >= -BORDER_PX) & seen[..., None]
    narrowest = np.argmin(np.where(touching, across, np.inf), 1)[:, None]  # (N, 1, 4)
    low, length = np.take_along_axis(across, narrowest, 1)[:, 0], np.take_along_axis(along, narrowest, 1)[:, 0]
    earlier = seen[..., None] & (np.arange(recent.shape[1])[None, :, None] < narrowest)
    before = np.where(earlier, across, -np.inf).max(1)
    det_across = (det[:, 2:] - det[:, :2])[:, ACROSS]
    sliver = touching.any(1) & (low < SLIVER * length)
    narrowed, widened = before - low > growth * length, det_across - low > growth * length
    return (sliver & narrowed & widened & ((det - edge) * OUT >= -BORDER_PX)).any(1)
