"""Benchmark: val.py's wall time on 400 images and the share of it spent in the counting metrics.

Runs val.py's `main()` in this process (its exact code path: CountingValidator, threads, plots and report files) on
the SCUT-Head Part A val split (400 images, data/scut_head_a.yaml) when the shared data folder beside the repository
exists, else on 400 synthetic crowd images, and times the counting parts by wrapping them:

- `CountingEvaluator.process` (per image) and the rest of `CountingValidator.update_metrics` beyond Ultralytics'
  `DetectionValidator.update_metrics` (scaling GT and predictions to the original image, then `process`);
- `CountingEvaluator.evaluate` (threshold sweep, calibration, errors; it calls `localise`, timed on its own too);
- `CountingValidator._save_report` (counts.csv, metrics.json and the counting plots).

Without --weights an untrained yolov5n-mfl checkpoint is built. Its scores sit just above val.py's NMS conf 0.001, so
most images reach max_det (3,000) detections after NMS: a heavy load for NMS and the counting metrics (the table
prints detections per image; a trained model gives fewer on sparse images).

Torch threads: 1 by default (see --threads); --threads 0 keeps val.py's own setting (every core).

Usage:
    python bench/val_speed.py                                     # SCUT-Head A val if ../shared exists
    python bench/val_speed.py --weights runs/train/exp/weights/best.pt --device 0 --batch-size 64
    python bench/val_speed.py --weights ours.pt --stock stock.pt --threads 0  # + stock model.val(), same run
"""

from __future__ import annotations

import argparse
import functools
import sys
import tempfile
import time
from collections import defaultdict
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # run as a script from anywhere, like bench/targets.py

from bench.common import THREADS_HELP, load, machine_header, markdown_table, untrained_checkpoint  # noqa: E402
from utils import ROOT  # noqa: E402

SHARED = ROOT.parent / "shared"


class Timers:
    """Total wall time and calls of wrapped methods, by label."""

    def __init__(self):
        """No time recorded yet."""
        self.total: dict[str, float] = defaultdict(float)
        self.calls: dict[str, int] = defaultdict(int)
        self.validator = None

    def wrap(self, cls: type, name: str, label: str) -> None:
        """Replace cls.name with a timed version that adds its wall time to `label`."""
        orig = getattr(cls, name)

        @functools.wraps(orig)
        def timed(*args, **kwargs):
            t = time.perf_counter()
            try:
                return orig(*args, **kwargs)
            finally:
                self.total[label] += time.perf_counter() - t
                self.calls[label] += 1

        setattr(cls, name, timed)


def default_data(n: int) -> str:
    """SCUT-Head A via its YAML when the shared data folder exists, else n synthetic crowd images."""
    if SHARED.is_dir():
        return str(ROOT / "data" / "scut_head_a.yaml")
    from data.synthetic import ensure_synthetic_crowd

    return str(ensure_synthetic_crowd(n_train=0, n_val=n, size=640, max_heads=100, seed=0))


def wrap_nms(timers: Timers, lift_limit: bool) -> None:
    """Time Ultralytics' NMS and count the batches that ran past its time limit (2 s + 0.05 s per image), after which
    it stops and leaves the batch's remaining images without detections; `lift_limit` raises the limit out of reach."""
    from ultralytics.utils import nms

    orig = nms.non_max_suppression

    def timed(prediction, *args, **kwargs):
        if lift_limit:
            kwargs["max_time_img"] = 1e6
        bs = (prediction[0] if isinstance(prediction, (list, tuple)) else prediction).shape[0]
        t = time.perf_counter()
        out = orig(prediction, *args, **kwargs)
        dt = time.perf_counter() - t
        timers.total["nms"] += dt
        timers.calls["nms"] += 1
        timers.calls["nms over limit"] += dt > 2.0 + kwargs.get("max_time_img", 0.05) * bs
        return out

    nms.non_max_suppression = timed  # DetectionValidator.postprocess calls it through the module


def full_nms() -> None:
    """Make val.py run Ultralytics' NMS on every candidate at once, as before utils/nms.py's top-k first pass."""
    from ultralytics.utils import nms

    import utils.validator

    def full(prediction, conf, iou, **kwargs):
        return nms.non_max_suppression(prediction, conf, iou, max_nms=10**9, max_time_img=1e6, **kwargs)

    utils.validator.topk_nms = full


