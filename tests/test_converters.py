"""Converters from raw SCUT-Head (VOC), CroHD/HT21 and GTA_Head (MOT) releases to YOLO labels, and ensure_dataset."""

from __future__ import annotations

import hashlib
import os
import xml.etree.ElementTree as ET
from pathlib import Path

import cv2
import numpy as np
import pytest
import yaml

from data import prepare
from data.converters import (
    DatasetLayoutError,
    convert_crohd,
    convert_gta_head,
    convert_scut_head,
    ensure_dataset,
)
from data.converters.common import clean_boxes

REPO = Path(__file__).resolve().parents[1]

# ---------------------------------------------------------------- fixtures in the documented raw layouts


def _image(path: Path, w: int, h: int) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    assert cv2.imwrite(str(path), np.full((h, w, 3), 127, np.uint8))


def _voc_xml(stem: str, declared: tuple[int, int], objects: list[tuple[str, tuple]]) -> str:
    objs = "".join(
        f"<object><name>{n}</name><difficult>0</difficult><bndbox><xmin>{b[0]}</xmin><ymin>{b[1]}</ymin>"
        f"<xmax>{b[2]}</xmax><ymax>{b[3]}</ymax></bndbox></object>"
        for n, b in objects
    )
    return (
        f"<annotation><folder>C:\\junk\\img_0_99</folder><filename>{stem}.jpg</filename>"
        f"<path>C:\\Users\\x\\Desktop\\{stem}.jpg</path><size><width>{declared[0]}</width>"
        f"<height>{declared[1]}</height><depth>3</depth></size>{objs}</annotation>"
    )


def make_voc(root: Path, items: dict, splits: dict[str, list[str]]) -> Path:
    """SCUT-Head-like part: items[stem] = (real (w, h), declared (w, h), objects, xml text override or None)."""
    for d in ("Annotations", "JPEGImages", "ImageSets/Main"):
        (root / d).mkdir(parents=True, exist_ok=True)
    for stem, (real, declared, objects, text) in items.items():
        if real is not None:
            _image(root / "JPEGImages" / f"{stem}.jpg", *real)
        (root / "Annotations" / f"{stem}.xml").write_text(text or _voc_xml(stem, declared, objects))
    for split, stems in splits.items():
        (root / "ImageSets/Main" / f"{split}.txt").write_text("".join(f"{s}\n" for s in stems))
    return root


def make_seq(
    split_dir: Path, name: str, frames: int, size=(160, 90), gt: str | None = None, seqinfo=True, declared=None
) -> Path:
    """MOT sequence: img1/00000k.jpg frames, optional gt/gt.txt text and seqinfo.ini."""
    seq = split_dir / name
    for k in range(1, frames + 1):
        _image(seq / "img1" / f"{k:06d}.jpg", *size)
    if gt is not None:
        (seq / "gt").mkdir(parents=True, exist_ok=True)
        (seq / "gt" / "gt.txt").write_text(gt)
    if seqinfo:
        w, h = declared or size
        (seq / "seqinfo.ini").write_text(
            f"[Sequence]\nname={name}\nimDir=img1\nframeRate=25\nseqLength={frames}\n"
            f"imWidth={w}\nimHeight={h}\nimExt=.jpg\n"
        )
    return seq


def labels(root: Path, split: str, name: str) -> np.ndarray:
    """(N, 5) YOLO rows of one output label file."""
    text = (root / "labels" / split / name).read_text()
    return np.array(text.split(), dtype=np.float64).reshape(-1, 5)


def tree_digest(root: Path) -> str:
    """Digest of every file's relative path and bytes under root."""
    h = hashlib.sha256()
    for p in sorted(root.rglob("*")):
        if p.is_file():
            h.update(str(p.relative_to(root)).encode() + p.read_bytes())
    return h.hexdigest()


