"""The anchor-free head's loss: bce is Ultralytics' own, the focal family's masks, targets, gain and normaliser."""

from __future__ import annotations

import math
from types import SimpleNamespace

import pytest
import torch
from ultralytics.utils.loss import v8DetectionLoss

from models.yolo import AnchorFreeDetectionModel, build_model
from utils import ROOT
from utils.anchor_free_loss import DEFAULTS, AnchorFreeLoss
from utils.loss import focal_loss, mask_focal_loss

CFG = str(ROOT / "models" / "yolov5nu-mfl.yaml")
# 64 px input: grids 8x8 (stride 8), 4x4 (16), 2x2 (32); anchor points 0-63, 64-79, 80-83 in Ultralytics' order
LEVEL_START = (0, 64, 80)


@pytest.fixture(scope="module")
def model() -> AnchorFreeDetectionModel:
    torch.manual_seed(0)
    return build_model(CFG, nc=1, verbose=False).train()


def _criterion(model, **loss_args) -> AnchorFreeLoss:
    model.args = SimpleNamespace(box=7.5, cls=0.5, dfl=1.5, **{**DEFAULTS, **loss_args})
    return AnchorFreeLoss(model)


def _one_box_batch() -> dict[str, torch.Tensor]:
    """One 16x16 px head centred at (24, 24) in a 64x64 image (normalised xywh as Ultralytics' loader gives)."""
    return {
        "batch_idx": torch.zeros(1),
        "cls": torch.zeros(1, 1),
        "bboxes": torch.tensor([[24 / 64, 24 / 64, 16 / 64, 16 / 64]]),
    }


def _set_context(crit: AnchorFreeLoss, batch: dict, fg: torch.Tensor, gt_idx: torch.Tensor | None = None) -> None:
    """What `loss` and TAL leave for the class term, set by hand."""
    gt_idx = torch.zeros_like(fg, dtype=torch.long) if gt_idx is None else gt_idx
    crit._context = {"grids": [(8, 8), (4, 4), (2, 2)], "batch": batch, "fg": fg, "gt_idx": gt_idx}


def _point(level: int, row: int, col: int) -> int:
    """Index of an anchor point in Ultralytics' flattened (levels concatenated, row-major) order."""
    return LEVEL_START[level] + row * (8 >> level) + col


def test_box_rule_masks_every_point_inside_the_box_on_every_level(model):
    """Box x, y in [16, 32] px: P3 cell centres 20 and 28 (cells 2, 3), P4 centre 24 (cell 1), P5 centre 16 (cell 0).

    Gaussian of Eq. 10 at P3: w = h = 2 cells, D = 2 * 2 + 1 = 5, σ = 5 (1 + e^-5) / 6; a cell centre half a cell
    from the box centre on both axes is exp(-0.5 / 2σ²); the cell holding the centre (3, 3) is exactly 1, and so is
    the single cell on P4 and on P5.
    """
    crit = _criterion(model, loss="mfl", mfl_mask="box", mfl_quality=False)
    fg = torch.zeros(1, 84, dtype=torch.bool)
    _set_context(crit, _one_box_batch(), fg)
    heatmap, mask = crit.mfl_targets(torch.zeros(1, 84))
    expected = {_point(0, 2, 2), _point(0, 2, 3), _point(0, 3, 2), _point(0, 3, 3), _point(1, 1, 1), _point(2, 0, 0)}
    assert set(mask[0].nonzero().flatten().tolist()) == expected
    sigma = 5 * (1 + math.exp(-5)) / 6
    edge = math.exp(-0.5 / (2 * sigma**2))
    for p, value in [(_point(0, 3, 3), 1.0), (_point(0, 2, 2), edge), (_point(0, 2, 3), edge), (_point(1, 1, 1), 1.0)]:
        assert heatmap[0, p].item() == pytest.approx(value, rel=1e-5)
    assert heatmap[~mask].abs().sum() == 0


def test_level_rule_keeps_only_levels_where_tal_gave_the_box_positives(model):
    """TAL positives on P3 only: the mask is the box's four P3 points, not the P4 and P5 points inside the box."""
    crit = _criterion(model, loss="mfl", mfl_mask="level", mfl_quality=False)
    fg = torch.zeros(1, 84, dtype=torch.bool)
    fg[0, [_point(0, 3, 3), _point(0, 2, 3)]] = True
    _set_context(crit, _one_box_batch(), fg)
    heatmap, mask = crit.mfl_targets(torch.zeros(1, 84))
    assert set(mask[0].nonzero().flatten().tolist()) == {_point(0, r, c) for r in (2, 3) for c in (2, 3)}
    assert heatmap[0, _point(0, 3, 3)] == 1.0


