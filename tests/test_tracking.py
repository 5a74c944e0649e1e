"""detect.py --track and val.py --task track end to end with our anchor-free model class, and the tracking API.

The model is untrained (test_detect's trick: BatchNorm statistics from random images) and finds "heads" in patches of
colour noise, so the video here is such patches moving down across a counting line. Accuracy is not the point;
every track figure detect.py reports is checked against an independent recount of the tracks it saved.
"""

from __future__ import annotations

import json
import logging
from pathlib import Path

import cv2
import numpy as np
import torch
import pandas as pd
import pytest
from ultralytics.utils import LOGGER

from test_detect import IMGSZ, make_checkpoint, read_counts, run_detect, write_mp4
from utils import ROOT
from utils.track_counting import TrackCounter

W, H, FRAMES = 160, 128, 12
LINE, ZONE = "0,64,160,64", "0,0,90,0,90,128,0,128"  # the zone edge off the patches' centre column x = 80


def moving_patches(frames: int = FRAMES, k: int = 5, step: int = 4, seed: int = 0) -> list[np.ndarray]:
    """Frames with k fixed patches of colour noise moving down by `step` px per frame (see `patch_boxes`)."""
    patches = np.random.default_rng(seed).integers(0, 255, (k, 24, 24, 3), dtype=np.uint8)
    out = []
    for boxes in patch_boxes(frames, k, step):
        im = np.full((H, W, 3), 40, np.uint8)
        for p, (x, y, _, _) in zip(patches, boxes):
            im[y : y + 24, x : x + 24] = p
        out.append(im)
    return out


def patch_boxes(frames: int = FRAMES, k: int = 5, step: int = 4) -> np.ndarray:
    """The patches' boxes (frames, k, 4) xyxy: evenly spread columns, moving down until they reach the bottom."""
    x0, y0 = np.linspace(4, W - 28, k).astype(int), np.linspace(4, 40, k).astype(int)
    y = np.minimum(y0 + step * np.arange(frames)[:, None], H - 24)
    x = np.broadcast_to(x0, y.shape)
    return np.stack([x, y, x + 24, y + 24], -1)


@pytest.fixture(scope="module")
def weights(tmp_path_factory) -> Path:
    """Our anchor-free model class with a count threshold."""
    return make_checkpoint(tmp_path_factory.mktemp("w") / "best.pt", 0.3, str(ROOT / "models" / "yolov5nu-mfl.yaml"))


@pytest.fixture(scope="module")
def runs(weights, tmp_path_factory):
    """The same mp4 through detect.py with and without --track (labels saved); ByteTrack, whose second stage makes
    detect.py lower NMS's threshold (the default OC-SORT has none)."""
    root = tmp_path_factory.mktemp("track")
    # patches the untrained model tracks across the line: with seed 0 its overlapping boxes keep new tracks from
    # starting (new_track_max_iou) and nothing crosses
    video = write_mp4(root / "walk.mp4", moving_patches(seed=1), fps=10)
    common = (
        "--weights",
        str(weights),
        "--source",
        str(video),
        "--save-txt",
        "--save-conf",
        "--project",
        str(root / "runs"),
    )
    plain = run_detect(*common, "--name", "plain")
    tracked = run_detect(
        *common,
        "--name",
        "track",
        "--track",
        "--tracker",
        "bytetrack.yaml",
        "--line",
        LINE,
        "--zone",
        ZONE,
        "--min-track-frames",
        "2",
        "--min-track-conf",  # the untrained model's scores: at this bar one patch is still settling past the line
        "0.45",
    )
    assert plain.returncode == 0 and tracked.returncode == 0, plain.stderr + tracked.stderr
    return root / "runs" / "plain", root / "runs" / "track", tracked


def _tracked_labels(run: Path) -> list[tuple[np.ndarray, np.ndarray, np.ndarray]]:
    """Per frame: (ids, xyxy pixels, scores) from the YOLO labels Ultralytics saves for tracks (cls x y w h conf id)."""
    out = []
    for f in range(1, FRAMES + 1):
        file = run / "labels" / f"walk_{f}.txt"
        rows = np.loadtxt(file, ndmin=2) if file.exists() else np.zeros((0, 7))
        xywh = rows[:, 1:5] * [W, H, W, H]
        xyxy = np.concatenate([xywh[:, :2] - xywh[:, 2:] / 2, xywh[:, :2] + xywh[:, 2:] / 2], 1)
        out.append((rows[:, 6].astype(int), xyxy, rows[:, 5]))
    return out


