"""detect.py end to end (image folder, mp4, bad inputs, a dropping stream), the counting predictor, overlays and API.

The model is Ultralytics' yolov5n with one class, its BatchNorm statistics taken from random images so that its
untrained scores depend on the image; it finds a few "heads" in noisy patches, which is all these tests need: every
count is checked against the boxes the same run saved, or against the API on the same image.
"""

from __future__ import annotations

import csv
import json
import os
import subprocess
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import cv2
import numpy as np
import pytest
import torch

from utils import COUNT_IOU, ROOT

COUNT_CONF = 0.3
IMGSZ = "128"


def make_checkpoint(path: Path, count_conf: float | None, cfg: str = "yolov5n.yaml") -> Path:
    """Save a one-class checkpoint whose scores vary with the image, with or without a count threshold.

    `cfg` is Ultralytics' yolov5n by default; our anchor-free YAML gives our own model class, same head."""
    from ultralytics.nn.tasks import DetectionModel

    from models.yolo import build_model

    torch.manual_seed(0)
    model = DetectionModel(cfg, nc=1, verbose=False) if cfg == "yolov5n.yaml" else build_model(cfg, nc=1, verbose=False)
    model.names = {0: "head"}
    for m in model.modules():
        if isinstance(m, torch.nn.BatchNorm2d):
            m.momentum = None  # cumulative statistics of the batch below
            m.reset_running_stats()
    with torch.no_grad():
        model.train()(torch.rand(8, 3, 128, 128))
    for seq in model.model[-1].cv3:
        seq[-1].bias.data.fill_(-2.0)
    ckpt = {"model": model.eval().half(), "train_args": {"imgsz": 128}}
    if count_conf is not None:
        ckpt["count_conf"] = count_conf
    torch.save(ckpt, path)
    return path


def noisy_patches(k: int, h: int = 128, w: int = 160, seed: int = 0) -> np.ndarray:
    """A grey image with k squares of colour noise, which the test model detects."""
    rng = np.random.default_rng(seed)
    im = np.full((h, w, 3), 40, np.uint8)
    for _ in range(k):
        x, y = int(rng.integers(0, w - 24)), int(rng.integers(0, h - 24))
        im[y : y + 24, x : x + 24] = rng.integers(0, 255, (24, 24, 3))
    return im


def write_mp4(path: Path, frames: list[np.ndarray], fps: float) -> Path:
    """Write frames with OpenCV's mp4v encoder."""
    h, w = frames[0].shape[:2]
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"mp4v"), fps, (w, h))
    for f in frames:
        writer.write(f)
    writer.release()
    return path


def run_detect(*args: str, config_dir: Path | None = None) -> subprocess.CompletedProcess:
    """Run detect.py as a user would, offline (conftest sets YOLO_OFFLINE and YOLO_CONFIG_DIR)."""
    cmd = [sys.executable, str(ROOT / "detect.py"), "--imgsz", IMGSZ, *args]
    env = {**os.environ, **({"YOLO_CONFIG_DIR": str(config_dir)} if config_dir else {})}
    return subprocess.run(cmd, cwd=ROOT, env=env, capture_output=True, text=True, timeout=300)


def read_counts(run_dir: Path) -> list[dict]:
    """Rows of counts.csv."""
    with open(run_dir / "counts.csv", newline="") as f:
        return list(csv.DictReader(f))


def label_lines(path: Path) -> int:
    """Number of boxes in a YOLO label file; Ultralytics writes no file for an image without boxes."""
    return len(path.read_text().splitlines()) if path.exists() else 0


@pytest.fixture(scope="module")
def weights(tmp_path_factory) -> Path:
    """Checkpoint with a calibrated count threshold."""
    return make_checkpoint(tmp_path_factory.mktemp("w") / "best.pt", COUNT_CONF)


@pytest.fixture(scope="module")
def good_run(weights, tmp_path_factory):
    """One detect.py run over a generated folder of three images and an 8-frame 12 fps mp4, with labels."""
    root = tmp_path_factory.mktemp("good")
    images = root / "images"
    images.mkdir()
    for k in (0, 4, 8):
        cv2.imwrite(str(images / f"crowd{k}.png"), noisy_patches(k, seed=k))
    video = write_mp4(root / "clip.mp4", [noisy_patches(i, seed=i) for i in range(8)], fps=12)
    proc = run_detect(
        "--weights",
        str(weights),
        "--source",
        str(images),
        str(video),
        "--save-txt",
        "--smooth",
        "3",
        "--project",
        str(root / "runs"),
        "--name",
        "exp",
        config_dir=root / "cfg",
    )
    return proc, root / "runs" / "exp", images, video


