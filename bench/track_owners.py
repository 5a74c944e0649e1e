"""Diagnosis: whom each counted track follows, on generated crowd videos (issue 17).

A unique-head count can be right while tracks are wrong, and wrong while detection is good. This matches the
tracker's boxes to the true heads frame by frame (one to one, IoU above --min-iou, Ultralytics' lapjv) and reports,
per video, the tracks detect.py counts (its rules: `--min-track-frames` 5, mean score at least the count threshold +
0.15): a person's first track, a second track of someone, or a track that follows no one person for most of its
frames (with its length, matched share and number of people it passes through); and the people (visible in 5 frames
or more) that own no counted track, with the share of their frames in which a detection at the count threshold finds
them (IoU > 0.5). Crossings of bench/track.py's two lines: each person's true crossings (line, direction) against
those made by the counted tracks that person owns; a true crossing no owned track makes is missed, and then split by
why: the person owns no counted track, one (it never settled on the new side), or several (a break or a hand-over
near the line); a crossing made by a track of no one, or one its owner did not make, is extra.
`--oracle` tracks the ground-truth boxes instead of a model's detections.

Usage:
    python bench/track_owners.py --weights runs/train/video_ft/weights/best.pt --videos 420:23
    python bench/track_owners.py --oracle --videos 80:21 420:23
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path

import numpy as np
import pandas as pd

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # run as a script from anywhere

from ultralytics.utils import YAML, IterableSimpleNamespace  # noqa: E402

from bench.common import markdown_table  # noqa: E402
from bench.track import ORACLE_CONF, gt_detections, lines_for, tracks  # noqa: E402
from bench.track_sweep import HELD_OUT  # noqa: E402
from bench.tracker_speed import detections  # noqa: E402
from data.synthetic_video import ensure_crowd_video  # noqa: E402
from utils import CACHE_DIR, COUNT_IOU, ROOT  # noqa: E402
from utils.array_tracker import assign  # noqa: E402
from utils.box_pairs import overlapping_pairs  # noqa: E402
from utils.checkpoint import read_train_args  # noqa: E402
from utils.mot import read_mot, rows_by_frame  # noqa: E402
from utils.predictor import CountingPredictor  # noqa: E402
from utils.track_counting import TrackCounter  # noqa: E402
from utils.track_eval import sequence_frames  # noqa: E402
from utils.track_metrics import gt_heads  # noqa: E402
from utils.tracking import CROSS_FRAMES, TRACK_CONF_MARGIN, find_tracker, fit_thresholds  # noqa: E402

BOX = ["x1", "y1", "x2", "y2"]


def parse_opt() -> argparse.Namespace:
    """Diagnosis flags."""
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--weights", help="a trained checkpoint (required unless --oracle)")
    p.add_argument("--oracle", action="store_true", help="track the ground-truth boxes instead of a model's detections")
    p.add_argument("--videos", nargs="+", default=list(HELD_OUT), metavar="PEOPLE:SEED", help="generated videos")
    p.add_argument("--tracker", default="ocsort.yaml", help="Ultralytics tracker YAML, fitted as detect.py fits it")
    p.add_argument("--min-iou", type=float, default=0.3, help="IoU a tracked box needs to follow a head")
    p.add_argument("--out", default=str(ROOT / "bench" / "results" / "track_owners.csv"))
    opt = p.parse_args()
    if not (opt.weights or opt.oracle):
        p.error("--weights is required (or --oracle)")
    return opt


def match_by_frame(a: pd.DataFrame, b: pd.DataFrame, min_iou: float) -> np.ndarray:
    """For each row of `a`, the id of the row of `b` in the same frame it is matched to (one to one, highest total
    IoU, IoU > min_iou), or -1."""
    out = np.full(len(a), -1, np.int64)
    b_rows = b.groupby("frame").indices
    for frame, rows in a.groupby("frame").indices.items():
        other = b_rows.get(frame, np.zeros(0, np.int64))
        i, j, iou = overlapping_pairs(a[BOX].to_numpy()[rows], b[BOX].to_numpy()[other])
        r, c, _, _ = assign((len(rows), len(other)), (i, j, 1 - iou), 1 - min_iou)
        out[rows[r]] = b["id"].to_numpy()[other[c]]
    return out


def owners(found: pd.DataFrame, owner: np.ndarray, counted: np.ndarray) -> pd.DataFrame:
    """Per counted track: its frames, first frame, matched share, people passed through, and its owner (the person
    matched in more than half its frames, else -1) and role (first / second track of the owner, or 'no one')."""
    df = found.assign(owner=owner)
    df = df[df["id"].isin(counted)]
    per = df.groupby("id").agg(frames=("frame", "size"), start=("frame", "min"))
    matched = df[df["owner"] >= 0]
    per["matched"] = matched.groupby("id").size().reindex(per.index, fill_value=0) / per["frames"]
    per["people"] = matched.groupby("id")["owner"].nunique().reindex(per.index, fill_value=0)
    top = matched.groupby(["id", "owner"]).size().reset_index(name="n").sort_values("n", kind="stable")
    top = top.drop_duplicates("id", keep="last").set_index("id").reindex(per.index)
    per["owner"] = np.where(top["n"].fillna(0) > per["frames"] / 2, top["owner"].fillna(-1), -1).astype(np.int64)
    per = per.sort_values(["start", "id"])
    first = ~per["owner"].duplicated() & (per["owner"] >= 0)
    per["role"] = np.where(per["owner"] < 0, "no one", np.where(first, "first", "second"))
    return per


def diagnose(gt: pd.DataFrame, dets: pd.DataFrame, per: pd.DataFrame) -> dict:
    """One video's summary row (see the module docstring): gt visible rows and detections as read_mot columns, the
    counted tracks' owners (`owners`)."""
    seen = gt.groupby("id").size()
    people = seen.index[seen >= 5]
    alone = people.difference(per["owner"][per["owner"] >= 0])
    found_by_det = gt.assign(hit=match_by_frame(gt, dets.assign(id=np.arange(len(dets))), 0.5) >= 0)
    recall = found_by_det.groupby("id")["hit"].mean()
    no_one = per[per["role"] == "no one"]
    return {
        "people": len(people),
        "counted": len(per),
        "first": int((per["role"] == "first").sum()),
        "second": int((per["role"] == "second").sum()),
        "no_one": len(no_one),
        "no_one_frames": no_one["frames"].median(),
        "no_one_matched": no_one["matched"].median(),
        "no_one_people": no_one["people"].median(),
        "people_without_track": len(alone),
        "their_detection_recall": recall.reindex(alone).median(),
    }