def instrument(threads: int | None, lift_limit: bool) -> Timers:
    """Wrap the counting methods, NMS (and the threads val.py sets, if `threads` is given); return the timers."""
    from ultralytics.models.yolo.detect import DetectionValidator

    import val
    from utils.counting import CountingEvaluator
    from utils.validator import CountingValidator

    timers = Timers()
    timers.wrap(CountingEvaluator, "process", "process")
    timers.wrap(CountingEvaluator, "evaluate", "evaluate")
    timers.wrap(CountingEvaluator, "localise", "localise")
    timers.wrap(DetectionValidator, "update_metrics", "update_metrics (Ultralytics part)")
    timers.wrap(CountingValidator, "update_metrics", "update_metrics (all)")
    timers.wrap(CountingValidator, "_save_report", "_save_report")
    wrap_nms(timers, lift_limit)
    orig = CountingValidator.finalize_metrics

    def keep(v):  # the validator object, for its per-stage speed and counts
        timers.validator = v
        return orig(v)

    CountingValidator.finalize_metrics = keep
    if threads is not None:
        val.use_all_cores = lambda: torch.set_num_threads(threads) or threads
    return timers


def report(timers: Timers, wall: float, import_s: float, data: str, lifted: bool, full: bool) -> str:
    """The markdown table of counting times against val.py's total."""
    t, n = timers.total, timers.calls
    v = timers.validator
    update_extra = t["update_metrics (all)"] - t["update_metrics (Ultralytics part)"]
    counting = update_extra + t["evaluate"] + t["_save_report"]
    dets = [len(c) for c in v.counter.pred_conf]
    gts = [len(g) for g in v.counter.gt_xywh]
    rows = [
        ["CountingEvaluator.process", n["process"], f"{t['process']:.2f}", f"{100 * t['process'] / wall:.1f}%"],
        [
            "update_metrics beyond Ultralytics' (scale boxes + process)",
            n["update_metrics (all)"],
            f"{update_extra:.2f}",
            f"{100 * update_extra / wall:.1f}%",
        ],
        [
            "CountingEvaluator.evaluate (sweep, calibration, errors, localise)",
            n["evaluate"],
            f"{t['evaluate']:.2f}",
            f"{100 * t['evaluate'] / wall:.1f}%",
        ],
        [
            "  of which localise (centre matching)",
            n["localise"],
            f"{t['localise']:.2f}",
            f"{100 * t['localise'] / wall:.1f}%",
        ],
        [
            "CountingValidator._save_report (counts.csv, metrics.json, plots)",
            n["_save_report"],
            f"{t['_save_report']:.2f}",
            f"{100 * t['_save_report'] / wall:.1f}%",
        ],
        ["counting total (update extra + evaluate + report)", "", f"{counting:.2f}", f"{100 * counting / wall:.1f}%"],
        [
            "Ultralytics update_metrics (mAP matching)",
            n["update_metrics (Ultralytics part)"],
            f"{t['update_metrics (Ultralytics part)']:.2f}",
            f"{100 * t['update_metrics (Ultralytics part)'] / wall:.1f}%",
        ],
        [
            "Ultralytics NMS (non_max_suppression, per batch)",
            n["nms"],
            f"{t['nms']:.2f}",
            f"{100 * t['nms'] / wall:.1f}%",
        ],
        ["val.py main() total", 1, f"{wall:.2f}", "100%"],
    ]
    sp = v.speed
    limit = "lifted by --nms-no-time-limit" if lifted else "2 s + 0.05 s per image; later images get no detections"
    return (
        f"### val.py on {v.seen} images ({data})\n\n"
        f"{markdown_table(['part', 'calls', 'seconds', 'share of main()'], rows)}\n\n"
        f"- per image (Ultralytics' validator.speed, ms): preprocess {sp['preprocess']:.1f}, inference "
        f"{sp['inference']:.1f}, postprocess (NMS) {sp['postprocess']:.1f}\n"
        f"- detections per image after NMS (conf >= {v.args.conf}): mean {np.mean(dets):.0f}, max {max(dets)}; "
        f"GT heads per image: mean {np.mean(gts):.1f}, max {max(gts)}\n"
        f"- NMS: {'every candidate at once (--full-nms)' if full else 'the best 3 x max_det candidates first (utils/nms.py)'}\n"
        f"- NMS batches past Ultralytics' time limit ({limit}): {n['nms over limit']} of {n['nms']}; images with no "
        f"detection: {sum(d == 0 for d in dets)} of {len(dets)}\n"
        f"- `import val` before main(): {import_s:.2f} s; torch threads during validation: {v._bench_threads}\n"
        f"- load after: {load()}\n"
    )


