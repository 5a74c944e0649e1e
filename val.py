"""Validate a trained crowd counter: detection mAP plus the counting report, written to runs/val/exp*.

The report: MAE, RMSE (printed as "MSE" in many crowd-counting papers), NAE, the count threshold and its sweep, and
centre localisation (P/R/F1 within sigma_s, sigma_l, 4 px and 8 px of each head).

Usage:
    $ python val.py --data data/scut_head_a.yaml --weights runs/train/exp/weights/best.pt --task test
    $ python val.py --data data/scut_head_a.yaml --weights best.pt --count-conf auto   # tune the threshold on this split
    $ python val.py --data data/scut_head_a.yaml --weights best.pt --count-conf 0.4
    $ python val.py --task track --data HT21/train --weights best.pt --line 0,540,1920,540   # MOT sequences

The count threshold defaults to the one stored in the weights (calibrated on the val split at the end of training).
Weights that store none: on --task val it is tuned on val (with a warning); on --task test it is first calibrated on
the val split, then applied to test, so the test figures stay held-out.
"""

from __future__ import annotations

import os

os.environ.setdefault("YOLO_OFFLINE", "1")  # before Ultralytics is imported: no downloads, no network checks

import argparse
from pathlib import Path
from typing import Any

from ultralytics.utils import LOGGER

from data.resolve import resolve_data
from utils import COUNT_IOU, MAX_DET, ROOT, cli
from utils.checkpoint import read_count_conf, read_train_args, trust_weights
from utils.threads import use_all_cores
from utils.validator import CountingValidator


def parse_opt(argv: list[str] | None = None) -> argparse.Namespace:
    """Parse YOLOv5's val.py flags plus --count-conf."""
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0], formatter_class=cli.HelpFormatter)
    p.add_argument("--data", type=str, default=None, help="dataset YAML, or 'synthetic' (default: the training data)")
    p.add_argument("--weights", type=str, required=True, help="model checkpoint (.pt) path")
    p.add_argument(
        "--trust-weights",
        action="store_true",
        help="also load checkpoints needing more than known model classes (their pickle can run code)",
    )
    p.add_argument(
        "--task", default="val", choices=("val", "test", "track"), help="split to evaluate, or track MOT sequences"
    )
    p.add_argument(
        "--imgsz", "--img", "--img-size", type=cli.image_size, default=None, help="inference size (default: training's)"
    )
    p.add_argument("--batch-size", type=int, default=32, help="batch size")
    p.add_argument("--conf-thres", type=float, default=0.001, help="NMS confidence threshold (for mAP)")
    p.add_argument("--iou-thres", type=float, default=COUNT_IOU, help="NMS IoU threshold")
    p.add_argument("--max-det", type=int, default=MAX_DET, help="maximum detections per image")
    p.add_argument("--count-conf", type=_count_conf_arg, default=None, help="count threshold: float, or 'auto'")
    p.add_argument(
        "--rect",
        action="store_true",
        help="rectangular batches for .pt weights, as Ultralytics' model.val() (less padding: faster on wide images); "
        "default square letterboxed inputs, which exports need and the stored count threshold was calibrated on",
    )
    p.add_argument(
        "--peak-filter", action="store_true", help="keep only local maxima of each level's scores before NMS (faster)"
    )
    p.add_argument("--device", default="", help="cuda device, i.e. 0 or 0,1,2,3 or cpu")
    p.add_argument("--project", default=ROOT / "runs/val", help="save to project/name")
    p.add_argument("--name", default="exp", help="save to project/name")
    p.add_argument("--exist-ok", action="store_true", help="existing project/name ok, do not increment")
    p.add_argument("--save-txt", action="store_true", help="save predictions (with scores) to labels/*.txt")
    p.add_argument("--save-json", action="store_true", help="save predictions to predictions.json (COCO format)")
    cli.add_tracking_args(p, zones=False, scope="--task track: ")
    return p.parse_args(argv)


