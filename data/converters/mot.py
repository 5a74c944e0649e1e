"""MOTChallenge-layout sequences (CroHD / HT21 and GTA_Head) -> YOLO labels, one image per frame, split by sequence."""

from __future__ import annotations

import configparser
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pandas as pd
from ultralytics.data.utils import IMG_FORMATS

from .common import DatasetLayoutError, Output, Report, SplitData, parse_int
from .images import check_image

COLUMNS = ("frame", "id", "left", "top", "width", "height", "conf", "cls", "vis", "extra")
SPLIT_DIRS = ("train", "val", "test")
IMAGE_DIRS = ("img1", "images", "img", "imgs", "frames")  # img1 is MOTChallenge's; the rest for loose copies
MOT_LAYOUT = """expected the MOTChallenge layout:
  RAW/{train,test}/<sequence>/img1/000001.jpg   frames, numbered from 1
  RAW/{train,test}/<sequence>/gt/gt.txt         one row per head: frame, id, left, top, width, height in pixels,
                                                optionally conf, class, visibility (6 to 10 comma- or space-separated
                                                columns); det/det.txt is never read
  RAW/{train,test}/<sequence>/seqinfo.ini       [Sequence] imWidth, imHeight, imDir, imExt"""
HT21_HEADS, HT21_IGNORE = (1, 2, 4), 3  # HT21 classes: 1, 2, 4 are heads; 3 marks regions to ignore
OUT_OF_FRAME, MIN_OUT_OF_FRAME = 0.05, 5  # more boxes entirely outside the frames than this: the layout is wrong


def convert_crohd(
    src: str | Path,
    dst: str | Path,
    link: str = "symlink",
    val_seqs: tuple[str, ...] | None = None,
    frame_step: int = 1,
) -> Report:
    """Convert CroHD (HT21) into YOLO labels: train sequences with ground truth, val held out by sequence.

    Rows kept: conf != 0, visibility > 0, class 1, 2 or 4 (heads). Class 3 rows mark regions to ignore: they are
    dropped (counted, not heads) because YOLO labels have no ignore label; so they neither count as heads nor as
    boxes to learn. Test ground truth is private: test sequences without gt/gt.txt are noted and left out.

    Args:
        src (str | Path): the HT21 folder holding train/ (and test/).
        dst (str | Path): output folder.
        link (str): 'symlink' (default), 'hardlink' or 'copy'.
        val_seqs (tuple[str, ...] | None): training sequences moved to val; None: the last one (HT21-04).
        frame_step (int): convert every frame_step-th frame of each sequence (its first, then every frame_step-th
            after it): at 25 fps, neighbouring frames are near duplicates.

    Returns:
        (Report): the conversion report.
    """
    return convert_mot(src, dst, "CroHD", _crohd_rows, link, val_seqs, default_val="last", frame_step=frame_step)


def convert_gta_head(
    src: str | Path,
    dst: str | Path,
    link: str = "symlink",
    val_seqs: tuple[str, ...] | None = None,
    frame_step: int = 1,
) -> Report:
    """Convert GTA_Head (MOTChallenge layout, 24 train and 11 test sequences of 1920x1080 frames) into YOLO labels.

    The release documents only 'MOTChallenge format, xmin, ymin, width, height in pixels', so rows are kept unless an
    optional 7th column (MOT's 'consider' flag) is 0; class and visibility columns, if any, are not interpreted.

    Args:
        src (str | Path): folder holding train/ and test/ sequence folders.
        dst (str | Path): output folder.
        link (str): 'symlink' (default), 'hardlink' or 'copy'.
        val_seqs (tuple[str, ...] | None): training sequences moved to val; None: no val split (val uses test).
        frame_step (int): convert every frame_step-th frame of each sequence (as `convert_crohd`).

    Returns:
        (Report): the conversion report.
    """
    return convert_mot(src, dst, "GTA_Head", _gta_rows, link, val_seqs, default_val="none", frame_step=frame_step)


