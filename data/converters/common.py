"""What every converter shares: the report, the destination folder, box cleaning and writing YOLO labels."""

from __future__ import annotations

import json
import os
import shutil
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from ultralytics.utils import LOGGER, YAML
from ultralytics.utils.ops import xyxy2xywhn

from .summary import format_table

CONVERTER_VERSION = 1  # bump when the labels a converter writes change, so ensure_dataset re-converts
MARKER = ".prepared-by-data-prepare"  # ownership marker: only folders carrying it are ever cleared
LINK_MODES = ("symlink", "hardlink", "copy")
BOX_DROPS = {  # box-cleaning outcome -> wording in messages and in the summary
    "degenerate": "zero-area boxes dropped",
    "outside": "boxes entirely outside the image dropped",
    "duplicate": "duplicate boxes dropped",
    "clipped": "boxes partly outside the image clipped to it",
}


class DatasetLayoutError(Exception):
    """The raw copy does not look like the release the converter expects; the message describes the layout."""


@dataclass
class Report:
    """Everything a conversion did: per-split counts, box accounting, skipped items and notes.

    Attributes:
        dataset (str): dataset name, e.g. 'SCUT-Head'.
        src (str): raw release folder.
        dst (str): output folder.
        counts (dict[str, np.ndarray]): split -> (I,) heads per image written.
        wh (dict[str, np.ndarray]): split -> (N, 2) width and height in pixels of every head written.
        boxes (Counter): box accounting: 'read', 'degenerate', 'outside', 'duplicate', 'clipped', 'written' and
            converter-specific keys (e.g. 'ignore region (class 3)').
        skipped (list[str]): one line per skipped item or dropped data, 'file: why'.
        notes (list[str]): other things the user should know (absent splits, odd class names, fallbacks).
    """

    dataset: str
    src: str = ""
    dst: str = ""
    counts: dict[str, np.ndarray] = field(default_factory=dict)
    wh: dict[str, np.ndarray] = field(default_factory=dict)
    boxes: Counter = field(default_factory=Counter)
    skipped: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)

    def skip(self, file: str | Path, why: str) -> None:
        """Record and log, as one line naming the file, an item (or part of one) left out of the conversion."""
        line = f"{file}: {why}"
        self.skipped.append(line)
        LOGGER.warning(line)

    def warn(self, file: str | Path, why: str) -> None:
        """Record and log, as one line naming the file, a repair that keeps the data (e.g. a clipped box)."""
        line = f"{file}: {why}"
        self.notes.append(line)
        LOGGER.warning(line)

    def note(self, message: str) -> None:
        """Record and log something the user should know that drops no data."""
        self.notes.append(message)
        LOGGER.info(message)

    def summary(self) -> str:
        """Human-readable summary: the per-split table, box accounting, skipped items and notes."""
        b = self.boxes
        lines = [f"{self.dataset}: {self.src} -> {self.dst}", *format_table(self.counts, self.wh)]
        extra = [k for k in b if k not in {"read", "written", *BOX_DROPS}]
        if extra:  # rows or objects left out before the box checks, e.g. HT21 class 3 or malformed rows
            lines.append("left out before box checks: " + "; ".join(f"{k}: {b[k]}" for k in extra))
        lines.append(
            f"boxes read: {b['read']}; "
            + "; ".join(f"{BOX_DROPS[k]}: {b[k]}" for k in BOX_DROPS)
            + f"; heads written: {b['written']}"
        )
        lines.append(f"skipped items: {len(self.skipped)}" + "".join(f"\n  {s}" for s in self.skipped))
        lines.append(f"notes: {len(self.notes)}" + "".join(f"\n  {s}" for s in self.notes))
        return "\n".join(lines)

    def to_dict(self) -> dict:
        """JSON-ready form, saved as summary.json beside the converted data."""
        return {
            "dataset": self.dataset,
            "src": self.src,
            "dst": self.dst,
            "converter_version": CONVERTER_VERSION,
            "splits": {s: {"images": len(c), "heads": int(c.sum())} for s, c in self.counts.items()},
            "boxes": dict(self.boxes),
            "skipped": self.skipped,
            "notes": self.notes,
        }


