"""Benchmark: tracker YAML settings swept on generated crowd videos, each video detected once (issue 17).

A tracker on arrays (utils/array_tracker.py) takes a few milliseconds a frame, the detector tens: so each video is
detected once (bench/tracker_speed.py's `detections`), and every combination of the --set values runs the tracker
over those detections and is scored as bench/track.py scores detect.py's tracks (unique heads, crossings of a
horizontal and a vertical line, HOTA, IDF1; detect.py's counting rules), and crossing by crossing
(bench/track_owners.py): the true crossings no track following that person makes (missed), and the crossings that
match no true one (extra), whose sum over the true crossings ("missed_extra") does not let misses and extras cancel
as the net crossing error does; and the counted tracks that follow no one person for most of their frames
("no_one": mostly hand-overs between neighbours). The default videos are the held-out seeds
(21-23): choose settings there, then check them on the benchmark's (11-13) with bench/track.py. Detections are kept
on disk (bench/tracker_speed.py's `detections`), so a second sweep on the same videos and checkpoint starts at once.
`--oracle` tracks the ground-truth boxes instead: what a setting costs with a perfect detector. `--repairs` also
tracks four repairs of the model's detections (`repairs`), each a defect of the detector removed in turn: what each
costs the tracks and counts.

Usage:
    python bench/track_sweep.py --weights best.pt --set match_thresh=0.6,0.7,0.8 --set inertia=0.1,0.2,0.4
    python bench/track_sweep.py --oracle --set new_track_max_iou=0.05,0.2 --set relink_dist=none,1
    python bench/track_sweep.py --weights best.pt --repairs
"""

from __future__ import annotations

import argparse
import itertools
import sys
import tempfile
from pathlib import Path

import numpy as np
import pandas as pd
import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # run as a script from anywhere

from ultralytics.cfg import smart_value  # noqa: E402
from ultralytics.engine.results import Boxes  # noqa: E402
from ultralytics.utils import YAML, IterableSimpleNamespace  # noqa: E402

from bench.common import load, machine_header, markdown_table  # noqa: E402
from bench.track import HELD_OUT, ORACLE_CONF, gt_detections, lines_for, tracks  # noqa: E402
from bench.track_owners import BOX, crossings_by_person, match_by_frame, true_crossings  # noqa: E402
from bench.tracker_speed import detections  # noqa: E402
from data.synthetic_video import ensure_crowd_video  # noqa: E402
from utils import CACHE_DIR, COUNT_IOU, ROOT  # noqa: E402
from utils.checkpoint import read_train_args  # noqa: E402
from utils.mot import read_mot, rows_by_frame  # noqa: E402
from utils.predictor import CountingPredictor  # noqa: E402
from utils.track_eval import score_sequence, sequence_frames  # noqa: E402
from utils.track_metrics import gt_heads  # noqa: E402
from utils.tracking import CROSS_FRAMES, TRACK_CONF_MARGIN, TRACKER_KEYS, find_tracker, fit_thresholds  # noqa: E402

TRUE_SCORES = {"true boxes of found heads", "true boxes"}  # scored 0.9, counted at ORACLE_CONF
SHOWN = (
    "HOTA",
    "IDF1",
    "IDSW",
    "unique_err",
    "crossings",
    "crossings_gt",
    "crossings_err",
    "missed",
    "extra",
    "no_one",
)


