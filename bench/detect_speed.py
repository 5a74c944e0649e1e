"""Benchmark: detect.py's counting predictor against Ultralytics' stock YOLOv5n predictor, and NMS at 3,000 heads.

1. Throughput (images per second) over a folder of frames, read from disk as detect.py reads them, at imgsz 640 and
   608x1088 (rect letterbox, stride padding only): our `CountingPredictor` (the class detect.py runs, same overrides,
   nothing saved) on a yolov5n-mfl checkpoint against `YOLO("yolov5n.yaml").predict` on the same frames with the same
   imgsz, conf, iou, max_det and torch threads, interleaved. Goal: ours / stock >= 0.95.
   Without --weights an untrained yolov5n-mfl checkpoint is built, and both models are untrained: they find almost
   no boxes at conf 0.25, so NMS and result handling cost far less than with a trained model on a crowd (table 2).
2. Postprocessing at 3,000 detections per image: a synthetic (1, 5, A) head output with 3,000 separated heads, each
   predicted by several overlapping candidates above conf, all other anchors below it. Times Ultralytics' NMS alone,
   our full postprocess (NMS, results, count bookkeeping) and Ultralytics' DetectionPredictor postprocess on that
   output, and relates them to our preprocess and network forward on a real image of the same input size.

Every contender runs with the same torch thread count: 1 by default (see --threads), --threads 0 for every core.

Usage:
    python bench/detect_speed.py                                   # untrained models, synthetic 1920x1080 frames
    python bench/detect_speed.py --weights runs/train/exp/weights/best.pt --source path/to/images --device 0
"""

from __future__ import annotations

import argparse
import math
import os
import sys
import tempfile
from pathlib import Path

import cv2
import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # run as a script from anywhere, like bench/targets.py

from bench.common import (  # noqa: E402
    THREADS_HELP,
    interleaved_times,
    load,
    machine_header,
    markdown_table,
    med,
    spread,
    untrained_checkpoint,
)
from utils import COUNT_IOU, MAX_DET, ROOT  # noqa: E402

GOAL = 0.95  # our images/s over stock images/s
IOU = COUNT_IOU  # detect.py's --iou-thres default, given to every predictor
NAMES = ("ours", "plain", "stock")  # CountingPredictor; DetectionPredictor on the same weights; stock YOLOv5n


def make_frames(folder: Path, n: int, wh: tuple[int, int]) -> Path:
    """Write n synthetic crowd frames of size wh (from data/synthetic.py's generator, resized) as jpg."""
    from data.synthetic import ensure_synthetic_crowd

    root = ensure_synthetic_crowd(n_train=0, n_val=n, size=640, max_heads=300, seed=0).parent / "images" / "val"
    folder.mkdir(parents=True, exist_ok=True)
    for i, f in enumerate(sorted(root.glob("*.jpg"))[:n]):
        cv2.imwrite(str(folder / f"frame_{i:03d}.jpg"), cv2.resize(cv2.imread(str(f)), wh))
    return folder


class Contenders:
    """Our counting predictor and the stock predictor, configured alike; calls return per-image stage times.

    Attributes:
        ours (CountingPredictor): detect.py's predictor for one imgsz.
        stock (ultralytics.YOLO): Ultralytics' YOLOv5n built from its YAML.
        stages (dict[str, list]): Contender -> per run (mean preprocess, inference, postprocess ms, boxes per image).
    """

    def __init__(self, weights: str, conf: float, imgsz: list[int], device: str, threads: int, stock_cfg: str):
        """Set both up; each keeps its model loaded across runs, as detect.py and YOLO.predict do."""
        from ultralytics import YOLO
        from ultralytics.models.yolo.detect import DetectionPredictor

        from utils.predictor import CountingPredictor

        self.kw = {"imgsz": imgsz, "conf": conf, "iou": IOU, "max_det": MAX_DET, "device": device, "save": False}
        self.kw["verbose"] = False
        self.ours = CountingPredictor(overrides={"model": weights, **self.kw})
        self.ours.setup_model(weights)
        self.plain = DetectionPredictor(overrides={"model": weights, "rect": True, "batch": 1, **self.kw})
        self.plain.setup_model(weights)
        self.stock = YOLO(stock_cfg)
        self.threads = threads
        self.stages: dict[str, list] = {n: [] for n in NAMES}

    def run(self, name: str, source: str) -> None:
        """Predict on every image of `source` with one contender at the fixed thread count."""
        torch.set_num_threads(self.threads)  # the stock predictor's first call sets cpu_count - 1
        if name == "stock":
            results = self.stock.predict(source=source, **self.kw)
        else:
            results = (self.ours if name == "ours" else self.plain)(source=source)
        speed = [[r.speed[k] for k in ("preprocess", "inference", "postprocess")] + [len(r.boxes)] for r in results]
        self.stages[name].append(np.mean(speed, 0))
        if torch.get_num_threads() != self.threads and len(self.stages[name]) > 1:  # the first run sets up
            raise RuntimeError(f"{name} changed torch threads to {torch.get_num_threads()} during the timed run")