def convert_mot(
    src: str | Path,
    dst: str | Path,
    dataset: str,
    rows: Callable[[pd.DataFrame, Path, Report], np.ndarray],
    link: str,
    val_seqs: tuple[str, ...] | None,
    default_val: str,
    frame_step: int = 1,
) -> Report:
    """Shared MOT conversion: find sequences, read frames and gt, move val sequences, write every split.

    Args:
        src (str | Path): folder holding train/ (val/, test/) sequence folders.
        dst (str | Path): output folder.
        dataset (str): name for the report.
        rows (Callable): (gt DataFrame, gt path, report) -> bool mask of the rows that are heads.
        link (str): 'symlink', 'hardlink' or 'copy'.
        val_seqs (tuple[str, ...] | None): training sequences moved to val; None: default_val decides.
        default_val (str): 'last' (hold out the last training sequence) or 'none'.
        frame_step (int): convert each sequence's first frame and every frame_step-th after it; the ground truth of
            the frames in between is left out with them.

    Returns:
        (Report): the conversion report.
    """
    if isinstance(frame_step, bool) or not isinstance(frame_step, int) or frame_step < 1:
        raise ValueError(f"frame step must be a whole number >= 1, got {frame_step!r}")
    src = Path(src)
    seqs = find_sequences(src)
    train = [s.name for s in seqs.get("train", [])]
    if val_seqs is None:
        val_seqs = (train[-1],) if default_val == "last" and len(train) > 1 and "val" not in seqs else ()
    if unknown := sorted(set(val_seqs) - set(train)):
        raise ValueError(f"val sequences {unknown} not among the training sequences {train} in {src}")
    out = Output(dst, src, link)
    report = Report(dataset, str(src.resolve()), str(out.dst))
    by_split: dict[str, list[Path]] = {}
    for split, dirs in seqs.items():
        for seq in dirs:
            by_split.setdefault("val" if seq.name in val_seqs else split, []).append(seq)
    for split in (s for s in SPLIT_DIRS if s in by_split):
        data = SplitData(lines=np.zeros(0, dtype=np.int64))
        for seq in by_split[split]:
            _read_sequence(seq, rows, data, report, frame_step)
        if data.images:  # each sequence left out was already reported
            out.write_split(split, data, report)
    if val_seqs:
        report.note(f"val split: sequences {', '.join(val_seqs)} (held out from train by sequence, never by frame)")
    if frame_step > 1:
        report.note(f"frame step {frame_step}: one frame in {frame_step} converted per sequence, from its first")
    out.finish(report)
    return report


def find_sequences(src: Path) -> dict[str, list[Path]]:
    """Split folder name -> sequence folders (those holding frames), sorted; raises when src is not MOT-like."""
    if not src.is_dir():
        raise DatasetLayoutError(f"{src}: not a folder; {MOT_LAYOUT}")
    splits = {p.name.lower(): p for p in sorted(src.iterdir()) if p.is_dir() and p.name.lower() in SPLIT_DIRS}
    seqs = {s: [q for q in sorted(p.iterdir()) if q.is_dir() and image_dir(q)] for s, p in splits.items()}
    seqs = {s: v for s, v in seqs.items() if v}
    if not seqs:
        hint = (
            " (it looks like one split or sequence: pass its parent)"
            if image_dir(src) or any(image_dir(q) for q in src.iterdir() if q.is_dir())
            else ""
        )
        raise DatasetLayoutError(f"{src}: no train/ or test/ folder with sequences{hint}; {MOT_LAYOUT}")
    return seqs


def read_gt(gt: Path, report: Report) -> pd.DataFrame:
    """Read a MOT gt file, vectorised: rows with a non-numeric or missing field are dropped with one message.

    Args:
        gt (Path): gt.txt, 6 to 10 comma- or whitespace-separated columns.
        report (Report): where dropped rows are recorded.

    Returns:
        (pd.DataFrame): columns frame, id, left, top, width, height, conf, cls, vis (NaN when the file has no such
            column) and line (1-based line number in the file).
    """
    with open(gt, encoding="utf-8-sig", errors="replace") as f:
        first = next((ln for ln in f if ln.strip()), "")
    sep = "," if "," in first else r"\s+"
    fields = len(first.strip().rstrip(",").split(",") if sep == "," else first.split())
    if first and not 6 <= fields <= len(COLUMNS):
        raise DatasetLayoutError(f"{gt}: first row has {fields} columns, expected 6 to 10; {MOT_LAYOUT}")
    try:
        df = pd.read_csv(
            gt,
            header=None,
            names=list(COLUMNS),
            sep=sep,
            skip_blank_lines=False,
            index_col=False,
            encoding="utf-8-sig",
            encoding_errors="replace",  # undecodable bytes become non-numeric cells: those rows are reported
        )
    except pd.errors.ParserError as e:
        raise DatasetLayoutError(f"{gt}: more than {len(COLUMNS)} columns ({e}); {MOT_LAYOUT}") from None
    except pd.errors.EmptyDataError:
        df = pd.DataFrame(columns=list(COLUMNS))
    df["line"] = np.arange(1, len(df) + 1)
    df = df[df[list(COLUMNS)].notna().any(axis=1)]  # blank lines
    ncols = int(df[list(COLUMNS)].notna().to_numpy().any(0).nonzero()[0].max() + 1) if len(df) else 6
    used = list(COLUMNS[:ncols])
    df[used] = df[used].apply(pd.to_numeric, errors="coerce")  # non-numeric cells -> NaN, a no-op for clean files
    bad = df[used].isna().any(axis=1).to_numpy() | (df["frame"] % 1 != 0).to_numpy()
    if bad.any():
        lines = df["line"].to_numpy()[bad]
        shown = ", ".join(map(str, lines[:5])) + ", ..." * (len(lines) > 5)
        report.skip(
            gt,
            f"rows with a non-numeric, missing or fractional-frame field dropped: {len(lines)} "
            f"(line{'s' * (len(lines) > 1)} {shown})",
        )
        report.boxes["malformed row"] += len(lines)
    return df[~bad].astype({c: np.float64 for c in COLUMNS})