def parse_opt() -> argparse.Namespace:
    """Benchmark flags."""
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--weights", help="a trained checkpoint (required unless --oracle)")
    p.add_argument("--oracle", action="store_true", help="track the ground-truth boxes instead of a model's detections")
    p.add_argument("--repairs", action="store_true", help="also track four repairs of the model's detections")
    p.add_argument("--imgsz", type=int, default=None, help="inference size (default: the checkpoint's training size)")
    p.add_argument("--conf", type=float, default=None, help="count threshold (default: the checkpoint's)")
    p.add_argument("--iou", type=float, default=COUNT_IOU, help="NMS IoU of the detections (default: detect.py's)")
    p.add_argument("--frames", type=int, default=150, help="frames per video")
    p.add_argument("--size", type=int, default=640, help="video frame side in pixels")
    p.add_argument("--tracker", default="ocsort.yaml", help="Ultralytics tracker YAML, fitted as detect.py fits it")
    p.add_argument("--set", action="append", default=[], metavar="KEY=V1,V2", help="YAML key and values to sweep")
    p.add_argument(
        "--track-conf-margins",
        type=float,
        nargs="+",
        default=[TRACK_CONF_MARGIN],
        help="count each setting's tracks with --min-track-conf = count threshold + each margin",
    )
    p.add_argument(
        "--cross-frames",
        type=int,
        nargs="+",
        default=[CROSS_FRAMES],
        help="count each setting's crossings with each of these --cross-frames values",
    )
    p.add_argument("--videos", nargs="+", default=list(HELD_OUT), metavar="PEOPLE:SEED", help="generated videos")
    p.add_argument("--out", default=str(ROOT / "bench" / "results" / "track_sweep.csv"))
    opt = p.parse_args()
    try:
        settings(opt.set)
    except ValueError as e:
        p.error(str(e))
    if not (opt.weights or opt.oracle):
        p.error("--weights is required (or --oracle)")
    if opt.repairs and not opt.weights:
        p.error("--repairs repairs a model's detections: give --weights")
    return opt


def settings(sets: list[str]) -> list[dict]:
    """Every combination of the swept values, e.g. ["inertia=0.1,0.2"] -> [{"inertia": 0.1}, {"inertia": 0.2}]."""
    keys, values = [], []
    for item in sets:
        key, sep, vals = item.partition("=")
        if not (key and sep and vals):
            raise ValueError(f"--set {item}: expected KEY=V1,V2,... (e.g. inertia=0.1,0.2)")
        keys.append(key)
        values.append([smart_value(v) for v in vals.split(",")])  # typed as the tracker YAML would hold them
    return [dict(zip(keys, combo)) for combo in itertools.product(*values)]


def repairs(boxes: list[Boxes], gt: pd.DataFrame, n: int) -> dict[str, list[Boxes]]:
    """Four repairs of a video's detections (one Boxes per frame 1..n), each removing one more defect of the detector:
    the boxes that match no visible head (IoU > 0.3, one to one) dropped; the matched boxes replaced by their heads'
    true boxes, scores kept; those scored 0.9 as `gt_detections` scores them; and every visible head's true box (the
    heads the detector missed added). The last two are counted at ORACLE_CONF, the first two at the model's."""
    seen = gt[gt["vis"] > 0]
    data = np.concatenate([b.data for b in boxes])
    frame = np.repeat(np.arange(1, n + 1), [len(b) for b in boxes])
    dets = pd.DataFrame(data[:, :4], columns=BOX).assign(frame=frame, id=np.arange(len(data)))
    head = match_by_frame(dets, seen, 0.3)
    hit = head >= 0
    true = seen.set_index(["id", "frame"]).loc[list(zip(head[hit], frame[hit])), BOX].to_numpy()
    shape = boxes[0].orig_shape

    def per_frame(xyxy: np.ndarray, conf: np.ndarray) -> list[Boxes]:
        rows = np.column_stack([xyxy, conf, np.zeros(len(conf))]).astype(np.float32)
        return [Boxes(rows[r], shape) for r in rows_by_frame(pd.DataFrame({"frame": frame[hit]}), n)]

    return {
        "no false boxes": per_frame(data[hit, :4], data[hit, 4]),
        "true boxes, model scores": per_frame(true, data[hit, 4]),
        "true boxes of found heads": per_frame(true, np.full(len(true), 0.9)),
        "true boxes": gt_detections(gt, n, shape),
    }


