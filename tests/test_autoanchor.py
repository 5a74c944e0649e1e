"""AutoAnchor for the anchor head: the fit metrics by hand, a re-fit only when the anchors fit badly, and in training."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from models.head import AnchorDetect
from utils.autoanchor import anchor_metrics, check_anchors, kmean_anchors

STOCK = [[8, 8, 12, 12, 17, 17], [24, 24, 34, 34, 48, 48], [68, 68, 96, 96, 136, 136]]  # models/yolov5-mfl.yaml


def test_metrics_by_hand():
    """Anchors 10x10 and 40x40, threshold 4: a 20x20 box fits both (ratios 2 and 2), a 3x3 box only 10x10 (3.3 < 4,
    13.3 > 4), a 200x200 box none (200 / 40 = 5 > 4). BPR 2/3; anchors per box (2 + 1 + 0) / 3 = 1."""
    anchors = np.array([[10.0, 10.0], [40.0, 40.0]])
    wh = np.array([[20.0, 20.0], [3.0, 3.0], [200.0, 200.0]])
    bpr, aat = anchor_metrics(anchors, wh, 4.0)
    assert bpr == pytest.approx(2 / 3) and aat == pytest.approx(1.0)


def test_tiny_heads_trigger_a_refit_that_raises_recall():
    """Heads of 1-1.9 px at the training size fit no anchor of 8-136 px (8 / 1.9 > 4): BPR 0; the re-fit raises it
    above 0.98 and writes the new anchors into the head, sorted by area across the levels."""
    rng = np.random.default_rng(0)
    wh = rng.uniform(1.0, 1.9, (500, 2))
    head = AnchorDetect(1, STOCK, ch=(8, 8, 8))
    before, _ = anchor_metrics(head.anchors.numpy().reshape(-1, 2), wh, 4.0)
    assert before < 0.5
    assert check_anchors(head, wh, 4.0)
    new = head.anchors.numpy().reshape(-1, 2)
    assert anchor_metrics(new, wh, 4.0)[0] > 0.98
    assert (np.diff(new.prod(1)) >= 0).all()


def test_well_fitted_anchors_are_kept():
    rng = np.random.default_rng(1)
    wh = np.exp(rng.uniform(np.log(8), np.log(120), (500, 1))).repeat(2, 1)  # square heads of 8-120 px
    head = AnchorDetect(1, STOCK, ch=(8, 8, 8))
    kept = head.anchors.clone()
    assert not check_anchors(head, wh, 4.0)
    assert torch.equal(head.anchors, kept)


def test_kmeans_is_reproducible_and_sorted():
    wh = np.random.default_rng(2).uniform(5, 60, (300, 2))
    a, b = kmean_anchors(wh, 9, 4.0, gen=200), kmean_anchors(wh, 9, 4.0, gen=200)
    np.testing.assert_array_equal(a, b)
    assert a.shape == (9, 2) and (np.diff(a.prod(1)) >= 0).all()


def test_training_refits_tiny_heads_and_noautoanchor_keeps_the_yaml(tmp_path):
    """The synthetic crowd at 64 px has heads of a few pixels: training re-fits the anchors (stored in the checkpoint,
    EMA included); --noautoanchor keeps the YAML's."""
    from data.synthetic import ensure_synthetic_crowd
    from test_train import _args
    from utils.trainer import MFLTrainer

    data = str(ensure_synthetic_crowd(6, 2, 96, 60, seed=4, root=tmp_path / "crowd"))
    fitted = MFLTrainer(overrides=_args(data, tmp_path, "fit", epochs=1, imgsz=64))
    fitted.train()
    saved = torch.load(fitted.last, weights_only=False)["model"].model[-1].anchors.float()
    assert not torch.equal(saved, torch.tensor(STOCK, dtype=torch.float32).view(3, 3, 2))
    kept = MFLTrainer(overrides=_args(data, tmp_path, "keep", epochs=1, imgsz=64, noautoanchor=True))
    kept.train()
    saved = torch.load(kept.last, weights_only=False)["model"].model[-1].anchors.float()
    torch.testing.assert_close(saved, torch.tensor(STOCK, dtype=torch.float32).view(3, 3, 2))


def test_the_free_head_is_never_autoanchored(tmp_path, monkeypatch):
    """Ultralytics' Detect keeps a tensor named `anchors` (its grid points): AutoAnchor must leave it alone."""
    from data.synthetic import ensure_synthetic_crowd
    from test_anchor_free_model import CFG
    from test_train import _args
    from utils import autoanchor
    from utils.trainer import MFLTrainer

    def refuse(*args, **kwargs):
        raise AssertionError("AutoAnchor ran on the anchor-free head")

    monkeypatch.setattr(autoanchor, "check_anchors", refuse)
    data = str(ensure_synthetic_crowd(6, 2, 96, 60, seed=4, root=tmp_path / "crowd"))
    MFLTrainer(overrides=_args(data, tmp_path, "free", epochs=1, imgsz=64, model=CFG))._setup_train()