def test_image_folder(good_run, weights):
    """Each image gets an annotated copy of its size and a counts.csv row whose count equals its saved boxes and the
    API's count at the checkpoint's threshold."""
    proc, run, images, _ = good_run
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert f"conf {COUNT_CONF}" in proc.stdout + proc.stderr  # the calibrated threshold, not 0.25
    rows = [r for r in read_counts(run) if r["source"].endswith(".png")]
    assert [Path(r["source"]).name for r in rows] == ["crowd0.png", "crowd4.png", "crowd8.png"]
    assert all(r["frame"] == r["time"] == "" for r in rows)

    from utils.api import count_heads

    counts = []
    for r in rows:
        name = Path(r["source"]).stem
        im = cv2.imread(r["source"])
        assert cv2.imread(str(run / f"{name}.jpg")).shape == im.shape
        n = int(r["count"])
        assert n == label_lines(run / "labels" / f"{name}.txt")
        assert n == count_heads(im, weights, imgsz=int(IMGSZ), device="cpu").count
        counts.append(n)
    assert sum(counts) > 0, "the fixture model must find something for this test to mean anything"


def test_video(good_run):
    """The output mp4 keeps the source's frame count, size and fps; counts.csv has one row per frame with its time,
    the count equal to that frame's saved boxes, and the 3-frame moving average."""
    proc, run, _, video = good_run
    assert proc.returncode == 0, proc.stdout + proc.stderr
    out = cv2.VideoCapture(str(run / "clip.mp4"))
    assert (out.get(cv2.CAP_PROP_FRAME_WIDTH), out.get(cv2.CAP_PROP_FRAME_HEIGHT)) == (160, 128)
    assert out.get(cv2.CAP_PROP_FPS) == pytest.approx(12)
    n_frames = 0
    while out.read()[0]:
        n_frames += 1
    assert n_frames == 8

    rows = [r for r in read_counts(run) if r["source"] == str(video)]
    assert [int(r["frame"]) for r in rows] == list(range(1, 9))
    assert [float(r["time"]) for r in rows] == pytest.approx([i / 12 for i in range(8)], abs=1e-3)
    counts = [int(r["count"]) for r in rows]
    assert counts == [label_lines(run / "labels" / f"clip_{i}.txt") for i in range(1, 9)]
    assert len(set(counts)) > 1
    expected = [np.mean(counts[max(0, i - 2) : i + 1]) for i in range(8)]
    assert [float(r["smoothed"]) for r in rows] == pytest.approx(expected, abs=0.01)
    assert "clip.mp4: 8 frames" in proc.stdout + proc.stderr  # end-of-video summary after the progress bar


def test_no_font_download(good_run):
    """Drawing never fetched a font: no .ttf in the fresh Ultralytics config dir the run used (where
    check_font would have saved Arial.ttf)."""
    proc, run, _, _ = good_run
    assert proc.returncode == 0 and list((run.parents[1] / "cfg").iterdir())  # the run did use that dir
    assert not list((run.parents[1] / "cfg").rglob("*.ttf"))


