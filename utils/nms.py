"""Ultralytics' NMS on the best-scored candidates first: the same boxes, far fewer comparisons on dense score maps.

Greedy NMS keeps a box when no kept box of higher score overlaps it, so whether a box is kept depends only on the boxes
scored above it: NMS run on the k best candidates gives exactly the full result cut to those k. Once that cut already
holds `max_det` boxes, the boxes beyond it could only have been appended after them and `max_det` drops them, so the
result is the full one; and when an image has no more than k candidates nothing was cut. Only an image where neither
holds is run again, on four times as many candidates. torchvision's NMS costs about kept x candidates, so the saving
is the candidates beyond the first pass: the box-mask MFL anchor model scores 10,000-13,000 of a 512 px image's
16,128 points above val.py's 0.001 and fills max_det 3,000 within its best 9,000, 1.6x less NMS time (BENCHMARKS.md).

`grid_nms` is a drop-in for torchvision's CPU kernel with the same output: it compares a box only with the boxes
whose centres share its neighbourhood on a spatial grid (heads are small against the image), and settles every box
whose higher-scored overlapping boxes are settled, all at once, round by round. `grid_kernel()` makes Ultralytics'
NMS use it on large CPU candidate sets (`topk_nms` and our predictor do).
"""

from __future__ import annotations

import contextlib
import functools
import math
from collections.abc import Iterator

import torch
import torchvision  # Ultralytics' NMS uses torchvision's kernel only once it is imported (else 40x slower)
from ultralytics.utils import nms

GRID_MIN_BOXES = 2000  # below this torchvision's kernel is as fast or faster (crossover 1,000-2,000 boxes here)
MAX_PAIRS_PER_BOX = 256  # more neighbours than this (boxes piled on each other): torchvision's kernel instead
MAX_ROUNDS = 32  # a chain of overlaps longer than this is finished by torchvision's kernel on the unsettled boxes
_KERNEL = torch.ops.torchvision.nms  # torchvision's own kernel, whatever `grid_kernel` does to torchvision.ops.nms


def _neighbour_pairs(centre: torch.Tensor, pool: torch.Tensor, query: torch.Tensor, cell: float):
    """(q, p) index pairs of each `query` box and every `pool` box whose centre lies in the 3x3 grid cells around it.

    Two boxes whose sides are at most `cell` can only intersect when their centres are less than `cell` apart on each
    axis, so they fall in neighbouring cells. Cells are numbered row by row, so the three cells of a row around a box
    are one run of the sorted pool.

    Returns:
        (int, Callable): The number of pairs, and a function that builds them.
    """
    ij = (centre / cell).floor().long()
    ij = ij - ij.min(0).values + 1
    width = int(ij[:, 0].max()) + 2
    key = ij[:, 1] * width + ij[:, 0]
    pool_key, order = key[pool].sort()
    rows = key[query, None] + torch.arange(-1, 2, device=key.device) * width  # (q, 3): the cell above, own, below
    cells = width * (int(ij[:, 1].max()) + 2)
    if cells <= 8 * len(pool) + 4096:  # a dense table of cell ends: gathers instead of binary searches
        below = torch.bincount(pool_key, minlength=cells + 1).cumsum(0).roll(1)  # below[k]: pool keys under k
        below[0] = 0
        start = below[rows - 1].view(-1)
        count = below[rows + 2].view(-1) - start
    else:
        start = torch.searchsorted(pool_key, rows - 1).view(-1)
        count = torch.searchsorted(pool_key, rows + 1, side="right").view(-1) - start
    total = int(count.sum())

    def build() -> tuple[torch.Tensor, torch.Tensor]:
        q = query.repeat_interleave(count.view(-1, 3).sum(1))
        first = (start - (count.cumsum(0) - count)).repeat_interleave(count)  # run start minus the run's position
        return q, pool[order[first + torch.arange(total, device=first.device)]]

    return total, build


