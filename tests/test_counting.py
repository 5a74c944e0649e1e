"""Counting metrics against hand-computed values (utils/counting.py)."""

from __future__ import annotations

import numpy as np
import pytest
from scipy.optimize import linear_sum_assignment

from utils.counting import (
    CountingEvaluator,
    calibrate_threshold,
    count_errors,
    counts_at_thresholds,
    match_points,
    match_radii,
    precision_recall_f1,
    sweep_errors,
)

# Toy set: 4 images, GT counts 3, 0, 5, 2 and these post-NMS scores.
GT = np.array([3, 0, 5, 2])
SCORES = [np.array([0.9, 0.8, 0.4, 0.2]), np.array([0.6]), np.array([0.95, 0.7, 0.5, 0.3]), np.zeros(0)]
THR = np.array([0.25, 0.5, 0.75])


def _toy_counts() -> np.ndarray:
    scores = np.concatenate(SCORES)
    idx = np.repeat(np.arange(4), [len(s) for s in SCORES])
    return counts_at_thresholds(scores, idx, 4, THR)


def test_counts_at_thresholds_by_hand():
    """score >= t, inclusive:
    t=0.25: img0 {.9,.8,.4}=3, img1 {.6}=1, img2 {.95,.7,.5,.3}=4, img3 0
    t=0.50: img0 {.9,.8}=2,    img1 1,      img2 {.95,.7,.5}=3 (0.5 counts), img3 0
    t=0.75: img0 2,            img1 0,      img2 {.95}=1, img3 0
    """
    np.testing.assert_array_equal(_toy_counts(), [[3, 2, 2], [1, 1, 0], [4, 3, 1], [0, 0, 0]])


def test_counts_at_thresholds_matches_brute_force_and_rejects_unsorted():
    """The one-pass bincount equals counting (score >= t) image by image, threshold by threshold."""
    rng = np.random.default_rng(0)
    scores, idx, thr = rng.random(500), rng.integers(0, 7, 500), np.linspace(0.01, 0.99, 50)
    brute = np.array([[(scores[idx == i] >= t).sum() for t in thr] for i in range(7)])
    np.testing.assert_array_equal(counts_at_thresholds(scores, idx, 7, thr), brute)
    with pytest.raises(ValueError, match="ascending"):
        counts_at_thresholds(scores, idx, 7, thr[::-1])


def test_count_errors_by_hand():
    """At t=0.25 the counts are 3, 1, 4, 0 against GT 3, 0, 5, 2: errors 0, +1, -1, -2.
    MAE  = (0 + 1 + 1 + 2) / 4 = 1.0                                (Eq. 8)
    RMSE = sqrt((0 + 1 + 1 + 4) / 4) = sqrt(1.5) = 1.224745         (Eq. 9)
    NAE  = mean over GT > 0 (images 0, 2, 3) of |e|/GT = (0/3 + 1/5 + 2/2) / 3 = 0.4   (image 1, GT 0, excluded)
    mean GT = 10/4 = 2.5, mean pred = 8/4 = 2.0
    """
    e = count_errors(np.array([3, 1, 4, 0]), GT)
    assert e["MAE"] == pytest.approx(1.0)
    assert e["RMSE"] == pytest.approx(np.sqrt(1.5))
    assert e["NAE"] == pytest.approx(0.4)
    assert (e["mean_gt"], e["mean_pred"], e["images"]) == (2.5, 2.0, 4)


def test_count_errors_edge_cases():
    """All-background images leave NAE undefined (NaN), not 0; no images leaves every error NaN."""
    e = count_errors(np.array([2, 0]), np.array([0, 0]))
    assert e["MAE"] == 1.0 and e["RMSE"] == pytest.approx(np.sqrt(2)) and np.isnan(e["NAE"])
    assert np.isnan(count_errors(np.zeros(0), np.zeros(0))["MAE"])


