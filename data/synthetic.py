"""Procedural synthetic crowd dataset: the embedded default of `python train.py`, generated on first use.

Each image is a cluttered background (gradient, random shapes, noise) with 0 to `max_heads` people drawn back to
front: a body ellipse and a head ellipse (hair, skin, optional hat) whose size grows with the image row
(perspective), so nearer people occlude farther ones. Head boxes are the head ellipses' extents. Everything follows
from the seed, so two machines generate identical files.
"""

from __future__ import annotations

import json
from pathlib import Path

import cv2
import numpy as np

from utils import CACHE_DIR

SKIN = np.array([[80, 110, 170], [60, 90, 140], [100, 140, 200], [40, 60, 100]])  # BGR skin tones
HAIR = np.array([[20, 20, 20], [30, 40, 60], [60, 80, 110], [150, 150, 150]])


def _background(rng: np.random.Generator, size: int) -> np.ndarray:
    """Gradient plus random rectangles, lines and circles plus noise, so the detector must learn heads, not blobs."""
    y = np.linspace(0, 1, size, dtype=np.float32)[:, None, None]
    top, bottom = rng.uniform(40, 220, 3), rng.uniform(40, 220, 3)
    img = np.broadcast_to(top * (1 - y) + bottom * y, (size, size, 3)).astype(np.uint8).copy()
    for _ in range(rng.integers(5, 25)):
        colour = rng.integers(0, 256, 3).tolist()
        x0, y0, x1, y1 = rng.integers(0, size, 4).tolist()
        shape = rng.integers(3)
        if shape == 0:
            cv2.rectangle(img, (x0, y0), (x1, y1), colour, -1)
        elif shape == 1:
            cv2.line(img, (x0, y0), (x1, y1), colour, int(rng.integers(1, 6)))
        else:  # round distractors the size of heads
            cv2.circle(img, (x0, y0), int(rng.integers(2, 12)), colour, -1)
    return img


def _draw_people(img: np.ndarray, rng: np.random.Generator, n: int) -> np.ndarray:
    """Draw `n` people back to front and return their head boxes (n, 4) as pixel xyxy."""
    size = img.shape[0]
    horizon = rng.uniform(-0.3, 0.3) * size  # perspective: head size grows linearly below the horizon
    near, far = rng.uniform(0.06, 0.12) * size, rng.uniform(0.015, 0.03) * size
    cy = np.sort(rng.uniform(0, size, n))  # back (top) first, so nearer people are drawn over farther ones
    cx = rng.uniform(0, size, n)
    frac = np.clip((cy - horizon) / (size - horizon), 0, 1)
    h = (far + (near - far) * frac) * rng.uniform(0.85, 1.15, n)
    w = h * rng.uniform(0.75, 0.95, n)
    for x, y, hw, hh in zip(cx, cy, w / 2, h / 2, strict=True):
        clothes = rng.integers(0, 256, 3).tolist()
        cv2.ellipse(img, (int(x), int(y + 2.6 * hh)), (int(2.2 * hw), int(2.0 * hh)), 0, 0, 360, clothes, -1)
        cv2.ellipse(
            img, (int(x), int(y)), (max(int(hw), 1), max(int(hh), 1)), 0, 0, 360, SKIN[rng.integers(4)].tolist(), -1
        )
        hair = HAIR[rng.integers(4)].tolist()
        cv2.ellipse(img, (int(x), int(y - 0.15 * hh)), (max(int(hw), 1), max(int(0.9 * hh), 1)), 0, 180, 360, hair, -1)
    boxes = np.stack((cx - w / 2, cy - h / 2, cx + w / 2, cy + h / 2), 1)
    return np.clip(boxes, 0, size)


def _yolo_lines(boxes: np.ndarray, size: int) -> str:
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
            (root / "labels" / split / f"{split}_{k:04d}.txt").write_text(_yolo_lines(boxes, size))


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
    done = root / "params.json"
    if not (done.exists() and json.loads(done.read_text()) == params):
        generate(root, n_train, n_val, size, max_heads, seed)
        done.write_text(json.dumps(params))
    yaml_path = root / "synthetic_crowd.yaml"
    yaml_path.write_text(
        f"# Synthetic crowd (generated by data/synthetic.py)\npath: {root}\ntrain: images/train\n"
        "val: images/val\nnames:\n  0: head\n"
    )
    return yaml_path
