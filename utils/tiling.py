"""Sliced inference for large images with tiny heads: overlapping tile windows and one merge over all tiles.

A 1920x1080 crowd letterboxed to 640 px shrinks every head threefold; cutting it into model-sized tiles at native
resolution keeps the heads' pixels. The tiles are batched through the model and their raw predictions merged before a
single NMS, so a head seen by two overlapping tiles is kept once.
"""

from __future__ import annotations

import math

import numpy as np
import torch
from ultralytics.utils import ops

from utils.nms import topk_nms


def _starts(size: int, tile: int, overlap: int) -> np.ndarray:
    """Return evenly spread tile origins along one axis, first at 0 and last ending at `size`."""
    if size <= tile:
        return np.zeros(1, dtype=np.int64)
    n = math.ceil((size - tile) / (tile - overlap)) + 1  # spreading n tiles evenly only widens the overlap
    return np.round(np.linspace(0, size - tile, n)).astype(np.int64)


def tile_windows(image_hw: tuple[int, int], tile_hw: tuple[int, int], overlap: float = 0.2) -> np.ndarray:
    """Cut an image into overlapping windows that cover it, the last row and column flush with its edges.

    Args:
        image_hw (tuple[int, int]): Image height and width in pixels.
        tile_hw (tuple[int, int]): Tile height and width in pixels (the model input size).
        overlap (float): Minimum overlap between neighbouring tiles as a fraction of the tile size, in [0, 1).

    Returns:
        (np.ndarray): Windows (T, 4) as x0, y0, x1, y1 in image pixels, row-major; smaller than the tile where the
            image is.

    Examples:
        >>> tile_windows((1080, 1920), (640, 640), 0.2).shape
        (8, 4)
    """
    if not 0 <= overlap < 1:
        raise ValueError(f"tile overlap must be in [0, 1), got {overlap}")
    (h, w), (th, tw) = image_hw, tile_hw
    ys = _starts(h, th, round(overlap * th))
    xs = _starts(w, tw, round(overlap * tw))
    y0, x0 = (a.ravel() for a in np.meshgrid(ys, xs, indexing="ij"))
    return np.stack((x0, y0, np.minimum(x0 + tw, w), np.minimum(y0 + th, h)), 1)


def crop_tiles(im: np.ndarray, windows: np.ndarray, tile_hw: tuple[int, int], pad_value: int = 114) -> np.ndarray:
    """Copy each window of an image into a tile-sized array, padding windows smaller than a tile (bottom/right).

    Args:
        im (np.ndarray): Image (H, W, C).
        windows (np.ndarray): Windows (T, 4) from `tile_windows`.
        tile_hw (tuple[int, int]): Tile height and width.
        pad_value (int): Fill of the padding, Ultralytics' letterbox grey by default.

    Returns:
        (np.ndarray): Tiles (T, tile_h, tile_w, C) with the image's dtype.
    """
    tiles = np.full((len(windows), *tile_hw, im.shape[2]), pad_value, dtype=im.dtype)
    for t, (x0, y0, x1, y1) in zip(tiles, windows):  # one slice copy per tile, a handful per image
        t[: y1 - y0, : x1 - x0] = im[y0:y1, x0:x1]
    return tiles


def cut_by_tile_edge(
    xywh: torch.Tensor,
    windows: torch.Tensor,
    image_hw: tuple[int, int],
    overlap_wh: tuple[float, float],
    margin: float = 4.0,
) -> torch.Tensor:
    """Flag predictions that an inner tile edge cuts and that a neighbouring tile must therefore see whole.

    Tiles overlap by `o` pixels, so a head smaller than `o - 2 * margin` that crosses one tile's inner edge lies
    whole, clear of the edges, inside a neighbour; its clipped copy would survive IoU-NMS next to the whole one (a half
    head has IoU 0.5 with it) and be counted twice. Larger boxes are kept: no tile holds them whole. Edges on the
    image border never cut.

    Args:
        xywh (torch.Tensor): Boxes (T, 4, A) as centre x, centre y, width, height in tile pixels.
        windows (torch.Tensor): Tile windows (T, 4) x0, y0, x1, y1 in image pixels.
        image_hw (tuple[int, int]): Image height and width.
        overlap_wh (tuple[float, float]): Overlap between neighbouring tiles along x and y in pixels (the smallest).
        margin (float): Distance from an edge, in pixels, within which a box counts as touching it.

    Returns:
        (torch.Tensor): Boolean mask (T, A), True for predictions to drop.
    """
    x, y, w, h = xywh.unbind(1)  # each (T, A)
    x0, y0, x1, y1 = (v[:, None] for v in windows.to(xywh).unbind(1))  # each (T, 1)
    ow, oh = overlap_wh
    small_w, small_h = w < ow - 2 * margin, h < oh - 2 * margin
    left = (x0 > 0) & (x - w / 2 <= margin)
    right = (x1 < image_hw[1]) & (x + w / 2 >= x1 - x0 - margin)
    top = (y0 > 0) & (y - h / 2 <= margin)
    bottom = (y1 < image_hw[0]) & (y + h / 2 >= y1 - y0 - margin)
    return ((left | right) & small_w) | ((top | bottom) & small_h)


def merge_tiles(
    preds: torch.Tensor,
    windows: np.ndarray | torch.Tensor,
    image_hw: tuple[int, int],
    overlap_wh: tuple[float, float],
    conf: float = 0.25,
    iou: float = 0.45,
    max_det: int = 300,
    classes: list[int] | None = None,
    agnostic: bool = False,
    margin: float = 4.0,
) -> torch.Tensor:
    """Merge one image's raw tile predictions into image detections with a single NMS over all tiles.

    Args:
        preds (torch.Tensor): Raw model output (T, 4 + nc, A) for the T tiles, boxes xywh in tile pixels.
        windows (np.ndarray | torch.Tensor): Tile windows (T, 4) x0, y0, x1, y1 in image pixels.
        image_hw (tuple[int, int]): Image height and width.
        overlap_wh (tuple[float, float]): Overlap between neighbouring tiles along x and y in pixels.
        conf (float): Confidence threshold.
        iou (float): IoU threshold of the NMS.
        max_det (int): Maximum detections kept for the image.
        classes (list[int], optional): Keep only these classes.
        agnostic (bool): Class-agnostic NMS.
        margin (float): Edge tolerance in pixels, see `cut_by_tile_edge`.

    Returns:
        (torch.Tensor): Detections (N, 6) as x1, y1, x2, y2, confidence, class in image pixels.
    """
    windows = torch.as_tensor(windows, device=preds.device)
    preds = preds.float().clone()
    cut = cut_by_tile_edge(preds[:, :4], windows, image_hw, overlap_wh, margin)
    preds[:, 4:] *= (~cut).unsqueeze(1)  # zero scores fall below any threshold
    preds[:, :2] += windows[:, :2, None].to(preds)  # tile to image pixels
    merged = preds.permute(1, 0, 2).reshape(1, preds.shape[1], -1)  # (1, 4 + nc, T * A)
    det = topk_nms(merged, conf, iou, classes=classes, agnostic=agnostic, max_det=max_det)[0]  # no time limit
    det[:, :4] = ops.clip_boxes(det[:, :4], image_hw)
    return det
