"""utils/detection_loss.py: YOLOv5's matching on hand-made boxes, the gains, N, and the objectness routing per `loss`."""

from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F

from models.head import AnchorDetect
from utils.detection_loss import YOLOv5Loss
from utils.loss import focal_loss, heatmap_focal_loss, mask_focal_loss
from utils.targets import build_heatmap_targets

STRIDE, GRID, IMG = 8.0, 8, 64  # one level: an 8x8 grid over a 64x64 image
ANCHORS_PX = [[16, 16, 64, 64, 128, 128]]  # grid units 2, 8 and 16


def _head() -> AnchorDetect:
    head = AnchorDetect(1, ANCHORS_PX, ch=(4,))
    head.stride = torch.tensor([STRIDE])
    return head


def _batch(boxes_px: list[tuple[float, float, float, float]], bs: int = 1, image: list[int] | None = None) -> dict:
    """An Ultralytics batch of xywh pixel boxes (normalised on the way in), all in image 0 unless `image` says."""
    xywh = torch.tensor(boxes_px, dtype=torch.float32) / IMG
    n = len(boxes_px)
    return {
        "img": torch.zeros(bs, 3, IMG, IMG),
        "batch_idx": torch.tensor(image if image is not None else [0] * n, dtype=torch.float32),
        "cls": torch.zeros(n, 1),
        "bboxes": xywh,
    }


def _targets(batch: dict) -> torch.Tensor:
    return torch.cat((batch["batch_idx"].view(-1, 1), batch["cls"].view(-1, 1), batch["bboxes"]), 1)


# One 16 px head centred at (22, 34) px = grid (2.75, 4.25): only the 16 px anchor passes anchor_t = 4 (ratio 1; the
# 64 px anchor's ratio is exactly 4, not under it). x's fraction 0.75 adds the right-hand cell, y's 0.25 the cell
# above, so YOLOv5 matches (gi, gj) = (2, 4), (3, 4), (2, 3).
HEAD = (22.0, 34.0, 16.0, 16.0)
CELLS = {(2, 4), (3, 4), (2, 3)}


def test_matching_on_a_hand_made_box():
    """Centre cell plus the two nearest neighbours, on the anchors whose size ratio is under anchor_t; offsets."""
    loss = YOLOv5Loss(_head(), loss="bce")
    b, a, gj, gi, tbox, anchors, t, assigned = loss._match(_targets(_batch([HEAD])), 0, (GRID, GRID))
    assert set(zip(gi.tolist(), gj.tolist())) == CELLS
    assert a.tolist() == [0, 0, 0] and b.tolist() == [0, 0, 0] and t.tolist() == [0, 0, 0]
    offsets = {(int(i), int(j)): tuple(t[:2].tolist()) for i, j, t in zip(gi, gj, tbox)}
    assert offsets == {(2, 4): (0.75, 0.25), (3, 4): (-0.25, 0.25), (2, 3): (0.75, 1.25)}
    assert torch.equal(tbox[:, 2:], torch.full((3, 2), 2.0)) and torch.equal(anchors, torch.full((3, 2), 2.0))
    assert assigned[0].tolist() == [0]  # image 0 * na + anchor 0: one box-anchor pair for the heatmaps

    loose = YOLOv5Loss(_head(), loss="bce", anchor_t=4.5)  # now the 64 px anchor (ratio 4) passes too
    _, a, *_ = loose._match(_targets(_batch([HEAD])), 0, (GRID, GRID))
    assert sorted(a.tolist()) == [0, 0, 0, 1, 1, 1]


def test_border_box_keeps_only_cells_inside_the_grid():
    """A head centred in the first cell (grid x, y < 1) gets no neighbour on the outer side of the image."""
    loss = YOLOv5Loss(_head(), loss="bce")
    _, _, gj, gi, *_ = loss._match(_targets(_batch([(2.0, 2.0, 16.0, 16.0)])), 0, (GRID, GRID))
    assert set(zip(gi.tolist(), gj.tolist())) == {(0, 0)}  # fraction 0.25 would add the cells left of and above it


