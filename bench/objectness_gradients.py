"""Diagnostic: how hard each objectness loss of the anchor head pushes the matched cells and the background.

A batch of generated crowds (36 heads of 10-24 px per 512 px image, the SCUT-Head A density) goes through
`YOLOv5Loss` with the objectness logits set by hand: every matched cell at score `pos`, every other cell at `bg`. The
table gives the summed |gradient| of the objectness term on the matched cells and on the rest, per loss setting, so a
gain such as `fl_obj` can be set to match another loss's push instead of being guessed.

Usage:
    python bench/objectness_gradients.py
    python bench/objectness_gradients.py --set loss=mfl mfl_mask=fg mfl_quality=True fl_obj=0.1
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.accuracy import parse_override  # noqa: E402
from models.head import AnchorDetect  # noqa: E402
from utils import ROOT  # noqa: E402
from utils.detection_loss import YOLOv5Loss  # noqa: E402

SETTINGS = (  # the rows of BENCHMARKS.md's anchor-head section
    {"loss": "bce"},
    {"loss": "mfl", "mfl_mask": "fg", "mfl_quality": True, "fl_obj": 1.0},
    {"loss": "mfl", "mfl_mask": "fg", "mfl_quality": True, "fl_obj": 1.0, "fl_gamma": 1.0},
)
SCORES = ((0.01, 0.3), (0.05, 0.3), (0.2, 0.5))  # (background, matched cell)


def crowd_batch(images: int = 4, heads: int = 36, size: int = 512, seed: int = 0) -> dict[str, torch.Tensor]:
    """Ultralytics' batch layout for `images` generated crowds of square heads 10-24 px wide."""
    g = torch.Generator().manual_seed(seed)
    n = images * heads
    xy = torch.rand(n, 2, generator=g) * 0.9 + 0.05
    wh = (torch.rand(n, 1, generator=g) * 14 + 10).repeat(1, 2) / size
    return {
        "img": torch.zeros(images, 3, size, size),
        "batch_idx": torch.arange(images).repeat_interleave(heads).float(),
        "cls": torch.zeros(n, 1),
        "bboxes": torch.cat((xy, wh), 1),
    }


def pushes(loss: YOLOv5Loss, batch: dict, bg: float, pos: float) -> tuple[float, float]:
    """Summed |d objectness term / d logit| on the matched cells and on every other cell."""
    bs, _, h, w = batch["img"].shape
    targets = torch.cat((batch["batch_idx"].view(-1, 1), batch["cls"], batch["bboxes"]), 1)
    preds, matched = [], []
    for i, s in enumerate(loss.stride.tolist()):
        p = torch.zeros(bs, loss.na, int(h // s), int(w // s), 5 + loss.nc)
        p[..., 4] = torch.logit(torch.tensor(bg))
        b, a, gj, gi, *_ = loss._match(targets, i, p.shape[2:4])
        p[b, a, gj, gi, 4] = torch.logit(torch.tensor(pos))
        m = torch.zeros(p.shape[:4], dtype=torch.bool)
        m[b, a, gj, gi] = True
        preds.append(p.requires_grad_())
        matched.append(m)
    total, items = loss(preds, batch)
    total[list(items).index("obj_loss")].backward()
    grads = [p.grad[..., 4].abs() for p in preds]
    return sum(g[m].sum() for g, m in zip(grads, matched)).item(), sum(
        g[~m].sum() for g, m in zip(grads, matched)
    ).item()


def anchor_head(cfg: str) -> AnchorDetect:
    """The anchor head of a model YAML, strides P3-P5 (or P2-P5), without building the network."""
    from ultralytics.utils import YAML

    anchors = YAML.load(cfg)["anchor_head"]["anchors"]
    head = AnchorDetect(1, anchors, ch=(4,) * len(anchors))
    head.stride = torch.tensor([2.0 ** (i + 6 - len(anchors)) for i in range(len(anchors))])  # ... 8, 16, 32
    return head


def main(opt: argparse.Namespace) -> list[tuple]:
    """Print one line per (scores, setting): the push on matched cells and on the background."""
    head, batch = anchor_head(opt.cfg), crowd_batch(size=opt.imgsz)
    settings = [dict(opt.set)] if opt.set else SETTINGS
    rows = []
    for bg, pos in SCORES:
        for kw in settings:
            matched, background = pushes(YOLOv5Loss(head, imgsz=opt.imgsz, **kw), batch, bg, pos)
            rows.append((bg, pos, kw, matched, background))
            print(f"background {bg}, matched {pos}, {kw}: matched {matched:.3e}, background {background:.3e}")
    return rows


def parse_opt(args: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--cfg", default=str(ROOT / "models" / "yolov5-mfl.yaml"), help="model YAML of the anchor head")
    p.add_argument("--imgsz", type=int, default=512)
    p.add_argument("--set", nargs="*", default=[], type=parse_override, help="KEY=VALUE ...: one loss setting")
    return p.parse_args(args)


if __name__ == "__main__":
    main(parse_opt())
