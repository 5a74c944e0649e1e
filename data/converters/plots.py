"""Dataset plots: heads per image and head size, one curve per split (matplotlib's object API, Agg canvas)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
from matplotlib.figure import Figure


def plot_stats(counts: dict[str, np.ndarray], wh: dict[str, np.ndarray], save_dir: str | Path) -> list[Path]:
    """Save heads_per_image.png and head_size.png into save_dir.

    Args:
        counts (dict[str, np.ndarray]): split -> (I,) heads per image.
        wh (dict[str, np.ndarray]): split -> (N, 2) box width and height in pixels.
        save_dir (str | Path): output folder (created).

    Returns:
        (list[Path]): the two PNG files written.
    """
    save_dir = Path(save_dir)
    save_dir.mkdir(parents=True, exist_ok=True)
    fig = Figure(figsize=(6, 4), tight_layout=True)  # Figure without pyplot: no global backend state
    ax = fig.add_subplot()
    top = max((int(c.max()) for c in counts.values() if len(c)), default=1)
    step = -(-(top + 1) // 60)  # whole heads per bin, at most 60 bins
    bins = np.arange(0, top + step + 1, step) - 0.5
    for split, c in counts.items():
        ax.hist(c, bins=bins, histtype="step", linewidth=1.5, label=f"{split} ({len(c)} images)")
    ax.set(xlabel="heads per image", ylabel="images", title="Heads per image")
    ax.legend()
    files = [save_dir / "heads_per_image.png"]
    fig.savefig(files[0], dpi=120)

    fig = Figure(figsize=(10, 4), tight_layout=True)
    ax1, ax2 = fig.subplots(1, 2)
    every = np.concatenate([np.asarray(v).reshape(-1, 2) for v in wh.values()]) if wh else np.zeros((0, 2))
    size = np.sqrt(every.prod(1))
    if len(size):
        lo = max(size.min(), 1.0) * 0.9
        bins = np.geomspace(lo, max(size.max() * 1.1, lo * 2), 50)  # log bins, wide enough when all sizes are equal
        for split, v in wh.items():
            ax1.hist(np.sqrt(np.asarray(v).reshape(-1, 2).prod(1)), bins=bins, histtype="step", label=split)
        ax1.set_xscale("log")
        ax1.legend()
        ax2.hist2d(every[:, 0], every[:, 1], bins=60, cmin=1)
    ax1.set(xlabel="head size sqrt(w*h) [px]", ylabel="heads", title="Head size")
    ax2.set(xlabel="box width [px]", ylabel="box height [px]", title="Box width vs height (all splits)")
    files.append(save_dir / "head_size.png")
    fig.savefig(files[1], dpi=120)
    return files
