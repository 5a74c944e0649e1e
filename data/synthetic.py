"""Procedural synthetic crowd dataset: the embedded default of `python train.py`, generated on first use.

Each image is a cluttered background (gradient, random shapes, noise) with 0 to `max_heads` people drawn back to
front: a body ellipse and a head ellipse (hair, skin, optional hat) whose size grows with the image row
(perspective), so nearer people occlude farther ones. Head boxes are the head ellipses' extents. Everything follows
from the seed, so two machines generate identical files.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from functools import partial
from pathlib import Path

import cv2
import numpy as np

from utils import CACHE_DIR

SKIN = np.array([[80, 110, 170], [60, 90, 140], [100, 140, 200], [40, 60, 100]])  # BGR skin tones
HAIR = np.array([[20, 20, 20], [30, 40, 60], [60, 80, 110], [150, 150, 150]])


def _background(rng: np.random.Generator, size: int | tuple[int, int]) -> np.ndarray:
    """Gradient plus random rectangles, lines and circles plus noise, so the detector must learn heads, not blobs.

    Args:
        rng (np.random.Generator): Random source.
        size (int | tuple[int, int]): Square side, or (height, width) in pixels.

    Returns:
        (np.ndarray): The (height, width, 3) uint8 BGR background.
    """
    h, w = (size, size) if isinstance(size, int) else size
    y = np.linspace(0, 1, h, dtype=np.float32)[:, None, None]
    top, bottom = rng.uniform(40, 220, 3), rng.uniform(40, 220, 3)
    img = np.broadcast_to(top * (1 - y) + bottom * y, (h, w, 3)).astype(np.uint8).copy()
    for _ in range(rng.integers(5, 25)):
        colour = rng.integers(0, 256, 3).tolist()
        x0, y0, x1, y1 = rng.integers(0, (w, h, w, h)).tolist()  # same draws as integers(0, size, 4) when square
        shape = rng.integers(3)
        if shape == 0:
            cv2.rectangle(img, (x0, y0), (x1, y1), colour, -1)
        elif shape == 1:
            cv2.line(img, (x0, y0), (x1, y1), colour, int(rng.integers(1, 6)))
        else:  # round distractors the size of heads
            cv2.circle(img, (x0, y0), int(rng.integers(2, 12)), colour, -1)
    return img


def perspective(rng: np.random.Generator, rows: int) -> tuple[float, float, float]:
    """Draw a scene's perspective: horizon row, head height at the bottom row (near) and at the horizon (far).

    Args:
        rng (np.random.Generator): Random source.
        rows (int): Image height in pixels.

    Returns:
        (tuple[float, float, float]): horizon, near, far in pixels; the horizon may lie above the image.
    """
    return rng.uniform(-0.3, 0.3) * rows, rng.uniform(0.06, 0.12) * rows, rng.uniform(0.015, 0.03) * rows


def head_height(y: np.ndarray, horizon: float, near: float, far: float, rows: int) -> np.ndarray:
    """Mean head height at image rows `y`: linear from `far` at the horizon to `near` at the bottom row.

    Args:
        y (np.ndarray): Head centre rows in pixels.
        horizon (float): Horizon row.
        near (float): Head height at the bottom row.
        far (float): Head height at (and above) the horizon.
        rows (int): Image height in pixels; rows below it keep the `near` height.

    Returns:
        (np.ndarray): Head heights in pixels, before each person's own size factor.
    """
    frac = np.clip((y - horizon) / (rows - horizon), 0, 1)
    return far + (near - far) * frac


def appearance(rng: np.random.Generator, n: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Draw `n` people's colours: clothes (any colour), skin tone and hair colour.

    Args:
        rng (np.random.Generator): Random source.
        n (int): Number of people.

    Returns:
        (tuple[np.ndarray, np.ndarray, np.ndarray]): clothes, skin, hair, each (n, 3) int BGR.
    """
    clothes, skin, hair = np.zeros((n, 3), np.int64), np.zeros(n, np.int64), np.zeros(n, np.int64)
    for i in range(n):  # one person at a time: this draw order fixes every image the generator has ever written
        clothes[i], skin[i], hair[i] = rng.integers(0, 256, 3), rng.integers(4), rng.integers(4)
    return clothes, SKIN[skin], HAIR[hair]


def draw_people(
    img: np.ndarray,
    cx: np.ndarray,
    cy: np.ndarray,
    w: np.ndarray,
    h: np.ndarray,
    clothes: np.ndarray,
    skin: np.ndarray,
    hair: np.ndarray,
) -> None:
    """Draw people in place, in the order given (pass them back to front so nearer people cover farther ones).

    Each person is a body ellipse below the head, a skin-coloured head ellipse filling the head box and a hair
    half-ellipse over the top of the head.

    Args:
        img (np.ndarray): (H, W, 3) uint8 BGR image, drawn on in place.
        cx (np.ndarray): (n,) head centre x in pixels.
        cy (np.ndarray): (n,) head centre y in pixels.
        w (np.ndarray): (n,) head box width in pixels.
        h (np.ndarray): (n,) head box height in pixels.
        clothes (np.ndarray): (n, 3) BGR body colours.
        skin (np.ndarray): (n, 3) BGR skin colours.
        hair (np.ndarray): (n, 3) BGR hair colours.
    """
    for x, y, hw, hh, c, s, hr in zip(cx, cy, w / 2, h / 2, clothes, skin, hair, strict=True):
        cv2.ellipse(img, (int(x), int(y + 2.6 * hh)), (int(2.2 * hw), int(2.0 * hh)), 0, 0, 360, c.tolist(), -1)
        cv2.ellipse(img, (int(x), int(y)), (max(int(hw), 1), max(int(hh), 1)), 0, 0, 360, s.tolist(), -1)
        cv2.ellipse(
            img, (int(x), int(y - 0.15 * hh)), (max(int(hw), 1), max(int(0.9 * hh), 1)), 0, 180, 360, hr.tolist(), -1
        )


