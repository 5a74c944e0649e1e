"""Counting-report figures: count scatter, error histogram, MAE vs threshold, images with head centres as points.

Charts use matplotlib's object API (`Figure`, no pyplot, no global backend) and its bundled font; images use OpenCV's
Hershey font. Nothing here goes through Ultralytics' `Annotator`/`plot_images`, whose PIL text calls `check_font`,
which downloads Arial.ttf.
"""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
from matplotlib.figure import Figure
from matplotlib.ticker import MaxNLocator
from ultralytics.utils import LOGGER

from utils.overlay import draw_points

GT_COLOR = (0, 200, 0)  # BGR green ring: ground truth
PRED_COLOR = (0, 0, 255)  # BGR red dot: prediction


def plot_count_scatter(gt: np.ndarray, pred: np.ndarray, file: str | Path) -> Path:
    """Scatter of predicted against GT count per image, with the y = x line.

    Args:
        gt (np.ndarray): GT counts, shape (M,).
        pred (np.ndarray): Predicted counts, shape (M,).
        file (str | Path): Output image path.

    Returns:
        (Path): The written file.
    """
    fig = Figure(figsize=(5, 5), tight_layout=True)
    ax = fig.subplots()
    hi = max(float(np.max(gt, initial=0)), float(np.max(pred, initial=0)), 1.0) * 1.1
    ax.plot([0, hi], [0, hi], "k--", linewidth=1, label="y = x")
    ax.scatter(gt, pred, s=14, alpha=0.7, label=f"{len(gt)} images")
    ax.set(xlim=(0, hi), ylim=(0, hi), xlabel="GT count", ylabel="predicted count", title="Predicted vs GT count")
    ax.set_aspect("equal")
    ax.legend(loc="best")
    return _save(fig, file)


def plot_error_histogram(error: np.ndarray, file: str | Path) -> Path:
    """Histogram of the signed counting error (pred - GT) per image.

    Args:
        error (np.ndarray): Signed errors, shape (M,).
        file (str | Path): Output image path.

    Returns:
        (Path): The written file.
    """
    fig = Figure(figsize=(6, 4), tight_layout=True)
    ax = fig.subplots()
    error = np.asarray(error, dtype=float)
    span = int(np.ceil(max(float(np.abs(error).max(initial=0)), 1.0)))
    bins = np.arange(-span - 0.5, span + 1) if span <= 40 else np.linspace(-span, span, 81)  # one bar per count if few
    ax.hist(error, bins=bins, color="tab:blue", edgecolor="white")
    ax.yaxis.set_major_locator(MaxNLocator(integer=True))
    ax.axvline(0, color="k", linewidth=1)
    mae = float(np.abs(error).mean()) if error.size else float("nan")
    ax.set(xlabel="count error (pred - GT)", ylabel="images", title=f"Counting error, MAE {mae:.2f}")
    return _save(fig, file)


def plot_threshold_sweep(
    thresholds: np.ndarray, mae: np.ndarray, rmse: np.ndarray, count_conf: float, file: str | Path
) -> Path:
    """MAE and RMSE against the count threshold, with the threshold used marked.

    Args:
        thresholds (np.ndarray): Sweep thresholds, shape (T,).
        mae (np.ndarray): MAE per threshold, shape (T,).
        rmse (np.ndarray): RMSE per threshold, shape (T,).
        count_conf (float): Threshold used for the counts.
        file (str | Path): Output image path.

    Returns:
        (Path): The written file.
    """
    fig = Figure(figsize=(6, 4), tight_layout=True)
    ax = fig.subplots()
    ax.plot(thresholds, mae, label="MAE", linewidth=2)
    ax.plot(thresholds, rmse, label="RMSE", linewidth=1, linestyle=":")
    ax.axvline(count_conf, color="tab:red", linewidth=1, label=f"count threshold {count_conf:.3g}")
    ax.set(xlabel="count threshold (score >=)", ylabel="counting error", title="Counting error vs threshold")
    ax.set_xlim(0, 1)
    ax.legend()
    return _save(fig, file)


def draw_centres(
    image: np.ndarray, gt_xy: np.ndarray, pred_xy: np.ndarray, caption: str = "", max_side: int = 1600
) -> np.ndarray:
    """Draw GT centres as green rings and predicted centres as red dots, with a caption band above the image.

    Points stay separable in dense crowds: the ring outlines GT without hiding the red dot inside it. Both are drawn
    by dilating a point mask (utils/overlay.py), one call for any number of heads.

    Args:
        image (np.ndarray): BGR image, shape (H, W, 3).
        gt_xy (np.ndarray): GT centres in image pixels, shape (G, 2).
        pred_xy (np.ndarray): Predicted centres in image pixels, shape (P, 2).
        caption (str): Text written in the band above the image (ASCII).
        max_side (int): Images larger than this are downscaled first.

    Returns:
        (np.ndarray): A new BGR image.
    """
    scale = min(1.0, max_side / max(image.shape[:2]))
    im = cv2.resize(image, None, fx=scale, fy=scale, interpolation=cv2.INTER_AREA) if scale < 1 else image.copy()
    r = max(2, round(max(im.shape[:2]) / 400))
    gt = np.asarray(gt_xy, dtype=float).reshape(-1, 2) * scale
    ring = np.zeros(im.shape[:2], np.uint8)
    ring[tuple(np.clip(np.round(gt).astype(int), 0, [im.shape[1] - 1, im.shape[0] - 1])[:, ::-1].T)] = 1
    outer, inner = (cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (2 * k + 1, 2 * k + 1)) for k in (2 * r, r + 1))
    im[(cv2.dilate(ring, outer) > 0) & (cv2.dilate(ring, inner) == 0)] = GT_COLOR
    draw_points(im, np.asarray(pred_xy, dtype=float).reshape(-1, 2) * scale, r, PRED_COLOR)
    return np.concatenate([_caption_band(caption, im.shape[1]), im], 0) if caption else im


