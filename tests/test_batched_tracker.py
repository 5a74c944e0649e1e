"""The batched BoT-SORT and the helpers it shares with utils/array_tracker.py: the batched Kalman correction equals
Ultralytics' one per track, and a whole tracking run gives Ultralytics' outputs exactly, frame by frame."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from ultralytics.engine.results import Boxes
from ultralytics.trackers.bot_sort import BOTSORT
from ultralytics.trackers.utils.kalman_filter import KalmanFilterXYAH, KalmanFilterXYWH
from ultralytics.utils import YAML, IterableSimpleNamespace

from data.synthetic_video import crowd_tracks
from utils.array_tracker import fast_tracker
from utils.batched_tracker import BatchedBOTSORT, direction_cost, multi_update
from utils.tracking import find_tracker, fit_thresholds


@pytest.mark.parametrize("kf", [KalmanFilterXYAH(), KalmanFilterXYWH()])
def test_multi_update_is_the_per_track_update(kf):
    """Random states and measurements: the batch gives what kf.update gives for each one."""
    rng = np.random.default_rng(0)
    mean = rng.uniform(5, 50, (7, 8))
    a = rng.normal(size=(7, 8, 8))
    cov = a @ a.transpose(0, 2, 1) + 8 * np.eye(8)  # symmetric positive definite
    z = mean[:, :4] + rng.normal(size=(7, 4))
    means, covs = multi_update(kf, mean, cov, z)
    for m, c, zi, bm, bc in zip(mean, cov, z, means, covs):
        one_m, one_c = kf.update(m, c, zi)
        np.testing.assert_allclose(bm, one_m, rtol=1e-10, atol=1e-10)
        np.testing.assert_allclose(bc, one_c, rtol=1e-10, atol=1e-10)


def test_tracking_a_crowd_with_botsort_gives_ultralytics_outputs(tmp_path):
    """A generated crowd (about 100 heads per frame, jittered boxes, scores across both association stages) tracked
    by Ultralytics' BoT-SORT and by its batched twin: the same tracks, IDs and scores in every frame."""
    gt = crowd_tracks(150, 25, 320, seed=3)
    rng = np.random.default_rng(1)
    path, _ = fit_thresholds(find_tracker("botsort.yaml"), 0.3, tmp_path / "botsort.yaml")
    cfg = {**YAML.load(path), "gmc_method": "none"}
    del cfg["new_track_max_iou"]  # ours only (tests/test_track_births.py)
    cfg = IterableSimpleNamespace(**cfg)
    ours, theirs = fast_tracker(BOTSORT(args=cfg)), BOTSORT(args=cfg)
    assert type(ours) is BatchedBOTSORT
    img = np.zeros((320, 320, 3), np.uint8)
    for k in range(1, 26):
        xyxy = gt[gt.frame == k][["x1", "y1", "x2", "y2"]].to_numpy() + rng.normal(0, 1, (1, 4))
        data = np.column_stack([xyxy, rng.uniform(0.05, 0.95, len(xyxy)), np.zeros(len(xyxy))])
        det = Boxes(torch.tensor(data, dtype=torch.float32), (320, 320)).cpu().numpy()
        a, b = ours.update(det, img), theirs.update(det, img)
        assert a.shape == b.shape and len(a) > 50
        np.testing.assert_allclose(a, b, rtol=1e-6, atol=1e-4)


def test_direction_cost_by_hand():
    """A track at (0, 0) moving along +x: a detection ahead costs 0, one to the side 0.5, one behind 1, one on its
    centre 0; a track with a zero direction (it stood still) costs 0.5 everywhere off its centre."""
    targets = np.array([[5, 0], [0, 3], [-2, 0], [0, 0]], np.float32)
    velocity = np.array([[1, 0], [0, 0]], np.float32)
    cost = direction_cost(np.zeros((2, 1, 2), np.float32), velocity[:, None], targets[None])  # every pair
    np.testing.assert_allclose(cost, [[0, 0.5, 1, 0], [0.5, 0.5, 0.5, 0]], atol=1e-6)
    pairs = direction_cost(np.zeros((2, 2), np.float32), velocity[[0, 1]], targets[[2, 1]])  # chosen pairs
    np.testing.assert_allclose(pairs, [1, 0.5], atol=1e-6)
