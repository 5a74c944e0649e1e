"""Count heads in images, folders, globs, videos, webcams and streams with a trained crowd-counting model.

Usage - sources:
    $ python detect.py --weights best.pt --source img.jpg         # image
                                                   path/           # folder
                                                   'path/*.jpg'    # glob
                                                   vid.mp4         # video
                                                   0               # webcam
                                                   'rtsp://example.com/media.mp4'  # RTSP, RTMP, HTTP stream
                                                   a.jpg vid.mp4   # several sources, processed in turn

Tracking (unique heads, line crossings, zone occupancy and dwell):
    $ python detect.py --weights best.pt --source vid.mp4 --track --line 0,540,1920,540 --zone 0,0,960,0,960,540,0,540

Outputs in runs/detect/exp*: annotated images and videos (count in the top-left corner), counts.csv (one row per image
or frame; with --track also tracked, unique, crossings and zone columns), summary.json (--track: totals per video)
and, with --save-txt, YOLO labels. The exit code is 1 when any source could not be processed.
"""

from __future__ import annotations

import os

os.environ.setdefault("YOLO_OFFLINE", "1")  # before Ultralytics is imported: no downloads, no network checks

import argparse
from pathlib import Path

from ultralytics.utils import LOGGER

from utils import COUNT_IOU, MAX_DET, ROOT, cli
from utils.overlay import STYLES


def parse_opt(argv: list[str] | None = None) -> argparse.Namespace:
    """Parse YOLOv5's detect.py flags plus the counting ones (--style, --smooth, --tile, --tile-overlap)."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0], formatter_class=cli.HelpFormatter)
    parser.add_argument("--weights", type=str, required=True, help="model.pt, or a model exported by export.py")
    parser.add_argument(
        "--trust-weights",
        action="store_true",
        help="also load checkpoints needing more than known model classes (their pickle can run code)",
    )
    parser.add_argument("--source", nargs="+", required=True, help="image/folder/glob/video/webcam index/stream URL")
    parser.add_argument(
        "--imgsz", "--img", "--img-size", nargs="+", type=cli.image_size, default=[640], help="inference size h w"
    )
    parser.add_argument("--conf-thres", type=float, default=None, help="confidence threshold (default: checkpoint's)")
    parser.add_argument(
        "--iou-thres", type=float, default=COUNT_IOU, help="NMS IoU threshold (the count threshold is calibrated at it)"
    )
    parser.add_argument("--max-det", type=int, default=MAX_DET, help="maximum detections per image")
    parser.add_argument("--device", default="", help="cuda device, i.e. 0 or 0,1,2,3 or cpu")
    parser.add_argument("--view-img", action="store_true", help="show results")
    parser.add_argument("--save-txt", action="store_true", help="save results to *.txt")
    parser.add_argument("--save-conf", action="store_true", help="save confidences in --save-txt labels")
    parser.add_argument("--nosave", action="store_true", help="do not save images/videos")
    parser.add_argument("--project", default=ROOT / "runs/detect", help="save results to project/name")
    parser.add_argument("--name", default="exp", help="save results to project/name")
    parser.add_argument("--exist-ok", action="store_true", help="existing project/name ok, do not increment")
    parser.add_argument("--line-thickness", type=int, default=None, help="box thickness (pixels), auto if unset")
    parser.add_argument(
        "--show-labels", action="store_true", help="write 'head 0.87' on each box (unreadable on crowds)"
    )
    parser.add_argument("--hide-labels", action="store_true", help="YOLOv5's flag, kept: labels are off by default")
    parser.add_argument("--hide-conf", action="store_true", help="hide confidences")
    parser.add_argument("--vid-stride", type=int, default=1, help="video frame-rate stride")
    parser.add_argument("--half", action="store_true", help="use FP16 half-precision inference")
    parser.add_argument("--style", choices=STYLES, default="boxes", help="overlay: boxes, a dot per head, or heatmap")
    parser.add_argument("--smooth", type=int, default=1, help="show the moving-average count over N frames")
    parser.add_argument("--tile", action="store_true", help="sliced inference with imgsz tiles at native resolution")
    parser.add_argument("--tile-overlap", type=float, default=0.2, help="tile overlap as a fraction of the tile")
    parser.add_argument("--track", action="store_true", help="track heads across frames (unique counts, lines, zones)")
    cli.add_tracking_args(parser, zones=True)
    opt = parser.parse_args(argv)
    if (opt.line or opt.zone) and not opt.track:
        parser.error("--line and --zone count tracks: add --track")
    opt.imgsz *= 2 if len(opt.imgsz) == 1 else 1  # expand
    return opt


def overrides_from(opt: argparse.Namespace, save_dir: Path) -> dict:
    """Map YOLOv5 flags to Ultralytics predictor overrides; conf None means the checkpoint's count threshold."""
    return {
        "model": opt.weights,
        "imgsz": opt.imgsz,
        "conf": opt.conf_thres,
        "iou": opt.iou_thres,
        "max_det": opt.max_det,
        "device": opt.device or None,
        "show": opt.view_img,
        "save": not opt.nosave,
        "save_txt": opt.save_txt,
        "save_conf": opt.save_conf,
        "save_dir": str(save_dir),
        "line_width": opt.line_thickness,
        "show_labels": opt.show_labels and not opt.hide_labels,
        "show_conf": not opt.hide_conf,
        "vid_stride": opt.vid_stride,
        "quantize": 16 if opt.half else None,
        "verbose": False,  # our own per-image lines and per-video progress bars replace Ultralytics' per-frame log
    }


