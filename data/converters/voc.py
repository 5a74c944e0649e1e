"""SCUT-Head (Part A or Part B) in Pascal VOC layout -> YOLO labels, every object a head (class 0)."""

from __future__ import annotations

import xml.etree.ElementTree as ET
from collections import Counter, defaultdict
from pathlib import Path

import numpy as np
from ultralytics.data.utils import IMG_FORMATS

from .common import DatasetLayoutError, Output, Report, SplitData, parse_int
from .images import check_image

SPLITS = ("train", "val", "test")
HEAD_NAMES = {"person", "head"}  # the release says 'person', some mirrors renamed it 'head'
COORDS = ("xmin", "ymin", "xmax", "ymax")
VOC_LAYOUT = """expected the Pascal VOC layout of one SCUT-Head part, e.g. SCUT_HEAD_Part_A/:
  Annotations/PartA_00000.xml            one XML per image (<size>, <object><bndbox> xmin ymin xmax ymax)
  JPEGImages/PartA_00000.jpg             the images
  ImageSets/Main/{train,val,test}.txt    the official splits, one image name per line (any or all may be absent:
                                         without any, every annotated image is converted as train)"""


def convert_scut_head(src: str | Path, dst: str | Path, link: str = "symlink") -> Report:
    """Convert one SCUT-Head part (Pascal VOC) into dst/images/<split> and dst/labels/<split>, plus dst/data.yaml.

    Box coordinates are taken as pixel positions (labelImg writes the drawn rectangle's corners, clamping 0 to 1), so a
    box spans [xmin, xmax] x [ymin, ymax] and xmin == xmax means zero area. Quirks handled: any class name counts as a
    head (names other than person/head are reported), the real image size replaces the declared one (Part B declares
    0x0 in 62 files), zero-area boxes are dropped and boxes outside the image clipped (both reported), an image with
    no heads keeps an empty label, <folder>/<path> are ignored, splits missing from ImageSets are noted. A partial
    copy converts what it has: any subset of the split lists, or none (every annotated image becomes train). Images
    that cannot be read (empty, truncated, not an image) are skipped, each with one line naming it.

    Args:
        src (str | Path): the part's folder, holding Annotations/, JPEGImages/ and ImageSets/Main/.
        dst (str | Path): output folder (new, empty or an earlier output of data/prepare.py).
        link (str): how images are placed in dst: 'symlink' (default), 'hardlink' or 'copy'.

    Returns:
        (Report): counts, box accounting, skipped items and notes; report.summary() is the text summary.
    """
    src = Path(src)
    splits = _read_splits(src)
    out = Output(dst, src, link)
    report = Report("SCUT-Head", str(src.resolve()), str(out.dst))
    main = src / "ImageSets" / "Main"
    if not splits:
        splits = {"train": sorted(p.stem for p in (src / "Annotations").glob("*.xml"))}
        report.note(f"no split list in {main}: every annotated image ({len(splits['train'])}) converted as train")
    for s in SPLITS:
        if s not in splits:
            report.note(f"split '{s}' absent: {main / (s + '.txt')} not found")
    if list(splits) == ["trainval"]:
        splits = {"train": splits["trainval"]}
        report.note(f"{main / 'trainval.txt'} is the only split list: used as train")
    odd, declared_zero = Counter(), []
    for split, stems in splits.items():
        data = _read_split(src, stems, split, report, odd, declared_zero)
        out.write_split(split, data, report)
    listed = {stem for stems in splits.values() for stem in stems}
    unlisted = [p.name for p in sorted((src / "JPEGImages").iterdir()) if p.stem not in listed]
    if unlisted:
        report.note(
            f"{len(unlisted)} files in {src / 'JPEGImages'} are in no split list or have no annotation, not "
            f"converted: {', '.join(unlisted[:5])}{', ...' * (len(unlisted) > 5)}"
        )
    if odd:
        report.note(
            "class names other than person/head, treated as head: "
            + ", ".join(f"'{name}' x{n} in {', '.join(sorted(files)[:5])}" for (name, files), n in _odd_rows(odd))
        )
    if declared_zero:
        report.note(
            f"{len(declared_zero)} annotations declare a 0x0 image size (size read from the image), e.g. "
            + ", ".join(declared_zero[:5])
        )
    out.finish(report)
    return report


def _read_splits(src: Path) -> dict[str, list[str]]:
    """Split name -> image stems from ImageSets/Main, after checking the folder looks like a VOC part."""
    if not src.is_dir():
        raise DatasetLayoutError(f"{src}: not a folder; {VOC_LAYOUT}")
    parts = sorted(p.name for p in src.glob("SCUT_HEAD_Part_*") if p.is_dir())
    if parts:
        raise DatasetLayoutError(f"{src} holds {parts}: convert one part at a time, e.g. --src {src / parts[0]}")
    missing = [d for d in ("Annotations", "JPEGImages") if not (src / d).is_dir()]
    if missing:
        raise DatasetLayoutError(f"{src}: missing {', '.join(missing)}; {VOC_LAYOUT}")
    if not any((src / "Annotations").glob("*.xml")):
        raise DatasetLayoutError(f"{src / 'Annotations'}: no .xml annotation; {VOC_LAYOUT}")
    main = src / "ImageSets" / "Main"
    splits = {s: _stems(main / f"{s}.txt") for s in SPLITS if (main / f"{s}.txt").is_file()}
    if not splits and (main / "trainval.txt").is_file():
        return {"trainval": _stems(main / "trainval.txt")}
    return splits  # empty: the caller converts every annotated image