def crossing_errors(truth: TrackCounter, found: TrackCounter, per: pd.DataFrame) -> dict:
    """Missed and extra crossings by person (see the module docstring): `truth` counted the people's paths, `found`
    the tracks (its counted ones, owners and roles in `per`, `owners`' table)."""
    owner = np.full(found._crossed.shape[1], -1)
    owner[per.index.to_numpy()] = per["owner"].to_numpy()
    li, ti, di = np.nonzero(found._crossed * found._counted[None, :, None])
    n = found._crossed[li, ti, di]
    made = pd.DataFrame({"line": li, "id": owner[ti], "dir": di, "n": n}).groupby(["line", "id", "dir"])["n"].sum()
    li, pi, di = np.nonzero(truth._crossed)
    true = pd.Series(truth._crossed[li, pi, di], pd.MultiIndex.from_arrays([li, pi, di], names=["line", "id", "dir"]))
    diff = true.sub(made.reindex(true.index.union(made.index), fill_value=0), fill_value=0)
    missed = diff.clip(lower=0)
    tracks = per[per["owner"] >= 0].groupby("owner").size()
    owned = tracks.reindex(missed.index.get_level_values("id"), fill_value=0).to_numpy()
    return {
        "crossings": int(true.sum()),
        "missed": int(missed.sum()),
        "missed_no_track": int(missed[owned == 0].sum()),
        "missed_one_track": int(missed[owned == 1].sum()),
        "missed_several": int(missed[owned > 1].sum()),
        "extra": int((-diff).clip(lower=0).sum()),
    }


def counter_over(df: pd.DataFrame, frames: int, lines: list[np.ndarray], **rules) -> TrackCounter:
    """A `TrackCounter` (with `rules`) run over MOT rows, closed at the end as detect.py closes a video."""
    counter = TrackCounter(lines=lines, **rules)
    for rows in rows_by_frame(df, frames):
        counter.update(df["id"].to_numpy()[rows], df[BOX].to_numpy()[rows], df["conf"].to_numpy()[rows])
    counter.end()
    return counter


def main(opt: argparse.Namespace):
    """Detect (or take the true boxes) and track each video (detect.py's fitted tracker and rules), diagnose, print
    and save the rows."""
    dest = Path(tempfile.mkdtemp(prefix="track_owners"))
    predictor, conf = None, ORACLE_CONF
    if not opt.oracle:
        imgsz = read_train_args(opt.weights).get("imgsz", 640)
        overrides = {"model": opt.weights, "imgsz": imgsz, "iou": COUNT_IOU, "verbose": False}
        predictor = CountingPredictor(overrides=overrides)
        conf = predictor.count_conf
        # detections down to ByteTrack's low threshold, as bench/track_sweep.py keeps them: the same tracks
        _, predictor.args.conf = fit_thresholds(find_tracker("bytetrack.yaml"), conf, dest / "low.yaml")
    cfg = IterableSimpleNamespace(**YAML.load(fit_thresholds(find_tracker(opt.tracker), conf, dest / "t.yaml")[0]))
    lines, rules = lines_for(640), {"min_frames": 5, "min_conf": conf + TRACK_CONF_MARGIN, "settle": CROSS_FRAMES}
    rows = []
    for video in opt.videos:
        people, seed = (int(x) for x in video.split(":"))
        seq = ensure_crowd_video(people, 150, 640, seed=seed, root=CACHE_DIR / "track_bench")
        frames_dir, n = sequence_frames(seq)
        gt = gt_heads(read_mot(seq / "gt" / "gt.txt"))
        boxes = gt_detections(gt, n, (640, 640)) if opt.oracle else detections(predictor, frames_dir)
        found = tracks(cfg, boxes)
        counter = counter_over(found, n, lines, **rules)
        dets = pd.concat(
            [pd.DataFrame(b.xyxy[b.conf >= conf], columns=BOX).assign(frame=k) for k, b in enumerate(boxes, 1)]
        )
        visible = gt[gt["vis"] > 0]
        per = owners(found, match_by_frame(found, visible, opt.min_iou), counter.counted_ids)
        truth = counter_over(gt.assign(conf=1.0), n, lines)  # the paths, visible or not, as bench/track.py scores
        rows.append({"video": seq.name, **diagnose(visible, dets, per), **crossing_errors(truth, counter, per)})
        print(rows[-1], flush=True)
    Path(opt.out).parent.mkdir(parents=True, exist_ok=True)
    pd.DataFrame(rows).to_csv(opt.out, index=False, float_format="%.4g")
    cols = list(rows[0])
    print(markdown_table(cols, [[f"{r[c]:.3g}" if isinstance(r[c], float) else str(r[c]) for c in cols] for r in rows]))


if __name__ == "__main__":
    main(parse_opt())
