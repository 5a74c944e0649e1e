"""utils/nms.py: NMS on the best candidates first returns exactly Ultralytics' full NMS result."""

from __future__ import annotations

import pytest
import torch
import torchvision
from ultralytics.utils import nms

from utils.nms import candidates, grid_kernel, grid_nms, topk_nms


def _crowd(heads: int, per_head: int, background: int, seed: int = 0) -> torch.Tensor:
    """(1, 5, A) one-class output: `per_head` jittered boxes around each head, plus scattered low-score boxes."""
    g = torch.Generator().manual_seed(seed)
    centres = torch.rand(heads, 2, generator=g) * 1000
    xy = (centres[:, None] + torch.randn(heads, per_head, 2, generator=g) * 2).reshape(-1, 2)
    wh = torch.full_like(xy, 20.0)
    score = torch.rand(heads * per_head, generator=g) * 0.5 + 0.4
    bg_xy = torch.rand(background, 2, generator=g) * 1000
    bg = torch.cat((bg_xy, torch.full_like(bg_xy, 12.0), torch.rand(background, 1, generator=g) * 0.3), 1)
    x = torch.cat((torch.cat((xy, wh, score[:, None]), 1), bg))
    return x[torch.randperm(len(x), generator=g)].T[None]


def _full(pred, conf, iou, max_det):
    return nms.non_max_suppression(pred, conf, iou, max_det=max_det, max_nms=10**9, max_time_img=float("inf"))


def _calls(monkeypatch) -> list[int]:
    """Record the max_nms of every call to Ultralytics' NMS."""
    seen, orig = [], nms.non_max_suppression

    def spy(*args, **kwargs):
        seen.append(kwargs["max_nms"])
        return orig(*args, **kwargs)

    monkeypatch.setattr(nms, "non_max_suppression", spy)
    return seen


def test_first_pass_suffices_when_it_reaches_max_det(monkeypatch):
    """Thousands of separate background boxes: the best 3 x max_det already hold max_det survivors."""
    pred = _crowd(heads=50, per_head=8, background=6000)
    expected = _full(pred, 0.001, 0.6, 1000)[0]
    seen = _calls(monkeypatch)
    out = topk_nms(pred, 0.001, 0.6, max_det=1000)[0]
    assert seen == [3000] and len(expected) == 1000
    assert torch.equal(out, expected)


def test_rerun_when_the_cut_may_hide_kept_boxes(monkeypatch):
    """Heads with many near-identical boxes: the best 50 hold fewer than max_det survivors, so the image is rerun."""
    pred = _crowd(heads=100, per_head=10, background=0)
    expected = _full(pred, 0.001, 0.6, 200)[0]
    seen = _calls(monkeypatch)
    out = topk_nms(pred, 0.001, 0.6, max_det=200, first_k=50)[0]
    assert seen == [50, 200, 800]  # the best 50 and 200 hold fewer than 200 survivors, the best 800 do
    assert torch.equal(out, expected)


def test_batch_mixes_images_that_need_a_rerun_and_images_that_do_not():
    a, b, c = _crowd(50, 8, 6000, seed=1), _crowd(400, 20, 0, seed=2)[..., :6400], _crowd(3, 2, 0, seed=3)
    a = a[..., :6400]
    c = torch.nn.functional.pad(c, (0, 6400 - c.shape[-1]))  # padding: zero scores, below any threshold
    pred = torch.cat((a, b, c))
    expected = _full(pred, 0.01, 0.5, 700)
    out = topk_nms(pred, 0.01, 0.5, max_det=700, first_k=500)
    assert [len(r) for r in out] == [len(r) for r in expected] and [len(r) for r in out][2] == 3
    assert all(torch.equal(o, e) for o, e in zip(out, expected))


def test_candidates_counts_pairs_or_boxes():
    pred = torch.zeros(2, 4 + 2, 5)
    pred[0, 4, :3] = 0.5  # three boxes above 0.1 on class 0
    pred[0, 5, 1:4] = 0.5  # three on class 1, two of them shared
    assert candidates(pred, 0.1).tolist() == [4, 0]
    assert candidates(pred, 0.1, multi_label=True).tolist() == [6, 0]
    assert candidates(pred, 0.1, nc=1).tolist() == [3, 0]


@pytest.mark.parametrize("multi_label", [False, True])
def test_two_classes_match_full_nms(multi_label):
    g = torch.Generator().manual_seed(5)
    boxes = torch.cat((torch.rand(3000, 2, generator=g) * 300, torch.full((3000, 2), 15.0)), 1)
    pred = torch.cat((boxes, torch.rand(3000, 2, generator=g)), 1).T[None]
    kw = dict(multi_label=multi_label, max_time_img=float("inf"))
    expected = nms.non_max_suppression(pred, 0.05, 0.5, max_det=400, max_nms=10**9, **kw)[0]
    assert torch.equal(topk_nms(pred, 0.05, 0.5, max_det=400, first_k=200, multi_label=multi_label)[0], expected)


