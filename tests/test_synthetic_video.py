"""Synthetic crowd videos (data/synthetic_video.py), the MOT file reader/writer (utils/mot.py) and the unchanged image
generator (data/synthetic.py) that both draw people with."""

from __future__ import annotations

import configparser
import hashlib
import json
from pathlib import Path

import cv2
import numpy as np
import pandas as pd
import pytest

import data.synthetic_video as sv
from data.synthetic import SKIN, generate
from data.synthetic_video import crowd_tracks, ensure_crowd_video, make_crowd_video
from utils.mot import read_mot, write_mot

N, FRAMES, ROWS, COLS, SEED = 60, 20, 200, 256, 3
SPEED = (0.08, 0.16)  # faster than the default so 20 frames see people enter and leave


@pytest.fixture(scope="module")
def video(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One small non-square sequence, shared by the tests that only read it."""
    return make_crowd_video(tmp_path_factory.mktemp("vid"), "SYN-01", N, FRAMES, (ROWS, COLS), 30, SEED, SPEED)


def test_image_generator_unchanged(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The images and labels of generate() are what they were before people drawing was shared with the videos.

    The hashes were computed with data/synthetic.py as it was before the refactor (commit d783431). Pixels are hashed
    before JPEG encoding, so the check does not depend on the JPEG library; labels depend on every earlier random
    draw, so a change in draw order shows there too.
    """
    pixels = hashlib.sha256()
    imwrite = cv2.imwrite

    def capture(path: str, img: np.ndarray) -> bool:
        pixels.update(img.tobytes())
        return imwrite(path, img)

    monkeypatch.setattr(cv2, "imwrite", capture)
    generate(tmp_path, 3, 2, 96, 120, seed=5)
    labels = hashlib.sha256(b"".join(p.read_bytes() for p in sorted((tmp_path / "labels").rglob("*.txt"))))
    assert pixels.hexdigest() == "3c215d9517c2cd05698e7cff03a04fbf98e2f35dabc0ffc504d94a3bfe981d05"
    assert labels.hexdigest() == "baf43905d7bb22299e4f273b5b06afde977c926bc8a0aa4f6495ce387d09e57b"


def test_mot_round_trip(tmp_path: Path) -> None:
    """write_mot then read_mot gives back hand-made boxes exactly, in both row layouts, and appends per frame."""
    xyxy = np.array([[10.25, 20.5, 13.75, 31.0], [0.0, 0.0, 4.5, 6.25], [100.0, 50.75, 120.5, 70.0]])
    gt = tmp_path / "gt" / "gt.txt"
    write_mot(gt, np.array([1, 1, 2]), np.array([1, 2, 1]), xyxy, vis=np.array([1.0, 0.25, 0.5]))
    assert gt.read_text().splitlines()[0] == "1,1,10.25,20.50,3.50,10.50,1.0000,1,1.0000"
    df = read_mot(gt)
    assert list(df.columns) == ["frame", "id", "x1", "y1", "x2", "y2", "conf", "cls", "vis"]
    assert df["frame"].tolist() == [1, 1, 2] and df["id"].tolist() == [1, 2, 1]
    np.testing.assert_array_equal(df[["x1", "y1", "x2", "y2"]].to_numpy(), xyxy)
    assert df["conf"].tolist() == [1, 1, 1] and df["cls"].tolist() == [1, 1, 1]
    assert df["vis"].tolist() == [1.0, 0.25, 0.5]

    pred = tmp_path / "pred.txt"
    write_mot(pred, 1, np.array([5, 6]), xyxy[:2], conf=np.array([0.9, 0.125]))
    write_mot(pred, 2, np.array([5]), xyxy[2:], conf=0.5, append=True)
    write_mot(pred, 3, np.zeros(0), np.zeros((0, 4)), append=True)  # a frame without detections adds nothing
    assert pred.read_text().splitlines()[1] == "1,6,0.00,0.00,4.50,6.25,0.1250,-1,-1,-1"
    df = read_mot(pred)
    assert df["frame"].tolist() == [1, 1, 2] and df["id"].tolist() == [5, 6, 5]
    np.testing.assert_array_equal(df[["x1", "y1", "x2", "y2"]].to_numpy(), xyxy)
    assert df["conf"].tolist() == [0.9, 0.125, 0.5]
    assert (df[["cls", "vis"]].to_numpy() == -1).all()

    bad = tmp_path / "bad.txt"
    bad.write_text("1,1,10,20,5,5,1,1,1\n2,x,10,20,5,5,1,1,1\n")
    with pytest.raises(ValueError, match="line 2"):
        read_mot(bad)


def test_visibility_of_overlapping_heads() -> None:
    """A head half covered by a nearer one is half visible; the nearer one and a head half out of frame likewise."""
    x1, y1 = np.array([10.0, 14.0, -4.0]), np.array([10.0, 10.0, 50.0])
    x2, y2 = np.array([18.0, 22.0, 4.0]), np.array([18.0, 18.0, 58.0])  # back to front: head 1 covers head 0's right
    np.testing.assert_array_equal(sv._visibility(x1, y1, x2, y2, 100, 100), [0.5, 1.0, 0.5])
    np.testing.assert_array_equal(sv._visibility(x1[::-1], y1[::-1], x2[::-1], y2[::-1], 100, 100), [0.5, 0.5, 1.0])


def test_video_ground_truth(video: Path) -> None:
    """gt.txt is the generator's tracks, with MOT's conventions, everyone seen, people entering, leaving, occluded."""
    gt = read_mot(video / "gt" / "gt.txt")
    pd.testing.assert_frame_equal(gt, crowd_tracks(N, FRAMES, (ROWS, COLS), SEED, SPEED), check_exact=True)
    assert not gt.duplicated(["frame", "id"]).any()  # ids unique per frame
    assert sorted(gt["id"].unique()) == list(range(1, N + 1))  # every person appears at least once, ids from 1
    assert gt["frame"].min() == 1 and gt["frame"].max() == FRAMES
    first, last = gt.groupby("id")["frame"].min(), gt.groupby("id")["frame"].max()
    assert (first == 1).sum() > N / 2, "most people are in view from the first frame"
    assert (first > 1).any(), "someone enters during the video"
    assert (last < FRAMES).any(), "someone leaves before the end"
    per_frame = gt.groupby("frame").size()
    assert per_frame.min() > 0.6 * per_frame.max(), "the number in view stays roughly constant"

    x1, y1, x2, y2 = gt[["x1", "y1", "x2", "y2"]].to_numpy().T
    assert (x1 >= 0).all() and (y1 >= 0).all() and (x2 <= COLS).all() and (y2 <= ROWS).all()  # clipped to the frame
    assert ((x2 > x1) & (y2 > y1)).all()
    assert (gt["conf"] == 1).all() and (gt["cls"] == 1).all()
    assert gt["vis"].between(0, 1).all() and (gt["vis"] < 1).any() and (gt["vis"] == 1).any()

    # Paths are smooth (heads move a few pixels per frame) and head size follows the row (perspective)
    whole = gt[(x1 > 0) & (y1 > 0) & (x2 < COLS) & (y2 < ROWS)].sort_values(["id", "frame"])
    cx, cy = (whole["x1"] + whole["x2"]) / 2, (whole["y1"] + whole["y2"]) / 2
    same = (whole["id"].diff() == 0) & (whole["frame"].diff() == 1)
    steps = np.hypot(cx.diff(), cy.diff())[same]
    assert 0 < steps.median() < 5 and steps.max() < 10
    assert np.corrcoef(cy, whole["y2"] - whole["y1"])[0, 1] > 0.8


def test_video_files(video: Path) -> None:
    """seqinfo.ini, the numbered frames and the mp4 all describe the same video."""
    ini = configparser.ConfigParser()
    ini.optionxform = str  # MOT's keys are camelCase
    ini.read(video / "seqinfo.ini")
    assert dict(ini["Sequence"]) == {
        "name": "SYN-01",
        "imDir": "img1",
        "frameRate": "30",
        "seqLength": str(FRAMES),
        "imWidth": str(COLS),
        "imHeight": str(ROWS),
        "imExt": ".jpg",
    }
    jpgs = sorted((video / "img1").iterdir())
    assert [p.name for p in jpgs] == [f"{i:06d}.jpg" for i in range(1, FRAMES + 1)]
    first = cv2.imread(str(jpgs[0]))
    assert first.shape == (ROWS, COLS, 3)
    # The boxes are where the heads are drawn: the centre of a fully visible head is skin (up to noise and JPEG)
    gt = read_mot(video / "gt" / "gt.txt")
    gt = gt[(gt["frame"] == 1) & (gt["vis"] == 1) & (gt["y2"] - gt["y1"] >= 8)]
    centres = first[((gt["y1"] + gt["y2"]) / 2).astype(int), ((gt["x1"] + gt["x2"]) / 2).astype(int)].astype(int)
    to_skin = np.abs(centres[:, None] - SKIN).max(2).min(1)
    assert len(gt) > 10 and np.median(to_skin) < 25

    cap = cv2.VideoCapture(str(video.parent / "SYN-01.mp4"))
    assert cap.isOpened()
    frames = []
    while (ok_frame := cap.read())[0]:
        frames.append(ok_frame[1])
    cap.release()
    assert len(frames) == FRAMES and frames[0].shape == (ROWS, COLS, 3)
    assert np.abs(frames[0].astype(int) - first).mean() < 10  # the same picture (both lossy)


def test_video_deterministic(video: Path, tmp_path: Path) -> None:
    """Same arguments: identical files; another seed: other tracks."""
    again = make_crowd_video(tmp_path, "SYN-01", N, FRAMES, (ROWS, COLS), 30, SEED, SPEED)
    for rel in ("gt/gt.txt", "seqinfo.ini", "img1/000001.jpg", f"img1/{FRAMES:06d}.jpg"):
        assert (again / rel).read_bytes() == (video / rel).read_bytes(), rel
    other = crowd_tracks(N, FRAMES, (ROWS, COLS), SEED + 1, SPEED)
    assert not other.equals(crowd_tracks(N, FRAMES, (ROWS, COLS), SEED, SPEED))


def test_ensure_crowd_video_cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The cache regenerates only when the parameters differ; an empty crowd gives an empty gt.txt."""
    calls = []
    make = sv.make_crowd_video
    monkeypatch.setattr(sv, "make_crowd_video", lambda *a, **k: calls.append(a) or make(*a, **k))
    seq = ensure_crowd_video(n_people=5, frames=3, size=64, seed=1, root=tmp_path)
    assert seq == tmp_path.resolve() / "crowd_64x64_5p_3f_25fps_seed1"
    assert (seq / "gt" / "gt.txt").is_file() and seq.with_name(seq.name + ".mp4").is_file()
    assert json.loads((seq / "params.json").read_text())["n_people"] == 5
    assert ensure_crowd_video(n_people=5, frames=3, size=64, seed=1, root=tmp_path) == seq and len(calls) == 1
    ensure_crowd_video(n_people=5, frames=3, size=64, seed=1, root=tmp_path, name=seq.name, fps=10)
    assert len(calls) == 2 and "frameRate=10" in (seq / "seqinfo.ini").read_text()

    empty = make_crowd_video(tmp_path, "empty", 0, frames=2, size=64)
    assert read_mot(empty / "gt" / "gt.txt").empty and len(list((empty / "img1").iterdir())) == 2
