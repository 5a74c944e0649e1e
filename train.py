"""Train a YOLOv5 head counter whose objectness is learned by Mask Focal Loss.

The default model is the anchor-free YOLOv5u head with MFL (models/yolov5nu-mfl.yaml), the one that counts best in
BENCHMARKS.md; the paper's YOLOv5 anchor head is `--cfg models/yolov5n-mfl.yaml` (any scale, same flags).

Usage:
    python train.py                                   # built-in synthetic crowd set, yolov5nu-mfl, on a CPU
    python train.py --data data/scut_head_a.yaml --cfg models/yolov5su-mfl.yaml --img 640 --epochs 100
    python train.py --data data/scut_head_a.yaml --cfg models/yolov5s-mfl.yaml   # the paper's anchor-head model
    python train.py --data data/gta_head.yaml --loss bce         # the head's stock objectness (the baseline)
    python train.py --resume runs/train/exp/weights/last.pt
"""

from __future__ import annotations

import os

os.environ.setdefault("YOLO_OFFLINE", "1")  # before Ultralytics is imported: no downloads, no network checks

import argparse
import time
from pathlib import Path

from data.resolve import SYNTHETIC, resolve_data
from utils import MAX_DET, ROOT, cli
from utils.checkpoint import trust_weights
from utils.detection_loss import OBJ_LOSSES
from utils.trainer import DEFAULT_MODEL, MFLTrainer

# The embedded default must finish in a few minutes on a 2-core CPU; real datasets get YOLOv5's defaults.
RECIPES = {True: {"epochs": 30, "imgsz": 320, "batch": 8}, False: {"epochs": 100, "imgsz": 640, "batch": 16}}


def parse_opt(argv: list[str] | None = None) -> argparse.Namespace:
    """Parse YOLOv5's training flags."""
    p = argparse.ArgumentParser(description=__doc__, formatter_class=cli.HelpFormatter)
    p.add_argument("--weights", default="", help="initial weights .pt ('' trains from scratch, as the paper)")
    p.add_argument(
        "--trust-weights",
        action="store_true",
        help="also load checkpoints needing more than known model classes (their pickle can run code)",
    )
    p.add_argument("--cfg", default="", help="model YAML, scale by name (default: the weights' own, else yolov5nu-mfl)")
    p.add_argument("--data", default=SYNTHETIC, help="data YAML, or 'synthetic' for the built-in crowd set")
    p.add_argument(
        "--hyp", default="", help="hyperparameter YAML (default: the head's, data/hyps/hyp.scratch.yaml or -u.yaml)"
    )
    p.add_argument("--loss", choices=OBJ_LOSSES, default=None, help="objectness loss (default: the hyp file's, mfl)")
    p.add_argument("--epochs", type=int, default=None, help="epochs (default 30 on synthetic, else 100)")
    p.add_argument("--batch-size", type=int, default=None, help="total batch size for all GPUs (8 synthetic, else 16)")
    p.add_argument(
        "--imgsz", "--img", "--img-size", type=cli.image_size, default=None, help="image size (320 synthetic, else 640)"
    )
    p.add_argument("--device", default="", help="cuda device, i.e. 0 or 0,1,2,3 or cpu")
    p.add_argument("--workers", type=int, default=8, help="max dataloader workers (per RANK in DDP mode)")
    p.add_argument("--project", default=str(ROOT / "runs" / "train"), help="save to project/name")
    p.add_argument("--name", default="exp", help="save to project/name")
    p.add_argument("--exist-ok", action="store_true", help="existing project/name ok, do not increment")
    p.add_argument("--resume", nargs="?", const=True, default=False, help="resume the most recent or the given run")
    p.add_argument("--seed", type=int, default=0, help="global training seed")
    p.add_argument("--patience", type=int, default=100, help="EarlyStopping patience (epochs without improvement)")
    p.add_argument("--cache", nargs="?", const="ram", default=False, help="image --cache ram/disk")
    p.add_argument("--max-det", type=int, default=MAX_DET, help="maximum detections per image in validation")
    p.add_argument("--noautoanchor", action="store_true", help="anchor head: keep the YAML's anchors, no AutoAnchor")
    p.add_argument("--rect", action="store_true", help="rectangular training batches")
    p.add_argument("--noval", action="store_true", help="only validate the final epoch")
    p.add_argument("--optimizer", choices=("SGD", "Adam", "AdamW", "auto"), default=None, help="default: the hyp's")
    p.add_argument("--freeze", nargs="+", type=int, default=None, help="freeze the first N layers, or layers i j k")
    p.add_argument("--cos-lr", action="store_true", help="cosine learning-rate schedule")
    p.add_argument("--single-cls", action="store_true", help="train every class as one (head)")
    p.add_argument("--save-period", type=int, default=-1, help="save a checkpoint every N epochs (-1: off)")
    p.add_argument("--evolve", nargs="?", const=300, type=int, default=None, help="not supported (see the error)")
    return p.parse_args(argv)


