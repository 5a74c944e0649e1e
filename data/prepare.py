"""Convert a raw dataset release into Ultralytics' YOLO layout (images/ + labels/ per split, data.yaml), offline.

Usage:
    python data/prepare.py scut-head --src datasets/SCUT_HEAD_Part_A --dst datasets/SCUT_HEAD_Part_A_yolo
    python data/prepare.py crohd --src datasets/HT21 --dst datasets/HT21_yolo --val-seqs HT21-04 --frame-step 5
    python data/prepare.py gta-head --src datasets/GTA_Head --dst datasets/GTA_Head_yolo

Images are symlinked by default (--link hardlink or copy to change); the source is never modified; re-running
replaces the earlier output. train.py and val.py call ensure_dataset(), which does the same on first use.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

if __package__ in {None, ""}:  # run as a script: sys.path[0] is data/, the repository root is needed for `data.`
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from data.converters import CONVERTERS, DatasetLayoutError, convert, ensure_dataset, ensure_from_ultralytics
from data.converters.common import LINK_MODES

__all__ = "convert", "ensure_dataset", "ensure_from_ultralytics", "main", "parse_opt"


def parse_opt(argv: list[str] | None = None) -> argparse.Namespace:
    """Parse the command line."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("dataset", choices=list(CONVERTERS), help="which raw release --src holds")
    parser.add_argument("--src", type=Path, required=True, help="raw release folder (read only)")
    parser.add_argument("--dst", type=Path, required=True, help="output folder (new, empty or an earlier output)")
    parser.add_argument("--link", choices=LINK_MODES, default="symlink", help="how images are placed in --dst")
    parser.add_argument("--val-seqs", nargs="*", help="crohd/gta-head: training sequences held out as val")
    parser.add_argument(
        "--frame-step", type=int, help="crohd/gta-head: convert every Nth frame of each sequence (default 1: all)"
    )
    return parser.parse_args(argv)


def main(opt: argparse.Namespace) -> int:
    """Run the conversion and print its summary; returns the exit status (1 when the copy does not match)."""
    video = {"val_seqs": None if opt.val_seqs is None else tuple(opt.val_seqs), "frame_step": opt.frame_step}
    video = {k: v for k, v in video.items() if v is not None}  # the MOT converters' options that were given
    if video and opt.dataset == "scut-head":
        flags = " and ".join("--" + k.replace("_", "-") for k in video)
        print(f"{flags} applies to crohd and gta-head only", file=sys.stderr)
        return 2
    options = {"link": opt.link, **video}
    try:
        report = convert(opt.dataset, opt.src, opt.dst, **options)
    except (DatasetLayoutError, FileExistsError, ValueError) as e:
        print(f"ERROR: {e}", file=sys.stderr)
        return 1
    print(report.summary())
    print(f"data YAML: {Path(report.dst) / 'data.yaml'}")
    return 0


if __name__ == "__main__":
    sys.exit(main(parse_opt()))