def _boxes(n: int, seed: int, spread: float = 1000.0, big: float = 0.0) -> tuple[torch.Tensor, torch.Tensor]:
    """n xyxy boxes of 8-30 px jittered around n / 4 heads (duplicates overlap), a `big` share of them 100-600 px."""
    g = torch.Generator().manual_seed(seed)
    centres = torch.rand(max(n // 4, 1), 2, generator=g) * spread
    xy = centres[torch.randint(len(centres), (n,), generator=g)] + torch.randn(n, 2, generator=g) * 3
    wh = 8 + torch.rand(n, 2, generator=g) * 22
    large = torch.rand(n, generator=g) < big
    wh[large] = 100 + torch.rand(int(large.sum()), 2, generator=g) * 500
    return torch.cat((xy - wh / 2, xy + wh / 2), 1), torch.rand(n, generator=g)


@pytest.mark.parametrize("seed", range(4))
@pytest.mark.parametrize("iou", [0.0, 0.3, 0.45, 0.7])
@pytest.mark.parametrize("big", [0.0, 0.02])
def test_grid_nms_returns_torchvisions_result(seed, iou, big):
    """Same kept indices in the same order as torchvision's kernel, with and without large boxes among the heads."""
    boxes, scores = _boxes(3000, seed, big=big)
    assert torch.equal(grid_nms(boxes, scores, iou), torchvision.ops.nms(boxes, scores, iou))


def test_grid_nms_ties_degenerate_and_tiny_inputs():
    """Tied scores keep the lower index first; zero-area boxes, one box and no box behave as torchvision's."""
    boxes, _ = _boxes(2000, 5)
    scores = (torch.rand(2000, generator=torch.Generator().manual_seed(1)) * 4).floor()  # 4 distinct values
    boxes[::50, 2:] = boxes[::50, :2]  # zero-area boxes
    for b, s in ((boxes, scores), (boxes[:1], scores[:1]), (boxes[:0], scores[:0])):
        assert torch.equal(grid_nms(b, s, 0.45), torchvision.ops.nms(b, s, 0.45))


def test_grid_nms_finishes_chains_longer_than_its_rounds():
    """A row of boxes each overlapping the next, scores falling along it: one box settles per round, so 200 boxes
    need torchvision's kernel to finish; the result still alternates kept / dropped."""
    x = torch.arange(200, dtype=torch.float32) * 5
    boxes = torch.stack((x, torch.zeros(200), x + 10, torch.full((200,), 10.0)), 1)  # neighbours: IoU 1/3
    scores = torch.linspace(1, 0, 200)
    kept = grid_nms(boxes, scores, 0.3)
    assert torch.equal(kept, torchvision.ops.nms(boxes, scores, 0.3)) and kept.tolist() == list(range(0, 200, 2))


def test_grid_kernel_is_used_by_ultralytics_nms_and_restored(monkeypatch):
    """Inside grid_kernel() Ultralytics' NMS goes through grid_nms for large sets, with the same result; after it,
    torchvision.ops.nms is torchvision's again."""
    import utils.nms as unms

    pred = _crowd(heads=500, per_head=4, background=2000)
    calls = []
    monkeypatch.setattr(unms, "grid_nms", lambda *a: calls.append(len(a[0])) or grid_nms(*a))
    original, threads = torchvision.ops.nms, torch.get_num_threads()
    with grid_kernel():
        with grid_kernel():  # nesting is harmless
            got = _full(pred, 0.25, 0.45, 3000)
    assert torchvision.ops.nms is original and calls == candidates(pred, 0.25).tolist()
    assert torch.get_num_threads() == threads  # grid_nms runs on one thread, then gives the others back
    assert torch.equal(got[0], _full(pred, 0.25, 0.45, 3000)[0])


def test_grid_nms_on_a_sparse_grid_of_class_offset_boxes():
    """Ultralytics offsets each class's boxes by 7,680 px: the grid is then too wide for a dense cell table and the
    binary-search path runs; same result as torchvision's."""
    boxes, scores = _boxes(3000, 7)
    boxes = boxes + (torch.arange(3000) % 5 * 7680.0)[:, None]  # as Ultralytics does: x + c, y + c
    assert torch.equal(grid_nms(boxes, scores, 0.45), torchvision.ops.nms(boxes, scores, 0.45))
