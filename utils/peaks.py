"""Peak filter: keep only the local maxima of each level's score map before NMS, as heatmap detectors (CenterNet) do.

A model whose objectness is trained as a heatmap (MFL, Eq. 10) scores every cell near a head; box NMS then sorts and
compares tens of thousands of candidates per image at the mAP confidence, and misses the duplicates whose boxes
overlap by less than its IoU threshold. A cell that is not the maximum of its 3x3 neighbourhood on its own level
(and, for the anchor head, its own anchor) is a shoulder of a brighter peak: zeroing its score removes it before NMS.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F


def level_shapes(imgsz: tuple[int, int], strides: torch.Tensor | list[float], n_points: int) -> list[tuple[int, ...]]:
    """Return (na, h, w) per level of a head's flat output of `n_points` points for an input of `imgsz` pixels.

    Both heads flatten level by level (the anchor head anchor-major within a level); the anchors per level follow
    from the total, so the same call serves the anchor-free head (na = 1) and the anchor head (na = 3 or 9).

    Args:
        imgsz (tuple[int, int]): Network input height and width (multiples of the largest stride).
        strides (torch.Tensor | list[float]): Level strides.
        n_points (int): Length of the output's last dimension.

    Returns:
        (list[tuple[int, int, int]]): Anchors, rows and columns of each level.
    """
    hw = [(int(imgsz[0] // s), int(imgsz[1] // s)) for s in torch.as_tensor(strides).tolist()]
    cells = sum(h * w for h, w in hw)
    if not cells or n_points % cells:
        raise ValueError(f"{n_points} output points do not tile input {tuple(imgsz)} at strides {hw}")
    na = n_points // cells
    return [(na, h, w) for h, w in hw]


def peak_filter(preds: torch.Tensor, shapes: list[tuple[int, ...]], kernel: int = 3) -> torch.Tensor:
    """Zero the class scores of every point that is not a local maximum of its level's (and anchor's) score map.

    Ties keep every tied point, so a flat plateau is left to NMS rather than emptied.

    Args:
        preds (torch.Tensor): Model output (B, 4 + nc, A) in Ultralytics' layout: xywh then class scores.
        shapes (list[tuple[int, int, int]]): (na, h, w) per level, from `level_shapes`.
        kernel (int): Odd neighbourhood size in cells.

    Returns:
        (torch.Tensor): A copy of `preds` whose non-peak scores are 0, below any confidence threshold.
    """
    b, c, _ = preds.shape
    nc = c - 4
    out = preds.clone()
    start = 0
    for na, h, w in shapes:  # one pooling per level (3 or 4), not per box
        end = start + na * h * w
        s = preds[:, 4:, start:end].reshape(b * nc, na, h, w)
        peak = F.max_pool2d(s, kernel, stride=1, padding=kernel // 2) == s
        out[:, 4:, start:end] *= peak.reshape(b, nc, -1)
        start = end
    return out


def head_strides(model: torch.nn.Module) -> torch.Tensor | None:
    """Return the per-level strides of a model (unwrapping AutoBackend), None when only the largest is known.

    Args:
        model (torch.nn.Module): A DetectionModel, or Ultralytics' AutoBackend around one.

    Returns:
        (torch.Tensor | None): Level strides, or None for backends that keep no per-level strides (exported files).
    """
    while not isinstance(getattr(model, "stride", None), torch.Tensor) and hasattr(model, "model"):
        model = model.model
    stride = getattr(model, "stride", None)
    return stride if isinstance(stride, torch.Tensor) and stride.numel() > 1 else None
