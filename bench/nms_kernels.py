"""Benchmark: Ultralytics' NMS on torchvision's kernel against utils.nms.grid_nms, on a model's real outputs.

For each image of a folder, the checkpoint's raw output (letterboxed square input) goes through Ultralytics'
`non_max_suppression` twice, once as shipped and once inside `utils.nms.grid_kernel()`, at each confidence asked for
(val.py's 0.001 and the checkpoint's count threshold by default). The table gives candidates and kept boxes per image,
the median NMS time of each kernel, their ratio, and how many images kept different boxes (grid_nms is exact, so the
answer should be 0).

Usage:
    python bench/nms_kernels.py --weights runs/train/exp/weights/best.pt --source datasets/x/images/val --imgsz 512
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import cv2
import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # run as a script from anywhere, like bench/targets.py

from bench.common import THREADS_HELP, load, machine_header, markdown_table  # noqa: E402
from utils import MAX_DET  # noqa: E402

IOU = 0.6  # val.py's NMS IoU


def raw_outputs(weights: str, source: Path, imgsz: int, limit: int) -> list[torch.Tensor]:
    """The model's (1, 4 + nc, A) output for each of the first `limit` images of `source`, letterboxed to `imgsz`."""
    from ultralytics.data.augment import LetterBox
    from ultralytics.nn.autobackend import AutoBackend

    model = AutoBackend(weights, device=torch.device("cpu"))
    files = sorted(p for p in source.iterdir() if p.suffix.lower() in {".jpg", ".jpeg", ".png"})[:limit]
    outs = []
    with torch.inference_mode():
        for f in files:
            if (im := cv2.imread(str(f))) is None:
                print(f"{f}: not a readable image, skipped")
                continue
            im = LetterBox((imgsz, imgsz), auto=False)(image=im)
            x = torch.from_numpy(np.ascontiguousarray(im[..., ::-1].transpose(2, 0, 1))).float()[None] / 255
            y = model(x)
            outs.append((y[0] if isinstance(y, (list, tuple)) else y).clone())
    return outs


def compare(outs: list[torch.Tensor], conf: float, repeats: int) -> list[object]:
    """One table row: candidates, kept boxes, median NMS ms of each kernel, ratio, images whose boxes differ."""
    from ultralytics.utils import nms

    from utils.nms import candidates, grid_kernel

    def run(pred):
        return nms.non_max_suppression(pred, conf, IOU, max_det=MAX_DET, max_time_img=float("inf"))[0]

    t_tv, t_grid, differ, kept = [], [], 0, []
    for pred in outs:
        tv, grid = [], []
        for _ in range(repeats):  # interleaved, so that load changes hit both kernels alike
            t = time.perf_counter()
            a = run(pred)
            tv.append(time.perf_counter() - t)
            t = time.perf_counter()
            with grid_kernel():
                b = run(pred)
            grid.append(time.perf_counter() - t)
        t_tv.append(np.median(tv))
        t_grid.append(np.median(grid))
        differ += not torch.equal(a, b)
        kept.append(len(a))
    n = [int(candidates(p, conf)) for p in outs]
    tv_ms, grid_ms = 1e3 * np.mean(t_tv), 1e3 * np.mean(t_grid)
    return [
        conf,
        f"{np.mean(n):.0f} (max {max(n)})",
        f"{np.mean(kept):.0f} (max {max(kept)})",
        f"{tv_ms:.2f}",
        f"{grid_ms:.2f}",
        f"{tv_ms / grid_ms:.2f}x",
        f"{differ} / {len(outs)}",
    ]


def main(opt: argparse.Namespace) -> None:
    """Print the table in markdown."""
    from utils.checkpoint import read_count_conf

    torch.set_num_threads(opt.threads)
    print(machine_header(torch.device("cpu")))
    outs = raw_outputs(opt.weights, Path(opt.source), opt.imgsz, opt.images)
    confs = opt.conf or [0.001, read_count_conf(opt.weights) or 0.25]
    rows = [compare(outs, c, opt.repeats) for c in confs]
    head = ["conf", "candidates / image", "kept / image", "torchvision ms / image", "grid_nms ms / image"]
    print(
        f"- weights {opt.weights}, {len(outs)} images of {opt.source} at {opt.imgsz} px, IoU {IOU}, max_det "
        f"{MAX_DET}, {opt.threads} torch threads, median of {opt.repeats} interleaved repeats per image\n\n"
        f"{markdown_table(head + ['speed-up', 'images with other boxes'], rows)}\n\nLoad after: {load()}"
    )


def parse_opt() -> argparse.Namespace:
    """Benchmark settings."""
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--weights", required=True, help="checkpoint (.pt)")
    p.add_argument("--source", required=True, help="folder of images")
    p.add_argument("--imgsz", type=int, default=640, help="square input size")
    p.add_argument("--images", type=int, default=100, help="first N images of the folder")
    p.add_argument("--conf", type=float, nargs="*", help="confidences (default: 0.001 and the checkpoint's)")
    p.add_argument("--repeats", type=int, default=3, help="timed repeats per image and kernel")
    p.add_argument("--threads", type=int, default=1, help=THREADS_HELP)
    return p.parse_args()


if __name__ == "__main__":
    main(parse_opt())
