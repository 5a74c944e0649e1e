"""Ultralytics' XYAH Kalman filter (`KalmanFilterXYAH`) for many tracks at once, each covariance held as its four
2x2 blocks.

The filter's motion (constant velocity per coordinate), its noise (diagonal) and its measurement (the four
positions) never couple two coordinates: a covariance that starts diagonal (`initiate`) keeps zeros outside the
(position, velocity) block of each coordinate x, y, aspect, height through every prediction and correction. So a
track's 8x8 covariance is stored as (2, 2, 4): `cov[:, a, b, d]` is the entry of row a*4+d, column b*4+d (a, b: 0
position, 1 velocity; d: coordinate). The 4x4 solve of the correction becomes a division per coordinate, and a
frame's predictions and corrections are a dozen elementwise operations on (N, 4) arrays instead of batched 8x8 matrix
products. The arithmetic is that of the full matrices with the zero terms left out, so the results are the same to
the bit (tests/test_block_kalman.py: against `KalmanFilterXYAH.multi_predict` and the batched full-matrix correction
`utils.batched_tracker.multi_update`).
"""

from __future__ import annotations

import numpy as np
from ultralytics.trackers.utils.kalman_filter import KalmanFilterXYAH


def initiate(kf: KalmanFilterXYAH, z: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """`kf.initiate` for N measurements (N, 4) x, y, aspect, height: means (N, 8) and block covariances (N, 2, 2, 4)."""
    z = z.astype(np.float64)
    h, p, v = z[:, 3:4], kf._std_weight_position, kf._std_weight_velocity
    cov = np.zeros((len(z), 2, 2, 4))
    cov[:, 0, 0] = np.square(h * np.array([2 * p, 2 * p, 0, 2 * p]) + np.array([0, 0, 1e-2, 0]))
    cov[:, 1, 1] = np.square(h * np.array([10 * v, 10 * v, 0, 10 * v]) + np.array([0, 0, 1e-5, 0]))
    return np.concatenate([z, np.zeros_like(z)], 1), cov


def predict(kf: KalmanFilterXYAH, mean: np.ndarray, cov: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """`kf.multi_predict` (unit time step) of means (N, 8) and block covariances (N, 2, 2, 4): P' = F P F' + Q with
    F = [[I, I], [0, I]], the sums in the order the full matrix products make them."""
    p, v = kf._std_weight_position, kf._std_weight_velocity
    h = mean[:, 3:4]
    q_pos = np.square(h * np.array([p, p, 0, p]) + np.array([0, 0, 1e-2, 0]))  # motion noise, scaled by height
    q_vel = np.square(h * np.array([v, v, 0, v]) + np.array([0, 0, 1e-5, 0]))
    pp, pv, vp, vv = cov[:, 0, 0], cov[:, 0, 1], cov[:, 1, 0], cov[:, 1, 1]
    out = np.empty_like(cov)
    out[:, 0, 0] = (pp + vp) + (pv + vv) + q_pos
    out[:, 0, 1] = pv + vv
    out[:, 1, 0] = vp + vv
    out[:, 1, 1] = vv + q_vel
    mean = mean.copy()
    mean[:, :4] += mean[:, 4:]
    return mean, out


def update(kf: KalmanFilterXYAH, mean: np.ndarray, cov: np.ndarray, z: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """`kf.update` (no confidence scaling) of means (N, 8) and block covariances (N, 2, 2, 4) by measurements (N, 4):
    innovation variance s = P_pp + R per coordinate, gain P[position, :] / s, P' = P - P H' S^-1 H P."""
    p = kf._std_weight_position
    r = np.square(mean[:, 3:4] * np.array([p, p, 0, p]) + np.array([0, 0, 1e-1, 0]))  # measurement noise
    pp, pv, vp, vv = cov[:, 0, 0], cov[:, 0, 1], cov[:, 1, 0], cov[:, 1, 1]
    inv_s = 1 / (pp + r)  # LAPACK's solve multiplies by the pivot's reciprocal: the same bits as the full matrices
    g_pos, g_vel = pp * inv_s, pv * inv_s
    innovation = z - mean[:, :4]
    new_mean = np.concatenate([mean[:, :4] + innovation * g_pos, mean[:, 4:] + innovation * g_vel], 1)
    new_cov = np.empty_like(cov)
    new_cov[:, 0, 0] = pp - pp * g_pos
    new_cov[:, 0, 1] = pv - pp * g_vel
    new_cov[:, 1, 0] = vp - vp * g_pos
    new_cov[:, 1, 1] = vv - vp * g_vel
    return new_mean, new_cov


def full(cov: np.ndarray) -> np.ndarray:
    """The 8x8 covariances (N, 8, 8) of block covariances (N, 2, 2, 4)."""
    out = np.zeros((len(cov), 8, 8))
    d = np.arange(4)
    for a in range(2):
        for b in range(2):
            out[:, a * 4 + d, b * 4 + d] = cov[:, a, b]
    return out