def test_tracking_keeps_the_per_frame_counts(runs):
    """Tracking lowers NMS's threshold for the tracker's second stage; the count column must not change."""
    plain, track, _ = runs
    a, b = read_counts(plain), read_counts(track)
    assert [r["count"] for r in a] == [r["count"] for r in b] and len(b) == FRAMES
    assert sum(int(r["count"]) for r in a) > 0, "the fixture model must find something for this test to mean anything"


def test_track_columns_and_summary_match_a_recount_of_the_saved_tracks(runs):
    """counts.csv's tracked/unique/line/zone columns, frame by frame, equal TrackCounter run on the saved labels with
    the rules (mean score >= --min-track-conf 0.45, the default 5 frames past a line); summary.json's totals equal
    the recount closed by `TrackCounter.end`: the last row's, plus the patch that crossed the line in the last frames
    (still settling when the video ended); the video keeps every frame."""
    _, track, proc = runs
    rows = pd.read_csv(track / "counts.csv")
    assert list(rows.columns[-5:]) == ["tracked", "unique", "line1_in", "line1_out", "zone1"]
    summary = json.loads((track / "summary.json").read_text())
    (video_summary,) = summary.values()
    assert (video_summary["min_track_conf"], video_summary["cross_frames"]) == (0.45, 5)
    line, zone = np.array([[0, 64], [160, 64.0]]), np.array([[0, 0], [90, 0], [90, 128], [0, 128.0]])
    tc = TrackCounter([line], [zone], 2, min_conf=0.45, settle=5)
    for (ids, xyxy, conf), (_, row) in zip(_tracked_labels(track), rows.iterrows()):
        f = tc.update(ids, xyxy, conf)
        assert (f.tracked, f.unique, *f.crossings[0], f.occupancy[0]) == tuple(row.iloc[-5:]), row.to_dict()
    assert rows["line1_in"].iloc[-1] > 0, "patches moving down must cross the line for this test to mean anything"
    assert video_summary["unique_heads"] == rows["unique"].iloc[-1] == tc.unique
    tc.end()
    assert video_summary["lines"][0]["in"] == tc.crossings[0, 0] == rows["line1_in"].iloc[-1] + 1
    assert video_summary["zones"][0]["occupancy_now"] == rows["zone1"].iloc[-1]
    assert (
        f"unique heads (tracks of >= 2 frames, mean score >= 0.45), line1 in {tc.crossings[0, 0]}"
        in proc.stdout + proc.stderr
    )
    cap = cv2.VideoCapture(str(track / "walk.mp4"))
    assert int(cap.get(cv2.CAP_PROP_FRAME_COUNT)) == FRAMES


def test_line_outside_the_frame_fails_that_source_only(weights, tmp_path):
    """A line beyond a 160x128 video is one error naming the video; a larger video in the same run is tracked."""
    small = write_mp4(tmp_path / "small.mp4", moving_patches(4), fps=10)
    big = write_mp4(tmp_path / "big.mp4", [cv2.resize(f, (320, 256)) for f in moving_patches(4)], fps=10)
    proc = run_detect(
        "--weights",
        str(weights),
        "--source",
        str(small),
        str(big),
        "--track",
        "--line",
        "0,200,300,200",
        "--project",
        str(tmp_path / "runs"),
    )
    out = proc.stdout + proc.stderr
    assert proc.returncode == 1
    assert f"{small}: --line 1: point (0, 200) lies outside the 160x128 frame" in out
    rows = pd.read_csv(tmp_path / "runs" / "exp" / "counts.csv")
    assert set(rows["source"]) == {str(big)} and len(rows) == 4


def test_line_without_track_is_refused():
    """--line counts tracks: without --track it is a usage error."""
    proc = run_detect("--weights", "x.pt", "--source", "x.jpg", "--line", LINE)
    assert proc.returncode == 2 and "--line and --zone count tracks: add --track" in proc.stderr


