"""The pairs of overlapping boxes between two sets, found without the dense matrix of every pair.

A tracker compares every track with every detection by IoU, but in a crowd a head's box overlaps only its few
neighbours: at 300 heads a frame, about 2 % of the 90,000 pairs. Sorting one set by left edge, each box of the other
set finds its candidates with two binary searches (a box can only overlap boxes whose left edge lies within the
widest box's width of its own); the IoU is then computed on the candidates alone, with `bbox_ioa`'s arithmetic.
"""

from __future__ import annotations

import numpy as np


def overlapping_pairs(a: np.ndarray, b: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Every pair of boxes of `a` and `b` whose intersection has a positive area, with its IoU.

    Args:
        a (np.ndarray): (N, 4) boxes x1, y1, x2, y2.
        b (np.ndarray): (M, 4) boxes x1, y1, x2, y2.

    Returns:
        (tuple[np.ndarray, np.ndarray, np.ndarray]): Indices into `a` (ascending) and into `b` of the pairs, and
            their IoU as float32, equal to `bbox_ioa(a, b, iou=True)` at those pairs.
    """
    a, b = a.astype(np.float32, copy=False), b.astype(np.float32, copy=False)
    if not len(a) or not len(b):
        return np.zeros(0, np.int64), np.zeros(0, np.int64), np.zeros(0, np.float32)
    order = np.argsort(b[:, 0], kind="stable")
    left = b[order, 0]
    reach = float((b[:, 2] - b[:, 0]).max()) + 1  # + 1: float rounding of the edges
    lo = np.searchsorted(left, a[:, 0] - reach)
    n = np.maximum(np.searchsorted(left, a[:, 2]) - lo, 0)  # candidates: left edges in [x1 - reach, x2)
    i = np.repeat(np.arange(len(a)), n)
    j = order[np.arange(n.sum()) + np.repeat(lo - np.cumsum(n) + n, n)]
    ih = np.minimum(a[i, 3], b[j, 3]) - np.maximum(a[i, 1], b[j, 1])  # the overlap in y first: few candidates have it
    keep = ih > 0
    i, j, ih = i[keep], j[keep], ih[keep]
    iw = np.minimum(a[i, 2], b[j, 2]) - np.maximum(a[i, 0], b[j, 0])
    keep = iw > 0
    i, j, inter = i[keep], j[keep], iw[keep] * ih[keep]  # bbox_ioa's clipped product where both are positive
    area_a = (a[:, 2] - a[:, 0]) * (a[:, 3] - a[:, 1])
    area_b = (b[:, 2] - b[:, 0]) * (b[:, 3] - b[:, 1])
    return i, j, inter / (area_b[j] + area_a[i] - inter + np.float32(1e-7))
