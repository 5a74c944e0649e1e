"""Benchmark: is the count of a dense 1920x1080 crowd closer to the truth with --tile than with whole-image inference?

Each test frame is generated from the validation split of a dataset: whole validation images, each scaled to the size
the model trained at (longer side = the checkpoint's imgsz, as the training letterbox saw it), packed row by row into
a grey 1920x1080 frame; the truth is their labelled heads. Whole-frame inference letterboxes the frame to imgsz,
shrinking every head by 1920/imgsz; --tile runs imgsz tiles at native resolution, where heads have their training
size. Frames stay in memory: nothing derived from research-use data is written.

Usage:
    $ python bench/tile.py --weights runs/train/exp/weights/best.pt                      # built-in synthetic crowds
    $ python bench/tile.py --weights best.pt --data data/scut_head_a.yaml --n 10 --device 0
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import cv2
import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # run as a script from anywhere, like bench/accuracy.py

from utils import MAX_DET, ROOT  # noqa: E402

FRAME_WH = (1920, 1080)


def val_split(data: str) -> list[tuple[Path, Path]]:
    """Return (image, YOLO label) paths of a dataset's validation split, preparing the dataset on first use.

    Args:
        data (str): "synthetic" or a data YAML, as train.py takes it.

    Returns:
        (list[tuple[Path, Path]]): Pairs sorted by image name.
    """
    from ultralytics.data.utils import IMG_FORMATS, img2label_paths
    from ultralytics.utils import YAML

    from data.resolve import resolve_data

    cfg = YAML.load(resolve_data(data))
    root = Path(cfg["path"]) if Path(cfg["path"]).is_absolute() else ROOT / cfg["path"]
    images = sorted(p for p in (root / cfg["val"]).rglob("*.*") if p.suffix[1:].lower() in IMG_FORMATS)
    return list(zip(images, map(Path, img2label_paths([str(p) for p in images]))))


def yolo_boxes(label: Path, w: int, h: int) -> np.ndarray:
    """Return the boxes (N, 4) x1, y1, x2, y2 in pixels of a YOLO label file (none when the file is missing)."""
    rows = np.loadtxt(label, ndmin=2).reshape(-1, 5) if label.exists() and label.stat().st_size else np.zeros((0, 5))
    xywh = rows[:, 1:] * [w, h, w, h]
    return np.concatenate((xywh[:, :2] - xywh[:, 2:] / 2, xywh[:, :2] + xywh[:, 2:] / 2), 1)


def pack_frame(
    pairs: list[tuple[Path, Path]], start: int, imgsz: int, limit: int
) -> tuple[np.ndarray, np.ndarray, int]:
    """Pack whole images, scaled to longer side `imgsz`, row by row into a 1920x1080 frame.

    Args:
        pairs (list[tuple[Path, Path]]): (image, label) pairs to draw from in order, cycling when used up.
        start (int): Index of the first pair to use.
        imgsz (int): Longer side of each placed image (the model's training size).
        limit (int): Most images in the frame (fewer when the frame is full).

    Returns:
        (tuple[np.ndarray, np.ndarray, int]): The BGR frame, its head boxes (N, 4) in frame pixels, the next index.
    """
    frame = np.full((FRAME_WH[1], FRAME_WH[0], 3), 114, np.uint8)
    boxes, x, y, row_h, i = [], 0, 0, 0, start
    while i - start < limit:
        image, label = pairs[i % len(pairs)]
        im = cv2.imread(str(image))
        s = imgsz / max(im.shape[:2])
        h, w = round(im.shape[0] * s), round(im.shape[1] * s)
        if x + w > FRAME_WH[0]:  # next row
            x, y, row_h = 0, y + row_h, 0
        if y + h > FRAME_WH[1] or w > FRAME_WH[0]:
            break
        frame[y : y + h, x : x + w] = cv2.resize(im, (w, h), interpolation=cv2.INTER_AREA)
        boxes.append(yolo_boxes(label, w, h) + [x, y, x, y])
        x, row_h, i = x + w, max(row_h, h), i + 1
    return frame, np.concatenate(boxes) if boxes else np.zeros((0, 4)), i


def parse_opt() -> argparse.Namespace:
    """Parse the benchmark's flags."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--weights", required=True, help="trained checkpoint (with its count threshold)")
    parser.add_argument("--data", default="synthetic", help="'synthetic' or a data YAML; its val split is used")
    parser.add_argument("--n", type=int, default=5, help="number of generated frames")
    parser.add_argument("--imgsz", type=int, default=None, help="model input and tile size (default: training size)")
    parser.add_argument("--images", type=int, default=9, help="validation images per frame (fewer if it is full)")
    parser.add_argument("--max-det", type=int, default=MAX_DET, help="maximum detections per frame")
    parser.add_argument("--tile-overlap", type=float, default=0.2, help="tile overlap fraction")
    parser.add_argument("--conf-thres", type=float, default=None, help="default: the checkpoint's count threshold")
    parser.add_argument("--device", default=None, help="cuda device or cpu")
    parser.add_argument("--seed", type=int, default=0, help="order in which validation images fill the frames")
    return parser.parse_args()


def main(opt: argparse.Namespace) -> None:
    """Count every generated frame both ways and print a markdown table with the errors and timings."""
    from utils.checkpoint import load_checkpoint

    from utils.api import HeadCounter

    imgsz = opt.imgsz or int(load_checkpoint(opt.weights)[0].get("train_args", {}).get("imgsz", 640))
    pairs = val_split(opt.data)
    pairs = [pairs[k] for k in np.random.default_rng(opt.seed).permutation(len(pairs))]
    kw = dict(conf=opt.conf_thres, imgsz=imgsz, max_det=opt.max_det, device=opt.device, tile_overlap=opt.tile_overlap)
    counters = {"whole": HeadCounter(opt.weights, **kw), "tile": HeadCounter(opt.weights, tile=True, **kw)}
    rows, start = [], 0
    for f in range(opt.n):
        frame, truth, end = pack_frame(pairs, start, imgsz, opt.images)
        if end == start:
            raise SystemExit(f"a {imgsz} px image does not fit a {FRAME_WH[0]}x{FRAME_WH[1]} frame")
        start = end
        px = float(np.median(truth[:, 2] - truth[:, 0])) if len(truth) else float("nan")
        row = {"frame": f, "truth": len(truth), "head px": px}
        for name, counter in counters.items():
            counter(frame)  # warm-up, so the timing is steady-state
            t = time.perf_counter()
            r = counter(frame)
            row[name], row[f"{name} ms"], row[f"{name} capped"] = r.count, (time.perf_counter() - t) * 1e3, r.capped
        rows.append(row)

    print(
        f"\n{len(rows)} generated {FRAME_WH[0]}x{FRAME_WH[1]} frames of up to {opt.images} {opt.data} val images, "
        f"imgsz {imgsz}, conf {counters['tile'].conf:.3f}, tile overlap {opt.tile_overlap}, {opt.weights}"
    )
    print("| frame | truth | median head px | whole | tile | whole ms | tile ms |\n|---|---|---|---|---|---|---|")
    for r in rows:
        cap = {k: "+ (max-det)" if r[f"{k} capped"] else "" for k in counters}
        print(
            f"| {r['frame']} | {r['truth']} | {r['head px']:.1f} | {r['whole']}{cap['whole']} | {r['tile']}"
            f"{cap['tile']} | {r['whole ms']:.0f} | {r['tile ms']:.0f} |"
        )
    for name in counters:
        err = np.array([r[name] - r["truth"] for r in rows])
        print(
            f"{name}: MAE {np.abs(err).mean():.1f}, mean error {err.mean():+.1f}, "
            f"{np.mean([r[f'{name} ms'] for r in rows]):.0f} ms per frame"
        )


if __name__ == "__main__":
    main(parse_opt())