@dataclass
class SplitData:
    """Raw boxes of one split as read from the annotations, before cleaning.

    Attributes:
        images (list[Path]): source image of each output image.
        names (list[str]): output file name of each image, unique within the split.
        sizes (np.ndarray): (I, 2) real width and height of each image.
        sources (list[str]): annotation file each image's boxes came from, for messages.
        xyxy (np.ndarray): (N, 4) boxes x1, y1, x2, y2 in pixels.
        group (np.ndarray): (N,) index of each box's image.
        lines (np.ndarray | None): (N,) line of each box in its annotation file, for messages.
    """

    images: list[Path] = field(default_factory=list)
    names: list[str] = field(default_factory=list)
    sizes: np.ndarray = field(default_factory=lambda: np.zeros((0, 2), dtype=np.int64))
    sources: list[str] = field(default_factory=list)
    xyxy: np.ndarray = field(default_factory=lambda: np.zeros((0, 4)))
    group: np.ndarray = field(default_factory=lambda: np.zeros(0, dtype=np.int64))
    lines: np.ndarray | None = None


def clean_boxes(xyxy: np.ndarray, size: np.ndarray, group: np.ndarray) -> tuple[np.ndarray, np.ndarray, dict]:
    """Drop zero-area, outside and duplicate boxes and clip the rest to their image, vectorised over all boxes.

    Args:
        xyxy (np.ndarray): (N, 4) boxes x1, y1, x2, y2 in pixels (non-finite values count as zero-area).
        size (np.ndarray): (N, 2) width and height of each box's image.
        group (np.ndarray): (N,) image index of each box; duplicates are identical boxes within one image.

    Returns:
        keep (np.ndarray): (M,) ascending indices of the boxes kept.
        boxes (np.ndarray): (M, 4) the kept boxes, clipped to their image.
        flags (dict[str, np.ndarray]): (N,) bool masks 'degenerate', 'outside', 'duplicate', 'clipped'.
    """
    xyxy = np.asarray(xyxy, dtype=np.float64).reshape(-1, 4)
    with np.errstate(invalid="ignore"):
        degenerate = ~np.isfinite(xyxy).all(1) | (xyxy[:, 2] <= xyxy[:, 0]) | (xyxy[:, 3] <= xyxy[:, 1])
        clipped = np.clip(xyxy, 0, np.tile(size, 2))
        inside = (clipped[:, 2] > clipped[:, 0]) & (clipped[:, 3] > clipped[:, 1])
    outside = ~degenerate & ~inside
    ok = np.flatnonzero(~degenerate & inside)
    _, first = np.unique(np.column_stack([group[ok], clipped[ok]]), axis=0, return_index=True)
    keep = np.sort(ok[first])
    duplicate = np.zeros(len(xyxy), dtype=bool)
    duplicate[np.setdiff1d(ok, keep)] = True
    was_clipped = np.zeros(len(xyxy), dtype=bool)
    was_clipped[keep] = (clipped[keep] != xyxy[keep]).any(1)
    flags = {"degenerate": degenerate, "outside": outside, "duplicate": duplicate, "clipped": was_clipped}
    return keep, clipped[keep], flags


def format_labels(xywhn: np.ndarray) -> str:
    """YOLO label text for class-0 boxes, 'cls cx cy w h' per line, in one formatting call rather than one per box."""
    return ("0 %.6f %.6f %.6f %.6f\n" * len(xywhn)) % tuple(xywhn.ravel().tolist())


