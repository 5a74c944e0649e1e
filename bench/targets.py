"""Benchmark: cost of Mask Focal Loss targets + L_m^P1 against one forward+backward of a YOLOv5s-size network.

For a batch of 16 images at 640x640 with 100, 1,000 and 3,000 heads per image, times (median of --repeats) the
objectness path of training with `loss=mfl`: YOLOv5's anchor assignment, heatmap and mask targets on the three grids
(strides 8/16/32) and L_m^P1 forward and backward on the objectness logits. The reference is one forward+backward of
yolov5s-mfl on the same batch, measured in the same run. Goal: ratio under 0.05 at 1,000 heads per image.

Usage:
    python bench/targets.py [--device cpu] [--repeats 5] [--batch 16] [--imgsz 640]
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from models.yolo import AnchorDetectionModel  # noqa: E402
from utils import ROOT  # noqa: E402
from utils.detection_loss import YOLOv5Loss  # noqa: E402
from utils.loss import mask_focal_loss  # noqa: E402
from utils.threads import use_all_cores  # noqa: E402


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize()


def median_time(fn, repeats: int, device: torch.device) -> float:
    """Median wall time of fn() in seconds, after one warm-up call."""
    fn()
    times = []
    for _ in range(repeats):
        _sync(device)
        t = time.perf_counter()
        fn()
        _sync(device)
        times.append(time.perf_counter() - t)
    return statistics.median(times)


def make_batch(bs: int, imgsz: int, heads: int, device: torch.device) -> dict[str, torch.Tensor]:
    """Random heads: centres uniform, sizes 6-60 px (log-uniform), as in dense crowd images."""
    g = torch.Generator().manual_seed(0)
    n = bs * heads
    wh = torch.exp(torch.empty(n, 1).uniform_(6.0, 60.0, generator=g).log()) / imgsz
    xy = torch.rand(n, 2, generator=g)
    return {
        "img": torch.rand(bs, 3, imgsz, imgsz, generator=g).to(device),
        "batch_idx": torch.arange(bs).repeat_interleave(heads).float().to(device),
        "cls": torch.zeros(n, 1, device=device),
        "bboxes": torch.cat((xy, wh * torch.empty(n, 2).uniform_(0.8, 1.2, generator=g)), 1).to(device),
    }


def objectness_step(criterion: YOLOv5Loss, logits: list[torch.Tensor], batch: dict) -> None:
    """Assignment + heatmap/mask targets on every level, then L_m^P1 forward and backward."""
    bs, _, h, w = batch["img"].shape
    targets = torch.cat((batch["batch_idx"].view(-1, 1), batch["cls"], batch["bboxes"]), 1)
    total = 0.0
    for i, lg in enumerate(logits):
        assigned = criterion._match(targets, i, lg.shape[2:4])[-1]
        heatmap, mask = criterion._heatmap(assigned, i, lg.shape, (h, w))
        total = total + mask_focal_loss(
            lg, heatmap, mask, alpha=0.25, gamma=2.0, beta=0.5, poly=True, num_objects=targets.shape[0]
        )
    total.backward()


def main(opt: argparse.Namespace) -> None:
    """Print the table."""
    device = torch.device(opt.device)
    threads = use_all_cores() if device.type == "cpu" else None
    model = AnchorDetectionModel(str(ROOT / "models" / "yolov5s-mfl.yaml"), nc=1, verbose=False).to(device).train()
    model.args = {"loss": "mfl"}
    criterion = YOLOv5Loss.from_model(model)
    criterion.stride, criterion.anchors = criterion.stride.to(device), criterion.anchors.to(device)
    img = torch.rand(opt.batch, 3, opt.imgsz, opt.imgsz, device=device)

    def network_step():
        model.zero_grad(set_to_none=True)
        raw = model(img)
        sum(r.float().mean() for r in raw).backward()

    t_net = median_time(network_step, opt.repeats, device)
    print(f"device {device} threads {threads} batch {opt.batch} imgsz {opt.imgsz} repeats {opt.repeats}")
    print(f"yolov5s-mfl forward+backward: {t_net * 1e3:.1f} ms")
    print(f"{'heads/img':>10} {'targets+L_m^P1 (ms)':>20} {'ratio to network':>18}")
    with torch.no_grad():
        raw = [r.detach() for r in model(img)]
    for heads in (100, 1000, 3000):
        batch = make_batch(opt.batch, opt.imgsz, heads, device)
        logits = [r[..., 4].clone().requires_grad_(True) for r in raw]
        t = median_time(lambda lg=logits, b=batch: objectness_step(criterion, lg, b), opt.repeats, device)
        print(f"{heads:>10} {t * 1e3:>20.1f} {t / t_net:>18.4f}")


def parse_opt() -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    p.add_argument("--repeats", type=int, default=5)
    p.add_argument("--batch", type=int, default=16)
    p.add_argument("--imgsz", type=int, default=640)
    return p.parse_args()


if __name__ == "__main__":
    main(parse_opt())
