"""Benchmark: tracking and counting over time on generated crowd videos with known paths (issue 17).

For each generated video (data/synthetic_video.py: people entering, leaving, crossing and occluding each other, with
MOTChallenge ground truth), a horizontal and a vertical counting line through the middle, and each tracker setting:

- HOTA, DetA, AssA, MOTA, IDF1 (TrackEval), the unique-head count error and the line-crossing error
  (utils/track_eval.py, the code of `val.py --task track`);
- the same with the ground-truth boxes as detections ("oracle" rows): what the tracker and counting lose on their own;
- tracking overhead (goal <= 15 %): the time of the per-frame tracking callbacks (Ultralytics' tracker update, our
  counting) over the rest of the same run; and, noisier on a shared machine, frames per second of detection alone
  (run before and after the tracked runs) against detection plus tracking.

Unique heads, truth: people whose head is visible (visibility > 0) in at least --min-track-frames frames; found:
tracks that last that many frames with the mean score detect.py asks (count threshold + TRACK_CONF_MARGIN).
Crossings, truth: the true paths through the lines, every frame; found: detect.py's rules (--cross-frames 5).

Usage:
    python bench/track.py --weights runs/train/exp/weights/best.pt          # the model of `python train.py`
    python bench/track.py --weights best.pt --videos 80:21 200:22 420:23  # held-out videos, to choose settings on
"""

from __future__ import annotations

import argparse
import sys
import time
from functools import partial
from pathlib import Path

import numpy as np
import pandas as pd
import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # run as a script from anywhere

from ultralytics.engine.results import Boxes  # noqa: E402
from ultralytics.trackers.track import TRACKER_MAP  # noqa: E402
from ultralytics.utils import YAML, IterableSimpleNamespace  # noqa: E402

from bench.common import load, machine_header, markdown_table  # noqa: E402
from data.synthetic_video import ensure_crowd_video  # noqa: E402
from utils import CACHE_DIR, COUNT_IOU, ROOT  # noqa: E402
from utils.array_tracker import fast_tracker  # noqa: E402
from utils.checkpoint import read_train_args  # noqa: E402
from utils.mot import read_mot, rows_by_frame  # noqa: E402
from utils.predictor import CountingPredictor  # noqa: E402
from utils.track_eval import score_sequence, sequence_frames, track_sequence  # noqa: E402
from utils.track_metrics import gt_heads  # noqa: E402
from utils.tracking import find_tracker, fit_thresholds  # noqa: E402

ORACLE_CONF = 0.5  # the count threshold the oracle tracker is fitted to: the true boxes score 0.9
VIDEOS = ("80:11", "200:12", "420:13")  # people over the video:seed; at most 63, 153 and 315 heads in a frame
HELD_OUT = ("80:21", "200:22", "420:23")  # videos to choose settings on (more: seeds 24-29)
SHOWN = (
    "HOTA",
    "MOTA",
    "IDF1",
    "IDSW",
    "ML",
    "unique",
    "unique_gt",
    "unique_err",
    "crossings",
    "crossings_gt",
    "crossings_err",
    "count_mae",
    "fps",
)


def parse_opt() -> argparse.Namespace:
    """Benchmark flags."""
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--weights", required=True, help="a trained checkpoint (the model of `python train.py`)")
    p.add_argument("--imgsz", type=int, default=None, help="inference size (default: the checkpoint's training size)")
    p.add_argument("--conf", type=float, default=None, help="count threshold (default: the checkpoint's)")
    p.add_argument("--frames", type=int, default=200, help="frames per video")
    p.add_argument("--size", type=int, default=640, help="video frame side in pixels")
    p.add_argument("--iou", type=float, default=COUNT_IOU, help="NMS IoU (detect.py's default)")
    p.add_argument("--min-track-frames", type=int, default=5)
    p.add_argument(
        "--trackers",
        nargs="+",
        default=["ocsort.yaml", "bytetrack.yaml", "botsort.yaml"],
        help="Ultralytics trackers to compare, each fitted to the count threshold (the first is the default)",
    )
    recounts = (  # the default tracker's tracks counted again under other rules, in extra rows
        ("--line-bands", float, [0.25, 0.5], "these --line-band values (the oracle's tracks too)"),
        ("--track-conf-margins", float, [0.1, 0.2], "--min-track-conf = count threshold + each margin"),
        ("--cross-frames-sweep", int, [1, 3], "these --cross-frames values"),
    )
    for flag, kind, default, what in recounts:
        p.add_argument(flag, type=kind, nargs="*", default=default, help=f"also recount the tracks with {what}")
    p.add_argument(
        "--videos",
        nargs="+",
        default=list(VIDEOS),
        metavar="PEOPLE:SEED",
        help="generated videos; the default seeds score, choose settings on others (BENCHMARKS.md: 21-23)",
    )
    p.add_argument("--out", default=str(ROOT / "bench" / "results" / "track.csv"))
    return p.parse_args()