class Output:
    """The destination folder: ownership check, clearing of a previous conversion, image placement, data.yaml.

    Only a folder that is new, empty or was written by data/prepare.py (it carries MARKER) is used, and only its
    images/, labels/, data.yaml and summary.json are replaced, so re-running is idempotent and nothing else is touched.
    """

    def __init__(self, dst: str | Path, src: str | Path, link: str = "symlink"):
        """Claim dst for a conversion of src, clearing what an earlier conversion wrote there."""
        if link not in LINK_MODES:
            raise ValueError(f"link must be one of {LINK_MODES}, not '{link}'")
        self.dst, self.src, self.link = Path(dst).resolve(), Path(src).resolve(), link
        if self.dst == self.src or self.src in self.dst.parents or self.dst in self.src.parents:
            raise ValueError(f"--dst {self.dst} and --src {self.src} overlap: converters never write near the source")
        if self.dst.is_dir() and any(self.dst.iterdir()) and not (self.dst / MARKER).exists():
            raise FileExistsError(f"{self.dst}: not empty and not written by data/prepare.py; choose a new --dst")
        self.dst.mkdir(parents=True, exist_ok=True)
        (self.dst / MARKER).write_text(f"converted from {self.src}\n")
        for name in ("data.yaml", "summary.json"):  # data.yaml last written = conversion complete
            (self.dst / name).unlink(missing_ok=True)
        for name in ("images", "labels"):
            if (self.dst / name).is_symlink():  # never follow a link out of dst
                (self.dst / name).unlink()
            shutil.rmtree(self.dst / name, ignore_errors=True)

    def place(self, src: Path, dst: Path) -> None:
        """Put an image at dst by symlink, hard link or copy; falls back to copying where links are not possible."""
        try:
            if self.link == "symlink":
                dst.symlink_to(src.resolve())
                return
            if self.link == "hardlink":
                os.link(src, dst)
                return
        except OSError as e:  # e.g. hard link across file systems, symlinks not permitted
            LOGGER.warning(f"{dst}: {self.link} failed ({e}); copying images instead")
            self.link = "copy"
        shutil.copy2(src, dst)

    def write_split(self, split: str, data: SplitData, report: Report) -> None:
        """Clean the boxes of one split, report what was dropped or clipped per file, write images and labels."""
        if not data.images:
            report.note(f"split '{split}': no usable image left, split not written")
            return
        order = np.argsort(data.group, kind="stable")
        xyxy, group = data.xyxy[order], data.group[order]
        lines = data.lines[order] if data.lines is not None else None
        keep, boxes, flags = clean_boxes(xyxy, data.sizes[group], group)
        _report_boxes(data, group, lines, flags, report)
        report.boxes["read"] += len(xyxy)
        report.boxes.update({k: int(v.sum()) for k, v in flags.items()})
        wh = data.sizes[group[keep]]
        xywhn = xyxy2xywhn(boxes, w=wh[:, 0], h=wh[:, 1])
        bounds = np.searchsorted(group[keep], np.arange(len(data.images) + 1))
        (self.dst / "images" / split).mkdir(parents=True, exist_ok=True)
        (self.dst / "labels" / split).mkdir(parents=True, exist_ok=True)
        for i, (image, name) in enumerate(zip(data.images, data.names, strict=True)):
            self.place(image, self.dst / "images" / split / name)
            text = format_labels(xywhn[bounds[i] : bounds[i + 1]])
            (self.dst / "labels" / split / name).with_suffix(".txt").write_text(text)
        report.boxes["written"] += len(keep)
        report.counts[split] = np.diff(bounds)
        report.wh[split] = boxes[:, 2:] - boxes[:, :2]

    def finish(self, report: Report) -> Path:
        """Write summary.json then data.yaml (its presence marks a complete conversion); returns data.yaml's path."""
        splits = [s for s in ("train", "val", "test") if s in report.counts]
        if not splits:
            raise DatasetLayoutError(f"{report.src}: nothing to convert (no split with images and annotations)")
        cfg = {"path": str(self.dst), "train": None, **{s: f"images/{s}" for s in splits}}  # Ultralytics wants both
        if "val" not in splits:  # keys present, so an evaluation-only copy stays a valid data YAML
            cfg["val"] = cfg.get("test") or cfg["train"]
            report.note(f"no val split: val uses {cfg['val']}")
        if "train" not in splits:
            report.note(f"no train split: evaluate with val.py --data {self.dst / 'data.yaml'} --task {splits[0]}")
        cfg["names"] = {0: "head"}
        (self.dst / "summary.json").write_text(json.dumps(report.to_dict(), indent=1))
        tmp = self.dst / "data.tmp.yaml"
        YAML.save(tmp, cfg, header=f"# {report.dataset} converted by data/prepare.py from {report.src}\n")
        tmp.replace(self.dst / "data.yaml")
        return self.dst / "data.yaml"


def parse_int(text: str | None) -> int:
    """Integer from an annotation field (XML, ini), 0 when missing or malformed; callers replace 0 by the real size."""
    try:
        return int(float(text))
    except (TypeError, ValueError, OverflowError):
        return 0


def _report_boxes(data: SplitData, group: np.ndarray, lines: np.ndarray | None, flags: dict, report: Report) -> None:
    """One line per annotation file and kind of problem (dropped or clipped boxes), with line numbers when known."""
    src_id = {s: i for i, s in enumerate(dict.fromkeys(data.sources))}
    box_src = np.array([src_id[s] for s in data.sources], dtype=np.int64)[group] if len(group) else group
    names = list(src_id)
    for kind, mask in flags.items():
        for sid in np.unique(box_src[mask]):
            hit = mask & (box_src == sid)
            where = ""
            if lines is not None:
                shown = np.sort(lines[hit])[:5].tolist()
                where = f" (line{'s' * (len(shown) > 1)} {', '.join(map(str, shown))}{', ...' * bool(hit.sum() > 5)})"
            log = report.warn if kind == "clipped" else report.skip
            log(names[sid], f"{BOX_DROPS[kind]}: {int(hit.sum())}{where}")
