"""MOTChallenge text files (gt.txt, tracker output): read them as xyxy boxes, write them from xyxy boxes.

A row is `frame, id, left, top, width, height, conf, class, visibility[, unused]`, frames and ids from 1, boxes in
pixels. Ground truth rows carry conf 1 (consider), class 1 (head) and the visible fraction; tracker output rows carry
the detection confidence and -1 for the last three columns, as the MOTChallenge devkit and TrackEval expect.
"""

from __future__ import annotations

import itertools
from pathlib import Path

import numpy as np
import pandas as pd

BOX_DECIMALS, SCORE_DECIMALS = 2, 4  # written precision of box coordinates and of conf / visibility
MOT_COLUMNS = ("frame", "id", "x1", "y1", "x2", "y2", "conf", "cls", "vis")  # read_mot's DataFrame


def read_mot(path: str | Path) -> pd.DataFrame:
    """Read a MOTChallenge file (6 to 10 comma- or whitespace-separated columns) into xyxy boxes, in file order.

    Parsing is the dataset converter's (`data.converters.mot.read_gt`), so the toolkit reads MOT files one way.

    Args:
        path (str | Path): gt.txt or a tracker's result file.

    Returns:
        (pd.DataFrame): columns frame, id (int64), x1, y1, x2, y2 (float64 pixels), conf, cls, vis (float64; NaN
            where the file has fewer columns).

    Raises:
        ValueError: A row has a missing, non-numeric or fractional-frame field (the first such line is named).
        data.converters.DatasetLayoutError: The file does not have 6 to 10 columns.
    """
    # Imported here: the converter package imports Ultralytics (and torch), which writing MOT files must not need
    from data.converters.common import Report
    from data.converters.mot import read_gt

    report = Report("MOT", str(path))
    df = read_gt(Path(path), report)
    if report.skipped:  # read_gt drops bad rows; a file read for scoring must be read whole
        raise ValueError(report.skipped[0])
    left, top = df["left"].to_numpy(), df["top"].to_numpy()
    return pd.DataFrame(
        {
            "frame": df["frame"].to_numpy(np.int64),
            "id": df["id"].to_numpy(np.int64),
            "x1": left,
            "y1": top,
            "x2": left + df["width"].to_numpy(),
            "y2": top + df["height"].to_numpy(),
            "conf": df["conf"].to_numpy(),
            "cls": df["cls"].to_numpy(),
            "vis": df["vis"].to_numpy(),
        }
    )


def write_mot(
    path: str | Path,
    frame: int | np.ndarray,
    ids: np.ndarray,
    xyxy: np.ndarray,
    conf: float | np.ndarray | None = None,
    vis: np.ndarray | None = None,
    append: bool = False,
) -> None:
    """Write boxes as MOTChallenge rows: tracker output (`vis` None) or ground truth (`vis` given).

    Tracker output rows are `frame, id, left, top, width, height, conf, -1, -1, -1`; ground truth rows are
    `frame, id, left, top, width, height, conf, 1, vis` (conf defaults to 1, i.e. 'consider'; class 1 is head).
    Boxes are written with BOX_DECIMALS decimals, conf and vis with SCORE_DECIMALS.

    Args:
        path (str | Path): output file; its folder is created.
        frame (int | np.ndarray): frame number (from 1) of every row, or (n,) one per row.
        ids (np.ndarray): (n,) track ids (from 1).
        xyxy (np.ndarray): (n, 4) boxes in pixels.
        conf (float | np.ndarray, optional): confidence, one value or (n,); None writes 1.
        vis (np.ndarray, optional): (n,) visible fraction; given, the rows are ground truth.
        append (bool): add to the file instead of replacing it (one call per frame).
    """
    xyxy = np.asarray(xyxy, dtype=np.float64).reshape(-1, 4)
    n = len(xyxy)
    cols = [
        np.broadcast_to(np.asarray(frame, dtype=np.int64), (n,)),
        np.asarray(ids, dtype=np.int64).reshape(n),
        xyxy[:, 0],
        xyxy[:, 1],
        xyxy[:, 2] - xyxy[:, 0],
        xyxy[:, 3] - xyxy[:, 1],
        np.broadcast_to(np.asarray(1.0 if conf is None else conf, dtype=np.float64), (n,)),
    ]
    box, score = f"%.{BOX_DECIMALS}f", f"%.{SCORE_DECIMALS}f"
    if vis is None:
        cols += [np.full(n, -1)] * 3
        fmt = ["%d", "%d", box, box, box, box, score, "%d", "%d", "%d"]
    else:
        cols += [np.ones(n), np.asarray(vis, dtype=np.float64).reshape(n)]
        fmt = ["%d", "%d", box, box, box, box, score, "%d", score]
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "a" if append else "w", encoding="utf-8") as f:
        np.savetxt(f, np.column_stack(cols) if n else np.zeros((0, len(fmt))), fmt=fmt, delimiter=",")


def as_written(xyxy: np.ndarray) -> np.ndarray:
    """Boxes exactly as `write_mot` then `read_mot` give them back, so values kept in memory equal the file's.

    Args:
        xyxy (np.ndarray): (n, 4) boxes in pixels.

    Returns:
        (np.ndarray): (n, 4) boxes whose left, top, width and height have BOX_DECIMALS decimals.
    """
    xyxy = np.asarray(xyxy, dtype=np.float64)
    xy = np.round(xyxy[..., :2], BOX_DECIMALS)
    wh = np.round(xyxy[..., 2:] - xyxy[..., :2], BOX_DECIMALS)  # the file holds width and height, not x2, y2
    return np.concatenate((xy, xy + wh), -1)


def seqinfo_frame_rate(frames_dir: str | Path) -> float | None:
    """Return the frameRate of the seqinfo.ini beside a MOTChallenge frame folder (or in it), None when there is none."""
    from data.converters.mot import seqinfo  # imported here for the reason read_mot gives

    for seq in (Path(frames_dir).parent, Path(frames_dir)):
        try:
            return float((seqinfo(seq) or {})["framerate"])
        except (KeyError, ValueError):
            continue
    return None


def rows_by_frame(df: pd.DataFrame, frames: int) -> list[np.ndarray]:
    """Positional row indices of each frame 1..frames, from one sort of the frame column."""
    f = df["frame"].to_numpy()
    order = np.argsort(f, kind="stable")
    bounds = np.searchsorted(f[order], np.arange(1, frames + 2))
    return [order[a:b] for a, b in itertools.pairwise(bounds)]