def _perfect_preds(head: AnchorDetect, obj_logit: float = -2.0) -> list[torch.Tensor]:
    """Raw maps whose box at each of the three matched cells is exactly HEAD (CIoU 1), objectness `obj_logit`."""
    p = torch.zeros(1, 3, GRID, GRID, 6)
    p[..., 4] = obj_logit
    for (i, j), (dx, dy) in {(2, 4): (0.75, 0.25), (3, 4): (-0.25, 0.25), (2, 3): (0.75, 1.25)}.items():
        # xy = 2σ(t) - 0.5 is the offset from the cell; wh = (2σ(0))² anchor = the 2-cell anchor itself
        p[0, 0, j, i, 0] = torch.logit(torch.tensor((dx + 0.5) / 2))
        p[0, 0, j, i, 1] = torch.logit(torch.tensor((dy + 0.5) / 2))
    return [p.requires_grad_()]


def test_bce_objectness_gains_and_box_term():
    """bce: per-cell mean BCE towards the matched cells' CIoU (1 here), times the level balance and obj gain."""
    head = _head()
    loss = YOLOv5Loss(head, loss="bce", box=0.05, obj=1.0)
    preds = _perfect_preds(head, obj_logit=-2.0)
    total, items = loss(preds, _batch([HEAD]))
    n_cells = 3 * GRID * GRID
    expected = (3 * F.softplus(torch.tensor(2.0)) + (n_cells - 3) * F.softplus(torch.tensor(-2.0))) / n_cells
    gain = 1.0 * 3 / 1  # obj * 3 / nl
    assert items["obj_loss"].item() == pytest.approx(expected.item() * 4.0 * gain, rel=1e-5)  # balance 4 on P3
    assert items["box_loss"].item() == pytest.approx(0.0, abs=1e-5)  # CIoU 1: perfect boxes
    assert "cls_loss" not in items  # one class: no class term
    assert torch.allclose(total, torch.stack([items["box_loss"], items["obj_loss"]]))  # × batch size 1


@pytest.mark.parametrize("kind", ["focal", "heatmap", "mfl"])
def test_focal_family_routing_gain_and_n(kind):
    """Each focal-family kind calls its function of utils/loss.py on the expected targets, × fl_obj, over N heads."""
    head = _head()
    second = (50.0, 12.0, 16.0, 16.0)  # a second head, so N = 2
    batch = _batch([HEAD, second])
    loss = YOLOv5Loss(head, loss=kind, fl_obj=0.3, fl_alpha=0.5, fl_gamma=2.0, mfl_mask="box")
    preds = _perfect_preds(head)
    _, items = loss(preds, batch)
    logits = preds[0][..., 4].detach()
    b, a, gj, gi, *_, assigned = loss._match(_targets(batch), 0, (GRID, GRID))
    fl = {"alpha": 0.5, "gamma": 2.0, "num_objects": 2}
    if kind == "focal":
        target = torch.zeros_like(logits)
        target[b, a, gj, gi] = 1.0
        expected = focal_loss(logits, target, **fl)
    else:
        boxes = assigned[1] * IMG
        heatmap, mask = build_heatmap_targets(boxes, assigned[0], 3, (GRID, GRID), STRIDE)
        heatmap, mask = heatmap.view(1, 3, GRID, GRID), mask.view(1, 3, GRID, GRID)
        if kind == "heatmap":
            expected = heatmap_focal_loss(logits, heatmap, beta=4.0, **fl)
        else:
            expected = mask_focal_loss(logits, heatmap, mask, beta=0.5, poly=True, **fl)
    assert items["obj_loss"].item() == pytest.approx(0.3 * expected.item(), rel=1e-5)