def overrides_from(opt: argparse.Namespace) -> dict:
    """Map YOLOv5 flags to Ultralytics trainer overrides."""
    recipe = RECIPES[opt.data == SYNTHETIC]
    weights = opt.weights or None
    ov = {
        "data": resolve_data(opt.data),
        "model": opt.cfg or weights or str(DEFAULT_MODEL),
        "pretrained": weights or False,
        "epochs": opt.epochs or recipe["epochs"],
        "batch": opt.batch_size or recipe["batch"],
        "imgsz": opt.imgsz or recipe["imgsz"],
        "device": opt.device or None,
        "workers": opt.workers,
        "project": str(Path(opt.project).resolve()),  # Ultralytics would nest a relative one under its runs_dir
        "name": opt.name,
        "exist_ok": opt.exist_ok,
        "resume": opt.resume,
        "seed": opt.seed,
        "patience": opt.patience,
        "cache": opt.cache,
        "max_det": opt.max_det,
        "noautoanchor": opt.noautoanchor,
        "rect": opt.rect,
        "val": not opt.noval,
        "cos_lr": opt.cos_lr,
        "single_cls": opt.single_cls,
        "save_period": opt.save_period,
    }
    if opt.freeze:  # YOLOv5: one number freezes the first N layers, several freeze those layers
        ov["freeze"] = opt.freeze[0] if len(opt.freeze) == 1 else opt.freeze
    ov.update({k: v for k, v in (("loss", opt.loss), ("optimizer", opt.optimizer)) if v})
    return ov


def check_paths(opt: argparse.Namespace) -> None:
    """Stop on a missing file or an unsupported flag before anything is downloaded or any run folder is made."""
    if opt.evolve is not None:
        raise ValueError(
            "--evolve is not supported: YOLOv5's genetic search needs its own training loop; tune with Ultralytics' "
            "YOLO(...).tune() or compare settings with bench/accuracy.py --set"
        )
    for flag, path in (("--weights", opt.weights), ("--hyp", opt.hyp)):
        if path:
            cli.existing_file(flag, path)
    if opt.cfg:
        cli.model_yaml("--cfg", opt.cfg)
    if isinstance(opt.resume, str):  # --resume PATH resumes exactly that run, never the most recent other one
        cli.existing_file("--resume", opt.resume)


def main(opt: argparse.Namespace) -> Path:
    """Train and return the run folder."""
    trust_weights(opt.trust_weights)
    check_paths(opt)
    overrides = overrides_from(opt)
    if not opt.resume:  # a resumed run keeps its own folder
        overrides["save_dir"] = str(cli.run_dir(overrides["project"], opt.name, opt.exist_ok))
    start = time.perf_counter()
    trainer = MFLTrainer(overrides=overrides, hyp=opt.hyp or None)
    trainer.train()
    minutes, seconds = divmod(round(time.perf_counter() - start), 60)
    print(f"Results saved to {trainer.save_dir} (best weights: {trainer.best}); {minutes} min {seconds} s in all")
    return Path(trainer.save_dir)


if __name__ == "__main__":
    cli.run(main, parse_opt())
