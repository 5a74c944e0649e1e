"""Heatmap and mask targets checked against hand-computed cells."""

from __future__ import annotations

import math

import pytest
import torch

from utils.targets import build_heatmap_targets, gaussian_sigma


def _sigma(d_cells: float) -> float:
    """Eq. 10 with η = 1, ε = 6 for a square box of side d_cells: D = 2 d + 1."""
    d = 2 * d_cells + 1
    return d * (1 + math.exp(-d)) / 6


def test_sigma_eq10():
    assert gaussian_sigma(torch.tensor(2.0), torch.tensor(3.0)).item() == pytest.approx(_sigma(2), rel=1e-6)
    assert gaussian_sigma(torch.tensor(2.0), torch.tensor(2.0), eta=0.0, eps=5.0).item() == pytest.approx(1.0)


def test_one_box():
    """A 16 px box centred at (20, 20) on a stride-8 grid: 2 cells wide, centre (2.5, 2.5) in grid units.

    Cells 1..3 have centres 1.5..3.5 inside [1.5, 3.5]; the centre cell (2, 2) is 1; cell (1, 1) is at d² = 2:
    exp(-2 / (2 σ²)) with σ = 5 (1 + e^-5) / 6.
    """
    hm, mask = build_heatmap_targets(torch.tensor([[20.0, 20, 16, 16]]), torch.tensor([0]), 1, (6, 6), 8)
    expected_mask = torch.zeros(6, 6, dtype=torch.bool)
    expected_mask[1:4, 1:4] = True
    assert torch.equal(mask[0], expected_mask)
    assert hm[0, 2, 2].item() == 1.0
    s = _sigma(2)
    assert hm[0, 1, 1].item() == pytest.approx(math.exp(-2 / (2 * s * s)), rel=1e-5)
    assert hm[0, 2, 1].item() == pytest.approx(math.exp(-1 / (2 * s * s)), rel=1e-5)
    assert hm[0][~mask[0]].abs().sum() == 0


def test_two_overlapping_boxes_take_the_max():
    """Boxes centred at x = 20 and x = 36 overlap on cell column 3: each cell holds the larger Gaussian."""
    boxes = torch.tensor([[20.0, 20, 16, 16], [36.0, 20, 16, 16]])
    hm, mask = build_heatmap_targets(boxes, torch.tensor([0, 0]), 1, (6, 8), 8)
    s = _sigma(2)
    assert hm[0, 2, 2].item() == 1.0 and hm[0, 2, 4].item() == 1.0
    assert hm[0, 2, 3].item() == pytest.approx(math.exp(-1 / (2 * s * s)), rel=1e-5)  # 1 cell from both centres
    assert mask[0, 1:4, 1:6].all() and mask[0].sum() == 15


def test_box_on_border_is_clipped():
    """A box centred on the image corner marks only in-image cells, and its centre cell (0, 0) is 1."""
    hm, mask = build_heatmap_targets(torch.tensor([[0.0, 0, 24, 24]]), torch.tensor([0]), 1, (4, 4), 8)
    assert hm[0, 0, 0].item() == 1.0
    assert mask[0, :2, :2].all()
    assert mask[0].sum() == 4  # cells with centres 0.5 and 1.5 lie in [-1.5, 1.5]


def test_box_smaller_than_a_cell_marks_its_centre_cell():
    """A 3 px head at (13, 5) on a stride-8 grid holds no cell centre but still marks cell (0, 1) with 1."""
    hm, mask = build_heatmap_targets(torch.tensor([[13.0, 5, 3, 3]]), torch.tensor([0]), 2, (4, 4), 8)
    assert mask.sum() == 1 and mask[0, 0, 1]
    assert hm.sum() == 1.0 and hm[0, 0, 1] == 1.0


def test_images_are_separate_and_empty_is_zero():
    boxes = torch.tensor([[20.0, 20, 16, 16]])
    hm, mask = build_heatmap_targets(boxes, torch.tensor([1]), 3, (6, 6), 8)
    assert mask[0].sum() == 0 and mask[2].sum() == 0 and mask[1].sum() == 9
    hm, mask = build_heatmap_targets(torch.zeros(0, 4), torch.zeros(0, dtype=torch.long), 2, (5, 7), 16)
    assert hm.shape == (2, 5, 7) and mask.shape == (2, 5, 7) and hm.sum() == 0 and not mask.any()


def test_five_thousand_boxes_match_a_per_box_reference():
    """5,000 boxes of mixed sizes in one image equal the max of per-box dense Gaussians (reference computed densely)."""
    g = torch.Generator().manual_seed(0)
    n, gh, gw, stride = 5000, 40, 40, 8
    xy = torch.rand(n, 2, generator=g) * gh * stride
    wh = torch.rand(n, 2, generator=g) ** 3 * 120 + 1
    boxes = torch.cat([xy, wh], 1)
    hm, mask = build_heatmap_targets(boxes, torch.zeros(n, dtype=torch.long), 1, (gh, gw), stride)
    # dense reference, vectorised over boxes × cells
    c = boxes / stride
    ys, xs = torch.meshgrid(torch.arange(gh) + 0.5, torch.arange(gw) + 0.5, indexing="ij")
    inside_x = (xs[None] >= c[:, 0, None, None] - c[:, 2, None, None] / 2) & (
        xs[None] <= c[:, 0, None, None] + c[:, 2, None, None] / 2
    )
    inside_y = (ys[None] >= c[:, 1, None, None] - c[:, 3, None, None] / 2) & (
        ys[None] <= c[:, 1, None, None] + c[:, 3, None, None] / 2
    )
    ci, cj = c[:, 1].floor().clamp(0, gh - 1), c[:, 0].floor().clamp(0, gw - 1)
    centre_row = (ys[None] - 0.5) == ci[:, None, None]
    centre_col = (xs[None] - 0.5) == cj[:, None, None]
    in_box = (inside_x | (centre_col & ~inside_x.any(2, keepdim=True))) & (
        inside_y | (centre_row & ~inside_y.any(1, keepdim=True))
    )
    sigma = gaussian_sigma(c[:, 2], c[:, 3])[:, None, None]
    d2 = (xs[None] - c[:, 0, None, None]) ** 2 + (ys[None] - c[:, 1, None, None]) ** 2
    val = torch.where(centre_row & centre_col, 1.0, torch.exp(-d2 / (2 * sigma**2))) * in_box
    assert torch.equal(mask[0], in_box.any(0))
    torch.testing.assert_close(hm[0], val.amax(0))