def _crohd_rows(df: pd.DataFrame, gt: Path, report: Report) -> np.ndarray:
    """HT21 row filter: heads are classes 1, 2, 4 with conf != 0 and visibility > 0; reasons are counted."""
    conf = df["conf"].fillna(1).to_numpy()
    cls = df["cls"].fillna(1).to_numpy()
    vis = df["vis"].fillna(1).to_numpy()
    reasons = {  # first matching reason wins, so the counts add up
        "zero conf": conf == 0,
        "ignore region (class 3)": cls == HT21_IGNORE,
        "unknown class": ~np.isin(cls, (*HT21_HEADS, HT21_IGNORE)),
        "not visible": vis <= 0,
    }
    dropped = np.zeros(len(df), dtype=bool)
    for reason, mask in reasons.items():
        reasons[reason] = mask = mask & ~dropped
        report.boxes[reason] += int(mask.sum())
        dropped |= mask
    if (unknown := reasons["unknown class"]).any():
        report.skip(gt, f"rows of unknown class {sorted(set(cls[unknown].tolist()))} dropped: {int(unknown.sum())}")
    return ~dropped


def _gta_rows(df: pd.DataFrame, gt: Path, report: Report) -> np.ndarray:
    """GTA_Head row filter: keep every row except those whose optional 7th column (MOT 'consider' flag) is 0."""
    zero = (df["conf"] == 0).to_numpy()
    report.boxes["zero conf"] += int(zero.sum())
    return ~zero


def _read_sequence(seq: Path, rows: Callable, data: SplitData, report: Report, frame_step: int = 1) -> None:
    """Append one sequence's frames (its first and every frame_step-th after it) and their kept boxes to data;
    problems are reported, layout mismatches raise."""
    gt = next((g for g in (seq / "gt" / "gt.txt", seq / "gt.txt") if g.is_file()), None)
    if gt is None:
        if seq.parent.name.lower() == "test":
            report.note(f"{seq}: no gt/gt.txt (test ground truth not public): not converted")
        else:
            report.skip(seq / "gt" / "gt.txt", "ground truth missing: sequence not converted")
        return
    img_dir, frames = _frames(seq, report)
    stepped = {i for i in frames if (i - min(frames)) % frame_step} if frames else set()  # left out by the step
    frames = {i: p for i, p in frames.items() if i not in stepped}
    checks = {i: check_image(p) for i, p in frames.items()}  # every frame: one bad file must not stop the rest
    for i, c in checks.items():
        if c.problem:
            report.skip(frames[i], f"{c.problem}: frame not converted")
    frames = {i: p for i, p in frames.items() if not checks[i].problem}
    if not frames:
        report.skip(img_dir, "no readable frames: sequence not converted")
        return
    w, h = _frame_size(seq, checks[min(frames)].size, report)
    df = read_gt(gt, report)
    df = df[~df["frame"].isin(stepped)]  # their rows go with them, before any row is counted
    df = df[rows(df, gt, report)]
    xyxy = df[["left", "top", "width", "height"]].to_numpy()
    xyxy[:, 2:] += xyxy[:, :2]
    _check_layout(xyxy, w, h, gt)
    ids = np.array(sorted(frames))
    at = np.clip(np.searchsorted(ids, df["frame"].to_numpy()), 0, len(ids) - 1)
    found = ids[at] == df["frame"].to_numpy()
    if (~found).any():
        missing = np.unique(df["frame"].to_numpy()[~found]).astype(int)
        report.skip(
            gt,
            f"rows for frames with no usable image in {img_dir.name}/ dropped: {int((~found).sum())} "
            f"(frames {', '.join(map(str, missing[:5]))}{', ...' * (len(missing) > 5)})",
        )
        report.boxes["frame without image"] += int((~found).sum())
    offset = len(data.images)
    data.images += [frames[i] for i in ids]
    data.names += [f"{seq.name}_{frames[i].name}" for i in ids]
    data.sources += [str(gt)] * len(ids)
    data.sizes = np.concatenate([data.sizes, np.tile([w, h], (len(ids), 1))])
    data.xyxy = np.concatenate([data.xyxy, xyxy[found]])
    data.group = np.concatenate([data.group, at[found] + offset])
    data.lines = np.concatenate([data.lines, df["line"].to_numpy()[found].astype(np.int64)])


