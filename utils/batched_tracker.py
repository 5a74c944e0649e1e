"""Ultralytics' ByteTrack, BoT-SORT and OC-SORT with the Kalman corrections of a frame done in one batch.

Profiling `BYTETracker.update` on a generated crowd of 370 heads per frame put half of its time in the Kalman
correction, which Ultralytics runs track by track (`STrack.update` -> `KalmanFilterXYAH.update`: a 4x4 solve and a few
small products per track). Here the matched tracks of an association stage are corrected together with batched
numpy (the same equations), and each track is then updated by Ultralytics' own `STrack.update` / `re_activate`,
handed its precomputed result. Association, track life cycle and outputs are Ultralytics' unchanged, except that a
YAML with `new_track_max_iou` keeps duplicate detections from starting tracks (utils/track_births.py).

OC-SORT's momentum cost (OCM), which Ultralytics computes track by track and which led its profile on a dense crowd,
is here one broadcast over all track-detection pairs.
"""

from __future__ import annotations

import numpy as np
from ultralytics.trackers.bot_sort import BOTSORT
from ultralytics.trackers.byte_tracker import BYTETracker
from ultralytics.trackers.oc_sort import OCSORT
from ultralytics.trackers.utils import matching
from ultralytics.trackers.utils.kalman_filter import KalmanFilterXYAH, KalmanFilterXYWH
from ultralytics.utils.ops import xyxy2xywh

from utils.track_births import DuplicateBirths


def measurement_std(kf: KalmanFilterXYAH, mean: np.ndarray) -> np.ndarray:
    """Measurement noise standard deviations (N, 4) of `kf.project` for N states: scaled by the box height, and by
    its width for the XYWH filter; the aspect ratio of XYAH has a fixed 0.1."""
    p = kf._std_weight_position
    if isinstance(kf, KalmanFilterXYWH):
        return p * mean[:, [2, 3, 2, 3]]
    h = p * mean[:, 3]
    return np.stack([h, h, np.full_like(h, 1e-1), h], 1)


def measurements(kf: KalmanFilterXYAH, tlwh: np.ndarray) -> np.ndarray:
    """Boxes (N, 4) left, top, width, height as the filter measures them: centre x, y and aspect, height (XYAH) or
    width, height (XYWH); `STrack.convert_coords` / `BOTrack.convert_coords` for N boxes."""
    z = tlwh.astype(np.float64).copy()
    z[:, :2] += z[:, 2:] / 2
    if not isinstance(kf, KalmanFilterXYWH):
        z[:, 2] /= z[:, 3]
    return z


def boxes_xyxy(tracks: list) -> np.ndarray:
    """Boxes (N, 4) x1, y1, x2, y2 of STracks: from the Kalman state (XYAH) of tracks, the detected box of detections
    (no state yet); what `STrack.xyxy` gives one by one."""
    if not tracks:
        return np.zeros((0, 4))
    has_state = np.array([t.mean is not None for t in tracks])
    out = np.zeros((len(tracks), 4))
    if has_state.any():
        xyah = np.stack([t.mean[:4] for t, s in zip(tracks, has_state) if s])
        wh = np.stack([xyah[:, 2] * xyah[:, 3], xyah[:, 3]], 1)
        out[has_state] = np.concatenate([xyah[:, :2] - wh / 2, xyah[:, :2] + wh / 2], 1)
    if not has_state.all():
        tlwh = np.stack([t._tlwh for t, s in zip(tracks, has_state) if not s])
        out[~has_state] = np.concatenate([tlwh[:, :2], tlwh[:, :2] + tlwh[:, 2:]], 1)
    return out


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
    s[:, range(4), range(4)] += np.square(measurement_std(kf, mean))
    gain = np.linalg.solve(s, covariance[:, :, :4].transpose(0, 2, 1)).transpose(0, 2, 1)  # P H' S^-1, (N, 8, 4)
    new_mean = mean + np.einsum("nij,nj->ni", gain, measurement - mean[:, :4])
    new_cov = covariance - gain @ s @ gain.transpose(0, 2, 1)
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


class BatchedBYTETracker(DuplicateBirths, BatchedKalman, BYTETracker):
    """ByteTrack with batched Kalman corrections and IoU costs from stacked boxes."""

    def get_dists(self, tracks: list, detections: list) -> np.ndarray:
        """IoU distances (fused with scores when set) as Ultralytics computes them, boxes gathered in one pass."""
        dists = matching.iou_distance(list(boxes_xyxy(tracks)), list(boxes_xyxy(detections)))
        return matching.fuse_score(dists, detections) if self.args.fuse_score else dists


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


class BatchedOCSORT(DuplicateBirths, BatchedKalman, OCSORT):
    """OC-SORT with batched Kalman corrections (first association), IoU costs from stacked boxes and the momentum
    cost of the overlapping pairs in one pass."""

    def get_dists(self, tracks: list, detections: list) -> np.ndarray:
        """`OCSORT.get_dists` (IoU, fused with scores when set, plus inertia times OCM) with boxes gathered in one
        pass."""
        iou = matching.iou_distance(list(boxes_xyxy(tracks)), list(boxes_xyxy(detections)))
        dists = matching.fuse_score(iou, detections) if self.args.fuse_score else iou.copy()
        dists += self.inertia * self._velocity_direction_cost(tracks, detections, iou < 1)
        return self._fuse_appearance(dists, tracks, detections, iou_dists=iou)

    def _velocity_direction_cost(self, tracks: list, detections: list, overlap: np.ndarray) -> np.ndarray:
        """OCM cost (N, M) of `OCSORT._velocity_direction_cost` on the pairs whose boxes overlap, 0 elsewhere and
        for tracks without a direction of motion or an observation.

        The other pairs cost at least 1 (IoU distance 1 plus a cost >= 0) whatever their angle, above every threshold
        the assignments use (match_thresh, 0.7), so the solver never picks them: the arccos of the dense (N, M)
        matrix, a fifth of OC-SORT's time on 500 heads, is spent only where it can change a match.
        """
        cost = np.zeros((len(tracks), len(detections)), dtype=np.float32)
        moving = np.array([t.velocity is not None and t.last_observation[0] >= 0 for t in tracks], bool)
        rows, cols = np.nonzero(overlap & moving[:, None])
        if not len(rows):
            return cost
        track_ids = np.unique(rows)  # the tracks that need a centre and a direction
        at = np.searchsorted(track_ids, rows)
        origins = xyxy2xywh(np.stack([tracks[i].last_observation for i in track_ids]).astype(np.float32))[:, :2]
        velocity = np.stack([tracks[i].velocity for i in track_ids]).astype(np.float32)
        targets = xyxy2xywh(np.stack([d.xyxy for d in detections]).astype(np.float32))[:, :2]
        cost[rows, cols] = direction_cost(origins[at], velocity[at], targets[cols])
        return cost


BATCHED = {BYTETracker: BatchedBYTETracker, BOTSORT: BatchedBOTSORT, OCSORT: BatchedOCSORT}


def batched(tracker):
    """Return a fresh tracker's batched twin (same settings), or the tracker itself when it has none or has run."""
    cls = BATCHED.get(type(tracker))
    return cls(args=tracker.args) if cls and tracker.frame_id == 0 else tracker
