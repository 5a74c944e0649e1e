"""Mask Focal Loss family: hand-computed values, the paper's unification claims, the minimum, and stability."""

from __future__ import annotations

import math

import pytest
import torch

from utils.loss import focal_loss, heatmap_focal_loss, mask_focal_loss


def _rand(shape, seed=0, scale=4.0):
    g = torch.Generator().manual_seed(seed)
    return torch.randn(shape, generator=g) * scale


def _binary(shape, seed=1, frac=0.2):
    g = torch.Generator().manual_seed(seed)
    return (torch.rand(shape, generator=g) < frac).float()


def _gaussian_target(seed=2):
    """A heatmap with peaks at 1, soft values inside the mask and 0 outside."""
    g = torch.Generator().manual_seed(seed)
    mask = torch.rand(2, 8, 8, generator=g) < 0.4
    heat = torch.rand(2, 8, 8, generator=g).clamp(0.05, 0.95) * mask
    peaks = torch.rand(2, 8, 8, generator=g) < 0.1
    heat = torch.where(peaks & mask, 1.0, heat)
    return heat, mask


def test_focal_hand_computed():
    """Two cells, logits 0 (p̂ = 0.5): positive term 0.5^2 log 0.5, negative term 0.5^2 log 0.5; N = 1, α = 0.25.

    L_f = -0.25 * (2 * 0.25 * log 0.5) = 0.125 * log 2. Poly-1 adds +0.25 * (2 * 0.5^3) = 0.0625.
    """
    x, t = torch.zeros(2), torch.tensor([1.0, 0.0])
    assert focal_loss(x, t).item() == pytest.approx(0.125 * math.log(2), rel=1e-6)
    assert focal_loss(x, t, poly=True).item() == pytest.approx(0.125 * math.log(2) + 0.0625, rel=1e-6)


def test_mask_focal_hand_computed():
    """One mask cell with p = 0.5 and p̂ = sigmoid(0) = 0.5 (Δp = 0) contributes 0; one with p = 1, p̂ = 0.5:
    Δp = 0.5, Eq. 6 term = 1^β 0.5^4 log 0.5; one outside the mask with p̂ = 0.5: 0.5^4 log 0.5. N = 1 peak, α = 1.
    L_m = -(2 * 0.0625 * log 0.5) = 0.125 log 2. L_m^P1 adds Σ p^β Δp^5 + p̂^5 = 0.5^5 + 0.5^5 = 0.0625.
    """
    x = torch.zeros(3)
    heat, mask = torch.tensor([0.5, 1.0, 0.0]), torch.tensor([True, True, False])
    assert mask_focal_loss(x, heat, mask).item() == pytest.approx(0.125 * math.log(2), rel=1e-6)
    assert mask_focal_loss(x, heat, mask, poly=True).item() == pytest.approx(0.125 * math.log(2) + 0.0625, rel=1e-6)


def test_mask_focal_balance_scales_only_the_outside():
    """The cells of test_mask_focal_hand_computed with α = 0.25: inside term 0.0625 log 0.5, outside 0.0625 log 0.5.
    Eq. 6 as printed scales both by α: 0.25 * 0.125 log 2. RetinaNet's balance scales the outside by 1 - α = 0.75:
    0.25 * 0.0625 log 2 + 0.75 * 0.0625 log 2 = 0.0625 log 2.
    """
    x = torch.zeros(3)
    heat, mask = torch.tensor([0.5, 1.0, 0.0]), torch.tensor([True, True, False])
    printed = mask_focal_loss(x, heat, mask, alpha=0.25)
    balanced = mask_focal_loss(x, heat, mask, alpha=0.25, alpha_neg=0.75)
    assert printed.item() == pytest.approx(0.25 * 0.125 * math.log(2), rel=1e-6)
    assert balanced.item() == pytest.approx(0.0625 * math.log(2), rel=1e-6)


def test_heatmap_focal_hand_computed():
    """Peak cell p̂ = 0.5: 0.5^2 log 0.5; soft cell p = 0.5: (0.5)^4 0.5^2 log 0.5; α = 1, N = 1."""
    x, heat = torch.zeros(2), torch.tensor([1.0, 0.5])
    expected = -(0.25 * math.log(0.5) + 0.0625 * 0.25 * math.log(0.5))
    assert heatmap_focal_loss(x, heat).item() == pytest.approx(expected, rel=1e-6)