def _candidate_pairs(boxes: torch.Tensor, iou_threshold: float) -> tuple[torch.Tensor, torch.Tensor] | None:
    """(i, j), i < j, of every pair of score-sorted `boxes` that may overlap by IoU > `iou_threshold` (in [0, 1));
    None past the pair budget.

    A box pair's IoU is at most the IoU of its x intervals and of its y intervals (the intersection is ix x iy, and
    iy <= both heights). Intervals of lengths w1 <= w2 with IoU > t have centres less than (1 - t) / (1 + t) x
    (w1 + w2) / 2 apart, and w1 > t x w2. So boxes are binned by their longest side in powers of two of the median
    side; bin L is compared only with the bins down to where sides can be t x its own, on a grid whose cell is
    (1 - t) / (1 + t) x the largest side among them (a quarter of it at val.py's IoU 0.6).
    """
    side = (boxes[:, 2:] - boxes[:, :2]).amax(1).clamp(min=1e-6)
    level = torch.log2(side / side.median()).floor().clamp(min=0).long()
    # bins below L to pair, and the cell / largest side; each with a margin for rounding at bin and cell edges
    reach = math.floor(math.log2(1 / iou_threshold)) + 2 if iou_threshold > 0 else math.inf
    shrink = 1.01 * (1 - iou_threshold) / (1 + iou_threshold)
    centre = (boxes[:, :2] + boxes[:, 2:]) / 2
    found, total = [], 0
    for lv in level.unique().tolist():  # a handful of size bins, not boxes
        query, pool = (level == lv).nonzero().view(-1), ((level <= lv) & (level >= lv - reach)).nonzero().view(-1)
        count, pairs = _neighbour_pairs(centre, pool, query, shrink * float(side[pool].max()))
        total += count
        if total > MAX_PAIRS_PER_BOX * len(boxes):
            return None
        q, p = pairs()
        keep = (level[p] < lv) | (p > q)  # each pair once: same-bin pairs from the lower-ranked box's side
        q, p = q[keep], p[keep]
        found.append((torch.minimum(q, p), torch.maximum(q, p)))
    i, j = (torch.cat(x) for x in zip(*found))
    return i, j


def _overlaps(boxes: torch.Tensor, i: torch.Tensor, j: torch.Tensor, iou_threshold: float) -> torch.Tensor:
    """Which pairs overlap by IoU > `iou_threshold`, computed as torchvision's CPU kernel does, to the bit."""
    area = (boxes[:, 2] - boxes[:, 0]) * (boxes[:, 3] - boxes[:, 1])
    wh = (torch.minimum(boxes[i, 2:], boxes[j, 2:]) - torch.maximum(boxes[i, :2], boxes[j, :2])).clamp(min=0)
    inter = wh[:, 0] * wh[:, 1]
    return inter / (area[i] + area[j] - inter) > iou_threshold


def _settle(n: int, i: torch.Tensor, j: torch.Tensor) -> torch.Tensor:
    """Greedy NMS on the overlap edges i -> j (i scored higher), in rounds: (n,) 1 kept, -1 suppressed, 0 unsettled.

    A box is suppressed once a kept box overlaps it, and kept once every higher-scored box that overlaps it is
    suppressed; each round settles at least the best unsettled box.
    """
    state = torch.zeros(n, dtype=torch.int8, device=i.device)
    for _ in range(MAX_ROUNDS):
        i, j = _suppress(state, i, j)
        blocked = torch.zeros_like(state, dtype=torch.bool)
        blocked[j] = True  # after _suppress every edge left runs from an unsettled box to an unsettled box
        state[(state == 0) & ~blocked] = 1
        if not i.numel():
            break
    _suppress(state, i, j)  # the boxes kept in the last round suppress theirs before anyone else settles them
    return state


