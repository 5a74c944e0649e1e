"""Read a converted (YOLO-layout) dataset back: its split folders, heads per image and box sizes in pixels."""

from __future__ import annotations

from pathlib import Path

import numpy as np
from PIL import Image
from ultralytics.data.utils import IMG_FORMATS, img2label_paths
from ultralytics.utils import YAML

from utils import ROOT

from .ensure import ensure_dataset


def dataset_splits(data: str | Path) -> dict[str, Path]:
    """Split name -> images folder of a dataset given as a data YAML or a converted folder (converting on first use).

    Args:
        data (str | Path): data YAML (ours or any Ultralytics one with folder splits) or a folder with data.yaml or
            images/<split>/ sub-folders.

    Returns:
        (dict[str, Path]): existing image folders by split ('train', 'val', 'test'), each folder once.
    """
    data = Path(ensure_dataset(data))
    if data.is_dir():
        images = data / "images"
        return {p.name: p for p in sorted(images.iterdir()) if p.is_dir()} if images.is_dir() else {}
    cfg = YAML.load(data)
    root = Path(cfg.get("path") or data.parent)
    if not root.is_absolute():
        root = next((b / root for b in (Path.cwd(), ROOT, data.parent) if (b / root).is_dir()), ROOT / root)
    splits, seen = {}, set()
    for split in ("train", "val", "test"):
        folder = (root / cfg[split]).resolve() if isinstance(cfg.get(split), str) else None
        if folder is not None and folder.is_dir() and folder not in seen:
            splits[split] = folder
            seen.add(folder)
    return splits


def read_split(images: Path) -> tuple[np.ndarray, np.ndarray, int]:
    """Heads per image and head box sizes of one split folder, from its YOLO labels and image sizes.

    Args:
        images (Path): an images/<split> folder; labels are found the Ultralytics way (last 'images' -> 'labels').

    Returns:
        counts (np.ndarray): (I,) heads in each image.
        wh (np.ndarray): (N, 2) box width and height in pixels.
        unlabelled (int): images without a label file (counted as 0 heads, as Ultralytics treats them).
    """
    files = sorted(str(p) for p in images.iterdir() if p.suffix[1:].lower() in IMG_FORMATS)
    counts, wh, unlabelled = np.zeros(len(files), dtype=np.int64), [], 0
    for i, (image, label) in enumerate(zip(files, img2label_paths(files), strict=True)):
        if not Path(label).is_file():
            unlabelled += 1
            continue
        try:  # one parse for the whole file rather than one per line
            boxes = np.array(Path(label).read_text().split(), dtype=np.float64).reshape(-1, 5)
        except ValueError as e:
            raise ValueError(f"{label}: not a YOLO detection label file ({e})") from None
        if len(boxes):
            with Image.open(image) as im:
                size = np.array(im.size, dtype=np.float64)
            counts[i] = len(boxes)
            wh.append(boxes[:, 3:5] * size)
    return counts, (np.concatenate(wh) if wh else np.zeros((0, 2))), unlabelled