def lines_for(size: int) -> list[np.ndarray]:
    """A horizontal and a vertical line through the middle of the frame."""
    m = size / 2
    return [np.array([[0, m], [size, m]]), np.array([[m, 0], [m, size]])]


def gt_detections(gt: pd.DataFrame, n: int, shape: tuple[int, int]) -> list[Boxes]:
    """The ground-truth boxes of the visible heads (score 0.9) of frames 1..n, as a detector would hand them over."""
    seen = gt[gt["vis"] > 0]
    data = np.column_stack([seen[["x1", "y1", "x2", "y2"]].to_numpy(), np.full(len(seen), 0.9), np.zeros(len(seen))])
    return [Boxes(data[rows].astype(np.float32), shape) for rows in rows_by_frame(seen, n)]


def tracks(cfg: IterableSimpleNamespace, frames: list[Boxes]) -> pd.DataFrame:
    """detect.py's tracker (the array twin of the YAML's type) over a video's detections, as read_mot columns."""
    tracker, parts = fast_tracker(TRACKER_MAP[cfg.tracker_type](args=cfg)), []
    for k, det in enumerate(frames, 1):
        out = tracker.update(det, None).reshape(-1, 8)
        parts.append(np.column_stack([np.full(len(out), k), out[:, 4], out[:, :4], out[:, 5]]))
    df = pd.DataFrame(np.concatenate(parts), columns=["frame", "id", "x1", "y1", "x2", "y2", "conf"])
    return df.astype({"frame": np.int64, "id": np.int64})


def oracle_tracks(gt: pd.DataFrame, n: int, tracker_yaml: str, shape: tuple[int, int]) -> pd.DataFrame:
    """Track the ground-truth boxes with detect.py's tracker (the array twin, so the YAML's own keys such as
    `new_track_max_iou` apply as they do in the product), as if the detector were perfect."""
    return tracks(IterableSimpleNamespace(**YAML.load(tracker_yaml)), gt_detections(gt, n, shape))


def timed_callbacks(predictor: CountingPredictor) -> list[float]:
    """Wrap the predictor's per-frame callbacks (the tracker's update, our counting and counts.csv rows) in a timer;
    returns the one-element list their seconds add up in. Timed inside the tracked run itself, the tracking share
    is immune to the load drifting between runs, which a ratio of two runs' frame rates is not."""
    spent = [0.0]

    def timed(cb):
        def run(p):
            t = time.perf_counter()
            cb(p)
            spent[0] += time.perf_counter() - t

        return run

    predictor.callbacks["on_predict_postprocess_end"] = [
        timed(cb) for cb in predictor.callbacks["on_predict_postprocess_end"]
    ]
    return spent


def score_row(video: tuple, lines, min_frames: int, tracking, setting: str, tracks, counts=None, **rules) -> dict:
    """One table row: a video's tracks scored under the counting rules of a `VideoTracking`, `rules` replacing any.

    Args:
        video (tuple): Sequence name, most heads in a frame, ground truth rows, frames.
        lines (list[np.ndarray]): Counting lines.
        min_frames (int): --min-track-frames.
        tracking (VideoTracking): Whose min_track_conf and cross_frames apply.
        setting (str): Row label.
        tracks (pd.DataFrame): The tracks (read_mot columns).
        counts (np.ndarray, optional): (frame, head count) rows, for the per-frame count MAE.
        **rules: score_sequence keywords that replace the tracking's (min_track_conf, cross_frames, line_band).
    """
    name, heads, gt, n = video
    rule = {"min_track_conf": tracking.min_track_conf, "cross_frames": tracking.cross_frames, **rules}
    return {
        "video": name,
        "heads_max": heads,
        "setting": setting,
        **score_sequence(gt, tracks, n, lines, min_frames, counts, **rule),
    }