@pytest.mark.parametrize("poly", [False, True])
@pytest.mark.parametrize("beta", [0.0, 0.5, 2.0])
def test_binary_ground_truth_reduces_to_focal(poly, beta):
    """With a binary ground truth, L_m (any β) and L_h equal L_f, in the plain and poly-1 forms."""
    x, t = _rand((2, 3, 8, 8)), _binary((2, 3, 8, 8))
    lf = focal_loss(x, t, alpha=1.0, gamma=2.0, poly=poly)
    lm = mask_focal_loss(x, t, t.bool(), alpha=1.0, beta=beta, gamma=2.0, poly=poly)
    lh = heatmap_focal_loss(x, t, alpha=1.0, beta=beta, gamma=2.0, poly=poly)
    torch.testing.assert_close(lm, lf)
    torch.testing.assert_close(lh, lf)


@pytest.mark.parametrize("poly", [False, True])
def test_keypoint_mask_reduces_to_heatmap_loss_when_beta_zero(poly):
    """With the mask reduced to the key points, L_m equals L_h when L_h's negative weight (1 - p)^β is 1 (β = 0)."""
    x = _rand((2, 8, 8))
    heat, _ = _gaussian_target()
    keypoints = heat == 1
    lm = mask_focal_loss(x, heat, keypoints, gamma=2.0, beta=0.5, poly=poly)
    lh = heatmap_focal_loss(x, heat, gamma=2.0, beta=0.0, poly=poly)
    torch.testing.assert_close(lm, lh)
    lh4 = heatmap_focal_loss(x, heat, gamma=2.0, beta=4.0, poly=poly)
    assert not torch.isclose(lm, lh4), "with β > 0 the reduction does not hold, as the docstring says"


@pytest.mark.parametrize("poly", [False, True])
def test_minimum_at_target(poly):
    """The loss is smallest (about 0) when p̂ equals the heatmap inside the mask and 0 outside; any change raises it."""
    heat, mask = _gaussian_target()
    best = torch.where(mask, torch.logit(heat.clamp(max=1 - 1e-6)), torch.full_like(heat, -30.0))
    best.requires_grad_(True)
    loss = mask_focal_loss(best, heat, mask, poly=poly)
    loss.backward()
    assert loss.item() < 1e-5
    assert best.grad.abs().max().item() < 1e-4
    for seed in range(5):
        moved = best.detach() + _rand(best.shape, seed=seed, scale=0.3)
        assert mask_focal_loss(moved, heat, mask, poly=poly).item() > loss.item()


@pytest.mark.parametrize("dtype", [torch.float32, torch.float16])
@pytest.mark.parametrize("fn", ["focal", "heatmap", "mask", "mask_poly"])
def test_finite_over_fuzzed_grid(dtype, fn):
    """Value and gradient stay finite for logits across [-100, 100] and targets with exact 0, 1 and soft values."""
    logits = torch.linspace(-100, 100, 401)
    targets = torch.tensor([0.0, 1e-30, 1e-8, 0.3, 0.5, 1 - 1e-7, 1.0])
    x = logits[:, None].expand(-1, len(targets)).clone().to(dtype).requires_grad_(True)
    t = targets[None].expand(len(logits), -1)
    mask = t > 0
    loss = {
        "focal": lambda: focal_loss(x, (t == 1).float()),
        "heatmap": lambda: heatmap_focal_loss(x, t),
        "mask": lambda: mask_focal_loss(x, t, mask),
        "mask_poly": lambda: mask_focal_loss(x, t, mask, poly=True, gamma=2.0),
    }[fn]()
    loss.backward()
    assert loss.dtype == torch.float32
    assert torch.isfinite(loss)
    assert torch.isfinite(x.grad.float()).all()


def test_num_objects_normalises():
    """N = num_objects overrides the peak count and is clamped to at least 1."""
    x, t = _rand((4, 4)), _binary((4, 4))
    full = focal_loss(x, t, num_objects=1)
    assert focal_loss(x, t, num_objects=4).item() == pytest.approx(full.item() / 4, rel=1e-6)
    assert focal_loss(x, torch.zeros(4, 4)).item() == pytest.approx(
        focal_loss(x, torch.zeros(4, 4), num_objects=0).item()
    )
