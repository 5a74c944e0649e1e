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

from functools import lru_cache

import numpy as np
from ultralytics.trackers.utils.kalman_filter import KalmanFilterXYAH


def noise_std(kf: KalmanFilterXYAH, h: np.ndarray, pos: float, vel: float, aspect: tuple[float, float]) -> np.ndarray:
    """Standard deviations (N, 2, 4) of position and velocity noise: `pos` and `vel` times the filter's weights times
    the box heights `h` (N,), the aspect's fixed (position, velocity) values instead of scaling."""
    scale, offset = _noise_terms(kf._std_weight_position, kf._std_weight_velocity, pos, vel, aspect)
    return h[:, None, None] * scale + offset


@lru_cache
def _noise_terms(p: float, v: float, pos: float, vel: float, aspect: tuple[float, float]) -> tuple[np.ndarray, ...]:
    """The height factors and the fixed terms (2, 4) of `noise_std`, built once per filter and noise kind (each
    ORU step of a lost track found again predicts and corrects)."""
    scale = np.array([[pos * p] * 2 + [0, pos * p], [vel * v] * 2 + [0, vel * v]])
    return scale, np.array([[0, 0, aspect[0], 0], [0, 0, aspect[1], 0]])


def initiate(kf: KalmanFilterXYAH, z: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """`kf.initiate` for N measurements (N, 4) x, y, aspect, height: means (N, 8) and block covariances (N, 2, 2, 4)."""
    z = z.astype(np.float64)
    var = np.square(noise_std(kf, z[:, 3], 2, 10, (1e-2, 1e-5)))
    cov = np.zeros((len(z), 2, 2, 4))
    cov[:, 0, 0], cov[:, 1, 1] = var[:, 0], var[:, 1]
    return np.concatenate([z, np.zeros_like(z)], 1), cov


def predict(kf: KalmanFilterXYAH, mean: np.ndarray, cov: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """`kf.multi_predict` (unit time step) of means (N, 8) and block covariances (N, 2, 2, 4): P' = F P F' + Q with
    F = [[I, I], [0, I]], the sums in the order the full matrix products make them."""
    q = np.square(noise_std(kf, mean[:, 3], 1, 1, (1e-2, 1e-5)))  # motion noise, scaled by height
    fp = cov.copy()
    fp[:, 0] += cov[:, 1]  # F P: velocity rows added to position rows
    fpf = fp.copy()
    fpf[:, :, 0] += fp[:, :, 1]  # (F P) F': velocity columns added to position columns
    fpf[:, 0, 0] += q[:, 0]
    fpf[:, 1, 1] += q[:, 1]
    mean = mean.copy()
    mean[:, :4] += mean[:, 4:]
    return mean, fpf


def update(kf: KalmanFilterXYAH, mean: np.ndarray, cov: np.ndarray, z: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """`kf.update` (no confidence scaling) of means (N, 8) and block covariances (N, 2, 2, 4) by measurements (N, 4):
    innovation variance s = P_pp + R per coordinate, gain (transposed) S^-1 H P = P[position] / s, and
    P' = P - P H' S^-1 H P."""
    r = np.square(noise_std(kf, mean[:, 3], 1, 0, (1e-1, 0))[:, 0])  # measurement noise
    inv_s = 1 / (cov[:, 0, 0] + r)  # LAPACK's solve multiplies by the pivot's reciprocal: the same bits as the full
    gain = cov[:, 0] * inv_s[:, None]  # (N, 2, 4): position and velocity gains
    innovation = (z - mean[:, :4])[:, None]
    new_mean = (mean.reshape(-1, 2, 4) + innovation * gain).reshape(-1, 8)
    return new_mean, cov - cov[:, :, :1] * gain[:, None]


def full(cov: np.ndarray) -> np.ndarray:
    """The 8x8 covariances (N, 8, 8) of block covariances (N, 2, 2, 4)."""
    out = np.zeros((len(cov), 8, 8))
    d = np.arange(4)
    for a in range(2):
        for b in range(2):
            out[:, a * 4 + d, b * 4 + d] = cov[:, a, b]
    return out