def _stems(file: Path) -> list[str]:
    """Image names listed in a split file (first word of each non-empty line, extension dropped; BOM, CRLF ok)."""
    words = (line.split()[0] for line in file.read_text("utf-8-sig", errors="replace").splitlines() if line.strip())
    return list(dict.fromkeys(Path(w.replace("\\", "/")).stem for w in words))  # unique, in order; Windows paths ok


def _read_split(src: Path, stems: list[str], split: str, report: Report, odd: Counter, zero: list) -> SplitData:
    """Parse the XMLs of one split; anything unreadable is skipped with a one-line message naming the file."""
    data, boxes, groups, sizes = SplitData(), [], [], []
    for stem in stems:
        item = _read_item(src, stem, split, report)
        if item is None:
            continue
        xml, image, (w, h), declared, names, xyxy = item
        if declared == (0, 0):
            zero.append(str(xml))
        elif declared != (w, h):
            report.warn(xml, f"declares size {declared[0]}x{declared[1]} but the image is {w}x{h}; using the image's")
        for name, n in Counter(names).items():
            if name.strip().lower() not in HEAD_NAMES:
                odd[(name, str(xml))] += n
        groups.append(np.full(len(xyxy), len(data.images), dtype=np.int64))
        boxes.append(xyxy)
        sizes.append((w, h))
        data.images.append(image)
        data.names.append(image.name)
        data.sources.append(str(xml))
    data.sizes = np.array(sizes, dtype=np.int64).reshape(-1, 2)
    data.xyxy = np.concatenate(boxes) if boxes else np.zeros((0, 4))
    data.group = np.concatenate(groups) if groups else np.zeros(0, dtype=np.int64)
    return data


def _read_item(src: Path, stem: str, split: str, report: Report) -> tuple | None:
    """One annotated image: (xml, image, real size, declared size, object names, (N, 4) boxes), or None if skipped."""
    xml = src / "Annotations" / f"{stem}.xml"
    if not xml.is_file():
        report.skip(xml, f"annotation missing (listed in ImageSets/Main/{split}.txt)")
        return None
    try:
        root = ET.parse(xml).getroot()
    except (ET.ParseError, OSError) as e:
        report.skip(xml, f"unreadable XML ({e})")
        return None
    image = _find_image(src / "JPEGImages", stem, root.findtext("filename") or "")
    if image is None:
        report.skip(xml, f"image JPEGImages/{stem}.jpg not found")
        return None
    checked = check_image(image)
    if checked.problem:
        report.skip(image, checked.problem)
        return None
    declared = tuple(parse_int(root.findtext(f"size/{k}")) for k in ("width", "height"))
    objects = root.findall("object")
    cols = [[e.text for e in root.iterfind(f"object/bndbox/{k}")] for k in COORDS]  # one query per coordinate
    try:  # numpy parses all the strings in one call; per-object checks only for files where that fails
        if any(len(c) != len(objects) for c in cols):
            raise ValueError("objects without a complete <bndbox>")
        xyxy = np.array(cols, dtype=np.float64).T.reshape(-1, 4)
        names = [o.findtext("name") or "" for o in objects]
    except (TypeError, ValueError):
        text = [[o.findtext(f"bndbox/{k}") for k in COORDS] for o in objects]
        good = [i for i, t in enumerate(text) if _numeric(t)]
        report.skip(xml, f"objects with a missing or non-numeric <bndbox> dropped: {len(text) - len(good)}")
        report.boxes["unreadable box"] += len(text) - len(good)
        xyxy = np.array([text[i] for i in good], dtype=np.float64).reshape(-1, 4)
        names = [objects[i].findtext("name") or "" for i in good]
    return xml, image, checked.size, declared, names, xyxy


def _find_image(folder: Path, stem: str, filename: str) -> Path | None:
    """The image for an annotation: <stem>.jpg, another image suffix, or the XML's <filename> (its folder ignored)."""
    candidates = [folder / f"{stem}.jpg", *(folder / f"{stem}.{s}" for s in sorted(IMG_FORMATS) if s != "jpg")]
    if filename:
        candidates.append(folder / Path(filename.replace("\\", "/")).name)
    return next((c for c in candidates if c.is_file()), None)


def _numeric(values: list[str | None]) -> bool:
    """Whether all four bndbox fields are present and numeric."""
    try:
        return all(v is not None for v in values) and bool(np.array(values, dtype=np.float64).size == 4)
    except ValueError:
        return False


def _odd_rows(odd: Counter):
    """Group (name, file) -> count into ((name, files), total) rows for the note."""
    files, totals = defaultdict(set), Counter()
    for (name, file), n in odd.items():
        files[name].add(file)
        totals[name] += n
    return [((name, files[name]), totals[name]) for name in sorted(totals)]