def test_mfl_fg_mask_and_quality_targets():
    """fg: only the matched cells are masked; quality multiplies their Gaussian target by their CIoU, 0 elsewhere."""
    head = _head()
    batch = _batch([HEAD])
    preds = _perfect_preds(head)
    b, a, gj, gi, *_, assigned = YOLOv5Loss(head)._match(_targets(batch), 0, (GRID, GRID))
    heatmap, box_mask = build_heatmap_targets(assigned[1] * IMG, assigned[0], 3, (GRID, GRID), STRIDE)
    heatmap, box_mask = heatmap.view(1, 3, GRID, GRID), box_mask.view(1, 3, GRID, GRID)
    cells = (b, a, gj, gi)
    iou = torch.tensor([1.0, 0.5, 0.25])

    def targets(**kw):
        return YOLOv5Loss(head, **kw)._mfl_targets(heatmap, box_mask, cells, iou)

    p, m = targets(mfl_mask="box")  # the paper's reading: the box on its anchor, untouched
    assert torch.equal(m, box_mask) and torch.equal(p, heatmap) and int(box_mask.sum()) == 4  # 2x2 cells in the box
    p, m = targets(mfl_mask="fg")
    assert m.sum().item() == 3 and bool(m[cells].all())
    assert torch.equal(p[cells], heatmap[cells]) and p[~m].abs().sum() == 0
    p, m = targets(mfl_mask="fg", mfl_quality=True)
    assert torch.allclose(p[cells], heatmap[cells] * iou)
    assert p[cells][0].item() == pytest.approx(1.0)  # the centre cell: Gaussian peak 1 × CIoU 1
    p, m = targets(mfl_mask="fg", mfl_quality=0.5)  # YOLOv5's gr blend: 0.5 + 0.5 CIoU of 1, 0.5, 0.25
    assert torch.allclose(p[cells], heatmap[cells] * torch.tensor([1.0, 0.75, 0.625]))
    p, m = targets(mfl_mask="box", mfl_quality=True)  # box cells that are not matched keep the mask, target 0
    assert torch.equal(m, box_mask) and p[box_mask & (p == 0)].numel() == int(box_mask.sum()) - 3
    p, m = targets(mfl_mask="fg", mfl_target="binary", mfl_quality=True)
    assert torch.allclose(p[cells], iou)  # binary: 1 over the mask, then × CIoU

    # through the loss: the quality target uses the detached CIoU of each matched cell's predicted box (1 here)
    loss = YOLOv5Loss(head, mfl_mask="fg", mfl_quality=True, fl_obj=1.0)
    _, items = loss(preds, batch)
    mask = torch.zeros_like(box_mask)
    mask[cells] = True
    expected = mask_focal_loss(preds[0][..., 4].detach(), heatmap * mask, mask, alpha=0.25, beta=0.5, gamma=2.0,
                               poly=True, num_objects=1)  # fmt: skip
    assert items["obj_loss"].item() == pytest.approx(expected.item(), rel=1e-5)


def test_best_pair_is_the_anchor_of_smallest_worst_side_ratio():
    """16 px: the 16 px anchor (ratio 1); 60x40 px: 64 px (worst ratio 1.6, against 3.75 and 3.2); 100 px: 128 px."""
    loss = YOLOv5Loss(_head())
    batch = _batch([HEAD, (32.0, 32.0, 60.0, 40.0), (32.0, 32.0, 100.0, 100.0)])
    assert loss._best_pair(_targets(batch), (IMG, IMG)).tolist() == [0, 1, 2]


def test_mfl_best_mask_keeps_the_matched_cells_of_the_best_anchor_only():
    """With anchor_t 4.5 the 16 px head matches the 16 and 64 px anchors (6 cells); "best" masks the 16 px anchor's 3
    cells only, and the 64 px anchor's matched cells become negatives (target 0, outside the mask)."""
    head = _head()
    preds = _perfect_preds(head)
    batch = _batch([HEAD])
    masks = {}
    for rule in ("fg", "best"):
        loss = YOLOv5Loss(head, mfl_mask=rule, anchor_t=4.5)
        b, a, gj, gi, _, _, t, assigned = loss._match(_targets(batch), 0, (GRID, GRID))
        heatmap, box_mask = loss._heatmap(assigned, 0, (1, 3, GRID, GRID), (IMG, IMG))
        on_best = loss._best_pair(_targets(batch), (IMG, IMG))[t] == a
        p, masks[rule] = loss._mfl_targets(heatmap, box_mask, (b, a, gj, gi), torch.ones(len(b)), on_best)
    assert int(masks["fg"].sum()) == 6 and int(masks["best"].sum()) == 3
    assert masks["best"][0, 0].sum() == 3 and not masks["best"][0, 1:].any()
    assert {(int(i), int(j)) for j, i in masks["best"][0, 0].nonzero().tolist()} == CELLS
    assert p[0, 0, 4, 2].item() == 1.0  # the centre cell keeps its Gaussian peak
    # through the loss: the objectness term is L_m^P1 on that mask
    _, items = YOLOv5Loss(head, mfl_mask="best", anchor_t=4.5, fl_obj=1.0)(preds, batch)
    expected = mask_focal_loss(preds[0][..., 4].detach(), p, masks["best"], alpha=0.25, beta=0.5, gamma=2.0,
                               poly=True, num_objects=1)  # fmt: skip
    assert items["obj_loss"].item() == pytest.approx(expected.item(), rel=1e-5)


