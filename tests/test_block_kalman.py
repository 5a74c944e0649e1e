"""utils/block_kalman.py: the XYAH Kalman filter on 2x2 covariance blocks gives, to the bit, Ultralytics' initiation
and prediction and the full-matrix batched correction, over a long run of predictions and partial corrections; a
hand-computed correction; and the blocks expand to the 8x8 matrix they stand for."""

from __future__ import annotations

import numpy as np
from ultralytics.trackers.utils.kalman_filter import KalmanFilterXYAH

from utils.batched_tracker import multi_update
from utils.block_kalman import full, initiate, predict, update


def test_blocks_expand_to_their_matrix():
    """Entry (a, b, d) of the blocks is row a*4+d, column b*4+d of the matrix; everything else is zero."""
    cov = np.arange(16.0).reshape(1, 2, 2, 4) + 1
    m = full(cov)[0]
    assert m[1, 1] == cov[0, 0, 0, 1] and m[1, 5] == cov[0, 0, 1, 1] and m[7, 3] == cov[0, 1, 0, 3]
    assert m[6, 6] == cov[0, 1, 1, 2] and np.count_nonzero(m) == 16 and m[0, 1] == 0 and m[0, 5] == 0


def test_a_run_equals_ultralytics_to_the_bit():
    """300 tracks, 60 frames: each frame predicted (Ultralytics' multi_predict) and about two in three corrected
    (the full-matrix batched correction); the block filter's means and covariances stay bit-identical."""
    kf, rng = KalmanFilterXYAH(), np.random.default_rng(0)
    n = 300
    z = np.c_[rng.uniform(0, 640, (n, 2)), rng.uniform(0.5, 1.5, n), rng.uniform(5, 60, n)]
    mean, cov = initiate(kf, z)
    one = [kf.initiate(x) for x in z]
    ref_mean, ref_cov = np.stack([m for m, _ in one]), np.stack([c for _, c in one])
    assert (mean == ref_mean).all() and (full(cov) == ref_cov).all()
    for _ in range(60):
        mean, cov = predict(kf, mean, cov)
        ref_mean, ref_cov = kf.multi_predict(ref_mean, ref_cov)
        assert (mean == ref_mean).all() and (full(cov) == ref_cov).all()
        seen = rng.random(n) < 0.7
        z = mean[seen, :4] + rng.normal(0, 2, (seen.sum(), 4)) * [1, 1, 0.01, 1]
        mean[seen], cov[seen] = update(kf, mean[seen], cov[seen], z)
        ref_mean[seen], ref_cov[seen] = multi_update(kf, ref_mean[seen], ref_cov[seen], z)
        assert (mean == ref_mean).all() and (full(cov) == ref_cov).all()


def test_correction_by_hand():
    """One track of height 20 (position noise weight 1/20: measurement variance 1, aspect 0.01), covariance blocks
    [[4, 2], [2, 3]] in every coordinate: gain 4/5 and 2/5 (4/4.01 and 2/4.01 for the aspect), measurement 5 above
    the mean in x."""
    kf = KalmanFilterXYAH()
    mean = np.array([[10.0, 20, 1, 20, 0, 0, 0, 0]])
    cov = np.broadcast_to(np.array([[4.0], [2], [2], [3]]).reshape(2, 2, 1), (1, 2, 2, 4)).copy()
    z = np.array([[15.0, 20, 1, 20]])
    m, c = update(kf, mean, cov, z)
    np.testing.assert_allclose(m[0], [14, 20, 1, 20, 2, 0, 0, 0])
    np.testing.assert_allclose(c[0, :, :, 0], [[4 - 16 / 5, 2 - 8 / 5], [2 - 8 / 5, 3 - 4 / 5]])
    np.testing.assert_allclose(c[0, 0, 0, 2], 4 - 16 / 4.01)