def _caption_band(caption: str, width: int) -> np.ndarray:
    """White band with the caption in black, its double-space-separated parts wrapped to the image width."""
    font, scale = cv2.FONT_HERSHEY_SIMPLEX, max(0.35, width / 1400)
    lines: list[str] = []
    for part in caption.split("  "):
        joined = f"{lines[-1]}  {part}" if lines else part
        if lines and cv2.getTextSize(joined, font, scale, 1)[0][0] <= width - 8:
            lines[-1] = joined
        else:
            lines.append(part)
    th = cv2.getTextSize(caption, font, scale, 1)[0][1]
    band = np.full((len(lines) * (th * 2) + 4, width, 3), 255, dtype=np.uint8)
    for i, line in enumerate(lines):
        cv2.putText(band, line, (4, (i + 1) * th * 2 - th // 2), font, scale, (0, 0, 0), 1, cv2.LINE_AA)
    return band


def plot_worst_images(
    files: list[str],
    gt_xy: list[np.ndarray],
    pred_xy: list[np.ndarray],
    error: np.ndarray,
    save_dir: str | Path,
    n: int = 4,
) -> list[Path]:
    """Save the `n` images with the largest |count error|, GT and predicted centres drawn.

    Args:
        files (list[str]): Image paths, one per image.
        gt_xy (list[np.ndarray]): GT centres per image (original pixels).
        pred_xy (list[np.ndarray]): Predicted centres per image at the count threshold (original pixels).
        error (np.ndarray): Signed count error per image, shape (M,).
        save_dir (str | Path): Folder for `worst_<rank>_<name>.jpg`.
        n (int): Number of images.

    Returns:
        (list[Path]): The written files (an unreadable image is skipped with a warning).
    """
    save_dir = Path(save_dir)
    save_dir.mkdir(parents=True, exist_ok=True)
    written = []
    for rank, i in enumerate(np.argsort(-np.abs(error), kind="stable")[:n], 1):
        im = cv2.imread(files[i])
        if im is None:
            LOGGER.warning(f"worst-images plot: cannot read {files[i]}, skipped")
            continue
        g, p = len(gt_xy[i]), len(pred_xy[i])
        caption = f"{Path(files[i]).name}  GT {g} (green rings)  pred {p} (red dots)  error {p - g:+d}"
        written.append(save_dir / f"worst_{rank}_{Path(files[i]).stem}.jpg")
        cv2.imwrite(str(written[-1]), draw_centres(im, gt_xy[i], pred_xy[i], caption))
    return written


def plot_point_mosaic(
    images: np.ndarray, gt_xy: list[np.ndarray], pred_xy: list[np.ndarray], file: str | Path, max_images: int = 16
) -> Path:
    """Tile a batch of (letterboxed) images with GT rings and predicted dots, like Ultralytics' val_batch mosaics.

    Args:
        images (np.ndarray): RGB uint8 batch, shape (B, 3, H, W).
        gt_xy (list[np.ndarray]): GT centres per image in the batch's pixel frame.
        pred_xy (list[np.ndarray]): Predicted centres per image in the batch's pixel frame.
        file (str | Path): Output image path.
        max_images (int): At most this many images are tiled.

    Returns:
        (Path): The written file.
    """
    tiles = [
        cv2.copyMakeBorder(
            draw_centres(np.ascontiguousarray(im.transpose(1, 2, 0)[..., ::-1]), g, p),
            *[1] * 4,
            cv2.BORDER_CONSTANT,
            value=(255, 255, 255),
        )
        for im, g, p in zip(images[:max_images], gt_xy, pred_xy)
    ]
    cols = int(np.ceil(np.sqrt(len(tiles))))
    tiles += [np.full_like(tiles[0], 114)] * (cols * int(np.ceil(len(tiles) / cols)) - len(tiles))
    rows = [np.concatenate(tiles[i : i + cols], 1) for i in range(0, len(tiles), cols)]
    mosaic = np.concatenate(rows, 0)
    scale = min(1.0, 1920 / max(mosaic.shape[:2]))
    if scale < 1:
        mosaic = cv2.resize(mosaic, None, fx=scale, fy=scale, interpolation=cv2.INTER_AREA)
    cv2.imwrite(str(file), mosaic)
    return Path(file)


def _save(fig: Figure, file: str | Path) -> Path:
    """Write a figure at 150 dpi and return its path."""
    fig.savefig(file, dpi=150)
    return Path(file)