def main(opt: argparse.Namespace) -> int:
    """Count heads in every source, reporting each one that fails and carrying on with the rest.

    Returns:
        (int): Exit code, 0 when every source was processed, 1 otherwise.
    """
    from utils.checkpoint import trust_weights
    from utils.predictor import CountingPredictor  # heavy import kept out of --help

    trust_weights(opt.trust_weights)
    if not Path(opt.weights).exists():  # checked here: Ultralytics would try to download a missing name
        LOGGER.error(f"weights not found: {opt.weights}")
        return 1
    save_dir = cli.run_dir(opt.project, opt.name, opt.exist_ok, mkdir=True)
    try:
        predictor = CountingPredictor(
            overrides=overrides_from(opt, save_dir),
            style=opt.style,
            smooth=opt.smooth,
            tile=opt.tile,
            tile_overlap=opt.tile_overlap,
            counts_csv=save_dir / "counts.csv",
            track=opt.tracker if opt.track else None,
            lines=opt.line,
            zones=opt.zone,
            min_track_frames=opt.min_track_frames,
            line_band=opt.line_band,
            min_track_conf=opt.min_track_conf,
            cross_frames=opt.cross_frames,
        )
        predictor.setup_model(opt.weights)
    except (OSError, ValueError, TypeError, RuntimeError) as e:  # unreadable checkpoint or bad settings
        msg = cli.one_line(e)  # our loader's messages name the file already
        LOGGER.error(msg if Path(opt.weights).name in msg else f"{opt.weights}: {msg}")
        return 1
    LOGGER.info(f"Counting with {predictor.threads} CPU threads, max {opt.max_det} detections per image")
    for source in opt.source:
        try:
            predictor.predict_cli(source=source)
        except (OSError, ValueError) as e:  # unopenable source, e.g. missing path, dead stream, not an image
            reason = str(e).strip().splitlines()[0]
            predictor.fail(source, reason.split("... ")[-1] if isinstance(e, ConnectionError) else reason)
        except KeyboardInterrupt:  # the usual way to stop a live stream; writers and counts.csv are already closed
            if predictor.tracking:
                predictor.tracking.finish_all()
            LOGGER.info(f"Interrupted by user; outputs so far are in {save_dir}")
            return 130
    if predictor.tracking:
        predictor.tracking.finish_all()
    counted = (save_dir / "counts.csv").exists() and len((save_dir / "counts.csv").read_text().splitlines()) > 1
    if counted:
        summary = ", summary.json: tracks per video" if predictor.tracking else ""
        LOGGER.info(f"Results saved to {save_dir} (counts.csv: one row per image or frame{summary})")
    if predictor.capped:
        LOGGER.warning(f"{sum(predictor.capped.values())} images or frames reached --max-det {opt.max_det}")
    if predictor.failures:
        LOGGER.error(f"{len(predictor.failures)} source(s) failed: {', '.join(predictor.failures)}")
        return 1
    return 0


if __name__ == "__main__":
    cli.run(main, parse_opt())