def main(opt: argparse.Namespace) -> dict[str, Any]:
    """Run the validation described by `opt` and return its metrics (keys as in results.csv)."""
    trust_weights(opt.trust_weights)
    # checked here: Ultralytics would try to download unknown names such as yolov5n.pt
    cli.existing_file("--weights", opt.weights, folder_ok=True)
    trained = read_train_args(opt.weights)  # as Ultralytics' model.val(): the checkpoint's data and image size
    if opt.task == "track":
        return track(opt, trained)
    if not (opt.data or trained.get("data")):
        raise ValueError(f"--weights {opt.weights} does not say which data it was trained on; give --data")
    data = resolve_data(opt.data or trained["data"])
    check_split(data, opt.task)
    save_dir = cli.run_dir(opt.project, opt.name, opt.exist_ok)
    args = {
        "model": str(opt.weights),
        "data": data,
        "split": opt.task,
        "imgsz": opt.imgsz or trained.get("imgsz", 640),
        "batch": opt.batch_size,
        "conf": opt.conf_thres,
        "iou": opt.iou_thres,
        "max_det": opt.max_det,
        "rect": opt.rect,  # Ultralytics turns it off for exported models, whose input shape is fixed
        "device": opt.device,
        "save_txt": opt.save_txt,
        "save_conf": opt.save_txt,  # scores in the txt files let users recount at any threshold
        "save_json": opt.save_json,
        "plots": True,
    }
    count_conf, source = opt.count_conf, None
    if count_conf is None and opt.task == "test" and read_count_conf(opt.weights) is None:
        count_conf, source = _calibrate_on_val(args, save_dir / "calibration-val"), "calibrated on val by val.py"
    validator = CountingValidator(
        save_dir=save_dir, args=args, count_conf=count_conf, count_conf_source=source, peak_filter=opt.peak_filter
    )
    validator.add_callback("on_val_start", lambda v: use_all_cores())  # after the validator's select_device()
    return validator()


def track(opt: argparse.Namespace, trained: dict[str, Any]) -> dict[str, Any]:
    """Track the MOT sequences under --data and return the mean of their metrics (utils/track_eval.py)."""
    from utils.track_eval import evaluate_tracking

    if not opt.data or not Path(opt.data).is_dir():
        raise ValueError(f"--task track needs --data: a MOT sequence folder or a folder of them, got {opt.data}")
    if opt.count_conf == "auto":
        raise ValueError(
            "--task track counts at a fixed threshold: give --count-conf a number, or none for the stored one"
        )
    overrides = {
        "model": str(opt.weights),
        "imgsz": opt.imgsz or trained.get("imgsz", 640),
        "conf": opt.count_conf,  # None: the stored count threshold
        "iou": opt.iou_thres,
        "max_det": opt.max_det,
        "device": opt.device or None,
    }
    save_dir = cli.run_dir(opt.project, opt.name, opt.exist_ok)
    table = evaluate_tracking(
        opt.data,
        overrides,
        opt.tracker,
        opt.line,
        opt.min_track_frames,
        save_dir,
        opt.line_band,
        opt.min_track_conf,
        opt.cross_frames,
    )
    return table.iloc[-1].drop("sequence").to_dict()


def check_split(data: str, split: str) -> None:
    """Stop in one line when the data YAML has no such split (Ultralytics would fail deep inside the validator)."""
    from ultralytics.data.utils import check_det_dataset

    if not check_det_dataset(data).get(split):
        raise ValueError(f"--data {data} has no '{split}' split; use --task with a split it has")


def _calibrate_on_val(args: dict[str, Any], save_dir: Path) -> float:
    """Return the MAE-minimising count threshold on the val split (the weights store none)."""
    LOGGER.warning(f"{args['model']} stores no count threshold: calibrating one on the val split first ({save_dir})")
    validator = CountingValidator(save_dir=save_dir, args={**args, "split": "val", "plots": False}, count_conf="auto")
    validator.add_callback("on_val_start", lambda v: use_all_cores())
    validator()
    return validator.count_conf


def _count_conf_arg(value: str) -> float | str:
    """Parse --count-conf: 'auto' or a float in (0, 1)."""
    if value == "auto":
        return value
    conf = float(value)
    if not 0 < conf < 1:
        raise argparse.ArgumentTypeError(f"--count-conf {value}: expected 'auto' or a number in (0, 1)")
    return conf


if __name__ == "__main__":
    cli.run(main, parse_opt())
