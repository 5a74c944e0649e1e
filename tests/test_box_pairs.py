"""utils/box_pairs.py: the overlapping pairs are exactly the non-zero entries of Ultralytics' dense IoU matrix, with
its values to the bit; by hand on touching, nested and far boxes."""

from __future__ import annotations

import numpy as np
import pytest
from ultralytics.utils.metrics import bbox_ioa

from utils.box_pairs import overlapping_pairs


def random_boxes(rng, n: int, size: float = 640) -> np.ndarray:
    """n boxes of 8-40 px anywhere in a square."""
    xy = rng.uniform(0, size, (n, 2))
    return np.concatenate([xy, xy + rng.uniform(8, 40, (n, 2))], 1).astype(np.float32)


@pytest.mark.parametrize("n, m", [(300, 280), (40, 1), (1, 40), (0, 7), (7, 0)])
def test_pairs_are_the_dense_iou_matrix(n, m):
    """Random crowds: the same pairs as bbox_ioa's entries above 0, the same IoU values, rows ascending."""
    rng = np.random.default_rng(n + m)
    a, b = random_boxes(rng, n), random_boxes(rng, m)
    i, j, iou = overlapping_pairs(a, b)
    dense = bbox_ioa(a, b, iou=True) if n and m else np.zeros((n, m), np.float32)
    assert sorted(zip(i.tolist(), j.tolist())) == sorted(map(tuple, np.argwhere(dense > 0).tolist()))
    assert (iou == dense[i, j]).all() and (np.diff(i) >= 0).all() and iou.dtype == np.float32
    if n > 100:
        assert 0 < len(i) < 0.01 * n * m  # a crowd: few pairs overlap


def test_pairs_by_hand():
    """A 10 x 10 box against: one sharing only an edge (no pair), one shifted by 5 px (IoU 50 / 150), one inside it
    (IoU 4 / 100), one far away, and a wide box whose left edge lies far to the left of the first box's."""
    a = np.array([[0, 0, 10, 10]], np.float32)
    b = np.array([[10, 0, 20, 10], [5, 0, 15, 10], [2, 2, 4, 4], [300, 300, 310, 310], [-200, 0, 1, 10]], np.float32)
    _, j, iou = overlapping_pairs(a, b)
    got = dict(zip(j.tolist(), iou.tolist()))
    assert got.keys() == {1, 2, 4}
    np.testing.assert_allclose([got[1], got[2], got[4]], [50 / 150, 4 / 100, 10 / 2100], rtol=1e-6)
