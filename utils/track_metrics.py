"""Score tracks against MOTChallenge ground truth: HOTA, CLEAR (MOTA) and Identity (IDF1) from TrackEval, the
metrics code of the MOTChallenge and CroHD (HT21) benchmarks, plus the counting errors tracks are used for: unique
heads and line crossings.

TrackEval's dataset classes read whole benchmark folders with their own layout and config; its metric classes take
one sequence as arrays (IDs and an IoU matrix per frame), which is what is built here from two `read_mot` frames.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd
from trackeval.metrics import CLEAR, HOTA, Identity
from ultralytics.utils.metrics import bbox_ioa

from utils.mot import rows_by_frame
from utils.track_counting import TrackCounter

HT21_HEADS = (1, 2, 4)  # gt classes that are heads (data/converters/mot.py); 3 marks regions to ignore
TRACK_KEYS = ("HOTA", "DetA", "AssA", "MOTA", "IDF1", "IDSW", "Frag", "MT", "ML")


def gt_heads(gt: pd.DataFrame) -> pd.DataFrame:
    """Keep the rows MOTChallenge scores: conf != 0 ('consider') and, when classes are given, head classes."""
    keep = gt["conf"].fillna(1).to_numpy() != 0
    cls = gt["cls"].to_numpy()
    if not np.isnan(cls).all() and (cls != -1).any():
        keep &= np.isin(cls, HT21_HEADS)
    return gt[keep]


def sequence_data(gt: pd.DataFrame, pred: pd.DataFrame, frames: int) -> dict:
    """Build TrackEval's input for one sequence: per frame, 0-based gt and tracker IDs and their IoU matrix.

    Args:
        gt (pd.DataFrame): Ground truth rows (read_mot columns) of the heads to score.
        pred (pd.DataFrame): Tracker rows (read_mot columns).
        frames (int): Frames in the sequence (frames without rows count, as empty).

    Returns:
        (dict): The `data` TrackEval's metric classes' `eval_sequence` takes.
    """
    gt_ids, gt_index = np.unique(gt["id"].to_numpy(), return_inverse=True)
    tr_ids, tr_index = np.unique(pred["id"].to_numpy(), return_inverse=True)
    g_by, t_by = rows_by_frame(gt, frames), rows_by_frame(pred, frames)
    g_box, t_box = gt[["x1", "y1", "x2", "y2"]].to_numpy(), pred[["x1", "y1", "x2", "y2"]].to_numpy()
    data = {"gt_ids": [], "tracker_ids": [], "similarity_scores": []}
    for g, t in zip(g_by, t_by):  # one IoU matrix per frame
        data["gt_ids"].append(gt_index[g])
        data["tracker_ids"].append(tr_index[t])
        data["similarity_scores"].append(bbox_ioa(g_box[g], t_box[t], iou=True))
    data.update(
        num_timesteps=frames,
        num_gt_ids=len(gt_ids),
        num_tracker_ids=len(tr_ids),
        num_gt_dets=len(gt),
        num_tracker_dets=len(pred),
    )
    return data


def score_tracks(gt: pd.DataFrame, pred: pd.DataFrame, frames: int) -> dict[str, float]:
    """Return HOTA, DetA, AssA (HOTA averaged over its IoU thresholds), MOTA, IDF1, ID switches, fragmentations, and
    the people mostly tracked (MT, >= 80 % of their frames) and mostly lost (ML, < 20 %): a unique count can be right
    while many people are lost and others are split into several tracks.

    Args:
        gt (pd.DataFrame): Ground truth rows to score (see `gt_heads`).
        pred (pd.DataFrame): Tracker rows.
        frames (int): Frames in the sequence.

    Returns:
        (dict[str, float]): Metrics in TRACK_KEYS; the ratios are fractions in [0, 1] (MOTA can be negative).
    """
    data = sequence_data(gt, pred, frames)
    hota = HOTA().eval_sequence(data)
    clear = CLEAR({"PRINT_CONFIG": False}).eval_sequence(data)
    ident = Identity({"PRINT_CONFIG": False}).eval_sequence(data)
    return {
        "HOTA": float(np.mean(hota["HOTA"])),
        "DetA": float(np.mean(hota["DetA"])),
        "AssA": float(np.mean(hota["AssA"])),
        "MOTA": float(clear["MOTA"]),
        "IDF1": float(ident["IDF1"]),
        "IDSW": int(clear["IDSW"]),
        "Frag": int(clear["Frag"]),
        "MT": int(clear["MT"]),
        "ML": int(clear["ML"]),
    }


def count_tracks(
    df: pd.DataFrame,
    frames: int,
    lines: Sequence[np.ndarray] = (),
    min_frames: int = 1,
    band: float = 0.0,
    min_conf: float = 0.0,
    settle: int = 1,
) -> dict:
    """Run `TrackCounter` over MOT rows: the unique heads and line crossings those tracks make.

    Args:
        df (pd.DataFrame): Rows (read_mot columns).
        frames (int): Frames in the sequence.
        lines (Sequence[np.ndarray]): Counting lines (2, 2).
        min_frames (int): Frames a track needs to count as unique (1 for ground truth).
        band (float): `TrackCounter`'s band around each line, in box heights (0 for ground truth).
        min_conf (float): Mean score a track needs to count (`TrackCounter`'s `min_conf`), from the "conf" column
            (0 for ground truth).
        settle (int): Updates a head must stay on the new side of a line for the crossing to count (1 for ground
            truth).

    Returns:
        (dict): TrackCounter's summary.
    """
    counter = TrackCounter(lines=lines, min_frames=min_frames, band=band, min_conf=min_conf, settle=settle)
    boxes, ids = df[["x1", "y1", "x2", "y2"]].to_numpy(), df["id"].to_numpy()
    conf = df["conf"].to_numpy() if "conf" in df else np.ones(len(df))
    for rows in rows_by_frame(df, frames):
        counter.update(ids[rows], boxes[rows], conf[rows])
    counter.end()
    return counter.summary()


def count_errors(truth: dict, found: dict) -> dict[str, float]:
    """Relative errors of the unique count and of the crossings (in and out of every line together).

    Args:
        truth (dict): `count_tracks` of the ground truth.
        found (dict): `count_tracks` of the tracker's output.

    Returns:
        (dict[str, float]): unique_gt, unique, unique_err (signed, relative), crossings_gt, crossings,
            crossings_err (sum of absolute per-line, per-direction errors over the true total).
    """
    true_x = np.array([[x["in"], x["out"]] for x in truth["lines"]]).reshape(-1, 2)
    found_x = np.array([[x["in"], x["out"]] for x in found["lines"]]).reshape(-1, 2)
    n_true = int(true_x.sum())
    return {
        "unique_gt": truth["unique_heads"],
        "unique": found["unique_heads"],
        "unique_err": (found["unique_heads"] - truth["unique_heads"]) / max(truth["unique_heads"], 1),
        "crossings_gt": n_true,
        "crossings": int(found_x.sum()),
        "crossings_err": float(np.abs(found_x - true_x).sum() / max(n_true, 1)),
    }
