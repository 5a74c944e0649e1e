"""export.py and the exported models: both heads to TorchScript, ONNX and OpenVINO, the counting metadata read back,
and counts equal to the .pt's through the API, detect.py and val.py."""

from __future__ import annotations

import csv
import json
import subprocess
import sys
from pathlib import Path

import cv2
import numpy as np
import pytest
import torch

from models.yolo import build_model
from utils import ROOT
from utils.checkpoint import read_count_conf, read_train_args

IMGSZ = 64


def images(root: Path, k: int = 3) -> list[Path]:
    """Blobby random images (some structure, so scores vary across cells)."""
    rng = np.random.default_rng(1)
    paths = []
    for i in range(k):
        im = cv2.GaussianBlur(rng.integers(0, 255, (IMGSZ, IMGSZ, 3), dtype=np.uint8), (7, 7), 2)
        paths.append(root / f"im{i}.jpg")
        cv2.imwrite(str(paths[-1]), im)
    return paths


def checkpoint_with_threshold(path: Path, cfg: str, ims: list[Path]) -> Path:
    """An untrained model of ours whose stored count threshold sits in the widest gap of its top scores.

    A threshold far from every score keeps the counts of the formats equal despite their float rounding.
    """
    torch.manual_seed(0)
    model = build_model(str(ROOT / "models" / cfg), nc=1, verbose=False).eval()
    model.names = {0: "head"}
    batch = torch.stack([torch.from_numpy(cv2.imread(str(p))[..., ::-1].copy()).permute(2, 0, 1) for p in ims]) / 255
    with torch.no_grad():
        scores = model(batch)[0][:, 4].flatten().sort(descending=True).values[:200]
    gap = int((scores[:-1] - scores[1:])[5:].argmax()) + 5  # at least 6 detections above
    conf = float(scores[gap] + scores[gap + 1]) / 2
    torch.save({"model": model, "train_args": {"imgsz": IMGSZ, "data": "synthetic"}, "count_conf": conf}, path)
    return path


@pytest.fixture(scope="module", params=["yolov5n-mfl.yaml", "yolov5nu-mfl.yaml"], ids=["anchor", "free"])
def exported(request, tmp_path_factory) -> dict:
    """One head's checkpoint exported to every format with export.py."""
    root = tmp_path_factory.mktemp("export")
    ims = images(root)
    weights = checkpoint_with_threshold(root / "best.pt", request.param, ims)
    cmd = [
        sys.executable,
        str(ROOT / "export.py"),
        "--weights",
        str(weights),
        "--include",
        "torchscript",
        "onnx",
        "openvino",
        "--imgsz",
        str(IMGSZ),
    ]
    proc = subprocess.run(cmd, capture_output=True, text=True, cwd=root, timeout=600)
    assert proc.returncode == 0, proc.stderr[-2000:]
    files = {
        "torchscript": root / "best.torchscript",
        "onnx": root / "best.onnx",
        "openvino": root / "best_openvino_model",
    }
    assert all(f.exists() for f in files.values()), list(root.iterdir())
    return {"weights": weights, "files": files, "images": ims, "root": root}


def test_metadata_travels(exported):
    conf = read_count_conf(exported["weights"])
    for fmt, f in exported["files"].items():
        assert read_count_conf(f) == pytest.approx(conf, abs=1e-6), fmt
        args = read_train_args(f)
        assert args["data"] == "synthetic" and list(args["imgsz"]) == [IMGSZ, IMGSZ], fmt


def test_api_counts_equal_the_pt(exported):
    from utils.api import HeadCounter

    reference = HeadCounter(exported["weights"], imgsz=IMGSZ)
    expected = [reference(p) for p in exported["images"]]
    assert sum(r.count for r in expected) >= 2, "the threshold must let some detections through"
    for fmt, f in exported["files"].items():
        counter = HeadCounter(f, imgsz=IMGSZ)
        assert counter.conf == pytest.approx(reference.conf, abs=1e-6)
        for p, ref in zip(exported["images"], expected):
            got = counter(p)
            assert got.count == ref.count, (fmt, p.name)
            np.testing.assert_allclose(np.sort(got.centres, 0), np.sort(ref.centres, 0), atol=0.05, err_msg=fmt)


def test_detect_and_val_take_exported_weights(exported):
    root = exported["root"]

    def detect(weights: Path, name: str) -> list[str]:
        cmd = [
            sys.executable,
            str(ROOT / "detect.py"),
            "--weights",
            str(weights),
            "--source",
            str(root / "im*.jpg"),
            "--imgsz",
            str(IMGSZ),
            "--project",
            str(root / "runs"),
            "--name",
            name,
            "--nosave",
        ]
        proc = subprocess.run(cmd, capture_output=True, text=True, cwd=root, timeout=600)
        assert proc.returncode == 0, proc.stdout[-1500:] + proc.stderr[-1500:]
        with open(root / "runs" / name / "counts.csv", newline="") as f:
            return [row["count"] for row in csv.DictReader(f)]

    assert detect(exported["files"]["openvino"], "ov") == detect(exported["weights"], "pt")
    onnx, pt = exported["files"]["onnx"], exported["weights"]
    reports = {}
    for name, weights in (("onnx", onnx), ("pt", pt)):
        cmd = [
            sys.executable,
            str(ROOT / "val.py"),
            "--weights",
            str(weights),
            "--project",
            str(root / "val"),
            "--name",
            name,
            "--batch-size",
            "1",
        ]
        proc = subprocess.run(cmd, capture_output=True, text=True, cwd=root, timeout=600)
        assert proc.returncode == 0, proc.stdout[-1500:] + proc.stderr[-1500:]
        reports[name] = json.loads((root / "val" / name / "metrics.json").read_text())
    assert reports["onnx"]["count_conf_source"] == "checkpoint"  # the data and threshold came from the metadata
    assert reports["onnx"]["count_conf"] == pytest.approx(read_count_conf(pt), abs=1e-6)
    assert reports["onnx"]["MAE"] == pytest.approx(reports["pt"]["MAE"], abs=1e-6)