def throughput_table(opt: argparse.Namespace, weights: str, conf: float, source: Path, device: str) -> str:
    """Table 1: images per second of each contender at each imgsz, interleaved."""
    from ultralytics.data.augment import LetterBox

    files = sorted(p for p in source.iterdir() if p.suffix.lower() in {".jpg", ".jpeg", ".png", ".bmp"})
    im0 = cv2.imread(str(files[0]))
    rows, verdicts = [], []
    label = {
        "ours": "ours: CountingPredictor",
        "plain": "Ultralytics DetectionPredictor, same weights",
        "stock": f"stock: YOLO('{opt.stock_cfg}').predict",
    }
    for size in opt.sizes:
        imgsz = [int(v) for v in size.split("x")] if "x" in size else [int(size)] * 2
        c = Contenders(weights, conf, imgsz, device, opt.threads, opt.stock_cfg)
        runs = {n: lambda n=n, c=c: c.run(n, str(source)) for n in NAMES}
        times = interleaved_times(runs, opt.repeats, torch.device(device))
        ips = {n: len(files) / med(t) for n, t in times.items()}
        net = LetterBox(imgsz, auto=True, stride=32)(image=im0).shape[:2]
        for n in NAMES:
            st = np.median(np.array(c.stages[n][1:]), 0)  # the first run is the warm-up
            rows.append(
                [
                    size,
                    f"{net[1]}x{net[0]}",
                    label[n],
                    f"{ips[n]:.2f}",
                    spread(times[n]),
                    f"{ips[n] / ips['stock']:.3f}",
                    f"{ips[n] / ips['plain']:.3f}",
                    f"{st[0]:.1f} / {st[1]:.1f} / {st[2]:.1f}",
                    f"{st[3]:.0f}",
                ]
            )
        ratio = ips["ours"] / ips["stock"]
        verdict = "met" if ratio >= GOAL else f"MISSED by {100 * (1 - ratio / GOAL):.1f}%"
        verdicts.append(f"{size}: {ratio:.3f} {verdict}")
    head = [
        "imgsz",
        "network input (WxH)",
        "predictor",
        "img/s",
        "spread",
        "vs stock",
        "vs DetectionPredictor",
        "pre / inf / post (ms/img)",
        "boxes/img",
    ]
    return (
        f"### 1. Detect throughput ({len(files)} frames of {im0.shape[1]}x{im0.shape[0]}, batch 1, conf {conf}, "
        f"iou {IOU}, max_det {MAX_DET}, {opt.threads} torch threads, {opt.repeats} interleaved passes over the "
        f"folder after one warm-up pass, median)\n\n{markdown_table(head, rows)}\n\n"
        f"ours / stock (goal >= {GOAL}): {'; '.join(verdicts)}. Load after: {load()}\n"
    )


def thread_table(opt: argparse.Namespace, weights: str, device: str) -> str:
    """Table 0: our network's forward at 1 thread against every core, interleaved: shows whether other jobs on the
    machine make multi-threaded timings unreliable (OpenMP threads spin-waiting on a descheduled peer)."""
    from ultralytics.nn.tasks import load_checkpoint

    model = load_checkpoint(weights, device=torch.device(device), fuse=True)[0].eval()
    x = torch.rand(1, 3, 384, 640, device=device)
    counts = sorted({1, os.cpu_count()})

    def forward(n: int) -> None:
        torch.set_num_threads(n)
        model(x)

    with torch.inference_mode():
        times = interleaved_times({n: lambda n=n: forward(n) for n in counts}, opt.repeats * 2, torch.device(device))
    torch.set_num_threads(opt.threads)
    rows = [[n, f"{med(times[n]) * 1e3:.1f}", spread(times[n])] for n in counts]
    policy = os.environ.get("OMP_WAIT_POLICY", "unset (libgomp default: spin, then sleep)")
    return (
        f"### 0. Threads: our network's forward at 640x384 ({opt.repeats * 2} interleaved repeats, median; "
        f"OMP_WAIT_POLICY {policy})\n\n{markdown_table(['torch threads', 'forward (ms)', 'spread'], rows)}\n\n"
        f"Load after: {load()}\n"
    )


