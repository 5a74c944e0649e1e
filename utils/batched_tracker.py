"""Ultralytics' BoT-SORT with the Kalman corrections of a frame done in one batch, and the batched Kalman and motion
helpers of utils/array_tracker.py's ByteTrack and OC-SORT.

Profiling `BYTETracker.update` on a generated crowd of 370 heads per frame put half of its time in the Kalman
correction, which Ultralytics runs track by track (`STrack.update` -> `KalmanFilterXYAH.update`: a 4x4 solve and a few
small products per track). Here the matched tracks of an association stage are corrected together with batched
numpy (the same equations), and each track is then updated by Ultralytics' own `STrack.update` / `re_activate`,
handed its precomputed result. Association, track life cycle and outputs are Ultralytics' unchanged, except that a
YAML with `new_track_max_iou` keeps duplicate detections from starting tracks (utils/track_births.py). ByteTrack and
OC-SORT go further, with no Python object per track (utils/array_tracker.py).
"""

from __future__ import annotations

import numpy as np
from ultralytics.trackers.bot_sort import BOTSORT
from ultralytics.trackers.utils.kalman_filter import KalmanFilterXYAH, KalmanFilterXYWH

from utils.track_births import DuplicateBirths

DIAG4 = np.arange(4)


def measurement_std(kf: KalmanFilterXYAH, mean: np.ndarray) -> np.ndarray:
    """Measurement noise standard deviations (N, 4) of `kf.project` for N states: scaled by the box height, and by
    its width for the XYWH filter; the aspect ratio of XYAH has a fixed 0.1."""
    p = kf._std_weight_position
    if isinstance(kf, KalmanFilterXYWH):
        return p * mean[:, [2, 3, 2, 3]]
    return mean[:, 3:4] * np.array([p, p, 0, p]) + np.array([0, 0, 1e-1, 0])


def measurements(kf: KalmanFilterXYAH, tlwh: np.ndarray) -> np.ndarray:
    """Boxes (N, 4) left, top, width, height as the filter measures them: centre x, y and aspect, height (XYAH) or
    width, height (XYWH); `STrack.convert_coords` / `BOTrack.convert_coords` for N boxes, in the boxes' precision."""
    z = tlwh.copy()
    z[:, :2] += z[:, 2:] / 2
    if not isinstance(kf, KalmanFilterXYWH):
        z[:, 2] /= z[:, 3]
    return z


def multi_update(kf: KalmanFilterXYAH, mean: np.ndarray, covariance: np.ndarray, measurement: np.ndarray):
    """Kalman correction of N states at once, as `kf.update` does for one (no confidence scaling).

    Args:
        kf (KalmanFilterXYAH): The filter (XYAH or XYWH) whose noise model applies.
        mean (np.ndarray): State means (N, 8).
        covariance (np.ndarray): State covariances (N, 8, 8).
        measurement (np.ndarray): Measurements (N, 4) in the filter's box coordinates.

    Returns:
        (tuple[np.ndarray, np.ndarray]): Corrected means (N, 8) and covariances (N, 8, 8).
    """
    s = covariance[:, :4, :4].copy()  # H P H' + R
    s[:, DIAG4, DIAG4] += np.square(measurement_std(kf, mean))
    gain_t = np.linalg.solve(s, covariance[:, :4])  # S^-1 H P, the gain K = P H' S^-1 transposed (S, P symmetric)
    new_mean = mean + np.einsum("ni,nij->nj", measurement - mean[:, :4], gain_t)
    new_cov = covariance - covariance[:, :, :4] @ gain_t  # P - K S K' = P - P H' S^-1 H P
    return new_mean, new_cov


class _Solved:
    """Stands in for a track's Kalman filter for one call: returns the correction computed in the batch."""

    def __init__(self, mean: np.ndarray, covariance: np.ndarray):
        """Hold one track's corrected state."""
        self.mean, self.covariance = mean, covariance

    def update(self, mean, covariance, measurement, confidence=None):
        """Return the precomputed correction (the arguments were the batch's inputs)."""
        return self.mean, self.covariance


class BatchedKalman:
    """Mixin for Ultralytics' BYTETracker family: one batched Kalman correction per association stage."""

    def _apply_matches(self, matches, pool, detections, activated, refind) -> None:
        """Correct every matched track in one batch, then let Ultralytics update each one with its result."""
        matches = np.asarray(matches, dtype=np.int64).reshape(-1, 2)
        if len(matches) < 2:
            return super()._apply_matches(matches, pool, detections, activated, refind)
        tracks, dets = [pool[i] for i in matches[:, 0]], [detections[j] for j in matches[:, 1]]
        mean = np.stack([t.mean for t in tracks])
        cov = np.stack([t.covariance for t in tracks])
        z = measurements(self.kalman_filter, np.stack([d.tlwh for d in dets]))
        means, covs = multi_update(self.kalman_filter, mean, cov, z)
        for t, d, m, c in zip(tracks, dets, means, covs):
            own, t.kalman_filter = t.kalman_filter, _Solved(m, c)
            try:
                self._apply_match(t, d, activated, refind)
            finally:
                t.kalman_filter = own


class BatchedBOTSORT(DuplicateBirths, BatchedKalman, BOTSORT):
    """BoT-SORT with batched Kalman corrections."""


def direction_cost(origins: np.ndarray, velocity: np.ndarray, targets: np.ndarray) -> np.ndarray:
    """OC-SORT's momentum cost: the angle between a track's direction of motion and the direction from its last
    observed centre to a detection's centre, over pi (0 straight ahead, 1 straight back).

    Args:
        origins (np.ndarray): (..., 2) float32 last observed centres of the tracks.
        velocity (np.ndarray): (..., 2) float32 unit (or zero) directions of motion, broadcastable with origins.
        targets (np.ndarray): (..., 2) float32 detection centres, broadcastable with origins.

    Returns:
        (np.ndarray): (...) float32 costs, the broadcast shape; 0 where a detection sits on the track's centre.
    """
    d = targets - origins
    norm = np.linalg.norm(d, axis=-1)
    valid = norm > 1e-6
    dots = (d * velocity).sum(-1) / np.where(valid, norm, 1)
    return np.where(valid, np.arccos(np.clip(dots, -1.0, 1.0)) / np.pi, 0).astype(np.float32)
