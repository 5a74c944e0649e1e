"""What train.py, val.py and detect.py share: flag types, run folders, checked paths and one error path.

A user's mistake (a missing file, an impossible setting, a device that is not there) ends every CLI the same way:
one `ERROR: ...` line on stderr and exit status 1, never a traceback, and before any run folder is made.
"""

from __future__ import annotations

import argparse
import re
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

USER_ERRORS = (FileNotFoundError, NotADirectoryError, IsADirectoryError, ValueError)  # Ultralytics raises ValueError
# for settings it cannot honour (e.g. a CUDA device on a machine without one)


class HelpFormatter(argparse.RawDescriptionHelpFormatter, argparse.ArgumentDefaultsHelpFormatter):
    """--help keeps the usage text as written and shows every flag's default."""


def run(main: Callable[[argparse.Namespace], Any], opt: argparse.Namespace) -> None:
    """Run a CLI's main and exit: its integer result is the status; a user error is one line and status 1."""
    try:
        result = main(opt)
    except USER_ERRORS as e:
        sys.exit(f"ERROR: {one_line(e)}")
    sys.exit(result if isinstance(result, int) else 0)


def one_line(e: BaseException) -> str:
    """The first non-empty line of an exception's message (Ultralytics' messages run over several lines)."""
    lines = [ln.strip() for ln in str(e).splitlines() if ln.strip()]
    return lines[0] if lines else type(e).__name__


def image_size(text: str) -> int:
    """argparse type of --img: a positive number of pixels (Ultralytics would silently round 0 up to one stride)."""
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a whole number of pixels, got '{text}'") from None
    if value <= 0:
        raise argparse.ArgumentTypeError(f"image size must be positive, got {value}")
    return value


def at_least(low: float, kind: type = float) -> Callable[[str], Any]:
    """argparse type of a number no smaller than `low` (refused at parse time, not later against a weights file)."""

    def parse(text: str):
        try:
            value = kind(text)
        except ValueError:
            raise argparse.ArgumentTypeError(
                f"expected a{'n integer' if kind is int else ' number'}, got '{text}'"
            ) from None
        if value < low:
            raise argparse.ArgumentTypeError(f"must be >= {low:g}, got {text}")
        return value

    return parse


def points(flag: str, min_points: int, max_points: int | None = None) -> Callable[[str], Any]:
    """argparse type of --line / --zone: "x1,y1,x2,y2,..." in pixels, checked by `parse_points`."""

    def parse(text: str):
        from utils.track_counting import parse_points

        try:
            return parse_points(text, flag, min_points, max_points)
        except ValueError as e:
            raise argparse.ArgumentTypeError(str(e).removeprefix(f"{flag} ")) from None

    return parse


def add_tracking_args(parser: argparse.ArgumentParser, zones: bool, scope: str = "") -> None:
    """Add the tracking flags detect.py and val.py --task track share: --tracker, --min-track-frames,
    --min-track-conf, --line-band, --cross-frames, --line (and --zone for detect.py). `scope` prefixes their help,
    e.g. "--task track: "."""
    from utils.tracking import CROSS_FRAMES, DEFAULT_TRACKER, TRACK_CONF_MARGIN

    parser.add_argument(
        "--tracker",
        default=DEFAULT_TRACKER,
        help=f"{scope}tracker YAML: ocsort.yaml, bytetrack.yaml, botsort.yaml, ... or a file",
    )
    parser.add_argument(
        "--min-track-frames", type=at_least(1, int), default=5, help=f"{scope}frames a track must last to count"
    )
    parser.add_argument(
        "--min-track-conf",
        type=at_least(0.0),
        default=None,
        help=f"{scope}mean score a track must reach to count (default: the count threshold + {TRACK_CONF_MARGIN})",
    )
    parser.add_argument(
        "--line-band",
        type=at_least(0.0),
        default=0.0,
        help=f"{scope}a head changes side of a line only beyond this many box heights from it (damps jittering boxes)",
    )
    parser.add_argument(
        "--cross-frames",
        type=at_least(1, int),
        default=CROSS_FRAMES,
        help=f"{scope}frames a head must stay on the other side of a line, or its track stay lost there, for its "
        "crossing to count",
    )
    parser.add_argument(
        "--line",
        action="append",
        default=[],
        type=points("--line", 2, 2),
        metavar="X1,Y1,X2,Y2",
        help=f"{scope}count tracks crossing this line, in = left to right walking from point 1 to 2 (repeatable)",
    )
    if zones:
        parser.add_argument(
            "--zone",
            action="append",
            default=[],
            type=points("--zone", 3),
            metavar="X1,Y1,X2,Y2,X3,Y3,...",
            help=f"{scope}polygon: tracks inside now and their dwell time (repeatable)",
        )


def existing_file(flag: str, path: str | Path, folder_ok: bool = False) -> Path:
    """Return the path if it is a file (or, with `folder_ok`, a folder such as an exported OpenVINO model), else raise
    FileNotFoundError naming the flag (no download is ever tried)."""
    p = Path(path)
    if not (p.is_file() or (folder_ok and p.is_dir())):
        raise FileNotFoundError(f"{flag} {path}: no such file")
    return p


def model_yaml(flag: str, path: str | Path) -> Path:
    """Return a model YAML path that exists, by name or with its scale letter in the name as Ultralytics reads it
    (models/yolov5s-mfl.yaml is models/yolov5-mfl.yaml at scale s), else raise FileNotFoundError naming the flag."""
    p = Path(path)
    unscaled = Path(re.sub(r"(\d+)([nslmx])(.+)?$", r"\1\3", str(p)))  # Ultralytics' yaml_model_load rule
    if not (p.is_file() or (p.suffix in {".yaml", ".yml"} and unscaled.is_file())):
        also = f" (nor {unscaled}, its scale-free name)" if unscaled != p else ""
        raise FileNotFoundError(f"{flag} {path}: no such file{also}")
    return p


def run_dir(project: str | Path, name: str, exist_ok: bool, mkdir: bool = False) -> Path:
    """YOLOv5's run folder naming: project/name, then name2, name3, ... (Ultralytics would write name-2)."""
    from ultralytics.utils.files import increment_path

    return increment_path(Path(project) / name, exist_ok=exist_ok, sep="", mkdir=mkdir)