def test_level_rule_maps_boxes_of_each_image_to_their_own_positives(model):
    """Two images, three boxes: box k of the batch is TAL's slot k - (first box of its image) in its image."""
    crit = _criterion(model, loss="mfl", mfl_mask="level")
    batch = {
        "batch_idx": torch.tensor([0.0, 1.0, 1.0]),
        "cls": torch.zeros(3, 1),
        "bboxes": torch.tensor([[0.375, 0.375, 0.25, 0.25], [0.25, 0.25, 0.25, 0.25], [0.75, 0.75, 0.25, 0.25]]),
    }
    fg = torch.zeros(2, 84, dtype=torch.bool)
    gt_idx = torch.zeros(2, 84, dtype=torch.long)
    fg[0, _point(1, 1, 1)] = True  # image 0, its box 0: a positive on P4
    fg[1, _point(0, 1, 1)] = True  # image 1, its box 0: P3
    fg[1, _point(2, 1, 1)], gt_idx[1, _point(2, 1, 1)] = True, 1  # image 1, its box 1: P5
    _set_context(crit, batch, fg, gt_idx)
    levels = crit._levels_with_positives()
    assert levels.tolist() == [[False, True, False], [True, False, False], [False, False, True]]


def test_fg_rule_quality_and_binary_targets(model):
    """fg: the mask is TAL's positives; quality multiplies the Gaussian by the soft label; binary puts 1 on the mask."""
    fg = torch.zeros(1, 84, dtype=torch.bool)
    fg[0, [_point(0, 3, 3), _point(0, 2, 2)]] = True
    soft = torch.zeros(1, 84)
    soft[0, _point(0, 3, 3)], soft[0, _point(0, 2, 2)] = 0.8, 0.5
    crit = _criterion(model, loss="mfl", mfl_mask="fg", mfl_quality=True)
    _set_context(crit, _one_box_batch(), fg)
    heatmap, mask = crit.mfl_targets(soft)
    assert torch.equal(mask, fg)
    sigma = 5 * (1 + math.exp(-5)) / 6
    assert heatmap[0, _point(0, 3, 3)].item() == pytest.approx(0.8)
    assert heatmap[0, _point(0, 2, 2)].item() == pytest.approx(0.5 * math.exp(-0.5 / (2 * sigma**2)), rel=1e-5)
    crit = _criterion(model, loss="mfl", mfl_mask="fg", mfl_quality=0.5)  # YOLOv5's gr blend: 0.5 + 0.5 × label
    _set_context(crit, _one_box_batch(), fg)
    heatmap, _ = crit.mfl_targets(soft)
    assert heatmap[0, _point(0, 3, 3)].item() == pytest.approx(0.9)
    assert heatmap[0, _point(0, 2, 2)].item() == pytest.approx(0.75 * math.exp(-0.5 / (2 * sigma**2)), rel=1e-5)
    crit = _criterion(model, loss="mfl", mfl_mask="fg", mfl_target="binary", mfl_quality=False)
    _set_context(crit, _one_box_batch(), fg)
    heatmap, _ = crit.mfl_targets(soft)
    assert torch.equal(heatmap, fg.float())


def test_fg_rule_drops_poorly_aligned_positives_and_normalises_quality(model):
    """Two heads (gt_idx 0 and 1) with two positives each. Head 0: soft labels 0.8 and 0.05 (0.0625 of its best, under
    mfl_min_align 0.1: a negative now); head 1: 0.2 and 0.1 (half of its best: kept). mfl_quality_norm scales each
    kept Gaussian by soft label / its head's best: 1, 1 and 0.5."""
    a, b, c, d = _point(0, 3, 3), _point(2, 0, 0), _point(0, 6, 6), _point(0, 5, 6)
    fg = torch.zeros(1, 84, dtype=torch.bool)
    fg[0, [a, b, c, d]] = True
    gt_idx = torch.zeros(1, 84, dtype=torch.long)
    gt_idx[0, [c, d]] = 1
    soft = torch.zeros(1, 84)
    soft[0, [a, b, c, d]] = torch.tensor([0.8, 0.05, 0.2, 0.1])
    batch = {
        "batch_idx": torch.zeros(2),
        "cls": torch.zeros(2, 1),
        "bboxes": torch.tensor([[24 / 64, 24 / 64, 16 / 64, 16 / 64], [52 / 64, 52 / 64, 16 / 64, 16 / 64]]),
    }
    crit = _criterion(model, loss="mfl", mfl_mask="fg", mfl_quality=False, mfl_min_align=0.1)
    _set_context(crit, batch, fg, gt_idx)
    heatmap, mask = crit.mfl_targets(soft)
    assert mask[0].nonzero().flatten().tolist() == sorted([a, c, d])
    plain = heatmap[0, [a, c, d]]
    crit = _criterion(model, loss="mfl", mfl_mask="fg", mfl_quality=True, mfl_quality_norm=True, mfl_min_align=0.1)
    _set_context(crit, batch, fg, gt_idx)
    heatmap, _ = crit.mfl_targets(soft)
    torch.testing.assert_close(heatmap[0, [a, c, d]], plain * torch.tensor([1.0, 1.0, 0.5]))
    crit = _criterion(model, loss="mfl", mfl_mask="fg", mfl_quality=False)  # the default 0 keeps every positive
    _set_context(crit, batch, fg, gt_idx)
    assert torch.equal(crit.mfl_targets(soft)[1], fg)