def test_fl_balance_scales_the_negatives_by_one_minus_alpha():
    """fl_balance: L_m with α 0.25 inside the mask and 0.75 outside it, i.e. mask_focal_loss's alpha_neg."""
    head = _head()
    preds, batch = _perfect_preds(head), _batch([HEAD])
    logits = preds[0][..., 4].detach()
    b, a, gj, gi, *_, assigned = YOLOv5Loss(head)._match(_targets(batch), 0, (GRID, GRID))
    heatmap, _ = YOLOv5Loss(head)._heatmap(assigned, 0, (1, 3, GRID, GRID), (IMG, IMG))
    mask = torch.zeros_like(heatmap, dtype=torch.bool)
    mask[b, a, gj, gi] = True
    fl = dict(alpha=0.25, beta=0.5, gamma=2.0, poly=True, num_objects=1)
    balanced = mask_focal_loss(logits, heatmap * mask, mask, alpha_neg=0.75, **fl)
    plain = mask_focal_loss(logits, heatmap * mask, mask, **fl)
    inside = mask_focal_loss(logits, heatmap * mask, mask, alpha_neg=0.0, **fl)  # the mask = 1 branch alone
    assert balanced.item() == pytest.approx(inside.item() + 3 * (plain - inside).item(), rel=1e-5)  # 0.75 / 0.25
    _, items = YOLOv5Loss(head, fl_balance=True, fl_obj=1.0)(preds, batch)
    assert items["obj_loss"].item() == pytest.approx(balanced.item(), rel=1e-5)


def test_quality_norm_divides_by_the_best_cell_of_each_head_over_all_levels():
    """Head 0 has cells on two levels (best CIoU 0.8, on level 1), head 1 only misses (CIoU <= 0: targets stay 1)."""
    ious = [torch.tensor([0.4, -0.2, -0.5]), torch.tensor([0.8, 0.2])]
    owners = [torch.tensor([0, 0, 1]), torch.tensor([0, 0])]
    eps = 1e-3
    q = YOLOv5Loss(_head(), mfl_quality=True, mfl_quality_norm=True)._quality(ious, owners, 2)
    assert torch.allclose(q[0], torch.tensor([(0.4 + eps) / (0.8 + eps), eps / (0.8 + eps), 1.0]))
    assert torch.allclose(q[1], torch.tensor([1.0, (0.2 + eps) / (0.8 + eps)]))
    plain = YOLOv5Loss(_head(), mfl_quality=True)._quality(ious, owners, 2)  # without norm: CIoU clamped at 0
    assert torch.equal(plain[0], torch.tensor([0.4, 0.0, 0.0])) and torch.equal(plain[1], torch.tensor([0.8, 0.2]))
    bce = YOLOv5Loss(_head(), loss="bce", mfl_quality_norm=True)._quality(ious, owners, 2)  # bce's target untouched
    assert torch.equal(bce[1], plain[1])


def test_quality_outside_zero_one_is_refused():
    with pytest.raises(ValueError, match="mfl_quality must be in"):
        YOLOv5Loss(_head(), mfl_quality=1.5)


def test_objectness_gradient_reaches_boxes_only_through_the_box_term():
    """The quality target is detached: the objectness term alone gives the box logits no gradient."""
    head = _head()
    preds = _perfect_preds(head)
    loss = YOLOv5Loss(head, mfl_mask="fg", mfl_quality=True, box=0.0)
    total, _ = loss(preds, _batch([HEAD]))
    total.sum().backward()
    grad = preds[0].grad
    assert grad[..., :4].abs().sum() == 0 and grad[..., 4].abs().sum() > 0


def test_bad_settings_are_refused():
    head = _head()
    with pytest.raises(ValueError, match="unknown objectness loss 'ce'"):
        YOLOv5Loss(head, loss="ce")
    with pytest.raises(ValueError, match="mfl_mask must be one of box, fg, best, got 'level'"):
        YOLOv5Loss(head, mfl_mask="level")
    with pytest.raises(ValueError, match="mfl_target must be 'gaussian' or 'binary'"):
        YOLOv5Loss(head, mfl_target="soft")