def test_api_tracks_a_stream_of_frames(weights, runs):
    """HeadCounter(track=...) called frame by frame gives the same tracks and totals as detect.py on the video."""
    from utils.api import HeadCounter

    _, track, _ = runs
    counter = HeadCounter(
        weights,
        imgsz=int(IMGSZ),
        device="cpu",
        track="bytetrack.yaml",
        lines=[[[0, 64], [160, 64]]],
        zones=[[[0, 0], [90, 0], [90, 128], [0, 128]]],
        min_track_frames=2,
        min_track_conf=0.45,  # as the detect.py run
        fps=10,
    )
    cap = cv2.VideoCapture(str(track.parent.parent / "walk.mp4"))
    rows = pd.read_csv(track / "counts.csv")
    for k in range(FRAMES):
        ok, frame = cap.read()
        r = counter(frame)
        assert (r.count, len(r.ids), r.tracks.unique) == tuple(rows[["count", "tracked", "unique"]].iloc[k])
    assert counter.summary()["lines"][0]["in"] == rows["line1_in"].iloc[-1]
    assert counter.summary()["zones"][0]["dwell_s_max"] > 0.1  # seconds at 10 fps


def test_api_tracks_with_ocsort_fitted_and_on_arrays(weights):
    """OC-SORT by name on our checkpoint: its YAML fitted to the stored count threshold (0.3) with our rules on, NMS
    kept at that threshold (the YAML has no low-score stage), the array twin running, patches moving one way tracked,
    and tracks counted from a mean score of 0.5 (the default margin)."""
    from ultralytics.utils import YAML

    from utils.api import HeadCounter
    from utils.array_tracker import ArrayOCSORT

    counter = HeadCounter(weights, imgsz=int(IMGSZ), device="cpu", track="ocsort.yaml")
    ids = [counter(frame).ids for frame in moving_patches()]
    cfg = YAML.load(counter.predictor.args.tracker)
    assert (cfg["tracker_type"], cfg["track_high_thresh"], cfg["fuse_score"]) == ("ocsort", 0.3, False)
    assert counter.predictor.args.conf == pytest.approx(0.3)
    assert type(counter.predictor.trackers[0]) is ArrayOCSORT
    assert sum(map(len, ids)) > 0
    assert cfg["drop_exited"] is True and cfg["keep_occluded"] is True  # our rules, on by default
    assert cfg["reentry_growth"] == 0.1
    assert cfg["relink_dist"] is None  # written out, off, for a user to set
    assert counter.summary()["min_track_conf"] == 0.5  # the count threshold 0.3 + the default margin 0.2


def test_line_band_and_cross_frames_reach_the_counters(weights):
    """HeadCounter(line_band=..., cross_frames=...) (detect.py and val.py --line-band, --cross-frames) gives every
    sequence's counter that band and settle; out-of-range values are one error naming the flag."""
    from utils.api import HeadCounter

    counter = HeadCounter(weights, imgsz=int(IMGSZ), device="cpu", track="bytetrack.yaml", lines=[[[0, 64], [160, 64]]],
                          line_band=0.5, cross_frames=3)  # fmt: skip
    counter(moving_patches()[0])
    assert [(tc.band, tc.settle) for tc in counter.predictor.tracking.counters.values()] == [(0.5, 3)]
    with pytest.raises(ValueError, match="--line-band must be >= 0, got -1"):
        HeadCounter(weights, device="cpu", track="bytetrack.yaml", line_band=-1)
    with pytest.raises(ValueError, match="--cross-frames must be >= 1, got 0"):
        HeadCounter(weights, device="cpu", track="bytetrack.yaml", cross_frames=0)


def test_frame_without_confirmed_tracks_draws_and_saves_no_boxes():
    """Ultralytics leaves a frame's raw detections when no track is confirmed (a crowd appearing starts unconfirmed
    tracks): that frame keeps its count but shows and saves no box, as every tracked frame shows only its tracks."""
    from utils.predictor import CountResults
    from utils.tracking import VideoTracking

    tracking = object.__new__(VideoTracking)  # its counting step alone, without a predictor
    tracking.lines, tracking.zones = [], []
    tracking.counters = {"walk": TrackCounter([], [], 2, 0.1, 20)}
    im = np.full((H, W, 3), 40, np.uint8)
    r = CountResults(im, path="walk", names={0: "head"}, boxes=torch.tensor([[10.0, 10, 34, 34, 0.9, 0]]))
    r.count = 1
    frame, _, values = tracking.count("walk", r)
    assert (frame, values, r.count) == (1, (0, 0), 1)
    assert len(r.boxes) == 0 and r.boxes.is_track
    assert np.array_equal(r.plot(), draw_count_only(im, r))