def _batch(n_img: int = 2, n_box: int = 5, size: int = 128) -> dict[str, torch.Tensor]:
    g = torch.Generator().manual_seed(1)
    boxes = torch.rand(n_img * n_box, 4, generator=g) * 0.6 + 0.2
    boxes[:, 2:] = boxes[:, 2:] * 0.2 + 0.05
    return {
        "img": torch.rand(n_img, 3, size, size, generator=g),
        "batch_idx": torch.arange(n_img).repeat_interleave(n_box).float(),
        "cls": torch.zeros(n_img * n_box, 1),
        "bboxes": boxes,
    }


def test_bce_is_ultralytics_own_loss(model):
    """loss=bce gives exactly Ultralytics' v8DetectionLoss on the same predictions: the subclass changes nothing."""
    batch = _batch()
    preds = model(batch["img"])
    ours = _criterion(model, loss="bce")(preds, batch)
    stock = v8DetectionLoss(model)(preds, batch)
    torch.testing.assert_close(ours[0], stock[0], rtol=0, atol=0)


@pytest.mark.parametrize("fl_cls", [1.0, 2.5])
def test_mfl_class_term_gain_and_normaliser(model, fl_cls):
    """cls_loss = Ultralytics' cls gain × fl_cls × L_m^P1 with N = heads in the batch; box terms stay Ultralytics'."""
    batch = _batch()
    preds = model(batch["img"])
    crit = _criterion(model, loss="mfl", fl_cls=fl_cls, mfl_mask="level", mfl_quality=False)
    total, items = crit(preds, batch)
    heatmap, mask = crit.mfl_targets(torch.zeros(2, preds["scores"].shape[-1]))  # no quality: soft labels unused
    logits = preds["scores"].detach().permute(0, 2, 1)[..., 0]
    expected = mask_focal_loss(logits, heatmap, mask, alpha=0.25, gamma=2.0, beta=0.5, poly=True, num_objects=10)
    assert items["cls_loss"].item() == pytest.approx(0.5 * fl_cls * expected.item(), rel=1e-4)
    stock = v8DetectionLoss(model)(preds, batch)[1]
    assert items["box_loss"].item() == pytest.approx(stock["box_loss"].item(), rel=1e-6)
    assert items["dfl_loss"].item() == pytest.approx(stock["dfl_loss"].item(), rel=1e-6)


def test_focal_positives_are_tal_foreground(model):
    """loss=focal: L_f with TAL's foreground points as the positives, normalised by the number of heads."""
    batch = _batch()
    preds = model(batch["img"])
    crit = _criterion(model, loss="focal", fl_cls=1.0)
    _, items = crit(preds, batch)
    fg = crit._context["fg"]
    assert 0 < int(fg.sum()) < fg.numel()
    logits = preds["scores"].detach().permute(0, 2, 1)[..., 0]
    expected = focal_loss(logits, fg.float(), alpha=0.25, gamma=2.0, num_objects=10)
    assert items["cls_loss"].item() == pytest.approx(0.5 * expected.item(), rel=1e-4)


@pytest.mark.parametrize("loss", ["focal", "heatmap", "mfl"])
def test_focal_family_gradients_reach_scores_and_boxes(model, loss):
    """Every kind backpropagates into the class logits (and the box terms into the distances)."""
    batch = _batch()
    preds = model(batch["img"])
    scores, boxes = preds["scores"].detach().requires_grad_(), preds["boxes"].detach().requires_grad_()
    total, _ = _criterion(model, loss=loss)({**preds, "scores": scores, "boxes": boxes}, batch)
    total.sum().backward()
    assert scores.grad.abs().sum() > 0 and boxes.grad.abs().sum() > 0


@pytest.mark.parametrize("min_align", [0.0, 0.1])
def test_mfl_on_a_batch_without_heads_pushes_every_score_down(model, min_align):
    """Images with no head (TAL then returns a float box index): MFL has no positive, so the class term is the focal
    negative alone and its gradient lowers every score; the box terms are 0."""
    batch = {**_batch(), "batch_idx": torch.zeros(0), "cls": torch.zeros(0, 1), "bboxes": torch.zeros(0, 4)}
    preds = model(batch["img"])
    scores = preds["scores"].detach().requires_grad_()
    crit = _criterion(model, loss="mfl", mfl_min_align=min_align)
    total, items = crit({**preds, "scores": scores}, batch)
    total.sum().backward()
    assert items["box_loss"].item() == 0 and items["cls_loss"].item() > 0
    assert (scores.grad > 0).all()  # d loss / d logit > 0 everywhere: every score goes down


def test_bad_settings_are_refused(model):
    with pytest.raises(ValueError, match="unknown class loss 'giou'"):
        _criterion(model, loss="giou")
    with pytest.raises(ValueError, match="mfl_mask must be one of box, level, fg"):
        _criterion(model, loss="mfl", mfl_mask="centre")
    two = build_model(CFG, nc=2, verbose=False)
    with pytest.raises(ValueError, match="one-class"):
        _criterion(two, loss="mfl")
