"""Synthetic crowd videos with MOTChallenge ground truth, for scoring head tracking and counting over time.

People look exactly as in the synthetic images (data/synthetic.py: body and head ellipses, skin, hair, head size
growing with the image row), on one static cluttered background per video, with fresh sensor noise in every frame.
Each person keeps their colours, size and proportions for the whole video and walks at constant speed along an arc of
small constant curvature, so the true trajectories are known exactly. Every frame is drawn back to front by head row,
so nearer people occlude farther ones, and crossing paths occlude heads.

Timing is stationary: each person's time on screen is placed uniformly among all placements that show their head in
at least one frame, so some people are in view from the first frame, others enter across an edge later, many leave
across an edge, and the expected number of heads in view is the same in every frame: about n_people * D / (D + frames)
for a mean crossing time of D frames, about 400 frames in 640-pixel frames at the default speed (measured: 200 people
over 300 frames give 103 to 124 heads per frame, 500 people 288 to 307; 300 people over 300 1920x1080 frames 191 to
210). Slower `speed` keeps people in view longer.

One call writes a MOTChallenge sequence (img1/000001.jpg..., gt/gt.txt, seqinfo.ini) and the same frames as an mp4
beside it (for detect.py). Everything follows from the arguments (seed included): with the same NumPy and OpenCV the
files are byte-identical (the ground truth uses only NumPy; JPEG and mp4 bytes also depend on OpenCV's codecs).
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np
import pandas as pd

from data.synthetic import _background, appearance, draw_people, head_height, perspective
from utils import CACHE_DIR
from utils.mot import MOT_COLUMNS, SCORE_DECIMALS, as_written, write_mot

VERSION = 1  # bump when the generator's output changes, so cached videos are regenerated
SPEED = (0.03, 0.08)  # walking speeds in head heights per frame: about 1 to 3.5 px per frame in 640-px frames
VIS_GRID = 8  # visibility is sampled on VIS_GRID x VIS_GRID points per head box
STEP = 2.0  # pixels between the path samples that locate where each person enters and leaves the frame


@dataclass
class Walkers:
    """Everyone's path and look; person i is at arc length speed[i] * (t - t0[i]) along their path at frame index t.

    A path is the arc through (px, py) with direction `heading` there and constant `curvature` (radians per pixel).
    A person is drawn while their arc length lies in (s_in, s_out): outside it their whole figure is out of the frame.

    Attributes:
        rows (int): frame height in pixels.
        cols (int): frame width in pixels.
        horizon (float): perspective horizon row.
        near (float): mean head height at the bottom row.
        far (float): mean head height at the horizon.
        px (np.ndarray): (n,) path origin x, inside the frame.
        py (np.ndarray): (n,) path origin y, inside the frame.
        heading (np.ndarray): (n,) direction of motion at the origin, radians.
        curvature (np.ndarray): (n,) signed curvature, radians per pixel walked.
        speed (np.ndarray): (n,) pixels per frame.
        t0 (np.ndarray): (n,) frame index (from 0, fractional) at which the person passes the origin.
        s_in (np.ndarray): (n,) arc length at which the person enters the frame.
        s_out (np.ndarray): (n,) arc length at which the person leaves the frame.
        scale (np.ndarray): (n,) head size relative to the perspective's mean.
        aspect (np.ndarray): (n,) head width / height.
        clothes (np.ndarray): (n, 3) BGR.
        skin (np.ndarray): (n, 3) BGR.
        hair (np.ndarray): (n, 3) BGR.
    """

    rows: int
    cols: int
    horizon: float
    near: float
    far: float
    px: np.ndarray
    py: np.ndarray
    heading: np.ndarray
    curvature: np.ndarray
    speed: np.ndarray
    t0: np.ndarray
    s_in: np.ndarray
    s_out: np.ndarray
    scale: np.ndarray
    aspect: np.ndarray
    clothes: np.ndarray
    skin: np.ndarray
    hair: np.ndarray

    def heads(self, idx: np.ndarray, s: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
        """Head centres and box sizes of people `idx` at arc lengths `s` (broadcast: idx (n, 1) and s (n, K) work).

        Returns:
            (tuple[np.ndarray, ...]): cx, cy, w, h in pixels, shaped like `s`.
        """
        half = self.curvature[idx] * s / 2
        chord = s * np.sinc(half / np.pi)  # chord of the arc; sinc keeps curvature 0 (a straight line) exact
        angle = self.heading[idx] + half
        cx, cy = self.px[idx] + chord * np.cos(angle), self.py[idx] + chord * np.sin(angle)
        h = head_height(cy, self.horizon, self.near, self.far, self.rows) * self.scale[idx]
        return cx, cy, h * self.aspect[idx], h

    def at(self, t: int) -> tuple[np.ndarray, ...]:
        """The people drawn in frame index `t` (from 0), back to front.

        Returns:
            (tuple[np.ndarray, ...]): idx (person indices), cx, cy, w, h, all (m,), sorted by head row.
        """
        s = self.speed * (t - self.t0)
        idx = np.flatnonzero((s > self.s_in) & (s < self.s_out))
        cx, cy, w, h = self.heads(idx, s[idx])
        order = np.argsort(cy, kind="stable")
        return idx[order], cx[order], cy[order], w[order], h[order]


def _size(size: int | tuple[int, int]) -> tuple[int, int]:
    """(rows, cols) from a square side or (height, width)."""
    rows, cols = (size, size) if isinstance(size, (int, np.integer)) else (int(size[0]), int(size[1]))
    if min(rows, cols) < 32:
        raise ValueError(f"size {size}: frames must be at least 32 pixels on each side")
    return rows, cols


def _runs(inside: np.ndarray, k0: int) -> tuple[np.ndarray, np.ndarray]:
    """First and last sample index of the run of True that contains column k0 (True there), per row of `inside`."""
    k = inside.shape[1]
    before = ~inside[:, k0::-1]  # walking back from k0: the first False ends the run
    after = ~inside[:, k0:]
    first = k0 - np.where(before.any(1), before.argmax(1), k0 + 1) + 1
    last = k0 + np.where(after.any(1), after.argmax(1), k - k0) - 1
    return first, last


def _walkers(
    rng: np.random.Generator, n: int, frames: int, rows: int, cols: int, speed: tuple[float, float]
) -> Walkers:
    """Draw n people's looks and paths and place their time on screen (see the module docstring).

    Args:
        rng (np.random.Generator): Random source (people only, so the trajectories do not depend on the drawing).
        n (int): Number of different people over the video.
        frames (int): Number of frames.
        rows (int): Frame height.
        cols (int): Frame width.
        speed (tuple[float, float]): Range of walking speeds in head heights per frame.

    Returns:
        (Walkers): Everyone's path, timing and look.
    """
    if n < 0 or frames < 1:
        raise ValueError(f"n_people={n}, frames={frames}: need n_people >= 0 and frames >= 1")
    horizon, near, far = perspective(rng, rows)
    px, py = rng.uniform(2, cols - 2, n), rng.uniform(2, rows - 2, n)  # 2 px in: the head there is in view (below)
    heading = rng.uniform(0, 2 * np.pi, n)
    # radius at least twice the frame's longer side: paths bend gently and cannot loop inside the frame
    curvature = rng.uniform(-1, 1, n) / (2 * max(rows, cols))
    scale, aspect = rng.uniform(0.85, 1.15, n), rng.uniform(0.75, 0.95, n)
    clothes, skin, hair = appearance(rng, n)
    # Constant pixel speed per person, scaled by their head size at the origin, so far people move fewer pixels
    # (an approximation: someone walking towards the camera keeps the pixel speed of their origin row)
    pixel_speed = rng.uniform(*speed, n) * head_height(py, horizon, near, far, rows) * scale
    w = Walkers(
        rows=rows,
        cols=cols,
        horizon=horizon,
        near=near,
        far=far,
        px=px,
        py=py,
        heading=heading,
        curvature=curvature,
        speed=pixel_speed,
        t0=np.zeros(n),  # t0, s_in and s_out are set below, from the paths
        s_in=np.zeros(n),
        s_out=np.zeros(n),
        scale=scale,
        aspect=aspect,
        clothes=clothes,
        skin=skin,
        hair=hair,
    )

    # Sample every path over more than its longest possible stay in the frame (2.5 frame sides: arcs are nearly
    # straight), to find where the figure (hair top to body bottom, body width) and where the head box overlap it
    k0 = int(np.ceil(2.5 * max(rows, cols) / STEP))
    s = STEP * np.arange(-k0, k0 + 1)  # s[k0] == 0: the origin, in view, so both runs below contain it
    head_first, head_last = np.zeros(n, np.int64), np.zeros(n, np.int64)
    for lo in range(0, n, 256):  # in blocks: one (people, samples) array per block bounds memory for big frames
        idx = np.arange(lo, min(lo + 256, n))
        cx, cy, bw, bh = w.heads(idx[:, None], s)
        figure = (cx - 1.1 * bw < cols + 2) & (cx + 1.1 * bw > -2) & (cy - 0.55 * bh < rows + 2) & (cy + 2.3 * bh > -2)
        # a pixel of margin: a head this far in survives clipping and rounding, so it gets a gt row
        head = (cx - bw / 2 < cols - 1) & (cx + bw / 2 > 1) & (cy - bh / 2 < rows - 1) & (cy + bh / 2 > 1)
        first, last = _runs(figure, k0)
        # just outside the run, where the figure is out of view (clamped only if the samples were too few)
        w.s_in[idx], w.s_out[idx] = s[np.maximum(first - 1, 0)], s[np.minimum(last + 1, len(s) - 1)]
        head_first[idx], head_last[idx] = _runs(head, k0)

    # Time on screen: the head is in view (at least) while the arc length is in [a, b], i.e. for `dur` frames from
    # frame index `u`; u uniform on [-dur, frames - 1] covers every placement with a frame in that window, equally
    a, b = s[head_first], s[head_last]
    dur = (b - a) / w.speed
    u = rng.uniform(-dur, frames - 1)
    w.t0 = u - a / w.speed
    # A window shorter than a frame can fall between frames: put such a person's origin (in view) on a frame instead
    short = dur < 1
    w.t0[short] = np.clip(np.round(w.t0[short]), 0, frames - 1)
    return w


def _visibility(x1: np.ndarray, y1: np.ndarray, x2: np.ndarray, y2: np.ndarray, rows: int, cols: int) -> np.ndarray:
    """Visible fraction of each head box, boxes given back to front.

    Approximation: a VIS_GRID x VIS_GRID grid of points in each head box; a point is hidden when it lies in the head
    box of anyone drawn later (nearer) or outside the frame (MOTChallenge's visibility also counts cropping). Heads are
    ellipses and bodies, which hide little of farther heads, are ignored.

    Returns:
        (np.ndarray): (m,) fractions, multiples of 1 / VIS_GRID².
    """
    m = len(x1)
    f = (np.arange(VIS_GRID) + 0.5) / VIS_GRID
    gx, gy = x1[:, None] + f * (x2 - x1)[:, None], y1[:, None] + f * (y2 - y1)[:, None]  # (m, G) each
    # pairs (i, j), j drawn after i, whose boxes overlap: only these can hide points
    i, j = np.nonzero(np.triu((x1[:, None] < x2) & (x2[:, None] > x1) & (y1[:, None] < y2) & (y2[:, None] > y1), k=1))
    hidden_x = (gx[i] > x1[j, None]) & (gx[i] < x2[j, None])  # (pairs, G)
    hidden_y = (gy[i] > y1[j, None]) & (gy[i] < y2[j, None])
    hidden = np.zeros((m, VIS_GRID, VIS_GRID), bool)
    np.logical_or.at(hidden, i, hidden_y[:, :, None] & hidden_x[:, None, :])
    seen = ~hidden & (((gy >= 0) & (gy < rows))[:, :, None] & ((gx >= 0) & (gx < cols))[:, None, :])
    return seen.mean((1, 2))


def _frame_gt(w: Walkers, t: int) -> tuple:
    """The people drawn in frame index t and the ground truth of their heads in view, as gt.txt holds it, by id.

    Returns:
        (tuple[np.ndarray, ...]): people drawn (idx, cx, cy, bw, bh, back to front), then ids (k,) from 1, xyxy (k, 4)
            clipped to the frame and rounded as written, vis (k,).
    """
    idx, cx, cy, bw, bh = drawn = w.at(t)
    x1, y1, x2, y2 = cx - bw / 2, cy - bh / 2, cx + bw / 2, cy + bh / 2
    vis = np.round(_visibility(x1, y1, x2, y2, w.rows, w.cols), SCORE_DECIMALS)
    xyxy = as_written(np.clip(np.stack((x1, y1, x2, y2), 1), 0, [w.cols, w.rows, w.cols, w.rows]))
    keep = (xyxy[:, 2] > xyxy[:, 0]) & (xyxy[:, 3] > xyxy[:, 1])  # in view: some of the head box is in the frame
    order = np.argsort(idx[keep])
    return drawn, idx[keep][order] + 1, xyxy[keep][order], vis[keep][order]


def _rngs(seed: int) -> list[np.random.Generator]:
    """Independent random sources for the people, the background and the noise, so the tracks need no drawing."""
    return [np.random.default_rng(s) for s in np.random.SeedSequence(seed).spawn(3)]


def crowd_tracks(
    n_people: int,
    frames: int = 300,
    size: int | tuple[int, int] = 640,
    seed: int = 0,
    speed: tuple[float, float] = SPEED,
) -> pd.DataFrame:
    """The ground truth of `make_crowd_video` with the same arguments, without drawing anything.

    Args:
        n_people (int): Number of different people over the video.
        frames (int): Number of frames.
        size (int | tuple[int, int]): Square side, or (height, width), in pixels.
        seed (int): Random seed.
        speed (tuple[float, float]): Range of walking speeds in head heights per frame.

    Returns:
        (pd.DataFrame): `read_mot`'s columns, equal to reading the video's gt/gt.txt: one row per head in view per
            frame, frame from 1, sorted by frame then id.
    """
    rows, cols = _size(size)
    w = _walkers(_rngs(seed)[0], n_people, frames, rows, cols, speed)
    return _stack_gt(_frame_gt(w, t)[1:] + (t + 1,) for t in range(frames))


def _stack_gt(per_frame: Iterable[tuple[np.ndarray, np.ndarray, np.ndarray, int]]) -> pd.DataFrame:
    """Stack per-frame (ids, xyxy, vis, frame) into read_mot's DataFrame."""
    ids, xyxy, vis, frame = zip(*per_frame, strict=True)
    xyxy = np.concatenate(xyxy).reshape(-1, 4)
    n = len(xyxy)
    cols = dict(zip(MOT_COLUMNS[2:6], xyxy.T, strict=True))
    return pd.DataFrame(
        {
            "frame": np.repeat(np.array(frame, np.int64), [len(i) for i in ids]),
            "id": np.concatenate(ids).astype(np.int64),
            **cols,
            "conf": np.ones(n),
            "cls": np.ones(n),
            "vis": np.concatenate(vis).astype(np.float64),
        }
    )


def make_crowd_video(
    root: str | Path,
    name: str,
    n_people: int,
    frames: int = 300,
    size: int | tuple[int, int] = 640,
    fps: int = 25,
    seed: int = 0,
    speed: tuple[float, float] = SPEED,
) -> Path:
    """Write one synthetic crowd video as a MOTChallenge sequence plus an mp4 of the same frames.

    Files: root/name/img1/000001.jpg ... (frames from 1), root/name/gt/gt.txt (frame, id, left, top, width, height,
    conf 1, class 1, visibility: one row per head at least partly in the frame, hidden ones included with visibility
    0 as in MOT17, boxes clipped to the frame), root/name/seqinfo.ini and root/name.mp4 (mp4v). The same arguments
    always give the same files; `crowd_tracks` gives the same ground truth without drawing.

    Args:
        root (str | Path): Folder of sequences.
        name (str): Sequence name (folder and mp4 name).
        n_people (int): Number of different people over the video; each appears in at least one frame.
        frames (int): Number of frames.
        size (int | tuple[int, int]): Square side, or (height, width), in pixels.
        fps (int): Frame rate written to seqinfo.ini and the mp4.
        seed (int): Random seed.
        speed (tuple[float, float]): Range of walking speeds in head heights per frame; slower walkers stay in view
            longer, so more heads are in each frame.

    Returns:
        (Path): The sequence folder root/name.
    """
    rows, cols = _size(size)
    if fps <= 0:
        raise ValueError(f"fps={fps}: must be positive")
    people_rng, background_rng, noise_rng = _rngs(seed)
    w = _walkers(people_rng, n_people, frames, rows, cols, speed)
    background = _background(background_rng, (rows, cols))
    seq = Path(root) / name
    img_dir = seq / "img1"
    img_dir.mkdir(parents=True, exist_ok=True)
    (seq / "params.json").unlink(missing_ok=True)  # an interrupted regeneration must not look complete
    for old in img_dir.glob("[0-9][0-9][0-9][0-9][0-9][0-9].jpg"):  # a longer earlier video left more frames
        old.unlink()
    video = seq.parent / f"{name}.mp4"
    writer = cv2.VideoWriter(str(video), cv2.VideoWriter_fourcc(*"mp4v"), fps, (cols, rows))
    if not writer.isOpened():
        raise RuntimeError(f"{video}: OpenCV cannot write mp4v video here")
    gt = []
    try:
        for t in range(frames):
            (idx, cx, cy, bw, bh), ids, xyxy, vis = _frame_gt(w, t)
            img = background.copy()
            draw_people(img, cx, cy, bw, bh, w.clothes[idx], w.skin[idx], w.hair[idx])
            noise = (noise_rng.standard_normal(img.shape, dtype=np.float32) * 6).astype(np.int8)  # as generate()
            img = cv2.add(img, noise, dtype=cv2.CV_8U)
            cv2.imwrite(str(img_dir / f"{t + 1:06d}.jpg"), img)
            writer.write(img)
            gt.append((ids, xyxy, vis, t + 1))
    finally:
        writer.release()
    df = _stack_gt(gt)
    write_mot(seq / "gt" / "gt.txt", df["frame"], df["id"], df[list(MOT_COLUMNS[2:6])], vis=df["vis"])
    (seq / "seqinfo.ini").write_text(
        f"[Sequence]\nname={name}\nimDir=img1\nframeRate={fps}\nseqLength={frames}\n"
        f"imWidth={cols}\nimHeight={rows}\nimExt=.jpg\n"
    )
    return seq


def ensure_crowd_video(
    n_people: int = 200,
    frames: int = 300,
    size: int | tuple[int, int] = 640,
    fps: int = 25,
    seed: int = 0,
    speed: tuple[float, float] = SPEED,
    root: str | Path | None = None,
    name: str | None = None,
) -> Path:
    """Generate a synthetic crowd video unless an identical one is cached, and return its sequence folder.

    Args:
        n_people (int): Number of different people over the video.
        frames (int): Number of frames.
        size (int | tuple[int, int]): Square side, or (height, width), in pixels.
        fps (int): Frame rate.
        seed (int): Random seed; the files are a pure function of all these arguments.
        speed (tuple[float, float]): Range of walking speeds in head heights per frame.
        root (str | Path, optional): Folder of sequences; defaults to .cache/synthetic_videos.
        name (str, optional): Sequence name; defaults to one made of the arguments.

    Returns:
        (Path): The sequence folder (gt/gt.txt, img1/, seqinfo.ini); the mp4 is its sibling `<name>.mp4`.
    """
    rows, cols = _size(size)
    params = {
        "n_people": n_people,
        "frames": frames,
        "size": [rows, cols],
        "fps": fps,
        "seed": seed,
        "speed": [float(v) for v in speed],
        "version": VERSION,
    }
    if name is None:
        name = f"crowd_{cols}x{rows}_{n_people}p_{frames}f_{fps}fps_seed{seed}"
        name += "" if tuple(speed) == SPEED else f"_speed{speed[0]:g}-{speed[1]:g}"
    root = Path(root or CACHE_DIR / "synthetic_videos").resolve()
    seq, done = root / name, root / name / "params.json"
    if not (done.exists() and json.loads(done.read_text()) == params and (root / f"{name}.mp4").exists()):
        make_crowd_video(root, name, n_people, frames, (rows, cols), fps, seed, speed)
        done.write_text(json.dumps(params))  # last: marks the sequence complete
    return seq