def test_bad_inputs(tmp_path):
    """A corrupt image, an empty and a truncated video, a non-image file and a missing path: each gets one error line
    naming it, the good image is still counted, and the exit code is 1. Also: a checkpoint without a calibrated
    threshold falls back to 0.25 with a note, and reaching --max-det is warned about."""
    weights = make_checkpoint(tmp_path / "old.pt", None)
    folder = tmp_path / "mixed"
    folder.mkdir()
    cv2.imwrite(str(folder / "good.png"), noisy_patches(8, seed=8))
    (folder / "broken.jpg").write_text("not a jpeg")
    (folder / "empty.mp4").write_bytes(b"")
    data = write_mp4(tmp_path / "full.mp4", [noisy_patches(i, seed=i) for i in range(4)], 10).read_bytes()
    (folder / "truncated.mp4").write_bytes(data[: len(data) // 2])
    notes = tmp_path / "notes.bin"
    notes.write_bytes(b"\x00\x01")
    missing = tmp_path / "nope.jpg"
    proc = run_detect(
        "--weights",
        str(weights),
        "--source",
        str(folder),
        str(notes),
        str(missing),
        "--max-det",
        "1",
        "--project",
        str(tmp_path / "runs"),
        "--name",
        "exp",
    )
    out = proc.stdout + proc.stderr
    assert proc.returncode == 1, out
    for bad in ("broken.jpg", "empty.mp4", "truncated.mp4", notes.name, missing.name):
        lines = [ln for ln in out.splitlines() if "ERROR" in ln and bad in ln and "failed:" not in ln]
        assert len(lines) == 1, f"{bad}: {lines}\n{out}"
    assert "stores no calibrated count threshold" in out and "conf 0.25" in out
    rows = read_counts(tmp_path / "runs" / "exp")
    assert [Path(r["source"]).name for r in rows] == ["good.png"]
    assert int(rows[0]["count"]) == 1 and "reached --max-det 1" in out  # several heads at conf 0.25: capped, warned
    assert (tmp_path / "runs" / "exp" / "good.jpg").exists()


class _MJPEGHandler(BaseHTTPRequestHandler):
    """Serve a camera's MJPEG stream until the counter has counted 3 of its frames, then drop it and stop listening."""

    counts_csv: Path  # set by the test: the stream runs until this file holds 3 counted frames (at most 30 s)

    def log_message(self, *args):
        """Keep the test output quiet."""

    def do_GET(self):
        """Answer Ultralytics' content-type probe with headers only; stream to the video reader, then go away."""
        self.send_response(200)
        self.send_header("Content-Type", "multipart/x-mixed-replace; boundary=frame")
        self.end_headers()
        if self.headers.get("User-Agent", "").startswith("python-requests"):
            return
        for i in range(300):
            _, jpg = cv2.imencode(".jpg", noisy_patches(i % 5 + 2, seed=i))
            head = b"--frame\r\nContent-Type: image/jpeg\r\nContent-Length: %d\r\n\r\n" % len(jpg)
            self.wfile.write(head + jpg.tobytes() + b"\r\n")
            time.sleep(0.1)
            if self.counts_csv.exists() and len(self.counts_csv.read_text().splitlines()) > 3:
                break
        threading.Thread(target=lambda: (self.server.shutdown(), self.server.server_close())).start()


@pytest.mark.parametrize("track", [False, True])
def test_stream_that_drops(weights, tmp_path, track):
    """A live HTTP camera that goes away mid-run: counted frames are kept and saved, the drop is one error line
    naming the URL, and the exit code is 1; tracked, the stream also gets its summary."""
    _MJPEGHandler.counts_csv = tmp_path / "exp" / "counts.csv"
    server = ThreadingHTTPServer(("127.0.0.1", 0), _MJPEGHandler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    url = f"http://127.0.0.1:{server.server_port}/cam"
    try:
        track_args = ("--track", "--line", "0,64,160,64") if track else ()
        proc = run_detect(
            "--weights", str(weights), "--source", url, "--project", str(tmp_path), "--name", "exp", *track_args
        )
    finally:
        server.shutdown()
        server.server_close()
    out = proc.stdout + proc.stderr
    assert proc.returncode == 1, out
    errors = [ln for ln in out.splitlines() if "ERROR" in ln and url in ln and "failed:" not in ln]
    assert len(errors) == 1 and ("signal lost" in errors[0] or "connection lost" in errors[0]), out
    rows = [r for r in read_counts(tmp_path / "exp") if r["count"]]
    assert len(rows) >= 3 and all(r["source"] == url for r in rows)
    assert len(list((tmp_path / "exp").glob("*.mp4"))) == 1
    if track:
        assert all(r["tracked"] != "" and r["line1_in"] != "" for r in rows)
        summary = json.loads((tmp_path / "exp" / "summary.json").read_text())
        assert list(summary) == [url] and summary[url]["frames"] >= len(rows)


# ---- in-process: predictor, API and overlays ----
def test_api_counts_boxes_and_resolves_threshold(weights):
    """count_heads returns consistent arrays at the checkpoint's threshold; a YOLO object reads the same threshold;
    max_det caps the count and says so; a non-array input is refused by type."""
    from ultralytics import YOLO

    from utils.api import HeadCounter, count_heads

    im = noisy_patches(8, seed=8)
    r = count_heads(im, weights, imgsz=128, device="cpu")
    assert r.conf == COUNT_CONF and r.count == len(r.boxes) == len(r.scores) == len(r.centres) > 1
    assert (r.scores >= COUNT_CONF).all()
    np.testing.assert_allclose(r.centres, (r.boxes[:, :2] + r.boxes[:, 2:]) / 2)
    assert count_heads(im, weights, imgsz=128, device="cpu") is not r  # cached model, fresh result
    same = count_heads(im, YOLO(str(weights)), imgsz=128, device="cpu")
    assert same.conf == COUNT_CONF and same.count == r.count

    capped = HeadCounter(weights, imgsz=128, max_det=1, device="cpu")(im)
    assert capped.count == 1 and capped.capped and not r.capped
    with pytest.raises(TypeError, match="numpy array"):
        count_heads(None, weights)


def test_api_takes_paths_and_works_outside_the_repository(weights, tmp_path):
    """count_heads on an image path equals count_heads on the array; a missing or non-image path is named; a script
    in another folder imports the API with the repository on PYTHONPATH (README)."""
    from utils.api import count_heads

    im = noisy_patches(8, seed=8)
    path = tmp_path / "crowd.png"
    cv2.imwrite(str(path), im)
    assert count_heads(path, weights, imgsz=128, device="cpu").count == count_heads(im, weights, imgsz=128).count
    with pytest.raises(FileNotFoundError, match="image not found: .*nope.jpg"):
        count_heads(tmp_path / "nope.jpg", weights)
    (tmp_path / "notes.jpg").write_text("not an image")
    with pytest.raises(ValueError, match="notes.jpg: not an image"):
        count_heads(tmp_path / "notes.jpg", weights)
    script = f"from utils.api import count_heads; print(count_heads({str(path)!r}, {str(weights)!r}, imgsz=128).count)"
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    proc = subprocess.run([sys.executable, "-c", script], cwd=tmp_path, env=env, capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr
    assert int(proc.stdout.strip().splitlines()[-1]) == count_heads(im, weights, imgsz=128).count


def test_tiled_predictor_matches_manual_tiling(weights):
    """HeadCounter(tile=True) equals cutting the tiles by hand, running the model on them and merging: the predictor
    batches the right windows and shifts them to image pixels."""
    from utils.api import HeadCounter
    from utils.tiling import crop_tiles, merge_tiles, tile_windows

    im = np.concatenate([noisy_patches(6, seed=1), noisy_patches(6, seed=2)], 1)  # 128 x 320
    counter = HeadCounter(weights, imgsz=64, tile=True, tile_overlap=0.25, device="cpu")
    got = counter(im)

    win = tile_windows((128, 320), (64, 64), 0.25)
    assert len(win) == 3 * 7  # rows: ceil((128-64)/48)+1 = 3 at 0, 32, 64; columns: ceil((320-64)/48)+1 = 7
    tiles = torch.from_numpy(crop_tiles(im, win, (64, 64))[..., ::-1].copy()).permute(0, 3, 1, 2).float() / 255
    with torch.no_grad():
        preds = counter.predictor.model(tiles)
    det = merge_tiles(
        preds[0] if isinstance(preds, (list, tuple)) else preds,
        win,
        (128, 320),
        (16, 16),
        conf=COUNT_CONF,
        iou=COUNT_IOU,
        max_det=3000,
    )
    assert got.count == len(det) > 0
    by_row = lambda b: b[np.lexsort(b.T[::-1])]  # noqa: E731
    np.testing.assert_allclose(by_row(got.boxes), by_row(det[:, :4].numpy()), atol=1e-3)
    assert (got.boxes[:, [0, 2]] <= 320).all() and (got.boxes[:, [1, 3]] <= 128).all()


def test_results_plot_offline_and_label_matches_count(weights, monkeypatch):
    """Every style draws without touching fonts (check_font raises here), and the corner label is the box count."""
    import ultralytics.utils.checks as checks
    import ultralytics.utils.plotting as plotting

    from utils.predictor import CountingPredictor

    def no_font(*args, **kwargs):
        raise AssertionError("font lookup, which downloads Arial.ttf when missing")

    monkeypatch.setattr(checks, "check_font", no_font)
    monkeypatch.setattr(plotting, "check_font", no_font)
    im = noisy_patches(8, seed=8)
    p = CountingPredictor(
        overrides={"model": str(weights), "imgsz": 128, "save": False, "verbose": False, "device": "cpu"}
    )
    r = p(source=im)[0]
    assert r.text == f"Count: {len(r.boxes)}"
    for style in ("boxes", "points", "heatmap"):
        r.style = style
        out = r.plot()
        assert out.shape == im.shape and not np.array_equal(out, im)


def test_draw_points_one_dot_per_head():
    """Separated centres give exactly one dot each (connected components of the dot colour)."""
    from utils.overlay import draw_points

    pts = np.array([[10, 10], [40, 12], [70, 50], [20, 60], [75, 10]], float)
    out = draw_points(np.zeros((80, 100, 3), np.uint8), pts, radius=3)
    n, _ = cv2.connectedComponents((out == (0, 0, 255)).all(2).astype(np.uint8))
    assert n - 1 == len(pts)
    assert (out[10, 10] == (0, 0, 255)).all() and (out[0, 99] == 0).all()


def test_density_map_mass_and_heatmap_blend():
    """Each head spreads unit mass (the map sums to the count away from borders) peaking at its centre; the blend
    leaves pixels far from any head untouched."""
    from utils.overlay import density_map, draw_heatmap

    pts = np.array([[30, 30], [30, 30], [70, 50]], float)  # two heads on one spot
    d = density_map((100, 120), pts, sigma=3)
    assert d.sum() == pytest.approx(3, rel=1e-4)
    assert d[30, 30] == pytest.approx(2 * d[50, 70], rel=1e-3) and d.max() == d[30, 30]
    im = np.full((100, 120, 3), 90, np.uint8)
    out = draw_heatmap(im, pts, sigma=3)
    assert (out[95, 5] == 90).all() and not (out[30, 30] == 90).all()


def test_count_label_and_boxes():
    """The count plate covers the top-left corner only; box edges land on the box coordinates; bad style raises."""
    from utils.overlay import annotate, draw_count

    im = np.zeros((128, 160, 3), np.uint8)
    out = draw_count(im.copy(), "Count: 7", "mean of 3 frames")
    assert out[:20, :60].any() and not out[100:, 100:].any()
    boxes = np.array([[100, 80, 140, 120]], float)
    drawn = annotate(im, boxes, np.array([0.9]), np.zeros(1), {0: "head"}, "boxes", line_width=1, show_labels=False)
    assert drawn[100, 100].any() and drawn[80, 120].any() and not drawn[100, 120].any()
    with pytest.raises(ValueError, match="unknown style"):
        annotate(im, boxes, np.array([0.9]), np.zeros(1), {0: "head"}, "blobs")


def test_results_line_once_and_only_when_saved(good_run, weights, tmp_path):
    """Two sources: one 'Results saved to' line at the end; every source failing: none, and exit 1."""
    proc, run_dir, _, _ = good_run
    out = proc.stdout + proc.stderr
    assert [ln for ln in out.splitlines() if "Results saved to" in ln] == [
        f"Results saved to {run_dir} (counts.csv: one row per image or frame)"
    ]
    (tmp_path / "bad.jpg").write_bytes(b"")
    failed = run_detect("--weights", str(weights), "--source", str(tmp_path / "bad.jpg"), "--project", str(tmp_path))
    assert failed.returncode == 1 and "Results saved to" not in failed.stdout + failed.stderr


def test_box_labels_off_by_default():
    """Dense crowds: no text on boxes unless --show-labels (YOLOv5's --hide-labels still accepted)."""
    import detect

    base = ["--weights", "w.pt", "--source", "x.jpg"]
    assert not detect.overrides_from(detect.parse_opt(base), Path("."))["show_labels"]
    assert detect.overrides_from(detect.parse_opt([*base, "--show-labels"]), Path("."))["show_labels"]
    assert not detect.overrides_from(detect.parse_opt([*base, "--hide-labels"]), Path("."))["show_labels"]


def test_draw_centres_rings_for_truth_dots_for_predictions():
    """The worst-image plots: a green ring of radius 2r around each GT centre (centre left clear), a red dot on each
    prediction, a caption band above; r = 2 px on a 200 x 300 image."""
    from utils.plots import GT_COLOR, PRED_COLOR, draw_centres

    im = draw_centres(np.zeros((200, 300, 3), np.uint8), np.array([[50, 60]]), np.array([[250, 150]]), "MAE 1")
    band = im.shape[0] - 200
    body = im[band:]
    assert band > 0 and (body[60, 50 + 4] == GT_COLOR).all() and not body[60, 50].any()
    assert (body[150, 250] == PRED_COLOR).all() and not body[150, 250 + 6].any()


def test_predictor_nms_runs_on_the_grid_kernel_with_the_same_boxes(weights, monkeypatch):
    """Our predictor's NMS goes through utils.nms.grid_nms on a large candidate set (conf 0.0001 on a 640 px image of
    the fixture model: thousands of candidates) and keeps exactly the boxes torchvision's kernel keeps."""
    import utils.nms
    from utils.api import HeadCounter

    im = cv2.resize(noisy_patches(8, seed=8), (640, 640))
    sizes, grid, least = [], utils.nms.grid_nms, utils.nms.GRID_MIN_BOXES
    monkeypatch.setattr(utils.nms, "grid_nms", lambda b, s, t: sizes.append(len(b)) or grid(b, s, t))
    counter = HeadCounter(weights, conf=0.0001, imgsz=640, device="cpu")
    on_grid = counter(im)
    monkeypatch.setattr(utils.nms, "GRID_MIN_BOXES", 10**9)  # torchvision's kernel for every set
    plain = counter(im)
    assert len(sizes) == 1 and sizes[0] >= least
    assert on_grid.count == plain.count > 0 and np.array_equal(on_grid.boxes, plain.boxes)