def draw_count_only(im: np.ndarray, r) -> np.ndarray:
    """The overlay of a frame with no box: the count text alone."""
    from utils.overlay import draw_count

    return draw_count(im.copy(), r.text, r.subtext)


class _Errors(logging.Handler):
    """Collect the ERROR lines Ultralytics' LOGGER emits (its handler writes to the stdout of its import time)."""

    def __init__(self):
        super().__init__(logging.ERROR)
        self.lines: list[str] = []

    def emit(self, record: logging.LogRecord):
        self.lines.append(record.getMessage().removeprefix("ERROR ❌ "))  # Ultralytics' emoji prefix


def patch_sequence(root: Path) -> Path:
    """The moving patches as a MOTChallenge sequence: img1/*.png, gt/gt.txt with the patches' boxes, seqinfo.ini."""
    from utils.mot import write_mot

    seq = root / "walk"
    (seq / "img1").mkdir(parents=True)
    for f, im in enumerate(moving_patches(), 1):
        cv2.imwrite(str(seq / "img1" / f"{f:06d}.png"), im)
    boxes = patch_boxes().reshape(-1, 4).astype(float)
    frames, ids = np.repeat(np.arange(1, FRAMES + 1), 5), np.tile(np.arange(1, 6), FRAMES)
    write_mot(seq / "gt" / "gt.txt", frames, ids, boxes, vis=np.ones(len(ids)))
    (seq / "seqinfo.ini").write_text(f"[Sequence]\nname=walk\nimDir=img1\nseqLength={FRAMES}\nimExt=.png\n")
    return seq


def test_val_track_scores_sequences(weights, tmp_path):
    """val.py --task track on a MOT sequence of the moving patches: one row per sequence, the tracks it saves score
    the same when read back and keep the frames' own numbers past a corrupt frame; a sequence without frames is one
    error and the others are scored; a folder without sequences is one error."""
    import val
    from utils.mot import read_mot
    from utils.track_metrics import gt_heads, score_tracks

    seq = patch_sequence(tmp_path / "mot")
    corrupt = seq / "img1" / "000006.png"
    corrupt.write_bytes(b"not a png")
    (tmp_path / "mot" / "nofr" / "gt").mkdir(parents=True)
    (tmp_path / "mot" / "nofr" / "gt" / "gt.txt").write_text("1,1,10,10,20,20,1,1,1\n")
    argv = ["--task", "track", "--weights", str(weights), "--imgsz", IMGSZ, "--project", str(tmp_path / "runs")]
    errors = _Errors()
    LOGGER.addHandler(errors)
    try:
        mean = val.main(val.parse_opt([*argv, "--data", str(tmp_path / "mot"), "--min-track-frames", "2"]))
    finally:
        LOGGER.removeHandler(errors)
    table = pd.read_csv(tmp_path / "runs" / "exp" / "track_results.csv")
    assert table["sequence"].tolist() == ["walk", "mean"] and table["frames"].iloc[0] == FRAMES
    assert [e.split(":")[0] for e in errors.lines] == [str(tmp_path / "mot" / "nofr"), str(corrupt)], errors.lines
    assert "no frame folder" in errors.lines[0] and "cannot be read" in errors.lines[1]
    gt = gt_heads(read_mot(seq / "gt" / "gt.txt"))
    assert table["unique_gt"].iloc[0] == 5
    tracks = read_mot(tmp_path / "runs" / "exp" / "mot" / "walk.txt")
    frames = set(tracks["frame"])
    assert 6 not in frames and frames & set(range(7, FRAMES + 1))  # tracked past the gap: frame 7 is still frame 7
    again = score_tracks(gt, tracks, FRAMES)
    assert again["HOTA"] > 0, "the fixture model must track some patch for this test to mean anything"
    for key in ("HOTA", "MOTA", "IDF1"):  # the untrained model's boxes overlap the patches at IoU < 0.5: HOTA > 0
        assert again[key] == pytest.approx(table[key].iloc[0], abs=1e-3) == pytest.approx(mean[key], abs=1e-3)
    (tmp_path / "empty").mkdir()
    with pytest.raises(FileNotFoundError, match="no MOTChallenge sequence"):
        val.main(val.parse_opt([*argv, "--data", str(tmp_path / "empty")]))
