"""Tile windows, tile crops and the merge that must count a head on a tile border once (synthetic detections)."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from ultralytics.utils import nms

from utils.tiling import crop_tiles, cut_by_tile_edge, merge_tiles, tile_windows


def test_windows_cover_1080p_with_requested_overlap():
    """1920 wide, 640 tiles, overlap >= 128: ceil((1920-640)/512)+1 = 4 columns at 0, 427, 853, 1280; 1080 high:
    ceil((1080-640)/512)+1 = 2 rows at 0, 440. Neighbour overlaps are 213 px and 200 px."""
    w = tile_windows((1080, 1920), (640, 640), 0.2)
    assert w.tolist() == [[x, y, x + 640, y + 640] for y in (0, 440) for x in (0, 427, 853, 1280)]
    covered = np.zeros((1080, 1920), bool)
    for x0, y0, x1, y1 in w:
        covered[y0:y1, x0:x1] = True
    assert covered.all()


def test_windows_of_small_image_and_bad_overlap():
    """An image smaller than a tile is one window, clipped to the image; overlap 1 would never advance."""
    assert tile_windows((100, 80), (128, 128)).tolist() == [[0, 0, 80, 100]]
    with pytest.raises(ValueError, match="overlap"):
        tile_windows((100, 80), (64, 64), 1.0)


def test_crop_tiles_copies_windows_and_pads():
    """Each tile holds its window's pixels; the part past a small image is letterbox grey (114)."""
    im = np.arange(100 * 160 * 3, dtype=np.int64).reshape(100, 160, 3).astype(np.uint16)
    win = tile_windows((100, 160), (64, 64), 0.25)
    tiles = crop_tiles(im, win, (64, 64))
    for t, (x0, y0, x1, y1) in zip(tiles, win):
        np.testing.assert_array_equal(t, im[y0:y1, x0:x1])
    small = crop_tiles(im[:40, :50], np.array([[0, 0, 50, 40]]), (64, 64))[0]
    np.testing.assert_array_equal(small[:40, :50], im[:40, :50])
    assert (small[40:] == 114).all() and (small[:, 50:] == 114).all()


def _tile_preds(boxes_per_tile: list[list[tuple[float, ...]]], anchors: int = 8) -> torch.Tensor:
    """Build a raw model output (T, 5, A): xyxy boxes in tile pixels with scores, unused anchors at score 0."""
    preds = torch.zeros(len(boxes_per_tile), 5, anchors)
    for t, boxes in enumerate(boxes_per_tile):
        for a, (x1, y1, x2, y2, s) in enumerate(boxes):
            preds[t, :, a] = torch.tensor([(x1 + x2) / 2, (y1 + y2) / 2, x2 - x1, y2 - y1, s])
    return preds


# Image 100 high, 160 wide; 100 px tiles with 0.4 overlap: windows x 0-100 and 60-160, overlap 40 px (x 60-100).
WINDOWS = tile_windows((100, 160), (100, 100), 0.4)
BORDER_HEAD = (95, 40, 115, 60)  # 20 px head across tile 0's inner edge at x=100
TILE_VIEWS = [
    [(95, 40, 100, 60, 0.8), (70, 10, 85, 25, 0.9)],  # tile 0: border head clipped to 5 px; an overlap head whole
    [(35, 40, 55, 60, 0.9), (10, 10, 25, 25, 0.85), (85, 70, 100, 90, 0.7)],  # tile 1 (x0=60): both whole + edge head
]


def test_windows_of_fixture():
    """The fixture's geometry: two tiles side by side overlapping by 40 px."""
    assert WINDOWS.tolist() == [[0, 0, 100, 100], [60, 0, 160, 100]]


def test_head_across_tile_border_counted_once():
    """Three heads: one across the border (clipped copy in tile 0, whole in tile 1), one inside the overlap (whole in
    both), one on the image's right edge (an outer edge, never a cut). Shifting and plain NMS counts the border head
    twice, since the 5 px clip has IoU 5/20 = 0.25 < 0.45 with the whole head; the merge counts 3."""
    preds = _tile_preds(TILE_VIEWS)
    naive = preds.clone()
    naive[:, 0] += torch.as_tensor(WINDOWS[:, 0, None], dtype=torch.float32)
    naive = nms.non_max_suppression(naive.permute(1, 0, 2).reshape(1, 5, -1), 0.25, 0.45)[0]
    assert len(naive) == 4  # the failure this merge exists to prevent

    det = merge_tiles(preds, WINDOWS, (100, 160), (40, 40), conf=0.25, iou=0.45, max_det=100)
    assert len(det) == 3
    boxes = sorted(det[:, :4].round().tolist())
    assert boxes == [[70, 10, 85, 25], [95, 40, 115, 60], [145, 70, 160, 90]]  # image pixels, whole border head


def test_head_across_horizontal_border_counted_once():
    """The same scene transposed (tiles stacked vertically) checks the y edges."""
    t = [[(y1, x1, y2, x2, s) for x1, y1, x2, y2, s in views] for views in TILE_VIEWS]
    det = merge_tiles(_tile_preds(t), tile_windows((160, 100), (100, 100), 0.4), (160, 100), (40, 40), 0.25, 0.45)
    assert len(det) == 3
    assert [40, 95, 60, 115] in det[:, :4].round().tolist()


def test_cut_mask_by_hand():
    """Tile 0 (x 0-100, inner right edge): a box ending at x=98 is within the 4 px margin and 20 < 40 - 8: cut; the
    same box 10 px further left is not. A 36 px box touching the edge is too big to be whole in a neighbour: kept.
    Tile 1 (x 60-160): touching its inner left edge (x1=2 <= 4) is cut; its right edge is the image's: never cut; a box
    in its middle is not cut."""
    preds = _tile_preds(
        [
            [(78, 40, 98, 60, 1), (68, 40, 88, 60, 1), (64, 40, 100, 60, 1)],
            [(2, 10, 22, 30, 1), (80, 10, 100, 30, 1), (40, 40, 60, 60, 1)],
        ],
        anchors=3,
    )
    cut = cut_by_tile_edge(preds[:, :4], torch.as_tensor(WINDOWS), (100, 160), (40, 40), margin=4)
    assert cut.tolist() == [[True, False, False], [True, False, False]]


def test_merge_respects_conf_and_max_det():
    """Scores below conf are dropped; max_det keeps the highest-scoring detections."""
    preds = _tile_preds([[(10, 10, 20, 20, 0.9), (30, 30, 40, 40, 0.2)], [(60, 60, 70, 70, 0.6)]])
    det = merge_tiles(preds, WINDOWS, (100, 160), (40, 40), conf=0.25, iou=0.45, max_det=1)
    assert det[:, 4].tolist() == pytest.approx([0.9])
    assert len(merge_tiles(preds, WINDOWS, (100, 160), (40, 40), conf=0.25, iou=0.45, max_det=10)) == 2