@pytest.fixture
def voc(tmp_path: Path) -> Path:
    """Tiny SCUT-Head part with the release's quirks; 100x80 images."""
    box = (10, 20, 30, 60)  # -> cx 0.2, cy 0.5, w 0.2, h 0.5
    items = {
        "PartA_00001": (
            (100, 80),
            (100, 80),
            [
                ("person", box),
                ("head", (90, 70, 110, 90)),  # partly outside -> clipped to (90, 70, 100, 80)
                ("person", (120, 10, 130, 20)),  # entirely outside -> dropped
                ("person", (50, 50, 50, 50)),  # zero area -> dropped
                ("person", box),  # duplicate -> dropped
            ],
            None,
        ),
        "PartA_00002": ((100, 80), (0, 0), [("headdddddaaddwddd", (0, 0, 100, 80))], None),  # 0x0 size, odd name
        "PartA_00003": ((100, 80), (100, 80), [], None),  # no heads: empty label kept
        "PartA_00004": ((64, 48), (48, 64), [("person", (8, 12, 24, 36))], None),  # declared size swapped
    }
    return make_voc(
        tmp_path / "SCUT_HEAD_Part_A",
        items,
        {"train": ["PartA_00001", "PartA_00002", "PartA_00003"], "val": ["PartA_00004"]},
    )


# ---------------------------------------------------------------- SCUT-Head (VOC)


def test_scut_labels_hand_computed(voc: Path, tmp_path: Path):
    """Clipping, dropping and normalisation match values worked out by hand; quirks are reported."""
    out = tmp_path / "out"
    r = convert_scut_head(voc, out)
    np.testing.assert_allclose(
        labels(out, "train", "PartA_00001.txt"), [[0, 0.2, 0.5, 0.2, 0.5], [0, 0.95, 0.9375, 0.1, 0.125]], atol=1e-6
    )
    np.testing.assert_allclose(labels(out, "train", "PartA_00002.txt"), [[0, 0.5, 0.5, 1, 1]], atol=1e-6)
    assert (out / "labels/train/PartA_00003.txt").read_text() == ""  # image without heads kept, empty label
    np.testing.assert_allclose(labels(out, "val", "PartA_00004.txt"), [[0, 16 / 64, 24 / 48, 16 / 64, 24 / 48]])
    assert r.boxes["read"] == 7 and r.boxes["written"] == 4
    assert (r.boxes["degenerate"], r.boxes["outside"], r.boxes["duplicate"], r.boxes["clipped"]) == (1, 1, 1, 1)
    assert r.counts["train"].tolist() == [2, 1, 0] and r.counts["val"].tolist() == [1]
    np.testing.assert_allclose(r.wh["train"], [[20, 40], [10, 10], [100, 80]])
    text = r.summary()
    assert "headdddddaaddwddd' x1 in" in text and "PartA_00002.xml" in text  # odd class name reported
    assert "1 annotations declare a 0x0 image size" in text
    assert "split 'test' absent" in text
    assert any("PartA_00004.xml: declares size 48x64 but the image is 64x48" in n for n in r.notes)
    assert any(s.endswith("PartA_00001.xml: zero-area boxes dropped: 1") for s in r.skipped)
    assert any("PartA_00001.xml: boxes entirely outside the image dropped: 1" in s for s in r.skipped)
    cfg = yaml.safe_load((out / "data.yaml").read_text())
    assert cfg == {"path": str(out.resolve()), "train": "images/train", "val": "images/val", "names": {0: "head"}}
    assert sorted(p.name for p in (out / "images/train").iterdir()) == [
        "PartA_00001.jpg",
        "PartA_00002.jpg",
        "PartA_00003.jpg",
    ]