def test_sweep_and_calibration_by_hand():
    """Errors per threshold against GT 3, 0, 5, 2:
    t=0.25: 0, +1, -1, -2 -> MAE 4/4 = 1.00, RMSE sqrt(6/4)  = 1.224745
    t=0.50: -1, +1, -2, -2 -> MAE 6/4 = 1.50, RMSE sqrt(10/4) = 1.581139
    t=0.75: -1, 0, -4, -2 -> MAE 7/4 = 1.75, RMSE sqrt(21/4) = 2.291288
    so calibration picks index 0 (t = 0.25).
    """
    mae, rmse = sweep_errors(_toy_counts(), GT)
    np.testing.assert_allclose(mae, [1.0, 1.5, 1.75])
    np.testing.assert_allclose(rmse, np.sqrt([1.5, 2.5, 5.25]))
    assert calibrate_threshold(mae, rmse) == 0


def test_calibration_tie_breaks():
    """MAE ties at indices 0-2; RMSE keeps 1 and 2; the middle of [1, 2] (index len//2) is 2.
    A plateau 1..3 of equal MAE and RMSE gives its middle, index 2.
    """
    assert calibrate_threshold(np.array([1, 1, 1, 2.0]), np.array([2, 1, 1, 1.0])) == 2
    assert calibrate_threshold(np.array([3, 1, 1, 1, 3.0]), np.ones(5)) == 2


def test_match_radii_and_prf_by_hand():
    """Two GT heads and three predictions:
    GT0 centre (10, 10), 8x8  -> sigma_s = 4, sigma_l = sqrt(64 + 64)/2 = 5.657
    GT1 centre (30, 10), 4x12 -> sigma_s = 2, sigma_l = sqrt(16 + 144)/2 = 6.325
    pred (13, 10) is 3 px from GT0; pred (30, 15) is 5 px from GT1; pred (100, 100) is far from both.
    sigma_s: 3 <= 4 yes, 5 <= 2 no -> TP 1: P = 1/3, R = 1/2, F1 = 2 (1/3)(1/2) / (5/6) = 0.4
    sigma_l: 3 <= 5.657, 5 <= 6.325 -> TP 2: P = 2/3, R = 1, F1 = 2 (2/3) / (5/3) = 0.8
    4 px: TP 1 (as sigma_s); 8 px: TP 2 (as sigma_l).
    """
    gt_xy, gt_wh = np.array([[10, 10], [30, 10.0]]), np.array([[8, 8], [4, 12.0]])
    pred = np.array([[13, 10], [30, 15], [100, 100.0]])
    radii = match_radii(gt_wh)
    np.testing.assert_allclose(radii["sigma_s"], [4, 2])
    np.testing.assert_allclose(radii["sigma_l"], [np.sqrt(128) / 2, np.sqrt(160) / 2])
    tp = {k: match_points(pred, gt_xy, r) for k, r in radii.items()}
    assert tp == {"sigma_s": 1, "sigma_l": 2, "4px": 1, "8px": 2}
    prf = precision_recall_f1(1, 3, 2)
    assert (prf["P"], prf["R"], prf["F1"]) == pytest.approx((1 / 3, 1 / 2, 0.4))
    prf = precision_recall_f1(2, 3, 2)
    assert (prf["P"], prf["R"], prf["F1"]) == pytest.approx((2 / 3, 1.0, 0.8))
    assert precision_recall_f1(0, 0, 0) == {"P": 0.0, "R": 0.0, "F1": 0.0, "TP": 0, "n_pred": 0, "n_gt": 0}


def test_match_points_is_one_to_one_and_optimal():
    """Two predictions near one head match once. GT A (0, 0), B (4, 0), radius 3; pred p1 (2, 0) is 2 px from both,
    p2 (-2.5, 0) is 2.5 px from A only: nearest-first greedy can give p1 to A and leave p2 unmatched (1 match); the
    maximum matching is p1-B, p2-A (2 matches). A point exactly on a head (distance 0) and at exactly the radius match.
    """
    assert match_points(np.array([[1, 0], [0, 1.0]]), np.array([[0, 0.0]]), 2.0) == 1
    assert match_points(np.array([[2, 0], [-2.5, 0]]), np.array([[0, 0], [4, 0.0]]), 3.0) == 2
    assert match_points(np.array([[0, 0], [7, 0.0]]), np.array([[0, 0], [10, 0.0]]), 3.0) == 2
    assert match_points(np.zeros((0, 2)), np.array([[0, 0.0]]), 3.0) == 0


