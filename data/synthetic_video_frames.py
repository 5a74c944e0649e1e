"""A YOLO training set made of frames of generated crowd videos, for detectors that will track (bench/track.py).

The still images of data/synthetic.py are drawn at the training size (320 px); the videos of data/synthetic_video.py
are drawn at 640 px, with their own noise, people on paths and a static background, and are shrunk to the detector's
input size at inference. A detector that tracks them is trained best on frames drawn the same way, from videos of
other seeds than those it is scored on: this set takes every `step`-th frame of `n_train` + `n_val` such videos and
labels the heads in view that are at least partly visible (MOTChallenge visibility > 0, as the CroHD converter keeps;
a wholly hidden head cannot be learned). The videos themselves are deleted once their frames are copied.
"""

from __future__ import annotations

import shutil
from functools import partial
from pathlib import Path

import numpy as np

from data.synthetic import cached_set, yolo_lines
from data.synthetic_video import make_crowd_video
from utils import CACHE_DIR
from utils.mot import read_mot, rows_by_frame

VERSION = 1  # bump when the output changes, so cached sets are regenerated


def video_seeds(n_train: int, n_val: int, seed: int, people: tuple[int, int]) -> list[tuple[str, int, int]]:
    """The videos of the set: (split, seed, number of people) per video; val videos follow the train ones.

    Video k has seed `seed + k` (pick `seed` clear of the seeds a detector is scored on: bench/track.py uses 11-13 and
    21-23); its number of people is drawn uniformly from `people` (inclusive) by a generator seeded with `seed`.
    """
    n_people = np.random.default_rng(seed).integers(people[0], people[1] + 1, n_train + n_val)
    return [("train" if k < n_train else "val", seed + k, int(n)) for k, n in enumerate(n_people)]


def write_frames(seq: Path, root: Path, split: str, frames: int, step: int, size: int) -> None:
    """Copy frames 1, 1 + step, ... of a generated sequence to root/images/<split>, its visible heads to root/labels.

    Args:
        seq (Path): Sequence folder written by make_crowd_video (img1/, gt/gt.txt).
        root (Path): Dataset root.
        split (str): 'train' or 'val'.
        frames (int): Frames in the sequence.
        step (int): Frames between two kept frames.
        size (int): Square frame side in pixels.
    """
    gt = read_mot(seq / "gt" / "gt.txt")
    gt = gt[gt["vis"] > 0]
    boxes, per_frame = gt[["x1", "y1", "x2", "y2"]].to_numpy(), rows_by_frame(gt, frames)
    for frame in range(1, frames + 1, step):
        name = f"{seq.name}_{frame:06d}"
        shutil.copyfile(seq / "img1" / f"{frame:06d}.jpg", root / "images" / split / f"{name}.jpg")
        (root / "labels" / split / f"{name}.txt").write_text(yolo_lines(boxes[per_frame[frame - 1]], size))


def generate(root: Path, videos: list[tuple[str, int, int]], frames: int, step: int, size: int) -> None:
    """Draw each video into root/videos, copy its kept frames and labels into root/{images,labels}/<split>, delete
    it."""
    for split in ("train", "val"):
        for sub in ("images", "labels"):
            shutil.rmtree(root / sub / split, ignore_errors=True)  # a set interrupted earlier must not leave frames
            (root / sub / split).mkdir(parents=True)
    tmp = root / "videos"
    for split, seed, n_people in videos:
        seq = make_crowd_video(tmp, f"crowd_{n_people}p_seed{seed}", n_people, frames, size, seed=seed)
        write_frames(seq, root, split, frames, step, size)
        shutil.rmtree(tmp)


def ensure_video_frames(
    n_train: int = 40,
    n_val: int = 4,
    frames: int = 150,
    step: int = 10,
    people: tuple[int, int] = (40, 480),
    size: int = 640,
    seed: int = 1000,
    root: Path | None = None,
) -> Path:
    """Build the frame set unless an identical one is cached, and return its data YAML path (for train.py / val.py).

    Args:
        n_train (int): Training videos.
        n_val (int): Validation videos (other seeds, so val frames share no person or background with train).
        frames (int): Frames per video (the timing of entries and exits depends on it, see data/synthetic_video.py).
        step (int): Frames between two kept frames (people move 1 to 3.5 px per frame at 640 px).
        people (tuple[int, int]): Least and most people per video (inclusive); about 0.7 of them are in each frame at
            150 frames.
        size (int): Square frame side in pixels.
        seed (int): First video's seed; the files are a pure function of all these arguments.
        root (Path, optional): Output folder; defaults to .cache/synthetic_video_frames_<arguments>.

    Returns:
        (Path): The data YAML.
    """
    params = {"n_train": n_train, "n_val": n_val, "frames": frames, "step": step, "people": list(people)}
    params |= {"size": size, "seed": seed, "version": VERSION}
    tag = f"{size}px_{n_train}+{n_val}v_{frames}f_step{step}_{people[0]}-{people[1]}p_seed{seed}"
    root = Path(root or CACHE_DIR / f"synthetic_video_frames_{tag}").resolve()
    title = "Frames of synthetic crowd videos (generated by data/synthetic_video_frames.py)"
    build = partial(generate, root, video_seeds(n_train, n_val, seed, people), frames, step, size)
    return cached_set(root, params, build, root / "synthetic_video_frames.yaml", title)
