"""Which matches of a tracker hand a head leaving the frame over to a head entering it at the same place.

A head walking out through a border of the frame ends there as a sliver (its box is clipped to the frame), and a head
entering at the same place starts as one. The two slivers overlap, so association by IoU continues the leaving head's
track on the entering head, and two people count as one. Tracking the true boxes of 600-frame generated videos, such
hand-overs were the largest part of the people left without a track of their own on the densest videos (BENCHMARKS.md,
session 22). A single box cannot tell the two heads apart; their motion can: the leaving track was heading out
through the border, and the entering head's box grows across it.
"""

from __future__ import annotations

import numpy as np

BORDER_PX = 2.0  # a box side this close to the frame's edge (pixels) touches it
SLIVER = 0.3  # a box narrower across a border than this share of its length along it is mostly out of the frame
OUTWARD = 0.5  # cos 60 degrees: a heading this close to a border's outward normal leaves through it
OUT = np.array([-1, -1, 1, 1], np.float32)  # outward normal of the left, top, right and bottom borders, per xyxy side


def reentries(prev: np.ndarray, det: np.ndarray, heading: np.ndarray, shape: tuple, growth: float) -> np.ndarray:
    """Which track-detection matches join a head that was leaving through a border to one entering there.

    For one border: the track's last observed box `prev` touches it as a sliver (narrower across the border than
    SLIVER times its length along it), the track's heading points out through it (within 60 degrees), and the
    detection `det` touches it too and is wider across it than `prev` by more than `growth` times that length. A head
    that keeps leaving only narrows; a head standing at the border has no heading out of it.

    Args:
        prev (np.ndarray): (N, 4) xyxy last observed boxes of the matched tracks.
        det (np.ndarray): (N, 4) xyxy boxes of the detections they are matched to.
        heading (np.ndarray): (N, 2) the tracks' directions of motion (unit vectors; zero where unknown).
        shape (tuple): The frame's (height, width).
        growth (float): Widening across the border, in lengths along it, that makes the detection a new head.

    Returns:
        (np.ndarray): (N,) bool, True where the detection is a new head entering where the track left.
    """
    edge = np.array([0, 0, shape[1], shape[0]], np.float32)
    size_prev, size_det = prev[:, 2:] - prev[:, :2], det[:, 2:] - det[:, :2]  # (N, 2) width, height
    across, along = [0, 1, 0, 1], [1, 0, 1, 0]  # per border: width across left/right, height across top/bottom
    touch = ((prev - edge) * OUT >= -BORDER_PX) & ((det - edge) * OUT >= -BORDER_PX)
    sliver = size_prev[:, across] < SLIVER * size_prev[:, along]
    leaving = np.tile(heading, 2) * OUT > OUTWARD
    grew = size_det[:, across] - size_prev[:, across] > growth * size_prev[:, along]
    return (touch & sliver & leaving & grew).any(1)