def _suppress(state: torch.Tensor, i: torch.Tensor, j: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Suppress (in place) the unsettled boxes a kept box overlaps; return the edges between unsettled boxes."""
    hit = torch.zeros_like(state, dtype=torch.bool)
    hit[j[state[i] == 1]] = True
    state[hit & (state == 0)] = -1
    live = (state[i] == 0) & (state[j] == 0)
    return i[live], j[live]


def grid_nms(boxes: torch.Tensor, scores: torch.Tensor, iou_threshold: float) -> torch.Tensor:
    """Greedy NMS with torchvision's output (kept indices by decreasing score), on overlaps found by a spatial grid.

    Args:
        boxes (torch.Tensor): (n, 4) xyxy boxes.
        scores (torch.Tensor): (n,) scores.
        iou_threshold (float): A box is dropped when a kept box of higher score overlaps it by IoU > this (outside
            [0, 1) torchvision's kernel runs).

    Returns:
        (torch.Tensor): int64 indices of the kept boxes, by decreasing score (ties: lower index first).
    """
    if not (0 <= iou_threshold < 1 and bool(torch.isfinite(boxes).all())):  # IoU < 0 suppresses disjoint boxes too
        return _KERNEL(boxes, scores, iou_threshold)
    order = scores.argsort(descending=True, stable=True)
    ranked = boxes[order]
    pairs = _candidate_pairs(ranked, iou_threshold) if len(boxes) > 1 else (order[:0], order[:0])
    if pairs is None:
        return _KERNEL(boxes, scores, iou_threshold)
    i, j = pairs
    edge = _overlaps(ranked, i, j, iou_threshold)
    state = _settle(len(boxes), i[edge], j[edge])
    rest = (state == 0).nonzero().view(-1)
    if rest.numel():  # a long chain: finish greedily on the unsettled boxes, none of which a kept box overlaps
        kept = rest[_KERNEL(ranked[rest], scores[order][rest], iou_threshold)]
        state[kept] = 1
    return order[state == 1]


def _dispatch(kernel, boxes: torch.Tensor, scores: torch.Tensor, iou_threshold: float) -> torch.Tensor:
    """`grid_nms` for large CPU candidate sets, on one thread, torchvision's `kernel` otherwise.

    grid_nms is many small tensor operations: with a second thread each one waits for it, and on a machine whose
    other cores are busy that wait made it 3x slower (BENCHMARKS.md); torchvision's kernel is single-threaded too.
    torch's thread count is process-wide: torch work on other threads meanwhile runs on one thread too, briefly.
    """
    if boxes.device.type != "cpu" or len(boxes) < GRID_MIN_BOXES:
        return kernel(boxes, scores, iou_threshold)
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        return grid_nms(boxes, scores, iou_threshold)
    finally:
        torch.set_num_threads(threads)


@contextlib.contextmanager
def grid_kernel() -> Iterator[None]:
    """Let Ultralytics' `non_max_suppression` (which calls `torchvision.ops.nms`) use `grid_nms` inside the block.

    The swap is safe for any other caller in the meantime: `grid_nms` returns what torchvision's kernel returns.
    """
    kernel = torchvision.ops.nms
    if getattr(kernel, "func", None) is _dispatch:  # already inside a block
        yield
        return
    torchvision.ops.nms = functools.partial(_dispatch, kernel)
    try:
        yield
    finally:
        torchvision.ops.nms = kernel


def candidates(prediction: torch.Tensor, conf_thres: float, nc: int = 0, multi_label: bool = False) -> torch.Tensor:
    """Per image, how many (box, class) pairs Ultralytics' NMS would consider: scores above `conf_thres`.

    Args:
        prediction (torch.Tensor): (B, 4 + nc + extra, A) model output in Ultralytics' layout.
        conf_thres (float): Confidence threshold.
        nc (int): Number of classes; 0 takes every channel after the box.
        multi_label (bool): Count every class above the threshold, not only each box's best.

    Returns:
        (torch.Tensor): (B,) counts.
    """
    scores = prediction[:, 4 : 4 + (nc or prediction.shape[1] - 4)]
    above = scores > conf_thres
    return above.sum((1, 2)) if multi_label else above.any(1).sum(1)


def topk_nms(
    prediction: torch.Tensor,
    conf_thres: float = 0.25,
    iou_thres: float = 0.45,
    *,
    max_det: int = 300,
    first_k: int | None = None,
    **kwargs,
) -> list[torch.Tensor]:
    """Ultralytics' `non_max_suppression` with no time limit and `grid_nms`'s kernel, run on the `first_k` best
    candidates per image first.

    Args:
        prediction (torch.Tensor | tuple): (B, 4 + nc + extra, A) model output in Ultralytics' layout, or a tuple
            that starts with it.
        conf_thres (float): Confidence threshold.
        iou_thres (float): IoU threshold.
        max_det (int): Most boxes kept per image.
        first_k (int, optional): Candidates of the first pass; 3 x max_det when None.
        **kwargs (Any): Ultralytics' other NMS arguments (classes, agnostic, multi_label, nc, ...), except max_nms.

    Returns:
        (list[torch.Tensor]): Per image (n, 6 + extra) boxes xyxy, conf, cls, extra: the full NMS result.
    """
    if isinstance(prediction, (list, tuple)):  # (decoded, raw) of a model in eval mode, as Ultralytics' NMS takes
        prediction = prediction[0]
    with grid_kernel():
        k = first_k or 3 * max_det
        kwargs = {"max_time_img": float("inf"), **kwargs}
        out = nms.non_max_suppression(prediction, conf_thres, iou_thres, max_det=max_det, max_nms=k, **kwargs)
        n = candidates(prediction, conf_thres, kwargs.get("nc", 0), kwargs.get("multi_label", False)).tolist()
        todo = [i for i, r in enumerate(out) if len(r) < max_det and n[i] > k]
        while todo:  # over images whose first pass may have cut a box that the full NMS keeps
            k *= 4
            again = nms.non_max_suppression(
                prediction[todo], conf_thres, iou_thres, max_det=max_det, max_nms=k, **kwargs
            )
            for i, r in zip(todo, again):
                out[i] = r
            todo = [i for i, r in zip(todo, again) if len(r) < max_det and n[i] > k]
    return out
