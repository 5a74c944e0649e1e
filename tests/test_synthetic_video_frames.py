"""The YOLO set of generated video frames (data/synthetic_video_frames.py): frames kept, labels, seeds and caching."""

from __future__ import annotations

import json
from pathlib import Path

import cv2
import numpy as np

from data.synthetic_video import crowd_tracks
from data.synthetic_video_frames import ensure_video_frames, video_seeds, write_frames
from utils.mot import write_mot


def test_write_frames_by_hand(tmp_path: Path) -> None:
    """Frames 1 and 3 of 4 are kept (step 2); a wholly hidden head (visibility 0) gets no label; boxes normalised."""
    seq = tmp_path / "seq"
    (seq / "img1").mkdir(parents=True)
    for f in range(1, 5):
        cv2.imwrite(str(seq / "img1" / f"{f:06d}.jpg"), np.full((100, 100, 3), 10 * f, np.uint8))
    # frame 1: a visible head at x 10-30, y 20-60 and a hidden one; frame 2: one head (not kept); frame 3: none
    xyxy = np.array([[10, 20, 30, 60], [40, 40, 50, 50], [0, 0, 10, 10]], float)
    write_mot(seq / "gt" / "gt.txt", np.array([1, 1, 2]), np.array([1, 2, 1]), xyxy, vis=np.array([0.5, 0.0, 1.0]))
    for split in ("images", "labels"):
        (tmp_path / "ds" / split / "train").mkdir(parents=True)
    write_frames(seq, tmp_path / "ds", "train", frames=4, step=2, size=100)

    assert sorted(p.name for p in (tmp_path / "ds" / "images" / "train").iterdir()) == [
        "seq_000001.jpg",
        "seq_000003.jpg",
    ]
    assert (
        tmp_path / "ds" / "labels" / "train" / "seq_000001.txt"
    ).read_text() == "0 0.200000 0.400000 0.200000 0.400000\n"
    assert (tmp_path / "ds" / "labels" / "train" / "seq_000003.txt").read_text() == ""  # a frame with no head
    img = cv2.imread(str(tmp_path / "ds" / "images" / "train" / "seq_000003.jpg"))
    assert abs(int(img.mean()) - 30) <= 1  # the third frame, copied


def test_video_seeds() -> None:
    """Train videos first, then val, on consecutive seeds; people drawn in range, the same for the same seed."""
    videos = video_seeds(3, 2, 500, (40, 45))
    assert [(s, k) for s, k, _ in videos] == [
        ("train", 500),
        ("train", 501),
        ("train", 502),
        ("val", 503),
        ("val", 504),
    ]
    assert all(40 <= n <= 45 for *_, n in videos)
    assert videos == video_seeds(3, 2, 500, (40, 45))
    assert [n for *_, n in video_seeds(3, 2, 501, (40, 480))] != [n for *_, n in videos]
    assert {n for *_, n in video_seeds(4, 0, 0, (20, 20))} == {20}  # the upper bound is included


def test_ensure_video_frames(tmp_path: Path) -> None:
    """The set has every step-th frame of each video with its visible heads, removes the videos and is cached."""
    root = tmp_path / "frames"
    data = ensure_video_frames(n_train=2, n_val=1, frames=6, step=4, people=(20, 30), size=160, seed=7, root=root)
    assert f"path: {root.resolve()}" in data.read_text()
    assert not (root / "videos").exists()
    train = sorted(p.stem for p in (root / "images" / "train").iterdir())
    val = sorted(p.stem for p in (root / "images" / "val").iterdir())
    (_, s0, n0), (_, s1, n1), (_, s2, n2) = video_seeds(2, 1, 7, (20, 30))
    assert train == sorted(f"crowd_{n}p_seed{s}_{f:06d}" for n, s in ((n0, s0), (n1, s1)) for f in (1, 5))
    assert val == [f"crowd_{n2}p_seed{s2}_{f:06d}" for f in (1, 5)]

    gt = crowd_tracks(n2, 6, 160, s2)  # the val video's ground truth, without drawing
    labels = np.loadtxt(root / "labels" / "val" / f"crowd_{n2}p_seed{s2}_000005.txt", ndmin=2)
    rows = gt[(gt["frame"] == 5) & (gt["vis"] > 0)]
    assert len(labels) == len(rows) > 0
    np.testing.assert_allclose(labels[:, 1], (rows["x1"] + rows["x2"]) / 2 / 160, atol=1e-6)
    np.testing.assert_allclose(labels[:, 4], (rows["y2"] - rows["y1"]) / 160, atol=1e-6)

    stamp = (root / "images" / "val" / f"{val[0]}.jpg").stat().st_mtime_ns
    assert ensure_video_frames(n_train=2, n_val=1, frames=6, step=4, people=(20, 30), size=160, seed=7, root=root)
    assert (root / "images" / "val" / f"{val[0]}.jpg").stat().st_mtime_ns == stamp  # cached: not drawn again
    ensure_video_frames(n_train=1, n_val=1, frames=6, step=4, people=(20, 30), size=160, seed=7, root=root)
    assert len(list((root / "images" / "train").iterdir())) == 2  # other arguments: rebuilt, old frames gone
    assert json.loads((root / "params.json").read_text())["n_train"] == 1
