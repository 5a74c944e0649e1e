"""A corpus of broken and partial inputs, generated here, and what the user gets for each: converters and val.py.

Every case says what a user holding such a copy sees: the exit status, one line naming the bad file and why, the
good inputs still converted, and the source folder unchanged.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import cv2
import numpy as np
import pytest
import yaml
from ultralytics.data.utils import check_image as ul_check_image
from test_converters import _image, _voc_xml, labels, make_seq, make_voc, tree_digest

import val as val_cli
from bench.common import untrained_checkpoint
from data import prepare
from data.converters import convert_gta_head, convert_scut_head
from data.converters.images import ImageCheck, check_image
from utils import ROOT

BOX = ("person", (10, 20, 30, 60))


def _jpeg_bytes(w: int = 100, h: int = 80, seed: int = 0) -> bytes:
    """A real JPEG of noise (so that half of it is a truncated stream, not just a short header)."""
    noise = np.random.default_rng(seed).integers(0, 255, (h, w, 3), dtype=np.uint8)
    return cv2.imencode(".jpg", noise)[1].tobytes()


@pytest.fixture
def broken_voc(tmp_path: Path) -> Path:
    """SCUT-Head-like part: two good images and one of each kind of broken item; lists with a BOM and CRLF."""
    good = {f"PartA_0000{i}": ((100, 80), (100, 80), [BOX], None) for i in (1, 2)}
    bad_images = {"PartA_00010": b"", "PartA_00011": b"this is a text file named .jpg\n"}
    bad_images["PartA_00012"] = _jpeg_bytes()[:1500]  # truncated download
    bad_images["PartA_00013"] = _jpeg_bytes() + b"\x00" * 64  # trailing bytes after the end marker: still usable
    stems = [*good, *bad_images, "PartA_00020", "PartA_00021", "PartA_00022", "PartA_00030"]
    stems[1] = f"JPEGImages\\{stems[1]}.jpg"  # a list written on Windows, with paths
    root = make_voc(tmp_path / "raw", good, {})
    for stem, data in bad_images.items():
        (root / "JPEGImages" / f"{stem}.jpg").write_bytes(data)
        (root / "Annotations" / f"{stem}.xml").write_text(_voc_xml(stem, (100, 80), [BOX]))
    for stem in ("PartA_00020", "PartA_00021", "PartA_00022"):
        _image(root / "JPEGImages" / f"{stem}.jpg", 100, 80)
    (root / "Annotations/PartA_00020.xml").write_text("")  # empty annotation
    negative = _voc_xml("PartA_00021", (100, 80), [("person", (-5, -5, 20, 20)), ("person", (50, 90, 60, 99))])
    (root / "Annotations/PartA_00021.xml").write_text(negative)  # one box clipped, one below the image dropped
    (root / "Annotations/PartA_00022.xml").write_text("\ufeff" + _voc_xml("PartA_00022", (0, 0), [BOX]))  # BOM, 0x0
    # PartA_00030 is listed but has neither annotation nor image; extra.jpg has no annotation and is not listed
    _image(root / "JPEGImages/extra.jpg", 100, 80)
    (root / "ImageSets/Main/train.txt").write_bytes(("\ufeff" + "\r\n".join(stems) + "\r\n").encode())
    return root


def test_broken_voc_corpus(broken_voc: Path, tmp_path: Path, capsys):
    """One line per bad file naming it and why, exit 0, every usable image converted, the source unchanged."""
    before = tree_digest(broken_voc)
    out = tmp_path / "out"
    assert prepare.main(prepare.parse_opt(["scut-head", "--src", str(broken_voc), "--dst", str(out)])) == 0
    printed = capsys.readouterr().out
    expected = {
        "PartA_00010.jpg": "empty file (0 bytes)",
        "PartA_00011.jpg": "not an image format PIL can identify",
        "PartA_00012.jpg": "truncated or corrupt JPEG",
        "PartA_00020.xml": "unreadable XML",
        "PartA_00030.xml": "annotation missing (listed in ImageSets/Main/train.txt)",
        "PartA_00021.xml": "boxes entirely outside the image dropped: 1",
    }
    for name, why in expected.items():
        lines = [ln for ln in printed.splitlines() if ln.strip().startswith(str(broken_voc)) and name in ln]
        assert any(why in ln for ln in lines), f"{name}: {why!r} not in {lines}"
    assert "skipped items: 6" in printed
    assert "extra.jpg" in printed and "are in no split list or have no annotation" in printed
    converted = sorted(p.name for p in (out / "labels/train").iterdir())
    assert converted == [
        f"{s}.txt" for s in ("PartA_00001", "PartA_00002", "PartA_00013", "PartA_00021", "PartA_00022")
    ]
    np.testing.assert_allclose(labels(out, "train", "PartA_00021.txt"), [[0, 0.1, 0.125, 0.2, 0.25]], atol=1e-6)
    linked = out / "images/train/PartA_00013.jpg"
    assert linked.is_symlink()
    assert "restored" in ul_check_image(str(linked))[0]  # Ultralytics' dataset check re-saves it: in out/ only
    assert not linked.is_symlink() and tree_digest(broken_voc) == before


def test_check_image_reasons(tmp_path: Path):
    """The image check on its own: usable (also with bytes after the JPEG end marker), and each unusable kind."""
    (tmp_path / "ok.jpg").write_bytes(_jpeg_bytes(40, 30))
    (tmp_path / "tail.jpg").write_bytes(_jpeg_bytes(40, 30) + b"junk")
    (tmp_path / "cut.jpg").write_bytes(_jpeg_bytes(100, 80)[:1200])
    (tmp_path / "zero.png").write_bytes(b"")
    (tmp_path / "text.png").write_text("hello")
    assert check_image(tmp_path / "ok.jpg") == check_image(tmp_path / "tail.jpg") == ImageCheck((40, 30))
    assert check_image(tmp_path / "cut.jpg").problem.startswith("truncated or corrupt JPEG")
    assert check_image(tmp_path / "zero.png").problem == "empty file (0 bytes)"
    assert check_image(tmp_path / "text.png").problem.startswith("not an image format PIL can identify")


def _test_only_copy(tmp_path: Path) -> Path:
    items = {f"PartA_0010{i}": ((96, 96), (96, 96), [("person", (8, 8, 40, 40))] * (i % 3), None) for i in range(4)}
    return make_voc(tmp_path / "raw", items, {"test": list(items)})


def test_test_only_release_converts_and_val_reports(tmp_path: Path):
    """A copy holding only test.txt converts; val.py --task test reports MAE/RMSE on it; train.py says no train split."""
    out = tmp_path / "out"
    report = convert_scut_head(_test_only_copy(tmp_path), out)
    assert list(report.counts) == ["test"]
    cfg = yaml.safe_load((out / "data.yaml").read_text())
    assert cfg["train"] is None and cfg["test"] == cfg["val"] == "images/test"
    assert any("--task test" in n for n in report.notes)
    weights = untrained_checkpoint(tmp_path / "w.pt", str(ROOT / "models" / "yolov5n-mfl.yaml"))
    opt = val_cli.parse_opt(["--data", str(out / "data.yaml"), "--weights", str(weights), "--task", "test"])
    opt.imgsz, opt.project, opt.count_conf = 96, tmp_path / "val", 0.5
    metrics = val_cli.main(opt)
    counts = (tmp_path / "val" / "exp" / "counts.csv").read_text().splitlines()
    assert len(counts) == 1 + 4  # header + the 4 test images
    assert np.isfinite(metrics["metrics/MAE(count)"]) and np.isfinite(metrics["metrics/RMSE(count)"])
    proc = subprocess.run(
        [sys.executable, str(ROOT / "train.py"), "--data", str(out / "data.yaml"), "--project", str(tmp_path / "runs")],
        capture_output=True,
        text=True,
        cwd=tmp_path,
        timeout=300,
    )
    assert proc.returncode == 1
    last = proc.stderr.strip().splitlines()[-1]
    assert last.startswith("ERROR: --data") and "no train split to train on (splits present: val, test)" in last
    assert "Traceback" not in proc.stderr


def test_release_without_split_lists(tmp_path: Path):
    """No ImageSets at all: every annotated image is converted as train, and the report says so."""
    items = {f"PartA_0020{i}": ((64, 64), (64, 64), [("person", (8, 8, 24, 24))], None) for i in range(3)}
    root = make_voc(tmp_path / "raw", items, {})
    (root / "ImageSets/Main").rmdir()
    (root / "ImageSets").rmdir()
    report = convert_scut_head(root, tmp_path / "out")
    assert list(report.counts) == ["train"] and len(report.counts["train"]) == 3
    assert any("every annotated image (3) converted as train" in n for n in report.notes)


def test_mot_broken_frames_bom_and_test_only(tmp_path: Path):
    """A zero-byte and a text frame are skipped, each named, and their rows dropped; gt.txt with a BOM reads; a copy
    holding only test sequences with ground truth converts with val pointing at test."""
    raw = tmp_path / "GTA"
    seq = make_seq(raw / "test", "seq_a", 4, gt="")
    (seq / "gt/gt.txt").write_bytes("\ufeff1,1,10,10,20,20\n2,1,10,10,20,20\n3,1,30,30,10,10\n4,1,5,5,5,5\n".encode())
    (seq / "img1/000002.jpg").write_bytes(b"")
    (seq / "img1/000003.jpg").write_text("not a frame")
    other = make_seq(raw / "test", "seq_b", 1, gt="")
    (other / "gt/gt.txt").write_bytes(b"1,1,10,10,20,20\n1,2,\xff\xfe,10,20,20\n")  # bytes that are not UTF-8
    before = tree_digest(raw)
    out = tmp_path / "out"
    report = convert_gta_head(raw, out)
    skipped = "\n".join(report.skipped)
    assert f"{seq / 'img1/000002.jpg'}: empty file (0 bytes): frame not converted" in skipped
    assert f"{seq / 'img1/000003.jpg'}: not an image format PIL can identify" in skipped
    assert "rows for frames with no usable image in img1/ dropped: 2 (frames 2, 3)" in skipped
    assert f"{other / 'gt/gt.txt'}: rows with a non-numeric, missing or fractional-frame field dropped: 1" in skipped
    names = ["seq_a_000001.txt", "seq_a_000004.txt", "seq_b_000001.txt"]
    assert sorted(p.name for p in (out / "labels/test").iterdir()) == names
    assert len(labels(out, "test", "seq_a_000001.txt")) == 1  # the BOM row
    cfg = yaml.safe_load((out / "data.yaml").read_text())
    assert cfg["train"] is None and cfg["val"] == "images/test"
    assert tree_digest(raw) == before


def test_heic_photos_convert_and_count(tmp_path: Path):
    """A phone's HEIC photo is read by the converter and by detect.py without installing anything at run time."""
    pillow_heif = pytest.importorskip("pillow_heif", reason="pillow-heif (requirements.txt) writes the HEIC fixture")
    from PIL import Image

    rgb = np.random.default_rng(0).integers(0, 255, (80, 100, 3), dtype=np.uint8)
    heif = pillow_heif.from_bytes(mode="RGB", size=(100, 80), data=rgb.tobytes())
    root = make_voc(tmp_path / "raw", {}, {"train": ["IMG_0001"]})
    heif.save(root / "JPEGImages/IMG_0001.heic", quality=90)
    (root / "Annotations/IMG_0001.xml").write_text(_voc_xml("IMG_0001", (100, 80), [BOX]))
    with Image.open(root / "JPEGImages/IMG_0001.heic") as im:  # Ultralytics' opener, with the pi-heif plugin
        assert im.size == (100, 80)
    report = convert_scut_head(root, tmp_path / "out")
    assert list(report.counts["train"]) == [1] and not report.skipped
    weights = untrained_checkpoint(tmp_path / "w.pt", str(ROOT / "models" / "yolov5n-mfl.yaml"))
    proc = subprocess.run(
        [
            sys.executable,
            str(ROOT / "detect.py"),
            "--weights",
            str(weights),
            "--source",
            str(root / "JPEGImages/IMG_0001.heic"),
            "--imgsz",
            "96",
            "--project",
            str(tmp_path / "det"),
            "--name",
            "exp",
        ],
        capture_output=True,
        text=True,
        cwd=ROOT,
        timeout=300,
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    rows = (tmp_path / "det/exp/counts.csv").read_text().splitlines()
    assert len(rows) == 2 and "IMG_0001.heic" in rows[1]


def test_val_skips_unreadable_images_in_a_yolo_dataset(tmp_path: Path):
    """val.py on a YOLO dataset with a zero-byte and a text '.jpg' among good images: one line names each with the
    reason, the summary counts them, and the other images are counted."""
    from data.synthetic import ensure_synthetic_crowd

    data = Path(ensure_synthetic_crowd(4, 3, 96, 20, seed=2, root=tmp_path / "crowd"))
    val_dir = data.parent / "images" / "val"
    (val_dir / "zero.jpg").write_bytes(b"")
    (val_dir / "text.jpg").write_text("hello")
    weights = untrained_checkpoint(tmp_path / "w.pt", str(ROOT / "models" / "yolov5n-mfl.yaml"))
    cmd = [sys.executable, str(ROOT / "val.py"), "--data", str(data), "--weights", str(weights), "--img", "96"]
    cmd += ["--project", str(tmp_path / "val"), "--count-conf", "0.5"]
    proc = subprocess.run(cmd, capture_output=True, text=True, cwd=ROOT, timeout=300)
    out = proc.stdout + proc.stderr
    assert proc.returncode == 0, out
    for bad in ("zero.jpg", "text.jpg"):
        lines = [ln for ln in out.splitlines() if f"{val_dir / bad}: ignoring corrupt image/label" in ln]
        assert len(lines) == 1, out
    assert "2 corrupt" in out and "Traceback" not in out
    assert len((tmp_path / "val" / "exp" / "counts.csv").read_text().splitlines()) == 1 + 3


def test_stream_that_never_answers(tmp_path: Path):
    """A camera URL that accepts the connection but never sends a byte: detect.py gives up after OpenCV's 30 s open
    timeout with one line naming the URL, and exits 1 (a loopback server that stops by itself)."""
    import socket
    import threading

    server = socket.create_server(("127.0.0.1", 0))
    server.settimeout(1.0)
    port, stop, held = server.getsockname()[1], threading.Event(), []

    def accept_and_stay_silent():
        while not stop.is_set():
            try:
                held.append(server.accept()[0])
            except TimeoutError:
                pass

    thread = threading.Thread(target=accept_and_stay_silent, daemon=True)
    thread.start()
    url = f"http://127.0.0.1:{port}/stream.mjpg"
    weights = untrained_checkpoint(tmp_path / "w.pt", str(ROOT / "models" / "yolov5n-mfl.yaml"))
    try:
        proc = subprocess.run(
            [sys.executable, str(ROOT / "detect.py"), "--weights", str(weights), "--source", url, "--imgsz", "96"]
            + ["--project", str(tmp_path / "det")],
            capture_output=True,
            text=True,
            cwd=ROOT,
            timeout=120,
        )
    finally:
        stop.set()
        thread.join()
        for conn in held:
            conn.close()
        server.close()
    out = proc.stdout + proc.stderr
    assert proc.returncode == 1, out
    assert len([ln for ln in out.splitlines() if ln.startswith("ERROR") and f"{url}: Failed to open" in ln]) == 1, out
    assert "Traceback" not in out