def _draw_people(img: np.ndarray, rng: np.random.Generator, n: int) -> np.ndarray:
    """Draw `n` random people back to front and return their head boxes (n, 4) as pixel xyxy."""
    size = img.shape[0]
    horizon, near, far = perspective(rng, size)
    cy = np.sort(rng.uniform(0, size, n))  # back (top) first, so nearer people are drawn over farther ones
    cx = rng.uniform(0, size, n)
    h = head_height(cy, horizon, near, far, size) * rng.uniform(0.85, 1.15, n)
    w = h * rng.uniform(0.75, 0.95, n)
    draw_people(img, cx, cy, w, h, *appearance(rng, n))
    boxes = np.stack((cx - w / 2, cy - h / 2, cx + w / 2, cy + h / 2), 1)
    return np.clip(boxes, 0, size)


def yolo_lines(boxes: np.ndarray, size: int) -> str:
    """Head boxes (xyxy pixels) to YOLO label text, dropping boxes clipped to nothing."""
    xywh = np.stack(
        ((boxes[:, 0] + boxes[:, 2]) / 2, (boxes[:, 1] + boxes[:, 3]) / 2, *(boxes[:, 2:] - boxes[:, :2]).T), 1
    )
    xywh = xywh[(xywh[:, 2] > 1) & (xywh[:, 3] > 1)] / size
    return "".join(f"0 {x:.6f} {y:.6f} {w:.6f} {h:.6f}\n" for x, y, w, h in xywh)


def generate(root: Path, n_train: int, n_val: int, size: int, max_heads: int, seed: int) -> None:
    """Write `n_train` + `n_val` images and YOLO labels under root/{images,labels}/{train,val}.

    Head counts are drawn as max_heads * u² (u uniform), so most images are moderately crowded and a few are very
    dense, with 0 included.
    """
    rng = np.random.default_rng(seed)
    for split, n_images in (("train", n_train), ("val", n_val)):
        (root / "images" / split).mkdir(parents=True, exist_ok=True)
        (root / "labels" / split).mkdir(parents=True, exist_ok=True)
        for k in range(n_images):
            img = _background(rng, size)
            boxes = _draw_people(img, rng, int(max_heads * rng.uniform() ** 2))
            img = cv2.add(img, rng.normal(0, 6, img.shape).astype(np.int8), dtype=cv2.CV_8U)
            cv2.imwrite(str(root / "images" / split / f"{split}_{k:04d}.jpg"), img)
            (root / "labels" / split / f"{split}_{k:04d}.txt").write_text(yolo_lines(boxes, size))


def ensure_synthetic_crowd(
    n_train: int = 96, n_val: int = 24, size: int = 320, max_heads: int = 500, seed: int = 0, root: Path | None = None
) -> Path:
    """Generate the synthetic crowd set unless an identical one is cached, and return its data YAML path.

    Args:
        n_train (int): Training images.
        n_val (int): Validation images.
        size (int): Square image side in pixels.
        max_heads (int): Most heads in one image.
        seed (int): Random seed; the files are a pure function of all these arguments.
        root (Path, optional): Output folder; defaults to .cache/synthetic_crowd_<hash of the arguments>.

    Returns:
        (Path): The data YAML to pass to train.py / val.py.
    """
    params = {"n_train": n_train, "n_val": n_val, "size": size, "max_heads": max_heads, "seed": seed, "version": 1}
    tag = f"{size}px_{n_train}+{n_val}_max{max_heads}_seed{seed}"
    root = Path(root or CACHE_DIR / f"synthetic_crowd_{tag}").resolve()
    build = partial(generate, root, n_train, n_val, size, max_heads, seed)
    return cached_set(
        root, params, build, root / "synthetic_crowd.yaml", "Synthetic crowd (generated by data/synthetic.py)"
    )


def cached_set(root: Path, params: dict, build: Callable[[], None], yaml_path: Path, title: str) -> Path:
    """Build a generated YOLO set under `root` unless it was built with the same `params`; return its data YAML.

    Args:
        root (Path): The set's folder (images/{train,val}, labels/{train,val}).
        params (dict): Everything the files depend on; kept in root/params.json, written last.
        build (Callable[[], None]): Writes the set.
        yaml_path (Path): The data YAML to write.
        title (str): Its first line, a comment saying what made the set.

    Returns:
        (Path): The data YAML to pass to train.py / val.py.
    """
    done = root / "params.json"
    if not (done.exists() and json.loads(done.read_text()) == params):
        done.unlink(missing_ok=True)  # a build interrupted from here on must not look complete
        build()
        done.write_text(json.dumps(params))
    yaml_path.write_text(f"# {title}\npath: {root}\ntrain: images/train\nval: images/val\nnames:\n  0: head\n")
    return yaml_path
