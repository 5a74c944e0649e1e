"""Print a dataset's summary (images, heads, heads per image, box-size percentiles) and save its plots.

Usage:
    python data/stats.py --data data/scut_head_a.yaml          # converts the raw copy on first use
    python data/stats.py --data datasets/SCUT_HEAD_Part_A_yolo --save-dir runs/stats/scut_a
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

if __package__ in {None, ""}:  # run as a script: sys.path[0] is data/, the repository root is needed for `data.`
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from data.converters.labels import dataset_splits, read_split
from data.converters.plots import plot_stats
from data.converters.summary import format_table


def parse_opt(argv: list[str] | None = None) -> argparse.Namespace:
    """Parse the command line."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--data", required=True, help="data YAML or converted dataset folder")
    parser.add_argument("--save-dir", type=Path, help="where plots go (default runs/stats/<data name>)")
    return parser.parse_args(argv)


def main(opt: argparse.Namespace) -> int:
    """Print the summary and write the plots; returns the exit status."""
    splits = dataset_splits(opt.data)
    if not splits:
        print(f"ERROR: {opt.data}: no split folder with images found", file=sys.stderr)
        return 1
    counts, wh = {}, {}
    for split, folder in splits.items():
        counts[split], wh[split], unlabelled = read_split(folder)
        if unlabelled:
            print(f"{folder}: images without a label file (counted as 0 heads): {unlabelled}")
    print(f"{opt.data}: " + ", ".join(f"{s} = {f}" for s, f in splits.items()))
    print("\n".join(format_table(counts, wh)))
    save_dir = opt.save_dir or Path("runs/stats") / Path(opt.data).stem
    for f in plot_stats(counts, wh, save_dir):
        print(f"saved {f}")
    return 0


if __name__ == "__main__":
    sys.exit(main(parse_opt()))
