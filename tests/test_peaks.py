"""The peak filter: level shapes from the output length, and which points survive on hand-made score maps."""

from __future__ import annotations

import pytest
import torch

from models.yolo import build_model
from utils import ROOT
from utils.peaks import head_strides, level_shapes, peak_filter

STRIDES = torch.tensor([8.0, 16.0, 32.0])


def test_level_shapes_anchor_free_and_anchor_heads():
    # 64x96 input: grids 8x12, 4x6, 2x3 = 96 + 24 + 6 = 126 cells
    assert level_shapes((64, 96), STRIDES, 126) == [(1, 8, 12), (1, 4, 6), (1, 2, 3)]
    assert level_shapes((64, 96), STRIDES, 3 * 126) == [(3, 8, 12), (3, 4, 6), (3, 2, 3)]
    with pytest.raises(ValueError, match="do not tile"):
        level_shapes((64, 96), STRIDES, 127)


def _preds(scores: torch.Tensor) -> torch.Tensor:
    """(1, 5, A) output whose box columns hold the point index, so a test can see they are untouched."""
    a = scores.numel()
    boxes = torch.arange(a, dtype=torch.float32).expand(4, a)
    return torch.cat([boxes, scores.view(1, a)]).unsqueeze(0)


def test_keeps_local_maxima_and_ties_only():
    s = torch.zeros(4, 4)
    s[1, 1], s[1, 2], s[2, 1] = 0.9, 0.5, 0.4  # a peak and two shoulders
    s[3, 3] = 0.3  # a lone, weaker peak two cells away: kept
    s[0, 3] = s[1, 3] = 0.2  # a plateau touching the first shoulder (0.5 > 0.2): both suppressed
    out = peak_filter(_preds(s.flatten()), [(1, 4, 4)])
    kept = out[0, 4].view(4, 4)
    expected = torch.zeros(4, 4)
    expected[1, 1], expected[3, 3] = 0.9, 0.3
    assert torch.equal(kept, expected)
    assert torch.equal(out[0, :4], _preds(s.flatten())[0, :4])  # boxes unchanged

    tie = torch.zeros(3, 3)
    tie[1, 0] = tie[1, 1] = 0.7  # equal neighbours: both survive, NMS decides
    assert (peak_filter(_preds(tie.flatten()), [(1, 3, 3)])[0, 4] > 0).sum() == 2


def test_levels_and_anchors_are_filtered_separately():
    # level 0: 2x2 grid, level 1: 1x1; the bright level-0 point does not suppress the level-1 point
    flat = torch.tensor([0.9, 0.1, 0.2, 0.3, 0.5])
    kept = peak_filter(_preds(flat), [(1, 2, 2), (1, 1, 1)])[0, 4]
    assert kept.tolist() == pytest.approx([0.9, 0, 0, 0, 0.5])
    # anchor head: 2 anchors of one 1x2 level, anchor-major; each anchor keeps its own maximum
    flat = torch.tensor([0.8, 0.6, 0.1, 0.4])  # anchor 0: cells 0.8, 0.6; anchor 1: cells 0.1, 0.4
    kept = peak_filter(_preds(flat), [(2, 1, 2)])[0, 4]
    assert kept.tolist() == pytest.approx([0.8, 0, 0, 0.4])


def test_head_strides_of_both_heads():
    for cfg in ("yolov5nu-mfl.yaml", "yolov5n-mfl.yaml"):
        model = build_model(str(ROOT / "models" / cfg), nc=1, verbose=False)
        assert head_strides(model).tolist() == [8.0, 16.0, 32.0]
    assert head_strides(torch.nn.Linear(1, 1)) is None


def test_validator_filters_before_nms_only_when_asked():
    """The validator's postprocess with the filter drops the shoulder of a head, and keeps it without the filter."""
    from utils.validator import CountingValidator

    s = torch.zeros(2, 2)
    s[0, 0], s[0, 1] = 0.9, 0.5  # a head and its shoulder, boxes far apart so NMS would keep both
    preds = _preds(s.flatten())
    preds[0, :4] = torch.tensor(
        [[4.0, 12.0, 4.0, 12.0], [4.0, 4.0, 4.0, 4.0], [2.0, 2.0, 2.0, 2.0], [2.0, 2.0, 2.0, 2.0]]
    )  # xywh of the 4 points: two 2x2 boxes at x = 4 and 12
    kept = {}
    for on in (False, True):
        v = CountingValidator(args={"conf": 0.1, "iou": 0.6}, peak_filter=on)
        v._strides, v._input_hw = (torch.tensor([8.0]) if on else None), (16, 16)
        kept[on] = v.postprocess(preds)[0]["conf"].tolist()
    assert sorted(kept[False]) == pytest.approx([0.5, 0.9]) and kept[True] == pytest.approx([0.9])