def detector(opt: argparse.Namespace) -> tuple[CountingPredictor, float]:
    """The counting predictor of --weights, keeping detections down to ByteTrack's low threshold so that swept
    thresholds and `use_byte` find theirs, and its count threshold."""
    imgsz = opt.imgsz or read_train_args(opt.weights).get("imgsz", 640)
    overrides = {"model": opt.weights, "imgsz": imgsz, "iou": opt.iou, "conf": opt.conf, "verbose": False}
    predictor = CountingPredictor(overrides=overrides)
    low = Path(tempfile.mkdtemp(prefix="track_sweep")) / "low.yaml"
    _, predictor.args.conf = fit_thresholds(find_tracker("bytetrack.yaml"), predictor.count_conf, low)
    return predictor, predictor.count_conf


def main(opt: argparse.Namespace):
    """Detect each video once, track it under every setting, score; print the per-setting means and save all rows."""
    predictor, count_conf = (None, ORACLE_CONF) if opt.oracle else detector(opt)
    dest = Path(tempfile.mkdtemp(prefix="track_sweep"))
    fitted = {
        c: YAML.load(fit_thresholds(find_tracker(opt.tracker), c, dest / f"{c}.yaml")[0])
        for c in {count_conf, ORACLE_CONF}
    }
    unknown = {k for s in settings(opt.set) for k in s} - fitted[count_conf].keys() - set(TRACKER_KEYS)
    if unknown:
        sys.exit(f"--set: {', '.join(sorted(unknown))} is not a key of {opt.tracker}")
    rows = []
    for video in opt.videos:
        people, seed = (int(x) for x in video.split(":"))
        seq = ensure_crowd_video(people, opt.frames, opt.size, seed=seed, root=CACHE_DIR / "track_bench")
        frames_dir, n = sequence_frames(seq)
        gt = gt_heads(read_mot(seq / "gt" / "gt.txt"))
        frames = gt_detections(gt, n, (opt.size, opt.size)) if opt.oracle else detections(predictor, frames_dir)
        sources = {"true boxes" if opt.oracle else "model": frames} | (repairs(frames, gt, n) if opt.repairs else {})
        lines = lines_for(opt.size)
        truth = true_crossings(gt, n, lines)
        for (source, boxes), setting in itertools.product(sources.items(), settings(opt.set)):
            conf = ORACLE_CONF if source in TRUE_SCORES else count_conf
            found = tracks(IterableSimpleNamespace(**{**fitted[conf], **setting}), boxes)
            person = match_by_frame(found, gt[gt["vis"] > 0], 0.3)  # whom each tracked box follows, whatever the rules
            for m, k in itertools.product(opt.track_conf_margins, opt.cross_frames):
                score = score_sequence(gt, found, n, lines, 5, min_track_conf=conf + m, cross_frames=k)
                rules = {"min_frames": 5, "min_conf": conf + m, "settle": k}
                per, errors = crossings_by_person(truth, found, person, n, lines, rules)
                score |= {
                    "missed": errors["missed"],
                    "extra": errors["extra"],
                    "no_one": int((per.role == "no one").sum()),
                }
                name = str(setting or "fitted") + ("" if m == TRACK_CONF_MARGIN else f", margin {m:g}")
                name += "" if k == CROSS_FRAMES else f", cross frames {k}"
                rows.append({"video": seq.name, "detections": source, "setting": name, **score})
                print({k: rows[-1][k] for k in ("video", "detections", "setting", *SHOWN)}, flush=True)
    table = pd.DataFrame(rows)
    Path(opt.out).parent.mkdir(parents=True, exist_ok=True)
    table.to_csv(opt.out, index=False, float_format="%.4g")
    table["abs_unique_err"], table["abs_crossings_err"] = table.unique_err.abs(), table.crossings_err.abs()
    table["missed_extra"] = (table.missed + table.extra) / table.crossings_gt  # crossing by crossing: none cancel
    cols = ["HOTA", "IDF1", "abs_unique_err", "abs_crossings_err", "missed_extra", "no_one"]
    mean = table.groupby(["detections", "setting"], sort=False)[cols].mean()
    print(machine_header(torch.device("cpu")), f"load {load()}")
    cols = ["detections", "setting", *mean.columns]
    print(markdown_table(cols, [[*k, *(f"{v:.3f}" for v in r)] for k, r in mean.iterrows()]))


if __name__ == "__main__":
    main(parse_opt())