def test_scut_bad_inputs_reported_and_rest_converted(voc: Path, tmp_path: Path):
    """Truncated XML, missing image, missing XML, non-numeric box: one line each naming the file; the rest converts."""
    full = (voc / "Annotations/PartA_00001.xml").read_text()
    (voc / "Annotations/PartA_00005.xml").write_text(full[: len(full) // 2])  # truncated
    _image(voc / "JPEGImages/PartA_00005.jpg", 100, 80)
    (voc / "Annotations/PartA_00006.xml").write_text(_voc_xml("PartA_00006", (100, 80), [("person", (1, 1, 9, 9))]))
    bad = _voc_xml("PartA_00007", (100, 80), [("person", (1, 1, 9, 9)), ("person", (1, 1, 9, 9))])
    (voc / "Annotations/PartA_00007.xml").write_text(bad.replace("<xmax>9</xmax>", "<xmax>nine</xmax>", 1))
    _image(voc / "JPEGImages/PartA_00007.jpg", 100, 80)
    (voc / "ImageSets/Main/train.txt").write_text("PartA_00001\nPartA_00005\nPartA_00006\nPartA_00007\nPartA_00008\n")
    out = tmp_path / "out"
    r = convert_scut_head(voc, out)
    lines = {Path(s.split(": ")[0]).name: s for s in r.skipped}
    assert "unreadable XML" in lines["PartA_00005.xml"]
    assert "image JPEGImages/PartA_00006.jpg not found" in lines["PartA_00006.xml"]
    assert "annotation missing (listed in ImageSets/Main/train.txt)" in lines["PartA_00008.xml"]
    assert "non-numeric <bndbox> dropped: 1" in lines["PartA_00007.xml"]
    assert all("\n" not in s for s in r.skipped)
    assert sorted(p.name for p in (out / "labels/train").iterdir()) == ["PartA_00001.txt", "PartA_00007.txt"]
    assert len(labels(out, "train", "PartA_00007.txt")) == 1  # the good box of the file with a bad one
    assert (out / "data.yaml").is_file()


def test_scut_idempotent_links_and_source_untouched(voc: Path, tmp_path: Path):
    """Re-running gives the same output; images are symlinks into the source; the source never changes."""
    before = tree_digest(voc)
    out = tmp_path / "out"
    convert_scut_head(voc, out)
    first = tree_digest(out / "labels"), sorted(os.listdir(out / "images/train"))
    convert_scut_head(voc, out)
    assert (tree_digest(out / "labels"), sorted(os.listdir(out / "images/train"))) == first
    link = out / "images/train/PartA_00001.jpg"
    assert link.is_symlink() and link.resolve() == (voc / "JPEGImages/PartA_00001.jpg").resolve()
    copied = tmp_path / "copied"
    convert_scut_head(voc, copied, link="copy")
    assert not (copied / "images/train/PartA_00001.jpg").is_symlink()
    hard = tmp_path / "hard"
    convert_scut_head(voc, hard, link="hardlink")  # same file system here, so a real hard link
    assert os.path.samefile(hard / "images/train/PartA_00001.jpg", voc / "JPEGImages/PartA_00001.jpg")
    assert tree_digest(voc) == before


def test_output_folder_guards(voc: Path, tmp_path: Path):
    """Never write into the source, never clear a folder data/prepare.py did not create."""
    with pytest.raises(ValueError, match="overlap"):
        convert_scut_head(voc, voc / "yolo")
    foreign = tmp_path / "mine"
    foreign.mkdir()
    (foreign / "keep.txt").write_text("user file")
    with pytest.raises(FileExistsError, match="not written by data/prepare.py"):
        convert_scut_head(voc, foreign)
    assert (foreign / "keep.txt").read_text() == "user file"


def test_scut_layout_errors(tmp_path: Path):
    """A folder that is not a VOC part, or the release root, stops with a message describing the layout."""
    (tmp_path / "raw/JPEGImages").mkdir(parents=True)
    with pytest.raises(DatasetLayoutError, match=r"missing Annotations;.*Pascal VOC layout"):
        convert_scut_head(tmp_path / "raw", tmp_path / "out")
    (tmp_path / "raw/Annotations").mkdir()
    (tmp_path / "raw/ImageSets/Main").mkdir(parents=True)
    with pytest.raises(DatasetLayoutError, match=r"Annotations: no .xml annotation"):
        convert_scut_head(tmp_path / "raw", tmp_path / "out")
    (tmp_path / "release/SCUT_HEAD_Part_A").mkdir(parents=True)
    with pytest.raises(DatasetLayoutError, match="convert one part at a time"):
        convert_scut_head(tmp_path / "release", tmp_path / "out")


def test_scut_trainval_only_becomes_train(voc: Path, tmp_path: Path):
    """A copy whose only split list is trainval.txt converts it as train, with a note."""
    main = voc / "ImageSets/Main"
    (main / "trainval.txt").write_text((main / "train.txt").read_text() + (main / "val.txt").read_text())
    (main / "train.txt").unlink()
    (main / "val.txt").unlink()
    r = convert_scut_head(voc, tmp_path / "out")
    assert list(r.counts) == ["train"] and len(r.counts["train"]) == 4
    assert any("trainval.txt is the only split list: used as train" in n for n in r.notes)


def test_clean_boxes_vectorised():
    """Each outcome on its own box: kept, degenerate (zero width, NaN), outside, duplicate (same image only)."""
    xyxy = np.array(
        [[1, 1, 5, 5], [3, 3, 3, 9], [np.nan, 0, 1, 1], [20, 20, 30, 30], [1, 1, 5, 5], [1, 1, 5, 5], [-2, 8, 4, 12]],
        dtype=float,
    )
    size = np.tile([10, 10], (7, 1))
    group = np.array([0, 0, 0, 0, 0, 1, 1])
    keep, boxes, flags = clean_boxes(xyxy, size, group)
    assert keep.tolist() == [0, 5, 6]
    np.testing.assert_array_equal(boxes, [[1, 1, 5, 5], [1, 1, 5, 5], [0, 8, 4, 10]])
    assert np.flatnonzero(flags["degenerate"]).tolist() == [1, 2]
    assert np.flatnonzero(flags["outside"]).tolist() == [3]
    assert np.flatnonzero(flags["duplicate"]).tolist() == [4]
    assert np.flatnonzero(flags["clipped"]).tolist() == [6]


# ---------------------------------------------------------------- CroHD / HT21 and GTA_Head (MOT)

HT21_GT = """\
1,1,10,10,20,30,1,1,1.0
1,2,150,80,20,20,1,2,0.5
1,3,40,40,10,10,1,3,1.0
1,4,60,40,10,10,0,1,1.0
2,1,12,10,20,30,1,4,1.0
2,5,70,20,10,10,1,1,0.0
2,6,70,20,10,10,1,7,1.0
"""


def test_crohd_rows_classes_and_split_by_sequence(tmp_path: Path):
    """Classes 1, 2, 4 with conf != 0 and visibility > 0 are heads; class 3 ignored; val by sequence; det unread."""
    raw = tmp_path / "HT21"
    make_seq(raw / "train", "HT21-01", 3, gt=HT21_GT)
    s1 = raw / "train/HT21-01"
    (s1 / "det").mkdir()
    (s1 / "det/det.txt").write_text("1,-1,0,0,50,50,99,-1,-1,-1\n" * 5)  # detections, never ground truth
    make_seq(raw / "train", "HT21-02", 2, gt="1,1,0,0,16,9,1,1,1\n")
    make_seq(raw / "test", "HT21-11", 2)  # private ground truth: no gt/
    out = tmp_path / "out"
    r = convert_crohd(raw, out, val_seqs=("HT21-02",))
    w, h = 160, 90
    np.testing.assert_allclose(
        labels(out, "train", "HT21-01_000001.txt"),
        [
            [0, 20 / w, 25 / h, 20 / w, 30 / h],
            [0, 155 / w, 85 / h, 10 / w, 10 / h],  # class 2, clipped from 150..170 x 80..100
        ],
        atol=1e-6,
    )
    np.testing.assert_allclose(
        labels(out, "train", "HT21-01_000002.txt"), [[0, 22 / w, 25 / h, 20 / w, 30 / h]], atol=1e-6
    )
    assert (out / "labels/train/HT21-01_000003.txt").read_text() == ""  # annotated sequence, frame without heads
    np.testing.assert_allclose(labels(out, "val", "HT21-02_000001.txt"), [[0, 0.05, 0.05, 0.1, 0.1]], atol=1e-6)
    assert sorted(os.listdir(out / "images")) == ["train", "val"]
    assert r.boxes["ignore region (class 3)"] == 1 and r.boxes["zero conf"] == 1 and r.boxes["not visible"] == 1
    assert r.boxes["unknown class"] == 1 and r.boxes["written"] == 4 and r.boxes["clipped"] == 1
    assert any("HT21-11: no gt/gt.txt (test ground truth not public)" in n for n in r.notes)
    assert any("gt.txt: rows of unknown class [7.0] dropped: 1" in s for s in r.skipped)
    cfg = yaml.safe_load((out / "data.yaml").read_text())
    assert (cfg["train"], cfg["val"], "test" in cfg) == ("images/train", "images/val", False)


def test_frame_step_keeps_every_nth_frame_and_its_rows_only(tmp_path: Path):
    """Frames 1-7 with one head each (x = 10 * frame), frame 9 annotated but without an image: frame_step 3 converts
    frames 1, 4 and 7 with their own heads; the rows of the stepped-over frames are neither written nor reported, the
    row of the missing frame still is; the CLI passes --frame-step and refuses it for SCUT-Head and below 1."""
    gt = "".join(f"{k},1,{10 * k},10,10,10,1,1,1\n" for k in (*range(1, 8), 9))
    raw = tmp_path / "HT21"
    make_seq(raw / "train", "HT21-01", 7, gt=gt)
    src_before = tree_digest(raw)
    r = convert_crohd(raw, tmp_path / "out", val_seqs=(), frame_step=3)
    names = sorted(os.listdir(tmp_path / "out/labels/train"))
    assert names == ["HT21-01_000001.txt", "HT21-01_000004.txt", "HT21-01_000007.txt"]
    for k in (1, 4, 7):
        x_centre = labels(tmp_path / "out", "train", f"HT21-01_{k:06d}.txt")[:, 1]
        np.testing.assert_allclose(x_centre, [(10 * k + 5) / 160])
    assert r.boxes["written"] == 3 and r.boxes["frame without image"] == 1
    assert any("frame step 3" in n for n in r.notes) and tree_digest(raw) == src_before
    with pytest.raises(ValueError, match="frame step must be a whole number >= 1, got 0"):
        convert_crohd(raw, tmp_path / "out0", frame_step=0)
    argv = ["crohd", "--src", str(raw), "--dst", str(tmp_path / "cli"), "--val-seqs", "--frame-step", "2"]
    assert prepare.main(prepare.parse_opt(argv)) == 0
    assert len(os.listdir(tmp_path / "cli/labels/train")) == 4  # frames 1, 3, 5, 7
    argv = ["scut-head", "--src", str(raw), "--dst", str(tmp_path / "s"), "--frame-step", "2"]
    assert prepare.main(prepare.parse_opt(argv)) == 2


def test_mot_bad_rows_and_missing_seqinfo(tmp_path: Path):
    """A non-numeric row and a row for a missing frame are dropped with one line naming gt.txt; no seqinfo.ini falls
    back to the frame size with one line naming it; every other row and sequence is converted."""
    raw = tmp_path / "GTA"
    make_seq(raw / "train", "seq_a", 2, gt="1,1,10,10,20,20\n1,2,abc,10,20,20\n\n2,1,30,30,10,10\n9,1,5,5,5,5\n")
    make_seq(raw / "train", "seq_b", 1, size=(120, 60), gt="1 1 0 0 12 6\n", seqinfo=False)
    out = tmp_path / "out"
    r = convert_gta_head(raw, out)
    gt_a = str(raw / "train/seq_a/gt/gt.txt")
    assert f"{gt_a}: rows with a non-numeric, missing or fractional-frame field dropped: 1 (line 2)" in r.skipped
    assert any(
        s.startswith(f"{gt_a}: rows for frames with no usable image in img1/ dropped: 1 (frames 9)") for s in r.skipped
    )
    assert any(
        n.startswith(f"{raw / 'train/seq_b/seqinfo.ini'}: missing or unreadable: frame size 120x60") for n in r.notes
    )
    assert len(labels(out, "train", "seq_a_000001.txt")) == 1 and len(labels(out, "train", "seq_a_000002.txt")) == 1
    np.testing.assert_allclose(labels(out, "train", "seq_b_000001.txt"), [[0, 0.05, 0.05, 0.1, 0.1]], atol=1e-6)
    assert "no val split: val uses images/train" in r.notes[-1]


def test_gta_columns_and_val_from_test(tmp_path: Path):
    """10 space-separated columns accepted; val uses test when there is no val split; a 7th column 0 drops a row."""
    raw = tmp_path / "GTA"
    make_seq(raw / "train", "s01", 1, gt="1 1 10 10 20 20 1 -1 -1 -1\n1 2 50 10 20 20 0 -1 -1 -1\n")
    make_seq(raw / "test", "s24", 1, gt="1,1,10,10,20,20\n")
    out = tmp_path / "out"
    r = convert_gta_head(raw, out)
    assert len(labels(out, "train", "s01_000001.txt")) == 1 and r.boxes["zero conf"] == 1
    cfg = yaml.safe_load((out / "data.yaml").read_text())
    assert (cfg["val"], cfg["test"]) == ("images/test", "images/test")


@pytest.mark.parametrize(
    "gt, declared, match",
    [
        ("".join(f"1,{i},{5 + i},{70 + 10 * i},8,8\n" for i in range(10)), None, "swapped"),  # top, left order
        ("1,1,0.1,0.2,0.05,0.05\n", None, "normalised"),
        ("1,1,1,1,1,1,1,1,1,1,1\n", None, "first row has 11 columns"),
        ("1,1,1,1,1\n", None, "first row has 5 columns"),
    ],
)
def test_gta_layout_mismatch_stops_with_layout(tmp_path: Path, gt: str, declared, match: str):
    """Boxes that only fit transposed frames, normalised values or a wrong column count stop the conversion."""
    raw = tmp_path / "GTA"
    make_seq(raw / "train", "s01", 1, size=(200, 60), gt=gt, declared=declared)
    with pytest.raises(DatasetLayoutError, match=match) as e:
        convert_gta_head(raw, tmp_path / "out")
    assert "gt.txt" in str(e.value) and "expected the MOTChallenge layout" in str(e.value)


def test_mot_swapped_seqinfo_size_and_no_sequences(tmp_path: Path):
    """seqinfo.ini with width and height swapped is reported and the frames' size used; a folder without
    train/ or test/ sequences stops with the layout."""
    raw = tmp_path / "GTA"
    make_seq(raw / "train", "s01", 1, size=(160, 90), gt="1,1,140,10,10,10\n", declared=(90, 160))
    r = convert_gta_head(raw, tmp_path / "out")
    assert any("imWidth/imHeight 90x160 swapped: frames are 160x90" in n for n in r.notes)
    np.testing.assert_allclose(
        labels(tmp_path / "out", "train", "s01_000001.txt"), [[0, 145 / 160, 15 / 90, 10 / 160, 10 / 90]], atol=1e-6
    )
    with pytest.raises(DatasetLayoutError, match="pass its parent"):
        convert_gta_head(raw / "train", tmp_path / "out2")


# ---------------------------------------------------------------- CLI, ensure_dataset, Ultralytics


def test_prepare_cli(voc: Path, tmp_path: Path, capsys):
    """The CLI prints the summary and exits 0; a copy that does not match exits 1 with one ERROR message."""
    assert prepare.main(prepare.parse_opt(["scut-head", "--src", str(voc), "--dst", str(tmp_path / "o")])) == 0
    printed = capsys.readouterr().out
    assert "boxes read: 7;" in printed and "heads written: 4" in printed and "skipped items: 3" in printed
    assert prepare.main(prepare.parse_opt(["crohd", "--src", str(voc), "--dst", str(tmp_path / "o2")])) == 1
    assert capsys.readouterr().err.startswith("ERROR: ")


def _yaml(tmp_path: Path, raw, out: Path, converter: str = "scut-head") -> Path:
    f = tmp_path / "ds.yaml"
    text = (REPO / "data/scut_head_a.yaml").read_text()
    cfg = yaml.safe_load(text)
    cfg.update(converter=converter, raw=raw, path=str(out))
    f.write_text(yaml.safe_dump(cfg))
    return f


def test_ensure_dataset_converts_once_and_explains_missing(voc: Path, tmp_path: Path):
    """First use converts, later uses reuse; absent data gives where to get it and where to put it."""
    out = tmp_path / "conv"
    f = _yaml(tmp_path, [str(tmp_path / "nowhere"), str(voc)], out)
    done = ensure_dataset(f)
    assert done == str(out / "data.yaml")
    stamp = (out / "labels/train/PartA_00001.txt").stat().st_mtime_ns
    assert ensure_dataset(f) == done and (out / "labels/train/PartA_00001.txt").stat().st_mtime_ns == stamp
    assert ensure_dataset(out) == done  # a converted folder
    plain = tmp_path / "plain.yaml"
    plain.write_text("path: x\ntrain: images/train\nval: images/val\nnames: {0: head}\n")
    assert ensure_dataset(plain) == str(plain)  # ordinary Ultralytics YAML: untouched
    missing = _yaml(tmp_path, str(tmp_path / "absent"), tmp_path / "none", converter="gta-head")
    with pytest.raises(FileNotFoundError) as e:
        ensure_dataset(missing)
    msg = str(e.value)
    assert "https://github.com/gkw0010/GTAV_Head-dataset" in msg and str(tmp_path / "absent") in msg
    assert "python data/prepare.py gta-head" in msg and "research use only" in msg


def test_repo_yamls_are_ultralytics_data_yamls():
    """The four data YAMLs carry the Ultralytics keys, one class 'head', a converter and an offline download step."""
    for name, conv in [
        ("gta_head", "gta-head"),
        ("scut_head_a", "scut-head"),
        ("scut_head_b", "scut-head"),
        ("crohd", "crohd"),
    ]:
        text = (REPO / f"data/{name}.yaml").read_text()
        cfg = yaml.safe_load(text)
        assert text.startswith("# ") and "Licence:" in text and "Source: http" in text
        assert cfg["converter"] == conv and cfg["names"] == {0: "head"}
        assert {"path", "raw", "train", "val"} <= set(cfg)
        assert "ensure_from_ultralytics(yaml)" in cfg["download"] and "http" not in cfg["download"]


def test_ultralytics_runs_the_download_step_offline(voc: Path, tmp_path: Path, monkeypatch):
    """check_det_dataset runs our download step, which converts and repoints the splits; labels pass Ultralytics'
    own verification."""
    import ultralytics.data.utils as du

    monkeypatch.setattr(du, "check_font", lambda *a, **k: None)  # the only network access left in that function
    out = tmp_path / "conv"
    data = du.check_det_dataset(str(_yaml(tmp_path, str(voc), out)))
    assert (data["train"], data["val"], data["test"]) == (str(out / "images/train"), str(out / "images/val"), None)
    for im in sorted((out / "images/train").iterdir()):
        res = du.verify_image_label((str(im), str(out / "labels/train" / f"{im.stem}.txt"), "", False, 1, 0, 0, False))
        assert res[8] == 0 and res[9] == "", res  # not corrupt, nothing fixed


# ---------------------------------------------------------------- real SCUT-Head Part A


def test_scut_part_a_real(scut_a: Path, tmp_path: Path):
    """Real Part A: label rows equal the XML boxes minus the dropped zero-area ones; quirks reported."""
    xml_boxes, degenerate = 0, 0
    stems = [s for f in ("train", "val") for s in (scut_a / f"ImageSets/Main/{f}.txt").read_text().split()]
    for stem in stems:  # independent count, straight from the XMLs
        for b in ET.parse(scut_a / "Annotations" / f"{stem}.xml").getroot().iter("bndbox"):
            x1, y1, x2, y2 = (float(b.findtext(k)) for k in ("xmin", "ymin", "xmax", "ymax"))
            xml_boxes += 1
            degenerate += x2 <= x1 or y2 <= y1
    out = tmp_path / "scut_a"
    r = convert_scut_head(scut_a, out)
    rows = sum(
        len((out / "labels" / s).joinpath(f"{stem}.txt").read_text().splitlines())
        for s in ("train", "val")
        for stem in (scut_a / f"ImageSets/Main/{s}.txt").read_text().split()
    )
    assert degenerate > 0 and rows == xml_boxes - degenerate
    assert (r.boxes["read"], r.boxes["degenerate"], r.boxes["written"]) == (xml_boxes, degenerate, rows)
    assert f"boxes read: {xml_boxes}; zero-area boxes dropped: {degenerate};" in r.summary()
    assert f"heads written: {rows}" in r.summary()
    assert {s: len(c) for s, c in r.counts.items()} == {"train": 1100, "val": 400}
    assert any("PartA_01006.xml" in n and "treated as head" in n for n in r.notes)
    assert any("split 'test' absent" in n for n in r.notes)
    assert (out / "labels/train/PartA_00595.txt").read_text() == ""  # the one image without heads: empty label