def test_from_model_reads_the_trainer_args():
    """Keys the trainer set on model.args reach the loss; keys it lacks keep their defaults."""
    model = torch.nn.Module()
    model.model = torch.nn.ModuleList([_head()])
    model.args = {"loss": "focal", "fl_obj": 0.07, "mfl_mask": "box", "lr0": 0.01}  # box: not the default (fg)
    loss = YOLOv5Loss.from_model(model)
    assert (loss.kind, loss.fl_obj, loss.mfl_mask, loss.mfl_quality) == ("focal", 0.07, "box", False)
    model.args = {}
    assert (YOLOv5Loss.from_model(model).mfl_mask, YOLOv5Loss.from_model(model).fl_obj) == ("fg", 0.1)
    assert loss.gain["box"] == pytest.approx(0.05 * 3) and math.isclose(loss.anchor_t, 4.0)


def test_objectness_gain_scales_with_image_size_and_p2_balance_is_yolov5s():
    """YOLOv5's train.py: obj × (imgsz / 640)² × 3 / nl; a four-level head balances 4.0 / 1.0 / 0.25 / 0.06."""
    assert YOLOv5Loss(_head(), loss="bce", obj=1.0, imgsz=512).gain["obj"] == pytest.approx(0.64 * 3)
    p2 = AnchorDetect(1, ANCHORS_PX * 4, ch=(4, 4, 4, 4))
    p2.stride = torch.tensor([4.0, 8.0, 16.0, 32.0])
    loss = YOLOv5Loss(p2, loss="bce", obj=0.7, imgsz=1280)
    assert loss.balance == [4.0, 1.0, 0.25, 0.06] and loss.gain["obj"] == pytest.approx(0.7 * 4 * 3 / 4)


def test_scratch_hyp_trains_the_measured_default():
    """data/hyps/hyp.scratch.yaml (what train.py uses for the anchor head): L_m^P1 on the matched cells, Gaussian × the
    CIoU normalised per head, fl_obj 0.1, the best setting measured (BENCHMARKS.md)."""
    from ultralytics.utils import YAML

    from utils import ROOT

    model = torch.nn.Module()
    model.model = torch.nn.ModuleList([_head()])
    model.args = YAML.load(ROOT / "data" / "hyps" / "hyp.scratch.yaml")
    loss = YOLOv5Loss.from_model(model)
    assert (loss.kind, loss.mfl_mask, loss.mfl_quality, loss.quality_norm, loss.fl_obj) == ("mfl", "fg", 1.0, True, 0.1)


def test_paper_hyp_is_the_printed_yolov5_setting():
    """data/hyps/hyp.paper.yaml: L_m^P1 over the whole box with binary targets (1 on every mask cell), α 0.25, γ 2,
    SGD from lr 0.01 with weight decay 0.0001 (Section IV-C); the loss built from it targets 1 on all 4 box cells."""
    from ultralytics.utils import YAML

    from utils import ROOT

    hyp = YAML.load(ROOT / "data" / "hyps" / "hyp.paper.yaml")
    assert (hyp["optimizer"], hyp["lr0"], hyp["weight_decay"]) == ("SGD", 0.01, 0.0001)
    model = torch.nn.Module()
    model.model = torch.nn.ModuleList([_head()])
    model.args = hyp
    loss = YOLOv5Loss.from_model(model)
    assert (loss.kind, loss.mfl_mask, loss.mfl_quality, loss.mfl_poly, loss.fl) == (
        "mfl", "box", False, True, {"alpha": 0.25, "gamma": 2.0})  # fmt: skip
    b, a, gj, gi, *_, assigned = loss._match(_targets(_batch([HEAD])), 0, (GRID, GRID))
    heatmap, box_mask = build_heatmap_targets(assigned[1] * IMG, assigned[0], 3, (GRID, GRID), STRIDE)
    p, m = loss._mfl_targets(heatmap.view(1, 3, GRID, GRID), box_mask.view(1, 3, GRID, GRID), (b, a, gj, gi), None)
    assert int(m.sum()) == 4 and torch.equal(p[m], torch.ones(4)) and p[~m].abs().sum() == 0
