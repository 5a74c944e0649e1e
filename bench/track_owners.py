"""Diagnosis: whom each counted track follows, on generated crowd videos (issue 17).

A unique-head count can be right while tracks are wrong, and wrong while detection is good. This matches the
tracker's boxes to the true heads frame by frame (one to one, IoU above --min-iou, Ultralytics' lapjv) and reports,
per video, the tracks detect.py counts (its rules: `--min-track-frames` 5, mean score at least the count threshold +
0.2): a person's first track, a second track of someone, or a track that follows no one person for most of its
frames (with its length, matched share and number of people it passes through); and the people (visible in 5 frames
or more) that own no counted track, with the share of their frames in which a detection at the count threshold finds
them (IoU > 0.5), and the detection recall of all true heads by how much of each is in view (visibility bins
VIS_BINS). Crossings of bench/track.py's two lines, matched one by one as they happen: a crossing a counted
track makes matches a true crossing of the same line and direction at most 12 frames away (a track counts a crossing
once it has settled on the new side, or been lost there, for `--cross-frames` updates) by a person the track followed
within those 12 frames; true crossings left are missed, found ones left extra (made by a track on no one, or across a
line its person did not cross: a hand-over, a box jumping between neighbours). Unlike the net crossing error, misses
and extras do not cancel out. Each missed crossing is put down to its person being followed by no track on a side of
the line (unseen), by different tracks on the two sides (broken), or by one track across it (kept; `missed_kinds`).
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
from bench.track import HELD_OUT, ORACLE_CONF, gt_detections, lines_for, tracks  # noqa: E402
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
VIS_BINS = [0, 0.25, 0.5, 0.75, 1]  # visibility bins of the detection recall: how much of a head is in view


def parse_opt() -> argparse.Namespace:
    """Diagnosis flags."""
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--weights", help="a trained checkpoint (required unless --oracle)")
    p.add_argument("--oracle", action="store_true", help="track the ground-truth boxes instead of a model's detections")
    p.add_argument("--videos", nargs="+", default=list(HELD_OUT), metavar="PEOPLE:SEED", help="generated videos")
    p.add_argument("--tracker", default="ocsort.yaml", help="Ultralytics tracker YAML, fitted as detect.py fits it")
    p.add_argument("--frames", type=int, default=150, help="frames per video")
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
    by_vis = found_by_det.groupby(pd.cut(gt["vis"], VIS_BINS), observed=False)["hit"].mean()
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
        **{f"recall_vis{round(100 * b.right)}": r for b, r in by_vis.items()},
    }


def crossing_events(
    df: pd.DataFrame, frames: int, lines: list[np.ndarray], **rules
) -> tuple[TrackCounter, pd.DataFrame]:
    """Run a `TrackCounter` (with `rules`) over MOT rows, closed at the end as detect.py closes a video.

    Returns:
        (tuple): The counter, and its crossings as events (frame, line, id, dir): the frame each was counted in (the
            last one for those `end()` adds), the line, the track (or person) ID and the direction (0 in, 1 out).
    """
    counter, parts = TrackCounter(lines=lines, **rules), []
    seen = np.zeros_like(counter._crossed)

    def new(frame: int):
        nonlocal seen
        now = counter._crossed
        seen = np.pad(seen, [(0, 0), (0, now.shape[1] - seen.shape[1]), (0, 0)])
        li, ids, di = np.nonzero(now - seen)
        parts.append(np.column_stack([np.full(len(li), frame), li, ids, di]).repeat((now - seen)[li, ids, di], 0))
        seen = now.copy()

    for frame, rows in enumerate(rows_by_frame(df, frames), 1):
        counter.update(df["id"].to_numpy()[rows], df[BOX].to_numpy()[rows], df["conf"].to_numpy()[rows])
        new(frame)
    counter.end()
    new(frames)
    return counter, pd.DataFrame(np.concatenate(parts), columns=["frame", "line", "id", "dir"])


def crossing_errors(
    truth: pd.DataFrame, found: pd.DataFrame, followed: pd.DataFrame, window: int = 2 * CROSS_FRAMES + 2
) -> dict:
    """Crossings matched one to one as they happen (see the module docstring).

    A found crossing may match a true one of the same line and direction at most `window` frames away when its track
    followed that person at some frame within `window` of the true crossing (a single frame's match is brittle where
    heads overlap). Of such pairs, those whose track followed the person in the larger share of its matched frames in
    that window go first, then the nearer in time (the cost is the mean of the other people's share and the time gap
    over `window` + 1): a track that brushed a neighbour crossing beside its own person is credited with its own
    person's crossing, and the neighbour's crossing is the one missed.

    Args:
        truth (pd.DataFrame): The people's crossing events (`crossing_events` over the true paths, settle 1).
        found (pd.DataFrame): The counted tracks' crossing events.
        followed (pd.DataFrame): Rows (frame, id, person) of the tracks' boxes matched to a person.
        window (int): Frames a found crossing may lie from the true one: its track settles on the new side first.

    Returns:
        (dict): True crossings, found, missed (true ones no track following that person made), extra (found ones
            matching no true crossing), and of those, extra_no_one: made by a track that followed no one in the
            `window` frames up to it.
    """
    truth, found = truth.reset_index(drop=True), found.reset_index(drop=True)
    pairs = truth.reset_index().merge(found.reset_index(), on=["line", "dir"], suffixes=("_t", "_f"))
    pairs = pairs[(pairs["frame_f"] - pairs["frame_t"]).abs() <= window].rename(
        columns={"id_f": "id", "id_t": "person"}
    )
    near = pairs.merge(followed, on="id", suffixes=("", "_seen"))  # whom the track followed around the true crossing
    near = near[(near["frame"] - near["frame_t"]).abs() <= window]
    share = (near["person_seen"] == near["person"]).groupby([near["index_t"], near["index_f"]]).mean()
    share = share[share > 0]
    i, j = (share.index.get_level_values(k).to_numpy() for k in (0, 1))
    dt = (pairs.set_index(["index_t", "index_f"]).loc[share.index, "frame_f"] - truth["frame"].to_numpy()[i]).abs()
    cost = (1 - share.to_numpy() + dt.to_numpy() / (window + 1)) / 2
    _, matched, missed, extra = assign((len(truth), len(found)), (i, j, cost), 1.0)
    on_someone = (
        pd.merge_asof(  # the last frame each crossing's track followed anyone, up to `window` before
            found.assign(k=np.arange(len(found))).sort_values("frame", kind="stable"),
            followed.sort_values("frame", kind="stable"),
            on="frame",
            by="id",
            direction="backward",
            tolerance=window,
        )
        .sort_values("k")["person"]
        .notna()
        .to_numpy()
    )
    return {
        "crossings": len(truth),
        "found": len(found),
        "missed": len(truth) - len(matched),
        **missed_kinds(truth.iloc[missed], followed, window),
        "extra": len(extra),
        "extra_no_one": int((~on_someone[extra]).sum()),
    }


def missed_kinds(missed: pd.DataFrame, followed: pd.DataFrame, window: int) -> dict:
    """Why true crossings were missed, from the tracks that followed each person in the `window` frames before the
    crossing frame and from it on.

    Args:
        missed (pd.DataFrame): The missed true crossings (`crossing_events` rows; id is the person).
        followed (pd.DataFrame): Rows (frame, id, person) of the tracks' boxes matched to a person.
        window (int): Frames looked at on each side.

    Returns:
        (dict): missed_unseen (no track followed the person on one side or both: undetected, e.g. occluded, as they
            crossed), missed_broken (followed on both sides, by different tracks: the track broke at the line) and
            missed_kept (one track followed them across, but counted no such crossing: too short, too low a score,
            or back on the first side after a hand-over).
    """
    near = missed.reset_index().rename(columns={"id": "person"}).merge(followed, on="person", suffixes=("_t", ""))
    near = near[(near["frame"] - near["frame_t"]).abs() <= window].assign(after=lambda d: d["frame"] >= d["frame_t"])
    sides = near.groupby(["index", "id"])["after"].agg(["min", "max"])  # per track: seen before (min 0), after (max 1)
    track_both = (~sides["min"] & sides["max"]).groupby(level="index").any()
    both = sides.groupby(level="index").agg(before=("min", lambda b: (~b).any()), after=("max", "any"))
    seen = (both["before"] & both["after"]).reindex(missed.index, fill_value=False)
    kept = track_both.reindex(missed.index, fill_value=False)
    return {
        "missed_unseen": int((~seen).sum()),
        "missed_broken": int((seen & ~kept).sum()),
        "missed_kept": int(kept.sum()),
    }


def true_crossings(gt: pd.DataFrame, frames: int, lines: list[np.ndarray]) -> pd.DataFrame:
    """The crossing events of the true paths (gt_heads rows, visible or not, every change of side), as bench/track.py
    counts the truth."""
    return crossing_events(gt.assign(conf=1.0), frames, lines)[1]


def crossings_by_person(
    truth: pd.DataFrame, found: pd.DataFrame, person: np.ndarray, frames: int, lines: list[np.ndarray], rules: dict
) -> tuple[pd.DataFrame, dict]:
    """Count the tracks `found` under detect.py's `rules` (TrackCounter's keywords) against the `true_crossings`;
    `person` is the head each row of `found` sits on (`match_by_frame`, -1 for none). Returns the counted tracks'
    owners (`owners`) and `crossing_errors`."""
    counter, events = crossing_events(found, frames, lines, **rules)
    followed = found[["frame", "id"]].assign(person=person)[person >= 0]
    per = owners(found, person, counter.counted_ids)
    return per, crossing_errors(truth, events[counter._counted[events["id"].to_numpy()]], followed)


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
        seq = ensure_crowd_video(people, opt.frames, 640, seed=seed, root=CACHE_DIR / "track_bench")
        frames_dir, n = sequence_frames(seq)
        gt = gt_heads(read_mot(seq / "gt" / "gt.txt"))
        boxes = gt_detections(gt, n, (640, 640)) if opt.oracle else detections(predictor, frames_dir)
        found = tracks(cfg, boxes)
        person = match_by_frame(found, gt[gt["vis"] > 0], opt.min_iou)
        per, crossings = crossings_by_person(true_crossings(gt, n, lines), found, person, n, lines, rules)
        dets = pd.concat(
            [pd.DataFrame(b.xyxy[b.conf >= conf], columns=BOX).assign(frame=k) for k, b in enumerate(boxes, 1)]
        )
        rows.append({"video": seq.name, **diagnose(gt[gt["vis"] > 0], dets, per), **crossings})
        print(rows[-1], flush=True)
    Path(opt.out).parent.mkdir(parents=True, exist_ok=True)
    pd.DataFrame(rows).to_csv(opt.out, index=False, float_format="%.4g")
    cols = list(rows[0])
    print(markdown_table(cols, [[f"{r[c]:.3g}" if isinstance(r[c], float) else str(r[c]) for c in cols] for r in rows]))


if __name__ == "__main__":
    main(parse_opt())