def test_match_points_equals_linear_sum_assignment():
    """Same number of matches as linear_sum_assignment with forbidden pairs costed above any allowed total."""
    rng = np.random.default_rng(1)
    for _ in range(20):
        gt, pred = rng.uniform(0, 60, (40, 2)), rng.uniform(0, 60, (35, 2))
        radius = rng.uniform(2, 8, 40)
        d = np.linalg.norm(gt[:, None] - pred[None], axis=-1)
        ok = d <= radius[:, None]
        rows, cols = linear_sum_assignment(np.where(ok, 0.0, 1.0))
        assert match_points(pred, gt, radius) == ok[rows, cols].sum()


def _toy_evaluator(min_conf: float = 0.0) -> CountingEvaluator:
    """The toy set as boxes: every head a 10x10 box; predictions on the first GT heads, in score order."""
    ev = CountingEvaluator(min_conf=min_conf)
    for i, (n, s) in enumerate(zip(GT, SCORES)):
        gt = np.array([[20 * k, 0, 20 * k + 10, 10] for k in range(n)], dtype=float).reshape(-1, 4)
        pred = np.array([[20 * k + 1, 0, 20 * k + 11, 10] for k in range(len(s))], dtype=float).reshape(-1, 4)
        ev.process(f"im{i}.jpg", gt, pred, s)
    return ev


def test_evaluator_by_hand():
    """CountingEvaluator on the toy set reproduces the hand figures above, calibrated at 0.25 on the grid THR.
    Localisation at t = 0.25: each kept prediction k sits 1 px right of GT k when GT k exists.
    img0 3 preds / 3 GT -> 3 TP; img1 1 pred / 0 GT -> 0; img2 4 preds / 5 GT -> 4; img3 0 / 2 -> 0.
    TP 7, preds 8, GT 10: P = 7/8, R = 7/10, F1 = 2 (0.875)(0.7) / 1.575 = 0.777778 (every radius >= 1 px).
    """
    r = _toy_evaluator().evaluate(thresholds=THR)
    assert r.count_conf == r.calibrated_conf == 0.25
    np.testing.assert_array_equal(r.pred, [3, 1, 4, 0])
    np.testing.assert_array_equal(r.error, [0, 1, -1, -2])
    assert (r.errors["MAE"], r.errors["NAE"]) == pytest.approx((1.0, 0.4))
    for v in r.localisation.values():
        assert (v["TP"], v["n_pred"], v["n_gt"]) == (7, 8, 10)
        assert (v["P"], v["R"], v["F1"]) == pytest.approx((0.875, 0.7, 2 * 0.875 * 0.7 / 1.575))
    d = r.to_dict()
    assert d["MAE"] == 1.0 and d["sweep"]["conf"] == [0.25, 0.5, 0.75] and d["localisation"]["4px"]["TP"] == 7


def test_evaluator_fixed_threshold_and_floor():
    """A fixed threshold off the grid (0.6) joins the sweep: counts 2, 1, 2, 0 -> errors -1, +1, -3, -2, MAE 7/4.
    Detections below min_conf are dropped at process time, so a threshold below the floor is refused.
    """
    r = _toy_evaluator().evaluate(count_conf=0.6, thresholds=THR)
    assert r.count_conf == 0.6 and r.calibrated_conf == 0.25 and 0.6 in r.thresholds
    np.testing.assert_array_equal(r.pred, [2, 1, 2, 0])
    assert r.errors["MAE"] == pytest.approx(1.75)
    ev = _toy_evaluator(min_conf=0.5)
    assert sum(len(c) for c in ev.pred_conf) == 6  # .9 .8 | .6 | .95 .7 .5
    assert list(ev.evaluate(thresholds=THR).thresholds) == [0.5, 0.75]
    with pytest.raises(ValueError, match="below"):
        ev.evaluate(count_conf=0.3)


def test_evaluator_empty():
    """Nothing processed: errors are NaN (JSON null), not a fake 0."""
    r = CountingEvaluator().evaluate()
    assert r.errors["images"] == 0 and np.isnan(r.errors["MAE"]) and r.to_dict()["MAE"] is None
