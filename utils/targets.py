"""Gaussian heatmap and box-mask targets on one feature grid, for the Focal Loss family (paper Section III-B, Fig. 3).

Pure functions, no configuration: boxes in, (heatmap, mask) out, vectorised over boxes and images. Each box writes
only into a small window of cells around it; windows are grouped by size (powers of two), so a few huge boxes do not
inflate the work of thousands of small ones, and the only Python loop is over those few size groups.
"""

from __future__ import annotations

import torch


def gaussian_sigma(w: torch.Tensor, h: torch.Tensor, eta: float = 1.0, eps: float = 6.0) -> torch.Tensor:
    """Standard deviation of a box's Gaussian, Eq. 10: σ = D (1 + η e^-D) / ε with D = 2 min(w, h) + 1.

    The defaults follow CenterNet (σ = diameter / 6, i.e. ε = 6) with the paper's small-object sensing factor η = 1,
    which widens the Gaussian of heads of one or two cells (D = 3: σ grows by 5 %) while leaving large heads untouched
    (D = 9: by 0.01 %). Since D counts twice the short side, the Gaussian is still high at the box edge: at the middle
    of a short side it is exp(-9 (D - 1)² / (8 D² (1 + η e^-D)²)) of the peak, 0.64 for a one-cell head (D = 3) down
    to exp(-9/8) = 0.33 for large ones.

    Args:
        w (torch.Tensor): Box widths in grid units.
        h (torch.Tensor): Box heights in grid units.
        eta (float): Small-object sensing factor η.
        eps (float): Divisor ε.

    Returns:
        (torch.Tensor): σ in grid units, same shape as `w`.
    """
    d = 2 * torch.minimum(w, h) + 1
    return d * (1 + eta * torch.exp(-d)) / eps


def _cell_span(lo: torch.Tensor, hi: torch.Tensor, centre: torch.Tensor, size: int) -> tuple[torch.Tensor, ...]:
    """First and last cell index whose centre (i + 0.5) lies in [lo, hi], widened to hold the centre cell."""
    first = torch.ceil(lo - 0.5).long().clamp(0, size - 1)
    last = torch.floor(hi - 0.5).long().clamp(0, size - 1)
    return torch.minimum(first, centre), torch.maximum(last, centre)


def build_heatmap_targets(
    boxes: torch.Tensor,
    batch_idx: torch.Tensor,
    batch_size: int,
    grid_hw: tuple[int, int],
    stride: float,
    *,
    eta: float = 1.0,
    eps: float = 6.0,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Build the Gaussian heatmap and the box mask of one feature grid.

    heatmap[b, i, j] is the max over the boxes of image b of exp(-d² / 2σ²), d being the distance in grid units from
    the centre of cell (i, j) to the box centre and σ from Eq. 10, restricted to the cells of that box; the cell
    holding a box centre is exactly 1. mask[b, i, j] is True where the cell centre lies inside a box; a box that
    holds no cell centre along an axis (smaller than a cell, or thin) still marks its centre cell along that axis.
    The heatmap is 0 wherever the mask is False.

    Args:
        boxes (torch.Tensor): (n, 4) boxes as centre x, centre y, width, height in input-image pixels.
        batch_idx (torch.Tensor): (n,) index of the image each box belongs to, in [0, batch_size).
        batch_size (int): Number of images (first dimension of the outputs).
        grid_hw (tuple[int, int]): Height and width of the feature grid.
        stride (float): Pixels per grid cell.
        eta (float): Small-object sensing factor η of Eq. 10.
        eps (float): Divisor ε of Eq. 10.

    Returns:
        heatmap (torch.Tensor): (batch_size, H, W) float32 heatmap.
        mask (torch.Tensor): (batch_size, H, W) bool mask.
    """
    gh, gw = grid_hw
    device = boxes.device
    # element 0 is a sink for window cells outside their box: invalid flat indices are negative and clamp to it
    heatmap = torch.zeros(batch_size * gh * gw + 1, device=device)
    mask = torch.zeros(batch_size * gh * gw + 1, dtype=torch.bool, device=device)
    if boxes.shape[0]:
        cx, cy, w, h = (boxes.float() / stride).unbind(1)
        two_var = 2 * gaussian_sigma(w, h, eta, eps).square()
        ci, cj = cy.floor().long().clamp(0, gh - 1), cx.floor().long().clamp(0, gw - 1)  # centre cell
        r0, r1 = _cell_span(cy - h / 2, cy + h / 2, ci, gh)
        c0, c1 = _cell_span(cx - w / 2, cx + w / 2, cj, gw)
        extent = torch.maximum(r1 - r0, c1 - c0) + 1
        bucket = torch.ceil(torch.log2(extent.float())).long()  # window side 2**bucket holds the box's cells
        invalid = -(batch_size * gh * gw + 1)
        row_base = (batch_idx.long() * gh) * gw + 1
        for k in bucket.unique().tolist():  # a handful of size groups, not boxes
            sel = (bucket == k).nonzero().squeeze(1)
            offsets = torch.arange(2**k, device=device)
            rows, cols = r0[sel, None] + offsets, c0[sel, None] + offsets  # (m, K) each
            # the Gaussian is separable: K row and K column factors instead of K² exponentials
            gy = torch.exp(-(rows + 0.5 - cy[sel, None]).square() / two_var[sel, None])
            gx = torch.exp(-(cols + 0.5 - cx[sel, None]).square() / two_var[sel, None])
            row_idx = torch.where(rows <= r1[sel, None], row_base[sel, None] + rows * gw, invalid)
            col_idx = torch.where(cols <= c1[sel, None], cols, invalid)
            flat = (row_idx[:, :, None] + col_idx[:, None, :]).clamp_(min=0).flatten()
            heatmap.scatter_reduce_(0, flat, (gy[:, :, None] * gx[:, None, :]).flatten(), reduce="amax")
            mask[flat] = True
        heatmap[row_base + ci * gw + cj] = 1.0  # the cell holding a box centre is exactly 1
    shape = (batch_size, gh, gw)
    return heatmap[1:].view(shape), mask[1:].view(shape)
