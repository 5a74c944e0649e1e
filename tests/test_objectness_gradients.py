"""bench/objectness_gradients.py: the pushes it reports, against BCE's gradient worked by hand."""

from __future__ import annotations

import pytest
import torch

from bench.objectness_gradients import anchor_head, crowd_batch, pushes
from utils import ROOT
from utils.detection_loss import YOLOv5Loss


@pytest.fixture(scope="module")
def setup():
    return anchor_head(str(ROOT / "models" / "yolov5-mfl.yaml")), crowd_batch(images=2, heads=10, size=128)


def test_bce_background_push_by_hand(setup):
    """d(mean BCE)/dx = σ(x) / cells at a negative cell, × level balance × obj gain × batch size, summed per level."""
    head, batch = setup
    loss = YOLOv5Loss(head, loss="bce", imgsz=128)
    _, background = pushes(loss, batch, bg=0.05, pos=0.3)
    targets = torch.cat((batch["batch_idx"].view(-1, 1), batch["cls"], batch["bboxes"]), 1)
    expected = 0.0
    for i, s in enumerate([8, 16, 32]):
        g = 128 // s
        b, a, gj, gi, *_ = loss._match(targets, i, (g, g))
        cells = 2 * 3 * g * g
        matched = len(set(zip(b.tolist(), a.tolist(), gj.tolist(), gi.tolist())))
        expected += (cells - matched) * 0.05 / cells * loss.balance[i] * loss.gain["obj"] * 2
    assert background == pytest.approx(expected, rel=1e-4)


def test_focal_family_push_scales_with_its_gain(setup):
    head, batch = setup
    one = pushes(YOLOv5Loss(head, loss="mfl", mfl_mask="fg", fl_obj=1.0, imgsz=128), batch, 0.05, 0.3)
    two = pushes(YOLOv5Loss(head, loss="mfl", mfl_mask="fg", fl_obj=2.0, imgsz=128), batch, 0.05, 0.3)
    assert two == pytest.approx((2 * one[0], 2 * one[1]), rel=1e-5) and one[0] > 0 and one[1] > 0


def test_p2_yaml_gets_stride_4_first():
    assert anchor_head(str(ROOT / "models" / "yolov5-mfl-p2.yaml")).stride.tolist() == [4.0, 8.0, 16.0, 32.0]