def image_dir(seq: Path) -> Path | None:
    """The frames folder of a sequence: seqinfo.ini's imDir, else the first of IMAGE_DIRS that exists."""
    info = seqinfo(seq)
    names = ([info["imdir"]] if info and info.get("imdir") else []) + list(IMAGE_DIRS)
    return next((seq / n for n in names if (seq / n).is_dir()), None)


def seqinfo(seq: Path) -> dict[str, str] | None:
    """[Sequence] of seqinfo.ini with lower-case keys, or None when absent or unreadable."""
    parser = configparser.ConfigParser()
    try:
        parser.read(seq / "seqinfo.ini")
    except (configparser.Error, UnicodeDecodeError):  # a broken ini is reported as missing
        return None
    return dict(parser["Sequence"]) if parser.has_section("Sequence") else None


def _frames(seq: Path, report: Report) -> tuple[Path, dict[int, Path]]:
    """Frames folder and frame number -> image for a sequence; files not named by a number are reported."""
    img_dir = image_dir(seq)
    files = [p for p in img_dir.iterdir() if p.suffix[1:].lower() in IMG_FORMATS]
    frames = {int(p.stem): p for p in files if p.stem.isdigit()}
    if len(frames) < len(files):
        report.skip(img_dir, f"images not named by frame number ignored: {len(files) - len(frames)}")
    return img_dir, frames


def _frame_size(seq: Path, size: tuple[int, int], report: Report) -> tuple[int, int]:
    """Real frame size (of the first readable frame), checked against seqinfo.ini (reported if absent or different)."""
    w, h = size
    info = seqinfo(seq)
    if info is None:
        report.warn(seq / "seqinfo.ini", f"missing or unreadable: frame size {w}x{h} read from the first frame")
        return w, h
    declared = (parse_int(info.get("imwidth")), parse_int(info.get("imheight")))
    if declared == (h, w) and w != h:
        report.warn(seq / "seqinfo.ini", f"imWidth/imHeight {declared[0]}x{declared[1]} swapped: frames are {w}x{h}")
    elif declared != (w, h):
        report.warn(seq / "seqinfo.ini", f"declares {declared[0]}x{declared[1]} but frames are {w}x{h}; using frames")
    return w, h


def _check_layout(xyxy: np.ndarray, w: int, h: int, gt: Path) -> None:
    """Stop when boxes do not fit the frames: columns swapped (top, left, height, width), normalised or other units.

    Boxes partly outside are normal at frame borders (they are clipped later); many boxes entirely outside are not.
    """
    if not len(xyxy):
        return
    if np.nanmax(np.abs(xyxy)) <= 1.5:
        raise DatasetLayoutError(f"{gt}: all box values are within [0, 1.5]: normalised, not pixels; {MOT_LAYOUT}")
    n_out = _outside(xyxy, w, h)
    if n_out <= max(OUT_OF_FRAME * len(xyxy), MIN_OUT_OF_FRAME):
        return
    if _outside(xyxy[:, [1, 0, 3, 2]], w, h) <= OUT_OF_FRAME * len(xyxy):
        why = "they fit once x/y and width/height are swapped (top, left, height, width order?)"
    else:
        why = "wrong columns, units or frame size"
    raise DatasetLayoutError(
        f"{gt}: {n_out} of {len(xyxy)} boxes lie entirely outside the {w}x{h} frames; {why}; {MOT_LAYOUT}"
    )


def _outside(xyxy: np.ndarray, w: int, h: int) -> int:
    """Number of boxes entirely outside a w x h frame."""
    return int(((xyxy[:, 0] >= w) | (xyxy[:, 1] >= h) | (xyxy[:, 2] <= 0) | (xyxy[:, 3] <= 0)).sum())