def crowd_prediction(n_heads: int, per_head: int, hw: tuple[int, int], anchors: int, conf: float) -> torch.Tensor:
    """A (1, 5, anchors) head output: n_heads non-overlapping heads on a grid, each predicted by `per_head` nearly
    identical boxes (IoU > 0.6) scoring above conf; the other anchors are random boxes scoring below conf."""
    g = torch.Generator().manual_seed(0)
    h, w = hw
    cols = math.ceil(math.sqrt(n_heads * w / h))
    rows = math.ceil(n_heads / cols)
    sx, sy = w / cols, h / rows
    size = 0.6 * min(sx, sy)
    k = torch.arange(n_heads * per_head) % n_heads
    centre = torch.stack(((k % cols + 0.5) * sx, (k // cols + 0.5) * sy), 1)
    xy = centre + (torch.rand(len(k), 2, generator=g) - 0.5) * 0.05 * size
    wh = size * (1 + (torch.rand(len(k), 2, generator=g) - 0.5) * 0.05)
    score = conf + 0.05 + (1 - conf - 0.05) * torch.rand(len(k), 1, generator=g)
    rest = anchors - len(k)
    bg = torch.cat(
        (
            torch.rand(rest, 2, generator=g) * torch.tensor([w, h]),
            torch.full((rest, 2), size),
            torch.rand(rest, 1, generator=g) * conf * 0.5,
        ),
        1,
    )
    return torch.cat((torch.cat((xy, wh, score), 1), bg))[torch.randperm(anchors, generator=g)].T[None].contiguous()


def grid_non_max_suppression(pred: torch.Tensor, conf: float) -> list[torch.Tensor]:
    """Ultralytics' NMS on `utils.nms.grid_nms`'s kernel, as our predictor runs it."""
    from ultralytics.utils import nms

    from utils.nms import grid_kernel

    with grid_kernel():
        return nms.non_max_suppression(pred, conf, IOU, max_det=MAX_DET)


def postprocess_table(opt: argparse.Namespace, weights: str, device: str) -> str:
    """Table 2: NMS and postprocessing at 3,000 detections per image against preprocess and inference."""
    from ultralytics.utils import nms

    from utils.nms import GRID_MIN_BOXES

    conf, size = 0.25, opt.post_imgsz
    c = Contenders(weights, conf, [size, size], device, opt.threads, opt.stock_cfg)
    folder = make_frames(Path(opt.tmp) / f"square{size}", 1, (size, size))
    for name in ("ours", "stock"):  # sets up the batch and dataset state that postprocess reads
        c.run(name, str(folder))
    # AutoBackend.warmup() imports torchvision, which makes Ultralytics' NMS use torchvision's kernel, not TorchNMS
    kernel = "torchvision.ops.nms" if "torchvision" in sys.modules else "Ultralytics TorchNMS (Python loop)"
    kernel += f", ours on utils.nms.grid_nms from {GRID_MIN_BOXES} candidates"
    im0 = cv2.imread(str(next(folder.iterdir())))
    img = c.ours.preprocess([im0])
    out = c.ours.inference(img)
    pred = crowd_prediction(opt.post_heads, opt.per_head, tuple(img.shape[2:]), out[0].shape[2], conf).to(img.device)
    fns = {
        "preprocess (ours)": lambda: c.ours.preprocess([im0]),
        "inference (ours)": lambda: c.ours.inference(img),
        "NMS alone (non_max_suppression)": lambda: nms.non_max_suppression(pred, conf, IOU, max_det=MAX_DET),
        "NMS alone on grid_nms (utils.nms.grid_kernel)": lambda: grid_non_max_suppression(pred, conf),
        "postprocess (ours: NMS, results, counts)": lambda: c.ours.postprocess(pred, img, [im0]),
        "postprocess (Ultralytics DetectionPredictor)": lambda: c.stock.predictor.postprocess(pred, img, [im0]),
    }
    torch.set_num_threads(opt.threads)
    with torch.inference_mode():
        times = interleaved_times(fns, opt.post_repeats, torch.device(device))
        kept = len(nms.non_max_suppression(pred, conf, IOU, max_det=MAX_DET)[0])
        n_ours = len(c.ours.postprocess(pred, img, [im0])[0].boxes)
    t = {k: med(v) for k, v in times.items()}
    post = t["postprocess (ours: NMS, results, counts)"]
    total = t["preprocess (ours)"] + t["inference (ours)"] + post
    rows = [[k, f"{v * 1e3:.1f}", spread(times[k]), f"{100 * v / total:.1f}%"] for k, v in t.items()]
    cand = int((pred[0, 4] > conf).sum())
    return (
        f"### 2. Postprocessing at {opt.post_heads} detections per image (input {size}x{size}, A = {pred.shape[2]} "
        f"anchors, {cand} candidates above conf {conf}, NMS keeps {kept}, our results hold {n_ours}; NMS kernel "
        f"{kernel}; {opt.threads} threads, {opt.post_repeats} interleaved repeats, median)\n\n"
        f"{markdown_table(['stage', 'ms/img', 'spread', 'share of ours pre + inf + post'], rows)}\n\n"
        f"Postprocessing share of our detection time at {kept} detections: {100 * post / total:.1f}% "
        f"of {total * 1e3:.0f} ms/img; Ultralytics' NMS on torchvision's kernel alone would be "
        f"{100 * t['NMS alone (non_max_suppression)'] / total:.1f}%, on grid_nms "
        f"{100 * t['NMS alone on grid_nms (utils.nms.grid_kernel)'] / total:.1f}%. "
        f"Load after: {load()}\n"
    )


def main(opt: argparse.Namespace) -> None:
    """Print both tables in markdown."""
    from utils.predictor import resolve_conf

    device = "cpu" if opt.device == "cpu" else f"cuda:{opt.device}" if opt.device.isdigit() else opt.device
    opt.threads = opt.threads or os.cpu_count()
    torch.set_num_threads(opt.threads)
    print(machine_header(torch.device(device)))
    with tempfile.TemporaryDirectory() as tmp:
        opt.tmp = tmp
        if opt.weights:
            weights, note = opt.weights, f"checkpoint {opt.weights}"
        else:
            weights = str(untrained_checkpoint(Path(tmp) / "yolov5n-mfl-untrained.pt", opt.cfg))
            note = "UNTRAINED yolov5n-mfl built from its YAML (NMS load differs from a trained model's)"
        conf = opt.conf if opt.conf is not None else resolve_conf(None, weights if opt.weights else None)
        source = Path(opt.source) if opt.source else make_frames(Path(tmp) / "frames", opt.images, opt.frame_wh)
        print(
            f"- ours: CountingPredictor on {note}; stock: YOLO('{opt.stock_cfg}') (untrained, Ultralytics' "
            f"anchor-free head, {opt.stock_cfg} nc from the YAML)\n"
        )
        if 0 in opt.tables:
            print(thread_table(opt, weights, device), flush=True)
        if 1 in opt.tables:
            print(throughput_table(opt, weights, conf, source, device), flush=True)
        if 2 in opt.tables:
            print(postprocess_table(opt, weights, device))


def parse_opt() -> argparse.Namespace:
    """Benchmark settings; the defaults finish in a few minutes on a 2-core CPU."""
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--weights", default="", help="yolov5n-mfl checkpoint (default: build an untrained one)")
    p.add_argument("--cfg", default=str(ROOT / "models" / "yolov5n-mfl.yaml"), help="model YAML without --weights")
    p.add_argument("--stock-cfg", default="yolov5n.yaml", help="Ultralytics model YAML of the stock contender")
    p.add_argument("--source", default="", help="folder of images (default: synthetic crowd frames)")
    p.add_argument("--images", type=int, default=8, help="synthetic frames to write without --source")
    p.add_argument("--frame-wh", type=int, nargs=2, default=(1920, 1080), help="synthetic frame width height")
    p.add_argument("--sizes", nargs="+", default=["640", "608x1088"], help="imgsz values, 'H' or 'HxW'")
    p.add_argument("--conf", type=float, default=None, help="conf for both (default: the checkpoint's, else 0.25)")
    p.add_argument("--device", default="cpu", help="cpu, or a CUDA index such as 0")
    p.add_argument("--threads", type=int, default=1, help=THREADS_HELP)
    p.add_argument("--repeats", type=int, default=5, help="timed passes over the folder per contender")
    p.add_argument("--post-imgsz", type=int, default=640, help="square input size of table 2")
    p.add_argument("--post-heads", type=int, default=MAX_DET, help="heads (detections) per image in table 2")
    p.add_argument("--per-head", type=int, default=4, help="candidate boxes above conf per head in table 2")
    p.add_argument("--post-repeats", type=int, default=10, help="timed rounds of table 2")
    p.add_argument("--tables", type=int, nargs="+", default=[0, 1, 2], help="which tables to print")
    return p.parse_args()


if __name__ == "__main__":
    main(parse_opt())
