"""val.py --task track: track heads through MOTChallenge sequences and score the tracks and the counts they give.

A sequence is a folder holding gt/gt.txt and its frames (img1/, as MOTChallenge, CroHD/HT21 and our synthetic videos
lay them out). Per sequence: HOTA, DetA, AssA, MOTA, IDF1 (TrackEval), the unique-head count error, the line-crossing
error when lines are given, the per-frame count MAE, and the frames per second of detection plus tracking.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pandas as pd
from ultralytics.utils import LOGGER

from data.converters.common import parse_int
from data.converters.mot import IMAGE_DIRS, image_dir, seqinfo
from utils.mot import read_mot, write_mot
from utils.predictor import CountingPredictor
from utils.track_metrics import TRACK_KEYS, count_errors, count_tracks, gt_heads, score_tracks
from utils.tracking import CROSS_FRAMES


def find_sequences(root: str | Path) -> list[Path]:
    """Return the MOT sequences under root (root itself, its children, or their children, as train/<seq>).

    Raises:
        FileNotFoundError: One line when there is none.
    """
    root = Path(root)
    found = sorted({gt.parent.parent for depth in ("", "*/", "*/*/") for gt in root.glob(f"{depth}gt/gt.txt")})
    if not found:
        raise FileNotFoundError(f"{root}: no MOTChallenge sequence (a folder with gt/gt.txt and img1/) in or under it")
    return found


def sequence_frames(seq: Path) -> tuple[Path, int]:
    """Return a sequence's frame folder (seqinfo.ini's imDir, else img1/, ...) and its number of frames (seqinfo.ini's
    seqLength, else the highest frame number among the images)."""
    im_dir = image_dir(seq)
    if im_dir is None:
        raise FileNotFoundError(f"{seq}: no frame folder ({', '.join(IMAGE_DIRS)} or seqinfo.ini's imDir)")
    n = parse_int((seqinfo(seq) or {}).get("seqlength"))
    if n <= 0:
        n = max((int(p.stem) for p in im_dir.iterdir() if p.stem.isdigit()), default=0)
    return im_dir, n


def track_sequence(predictor: CountingPredictor, frames_dir: Path) -> tuple[pd.DataFrame, np.ndarray, float]:
    """Track through a folder of frames.

    Returns:
        (tuple): Tracks (read_mot columns), (frame, head count) per frame read (M, 2), and the frames per second.
    """
    parts, counts = [], []
    t0 = time.perf_counter()
    for k, r in enumerate(predictor(source=str(frames_dir), stream=True), 1):
        b = r.boxes.cpu().numpy()
        stem = Path(r.path).stem
        frame = int(stem) if stem.isdigit() else k  # MOT frames are numbered by name; a skipped bad one leaves a gap
        counts.append((frame, r.count))
        if b.is_track and len(b):
            parts.append(np.column_stack([np.full(len(b), frame), b.id, b.xyxy, b.conf]))
    fps = len(counts) / max(time.perf_counter() - t0, 1e-9)
    rows = np.concatenate(parts) if parts else np.zeros((0, 7))
    df = pd.DataFrame(rows, columns=["frame", "id", "x1", "y1", "x2", "y2", "conf"])
    df[["frame", "id"]] = df[["frame", "id"]].astype(np.int64)
    return df, np.array(counts), fps


def score_sequence(
    gt: pd.DataFrame,
    pred: pd.DataFrame,
    frames: int,
    lines: Sequence[np.ndarray] = (),
    min_track_frames: int = 5,
    counts: np.ndarray | None = None,
    line_band: float = 0.0,
    min_track_conf: float = 0.0,
    cross_frames: int = 1,
) -> dict:
    """Score one sequence's tracks: TrackEval's metrics, unique-head and crossing errors, per-frame count MAE.

    Truths: unique heads are the people visible (visibility > 0, or not given) in at least `min_track_frames`
    frames, the rule tracks are held to; crossings follow the true paths in every frame, visible or not; the
    per-frame count is the visible heads.

    Args:
        gt (pd.DataFrame): Ground truth rows (`gt_heads`).
        pred (pd.DataFrame): Tracks (read_mot columns).
        frames (int): Frames in the sequence.
        lines (Sequence[np.ndarray]): Counting lines (2, 2).
        min_track_frames (int): Frames a track must last to count as a unique head.
        counts (np.ndarray, optional): (frame, head count) rows (M, 2) to compare with the visible heads.
        line_band (float): The band of the tracks' crossings (`TrackCounter`'s `band`); the true crossings use none.
        min_track_conf (float): Mean score a track must reach to count (`TrackCounter`'s `min_conf`).
        cross_frames (int): Updates a head must stay on the new side of a line (`TrackCounter`'s `settle`).

    Returns:
        (dict): TRACK_KEYS, `count_errors`' keys and, with counts, count_mae.
    """
    visible = gt[~(gt["vis"].to_numpy() <= 0)]  # NaN (no visibility column) counts as visible
    truth = count_tracks(gt, frames, lines)
    truth["unique_heads"] = count_tracks(visible, frames, (), min_track_frames)["unique_heads"]
    row = {
        **score_tracks(gt, pred, frames),
        **count_errors(
            truth, count_tracks(pred, frames, lines, min_track_frames, line_band, min_track_conf, cross_frames)
        ),
    }
    if counts is not None:
        frame, n = np.asarray(counts, dtype=np.int64).reshape(-1, 2).T
        truth = np.bincount(visible["frame"].to_numpy(), minlength=max(frames, frame.max(initial=0)) + 1)
        row["count_mae"] = float(np.abs(n - truth[frame]).mean()) if len(n) else float("nan")
    return row


def evaluate_tracking(
    root: str | Path,
    overrides: dict,
    tracker: str,
    lines: Sequence[np.ndarray] = (),
    min_track_frames: int = 5,
    save_dir: Path | None = None,
    line_band: float = 0.0,
    min_track_conf: float | None = None,
    cross_frames: int = CROSS_FRAMES,
) -> pd.DataFrame:
    """Track and score every sequence under root; print and save the table (track_results.csv, mot/<seq>.txt).

    Args:
        root (str | Path): A sequence folder or a folder of them.
        overrides (dict): Predictor settings (model, imgsz, conf, iou, max_det, device).
        tracker (str): Tracker YAML.
        lines (Sequence[np.ndarray]): Counting lines (2, 2) scored on every sequence.
        min_track_frames (int): Frames a track must last to count as a unique head.
        save_dir (Path, optional): Where to write the table and the tracks.
        line_band (float): Half-width in box heights of the band around each line where a head is on neither side.
        min_track_conf (float, optional): Mean score a track must reach to count; default: the count threshold +
            `utils.tracking.TRACK_CONF_MARGIN`.
        cross_frames (int): Updates a head must stay on the new side of a line for its crossing to count.

    Returns:
        (pd.DataFrame): One row per sequence and a final "mean" row.
    """
    sequences = find_sequences(root)
    predictor = CountingPredictor(
        overrides={**overrides, "save": False, "verbose": False},
        track=tracker,
        lines=lines,
        min_track_frames=min_track_frames,
        line_band=line_band,
        min_track_conf=min_track_conf,
        cross_frames=cross_frames,
    )
    rows = []
    for seq in sequences:
        try:  # a broken sequence is reported in one line and the others are still scored
            frames_dir, n = sequence_frames(seq)
            gt = gt_heads(read_mot(seq / "gt" / "gt.txt"))
        except (OSError, ValueError) as e:
            msg = str(e).splitlines()[0]
            LOGGER.error(msg if str(seq) in msg else f"{seq}: {msg}")
            continue
        pred, counts, fps = track_sequence(predictor, frames_dir)
        row = {
            "sequence": seq.name,
            "frames": n,
            **score_sequence(
                gt, pred, n, lines, min_track_frames, counts, line_band, predictor.tracking.min_track_conf, cross_frames
            ),
        }
        row["fps"] = fps
        rows.append(row)
        if save_dir:
            write_mot(
                save_dir / "mot" / f"{seq.name}.txt",
                pred["frame"].to_numpy(),
                pred["id"].to_numpy(),
                pred[["x1", "y1", "x2", "y2"]].to_numpy(),
                pred["conf"].to_numpy(),
            )
        LOGGER.info(_line(row))
    if not rows:
        raise ValueError(f"{root}: no sequence could be scored (see the errors above)")
    table = pd.DataFrame(rows)
    mean = table.drop(columns="sequence").mean(numeric_only=True)
    table = pd.concat([table, pd.DataFrame([{"sequence": "mean", **mean.to_dict()}])], ignore_index=True)
    if save_dir:
        save_dir.mkdir(parents=True, exist_ok=True)
        table.to_csv(save_dir / "track_results.csv", index=False, float_format="%.4g")
        LOGGER.info(f"Results saved to {save_dir} (track_results.csv, mot/<sequence>.txt)")
    return table


def _line(row: dict) -> str:
    """One printed line per sequence."""
    metrics = " ".join(f"{k} {row[k]:.3f}" if isinstance(row[k], float) else f"{k} {row[k]}" for k in TRACK_KEYS)
    cross = f", crossings {row['crossings']}/{row['crossings_gt']}" if row["crossings_gt"] else ""
    return (
        f"{row['sequence']}: {metrics}; unique heads {row['unique']}/{row['unique_gt']} "
        f"({row['unique_err']:+.1%}){cross}, count MAE {row['count_mae']:.2f}, {row['fps']:.1f} frames/s"
    )
