"""Tracking metrics (TrackEval on our arrays) and counting on MOT rows, against hand-computed values; the tracker
YAML fitting and lookup."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from ultralytics.utils import YAML

from utils.track_metrics import count_errors, count_tracks, gt_heads, score_tracks
from utils.tracking import NEW_TRACK_MAX_IOU, REENTRY_GROWTH, RELINK_DIST, TRACKER_KEYS, find_tracker, fit_thresholds

LINE = [np.array([[0, 25], [100, 25.0]])]


def two_heads(frames: int = 10) -> pd.DataFrame:
    """Head 1 moves right along y = 15; head 2 moves down from y centre 17 to 35 (it crosses y = 25 at frame 6)."""
    rows = [
        r
        for f in range(1, frames + 1)
        for r in ((f, 1, 10 + f, 10, 20 + f, 20), (f, 2, 50, 10 + 2 * f, 60, 20 + 2 * f))
    ]
    df = pd.DataFrame(rows, columns=["frame", "id", "x1", "y1", "x2", "y2"]).astype({"x1": float})
    return df.assign(conf=1.0, cls=1.0, vis=1.0)


def test_perfect_tracks_score_one():
    """Tracks identical to the ground truth: every metric is perfect."""
    gt = two_heads()
    m = score_tracks(gt, gt, 10)
    assert (m["HOTA"], m["MOTA"], m["IDF1"], m["IDSW"]) == (1.0, 1.0, 1.0, 0)


def test_an_identity_switch_by_hand():
    """Head 2's track changes ID after frame 5. IDF1 = 2*15 / (2*15 + 5 + 5) = 0.75; MOTA = 1 - 1/20;
    AssA = (10 * 1 + 10 * 0.5) / 20 = 0.75 with DetA 1, so HOTA = sqrt(0.75)."""
    gt = two_heads()
    pred = gt.copy()
    pred.loc[(pred.frame > 5) & (pred.id == 2), "id"] = 3
    m = score_tracks(gt, pred, 10)
    assert m["IDSW"] == 1 and m["IDF1"] == pytest.approx(0.75) and m["MOTA"] == pytest.approx(0.95)
    assert m["AssA"] == pytest.approx(0.75) and m["HOTA"] == pytest.approx(np.sqrt(0.75))


def test_missed_frames_and_false_tracks():
    """Dropping head 1 in frames 1-4 (4 misses) and adding a 3-frame false track: MOTA = 1 - (4 + 3) / 20; head 1 is
    tracked in 6 of its 10 frames (neither mostly tracked nor mostly lost), head 2 in all. Dropping head 1 in 9 of
    them leaves it mostly lost (1 frame of 10 < 20 %)."""
    gt = two_heads()
    pred = gt[~((gt.id == 1) & (gt.frame <= 4))]
    ghost = pd.DataFrame({"frame": [1, 2, 3], "id": 9, "x1": 80.0, "y1": 80, "x2": 90, "y2": 90}).assign(conf=1.0)
    m = score_tracks(gt, pd.concat([pred, ghost], ignore_index=True), 10)
    assert m["MOTA"] == pytest.approx(1 - 7 / 20) and m["IDSW"] == 0 and (m["MT"], m["ML"]) == (1, 0)
    m = score_tracks(gt, gt[~((gt.id == 1) & (gt.frame <= 9))], 10)
    assert (m["MT"], m["ML"]) == (1, 1)


def test_unique_and_crossing_errors_from_tracks():
    """Truth: 2 heads, head 2 crosses the line once (in). A tracker that splits head 2 at the line (frames 1-5 end on
    it, a new ID from frame 6) finds 3 tracks of >= 3 frames and no crossing."""
    gt = two_heads()
    pred = gt.copy()
    pred.loc[(pred.frame > 5) & (pred.id == 2), "id"] = 3
    truth, found = count_tracks(gt, 10, LINE), count_tracks(pred, 10, LINE, min_frames=3)
    assert (truth["unique_heads"], truth["lines"][0]["in"]) == (2, 1)
    assert count_errors(truth, found) == {
        "unique_gt": 2,
        "unique": 3,
        "unique_err": 0.5,
        "crossings_gt": 1,
        "crossings": 0,
        "crossings_err": 1.0,
    }
    assert count_tracks(pred, 10, LINE, min_frames=6)["unique_heads"] == 1  # only head 1 lasts 6 frames


def test_gt_heads_keeps_considered_head_rows():
    """conf 0 rows are ignored; with HT21 classes only 1, 2, 4 are heads; files without classes keep every row."""
    gt = two_heads(2).assign(conf=[1, 0, 1, 1], cls=[1, 1, 3, 4])
    assert gt_heads(gt).index.tolist() == [0, 3]
    assert len(gt_heads(two_heads(2).assign(cls=-1.0))) == 4


def test_fit_thresholds(tmp_path):
    """ByteTrack's family starts tracks at the count threshold, keeps the 0.1 / 0.25 ratio for the second stage, and
    stops fusing scores into IoU; NMS keeps detections from the low threshold unless the YAML has no low stage
    (OC-SORT's use_byte false), and our keys are written with their defaults (duplicates start no track, relinking
    off, tracks that left the frame end, occluded heads keep their lost tracks, a track leaving through a border does
    not take over a head entering there) where the YAML lacks them, while a
    YAML that sets one keeps its value; TrackTrack, whose thresholds mean something else, is left alone."""
    for name, nms_conf in (("bytetrack.yaml", 0.08), ("botsort.yaml", 0.08), ("ocsort.yaml", 0.2)):
        path, low = fit_thresholds(find_tracker(name), 0.2, tmp_path / name)
        cfg = YAML.load(path)
        assert (cfg["track_high_thresh"], cfg["new_track_thresh"], cfg["fuse_score"]) == (0.2, 0.2, False)
        assert cfg["track_low_thresh"] == pytest.approx(0.08) and low == pytest.approx(nms_conf)
        assert cfg["track_buffer"] == YAML.load(find_tracker(name))["track_buffer"]
        stock = YAML.load(find_tracker(name))
        assert cfg["new_track_max_iou"] == NEW_TRACK_MAX_IOU and "new_track_max_iou" not in stock
        assert cfg["relink_dist"] == RELINK_DIST and "relink_dist" not in stock
        assert (cfg["relink_dist"], cfg["drop_exited"], cfg["keep_occluded"]) == (None, True, True)
        assert cfg["reentry_growth"] == REENTRY_GROWTH == 0.1
        assert not set(TRACKER_KEYS) & set(stock)
    own = tmp_path / "own.yaml"
    YAML.save(own, {**YAML.load(find_tracker("ocsort.yaml")), "keep_occluded": False, "relink_dist": 1.0})
    cfg = YAML.load(fit_thresholds(str(own), 0.2, tmp_path / "own_fitted.yaml")[0])
    assert (cfg["keep_occluded"], cfg["relink_dist"], cfg["drop_exited"]) == (False, 1.0, True)
    other = find_tracker("tracktrack.yaml")
    assert fit_thresholds(other, 0.2, tmp_path / "t.yaml") == (other, 0.2) and not (tmp_path / "t.yaml").exists()


def test_find_tracker_errors(tmp_path):
    """A missing tracker and a URL are refused in one line; a user's file is used as it is."""
    with pytest.raises(FileNotFoundError, match="nosuch.yaml: no such file"):
        find_tracker("nosuch.yaml")
    with pytest.raises(FileNotFoundError, match="not downloaded"):
        find_tracker("https://example.com/t.yaml")
    mine = tmp_path / "mine.yaml"
    mine.write_text("tracker_type: bytetrack\n")
    assert find_tracker(str(mine)) == str(mine)


def test_seqinfo_frame_rate(tmp_path):
    """Dwell times of a MOT frame folder use its seqinfo.ini frameRate; a folder without one has none (30 fps then)."""
    from utils.mot import seqinfo_frame_rate

    (tmp_path / "seq" / "img1").mkdir(parents=True)
    (tmp_path / "seq" / "seqinfo.ini").write_text("[Sequence]\nname=seq\nframeRate=12\n")
    assert seqinfo_frame_rate(tmp_path / "seq" / "img1") == 12.0
    assert seqinfo_frame_rate(tmp_path) is None


def test_rows_by_frame_by_hand():
    """Rows out of frame order come back per frame 1..3 in their original order; frame 2 has none; frame 5 lies past
    the last frame asked for and is in no list."""
    from utils.mot import rows_by_frame

    df = pd.DataFrame({"frame": [3, 1, 3, 5, 1]})
    assert [r.tolist() for r in rows_by_frame(df, 3)] == [[1, 4], [], [0, 2]]