def main(opt: argparse.Namespace):
    """Generate the videos, run every setting, print and save the table."""
    root = CACHE_DIR / "track_bench"
    videos = [tuple(int(x) for x in v.split(":")) for v in opt.videos]
    sequences = [ensure_crowd_video(people, opt.frames, opt.size, seed=seed, root=root) for people, seed in videos]
    imgsz = opt.imgsz or read_train_args(opt.weights).get("imgsz", 640)
    lines = lines_for(opt.size)
    base = {"model": opt.weights, "imgsz": imgsz, "iou": opt.iou, "conf": opt.conf, "save": False, "verbose": False}
    plain = CountingPredictor(overrides=base)
    default = opt.trackers[0]
    settings = {f"{Path(t).stem} (fitted)": t for t in opt.trackers}  # a name is fitted to the count threshold
    shipped = f"{default} as shipped"
    settings[shipped] = find_tracker(default)  # a path is used as it is
    trackers = {
        k: CountingPredictor(
            overrides=base,
            track=v,
            lines=lines,
            min_track_frames=opt.min_track_frames,
            # as shipped: every track of enough frames counts, every change of side crosses
            **({"min_track_conf": 0.0, "cross_frames": 1} if k == shipped else {}),
        )
        for k, v in settings.items()
    }
    spent = {k: timed_callbacks(p) for k, p in trackers.items()}
    rows = []
    for seq in sequences:
        frames_dir, n = sequence_frames(seq)
        gt = gt_heads(read_mot(seq / "gt" / "gt.txt"))
        heads = int(np.bincount(gt["frame"]).max())
        _, _, fps_a = track_sequence(plain, frames_dir)  # plain, tracked, plain: a drift between runs cancels out
        results = {}
        for k, p in trackers.items():
            spent[k][0], t0 = 0.0, time.perf_counter()
            results[k] = (*track_sequence(p, frames_dir), spent[k][0] / (time.perf_counter() - t0 - spent[k][0]))
        _, _, fps_b = track_sequence(plain, frames_dir)
        fps_plain = (fps_a + fps_b) / 2
        row = partial(score_row, (seq.name, heads, gt, n), lines, opt.min_track_frames)
        for name, (pred, counts, fps, share) in results.items():
            shares = {"fps": fps, "fps_plain": fps_plain, "overhead": share, "overhead_runs": fps_plain / fps - 1}
            rows.append({**row(trackers[name].tracking, name, pred, counts), **shares})
        oracles = {}
        for t in opt.trackers:
            fitted, _ = fit_thresholds(find_tracker(t), ORACLE_CONF, root / f"oracle_{Path(t).name}")
            oracles[Path(t).stem] = oracle_tracks(gt, n, fitted, (opt.size, opt.size))
        stem = f"{Path(default).stem} (fitted)"
        mine = results[stem]
        start = len(rows)
        # the default tracker's tracks again, counted under other rules
        row = partial(row, trackers[stem].tracking)
        rows.append(row(f"{stem}, any mean score", mine[0], mine[1], min_track_conf=0.0))
        for m in opt.track_conf_margins:
            rows.append(row(f"{stem}, margin {m:g}", mine[0], mine[1], min_track_conf=trackers[stem].count_conf + m))
        for k in opt.cross_frames_sweep:
            rows.append(row(f"{stem}, cross frames {k}", mine[0], mine[1], cross_frames=k))
        for name, oracle in oracles.items():
            rows.append(row(f"oracle detections, {name} (fitted)", oracle))
        for band in opt.line_bands:
            rows.append(row(f"{stem}, line band {band:g}", mine[0], mine[1], line_band=band))
            rows.append(
                row(
                    f"oracle detections, {stem}, line band {band:g}",
                    oracles[Path(default).stem],
                    line_band=band,
                )
            )
        print(pd.DataFrame(rows[start - len(settings) :]).to_string(), flush=True)
    table = pd.DataFrame(rows)
    Path(opt.out).parent.mkdir(parents=True, exist_ok=True)
    table.to_csv(opt.out, index=False, float_format="%.4g")
    print(machine_header(torch.device("cpu")), f"load {load()}")
    cols = ["video", "heads_max", "setting", *SHOWN, "overhead", "overhead_runs"]
    print(markdown_table(cols, [[_fmt(r.get(c)) for c in cols] for r in rows]))


def _fmt(v) -> str:
    """Table cell."""
    if v is None or (isinstance(v, float) and np.isnan(v)):
        return ""
    return f"{v:.3g}" if isinstance(v, float) else str(v)


if __name__ == "__main__":
    main(parse_opt())