def stock_val(weights: str, data: str, opt: argparse.Namespace, timers: Timers, rect: bool) -> tuple[str, float]:
    """Time Ultralytics' own `model.val()` on a stock checkpoint with val.py's image size, batch, conf, IoU and
    max_det (its own threads and plots); return the comparison line and its wall time.

    `rect=True` is what `model.val()` does by default: batches of like aspect ratio, letterboxed to the smallest
    multiple of the stride, so a 16:9 image costs about 0.6 of a square one. val.py letterboxes square inputs, as
    exported models must, so that an export counts exactly as its .pt; `rect=False` times stock on the same inputs.
    """
    from ultralytics import YOLO

    from utils import MAX_DET

    nms_before = timers.total["nms"]
    with tempfile.TemporaryDirectory() as tmp:
        t = time.perf_counter()
        metrics = YOLO(weights).val(
            data=data, imgsz=opt.imgsz, batch=opt.batch_size, conf=0.001, iou=0.6, max_det=MAX_DET,
            device=opt.device, project=tmp, name="val", verbose=False, rect=rect,
        )  # fmt: skip
        wall = time.perf_counter() - t
        threads = torch.get_num_threads()
    nms = timers.total["nms"] - nms_before
    return (
        f"- stock Ultralytics `YOLO({Path(weights).name}).val(rect={rect})` (same data, imgsz, batch, conf 0.001, IoU 0.6, "
        f"max_det {MAX_DET}; {threads} torch threads): {wall:.2f} s, NMS {nms:.2f} s, mAP50 {metrics.box.map50:.3f}, "
        f"per image (ms) {', '.join(f'{k} {v:.1f}' for k, v in metrics.speed.items())}\n"
    ), wall


def main(opt: argparse.Namespace) -> None:
    """Run val.py once, instrumented, then stock `model.val()` if asked, and print the table."""
    t0 = time.perf_counter()
    import val

    import_s = time.perf_counter() - t0
    timers = instrument(opt.threads or None, opt.nms_no_time_limit)  # threads 0: val.py's own
    from utils.validator import CountingValidator

    get_stats = CountingValidator.get_stats

    def note_threads(v):  # threads in force during the pass, after val.py's own thread setting
        v._bench_threads = torch.get_num_threads()
        return get_stats(v)

    CountingValidator.get_stats = note_threads
    if opt.full_nms:
        full_nms()
    if opt.torchvision_nms:
        import utils.nms

        utils.nms.GRID_MIN_BOXES = 10**9  # every candidate set below the grid kernel's threshold
    data = opt.data or default_data(opt.images)
    print(machine_header(torch.device("cpu" if opt.device in {"", "cpu"} else f"cuda:{opt.device}")))
    with tempfile.TemporaryDirectory() as tmp:
        weights = opt.weights or str(untrained_checkpoint(Path(tmp) / "yolov5n-mfl-untrained.pt", opt.cfg))
        note = f"checkpoint {opt.weights}" if opt.weights else "UNTRAINED yolov5n-mfl built from its YAML"
        print(f"- model: {note}\n")
        args = ["--data", data, "--weights", weights, "--imgsz", str(opt.imgsz), "--batch-size", str(opt.batch_size)]
        args += ["--device", opt.device, "--project", tmp, "--name", "val"] + ["--rect"] * opt.rect
        vopt = val.parse_opt(args)
        t = time.perf_counter()
        val.main(vopt)
        wall = time.perf_counter() - t
        shown = " ".join("<weights>" if a == weights else "<tmp>" if a == tmp else a for a in args)
    print(f"- val.py arguments: `{shown}`\n")
    print(report(timers, wall, import_s, Path(data).name, opt.nms_no_time_limit, opt.full_nms))
    for rect in (True, False) if opt.stock else ():
        line, stock_wall = stock_val(opt.stock, data, opt, timers, rect)
        print(line + f"- val.py / stock model.val(rect={rect}) wall time: {wall / stock_wall:.2f}x\n")


def parse_opt() -> argparse.Namespace:
    """Benchmark settings; the defaults finish in a few minutes on a 2-core CPU."""
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--data", default="", help="data YAML (default: SCUT-Head A if ../shared exists, else synthetic)")
    p.add_argument("--images", type=int, default=400, help="synthetic val images when SCUT-Head is absent")
    p.add_argument("--weights", default="", help="checkpoint (default: build an untrained yolov5n-mfl)")
    p.add_argument("--cfg", default=str(ROOT / "models" / "yolov5n-mfl.yaml"), help="model YAML without --weights")
    p.add_argument("--imgsz", type=int, default=640, help="val.py --imgsz")
    p.add_argument("--batch-size", type=int, default=32, help="val.py --batch-size")
    p.add_argument("--device", default="cpu", help="val.py --device")
    p.add_argument("--threads", type=int, default=1, help=THREADS_HELP)
    p.add_argument("--rect", action="store_true", help="val.py --rect (rectangular batches, as stock model.val())")
    p.add_argument("--stock", default="", help="stock Ultralytics checkpoint: also time its own model.val(), same run")
    p.add_argument(
        "--nms-no-time-limit",
        action="store_true",
        help="lift Ultralytics' NMS time limit (not val.py's "
        "behaviour: shows what full NMS costs when val.py's batches run past it)",
    )
    p.add_argument(
        "--torchvision-nms",
        action="store_true",
        help="run NMS on torchvision's kernel only, as before utils.nms.grid_nms (for before/after timings)",
    )
    p.add_argument(
        "--full-nms",
        action="store_true",
        help="NMS on every candidate at once instead of utils/nms.py's top-k first pass (same boxes), to time it",
    )
    return p.parse_args()


if __name__ == "__main__":
    main(parse_opt())
