"""Dataset summary numbers shared by the converters and data/stats.py: heads per image and head-size percentiles."""

from __future__ import annotations

import numpy as np

PERCENTILES = (5, 25, 50, 75, 95)


def split_numbers(counts: np.ndarray, wh: np.ndarray) -> dict[str, float | int]:
    """Headline numbers of one split.

    Args:
        counts (np.ndarray): (I,) heads in each image.
        wh (np.ndarray): (N, 2) width and height of every head box in pixels.

    Returns:
        (dict[str, float | int]): images, heads, mean and max heads per image, and the percentiles of the head size
            sqrt(w * h) in pixels (keys 'size_p5' ... 'size_p95'; NaN when there is no head).
    """
    counts = np.asarray(counts, dtype=np.int64)
    size = np.sqrt(np.prod(np.asarray(wh, dtype=np.float64).reshape(-1, 2), axis=1))
    pct = np.percentile(size, PERCENTILES) if len(size) else np.full(len(PERCENTILES), np.nan)
    return {
        "images": len(counts),
        "heads": int(counts.sum()),
        "heads_per_image_mean": float(counts.mean()) if len(counts) else 0.0,
        "heads_per_image_max": int(counts.max()) if len(counts) else 0,
        **{f"size_p{p}": float(v) for p, v in zip(PERCENTILES, pct, strict=True)},
    }


def format_table(counts: dict[str, np.ndarray], wh: dict[str, np.ndarray]) -> list[str]:
    """Format the per-split table and the box-size percentiles as text lines.

    Args:
        counts (dict[str, np.ndarray]): split -> (I,) heads per image.
        wh (dict[str, np.ndarray]): split -> (N, 2) box width and height in pixels.

    Returns:
        (list[str]): lines: one per split plus 'all', then width, height and sqrt(w*h) percentiles over all splits.
    """
    splits = list(counts)
    rows = {s: split_numbers(counts[s], wh[s]) for s in splits}
    if len(splits) > 1:
        rows["all"] = split_numbers(np.concatenate([counts[s] for s in splits]), _cat(wh[s] for s in splits))
    pcts = " ".join(f"{'p' + str(p):>7}" for p in PERCENTILES)
    lines = [f"{'split':<8}{'images':>9}{'heads':>10}{'heads/img mean':>16}{'max':>7}   head size sqrt(w*h) px {pcts}"]
    for name, r in rows.items():
        sizes = " ".join(f"{r[f'size_p{p}']:7.1f}" for p in PERCENTILES)
        lines.append(
            f"{name:<8}{r['images']:>9}{r['heads']:>10}{r['heads_per_image_mean']:>16.2f}"
            f"{r['heads_per_image_max']:>7}   {'':<24}{sizes}"
        )
    every = _cat(wh[s] for s in splits)
    for i, what in enumerate(("width", "height")):
        v = np.percentile(every[:, i], PERCENTILES) if len(every) else np.full(len(PERCENTILES), np.nan)
        lines.append(
            f"box {what:<6} px percentiles {' '.join(f'p{p}={x:.1f}' for p, x in zip(PERCENTILES, v, strict=True))}"
        )
    return lines


def _cat(arrays) -> np.ndarray:
    """Concatenate (N, 2) arrays, giving an empty (0, 2) array for none."""
    arrays = [np.asarray(a, dtype=np.float64).reshape(-1, 2) for a in arrays]
    return np.concatenate(arrays) if arrays else np.zeros((0, 2))
