"""Checkpoint loading and saving: restricted by default (a file whose pickle runs code is refused by every tool), one
read per load, one-line errors for damaged files, loading from any folder, and atomic writes."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import cv2
import numpy as np
import pytest
import torch

from models.yolo import build_model
from utils import ROOT
from utils.checkpoint import (
    AtomicPath,
    UnsafeCheckpointError,
    load_checkpoint,
    read_count_conf,
    read_train_args,
    rewrite_atomically,
)


class RunsCode:
    """Unpickles by running a shell command that creates `marker`: what a malicious checkpoint does."""

    def __init__(self, marker: Path):
        self.marker = marker

    def __reduce__(self):
        return os.system, (f"touch {self.marker}",)


def our_checkpoint(path: Path, cfg: str = "yolov5nu-mfl.yaml") -> Path:
    """One of our untrained models saved as train.py saves them (model class, train args, count threshold)."""
    torch.manual_seed(0)
    model = build_model(str(ROOT / "models" / cfg), nc=1, verbose=False).eval()
    model.names = {0: "head"}
    torch.save({"model": model.half(), "train_args": {"imgsz": 64, "data": "synthetic"}, "count_conf": 0.4}, path)
    return path


@pytest.fixture(scope="module")
def files(tmp_path_factory) -> dict[str, Path]:
    """Our anchor-free and anchor checkpoints, one carrying a code-running object, a truncated one and an image."""
    root = tmp_path_factory.mktemp("ckpt")
    free, anchor = our_checkpoint(root / "free.pt"), our_checkpoint(root / "anchor.pt", "yolov5n-mfl.yaml")
    evil = root / "evil.pt"
    torch.save({**torch.load(free, weights_only=False), "extra": RunsCode(root / "marker")}, evil)
    truncated = root / "truncated.pt"
    truncated.write_bytes(free.read_bytes()[:5000])
    image = root / "crowd.jpg"
    cv2.imwrite(str(image), np.random.default_rng(0).integers(0, 255, (64, 64, 3), dtype=np.uint8))
    return {
        "free": free,
        "anchor": anchor,
        "evil": evil,
        "truncated": truncated,
        "image": image,
        "marker": root / "marker",
    }


def test_our_and_stock_checkpoints_load_restricted(files, tmp_path):
    from ultralytics.nn.tasks import DetectionModel

    for name, cls in (("free", "AnchorFreeDetectionModel"), ("anchor", "AnchorDetectionModel")):
        ckpt, _ = load_checkpoint(files[name])
        assert type(ckpt["model"]).__name__ == cls and ckpt["count_conf"] == 0.4
    stock = tmp_path / "stock.pt"
    torch.save({"model": DetectionModel("yolov5n.yaml", nc=1, verbose=False)}, stock)
    assert isinstance(load_checkpoint(stock)[0]["model"], DetectionModel)


def test_code_running_checkpoint_refused_unless_trusted(files):
    marker = files["marker"]
    with pytest.raises(UnsafeCheckpointError, match=r"evil\.pt: refused, it needs posix\.system.*--trust-weights"):
        load_checkpoint(files["evil"])
    assert not marker.exists()
    ckpt, _ = load_checkpoint(files["evil"], safe_only=False)  # what --trust-weights does
    assert marker.exists() and ckpt["extra"] == 0  # the command ran: os.system's status
    marker.unlink()


def test_every_tool_refuses_it_in_one_line(files, tmp_path):
    import utils.checkpoint as checkpoint
    from utils.api import HeadCounter

    evil, marker = str(files["evil"]), files["marker"]
    runs = {
        "detect.py": ["--weights", evil, "--source", str(files["image"]), "--imgsz", "64", "--project", str(tmp_path)],
        "val.py": ["--weights", evil, "--data", "synthetic", "--imgsz", "64", "--project", str(tmp_path)],
        "train.py": ["--weights", evil, "--epochs", "1", "--imgsz", "64", "--project", str(tmp_path)],
    }
    for script, args in runs.items():
        proc = subprocess.run(
            [sys.executable, str(ROOT / script), *args], capture_output=True, text=True, cwd=tmp_path, timeout=300
        )
        out = proc.stdout + proc.stderr  # detect.py logs its errors, train.py and val.py print them on stderr
        assert proc.returncode == 1 and "Traceback" not in out, (script, out)
        refusals = [ln for ln in out.splitlines() if "evil.pt: refused, it needs posix.system" in ln]
        assert len(refusals) == 1, (script, out)
        assert not marker.exists(), script
    with pytest.raises(UnsafeCheckpointError):
        HeadCounter(evil, imgsz=64)
    assert not marker.exists()
    checkpoint._read.cache_clear()  # an earlier test's trusted load of this file may be cached: unpickle anew
    assert HeadCounter(evil, imgsz=64, trust_weights=True)(str(files["image"])).conf == 0.4
    assert marker.exists()
    marker.unlink()


def test_detect_trusts_weights_when_told(files, tmp_path):
    args = [
        "--weights",
        str(files["evil"]),
        "--source",
        str(files["image"]),
        "--imgsz",
        "64",
        "--project",
        str(tmp_path),
        "--trust-weights",
    ]
    proc = subprocess.run(
        [sys.executable, str(ROOT / "detect.py"), *args], capture_output=True, text=True, cwd=tmp_path, timeout=300
    )
    assert proc.returncode == 0, proc.stderr
    assert files["marker"].exists()
    files["marker"].unlink()


def test_damaged_checkpoint_is_one_line(files, tmp_path):
    with pytest.raises(ValueError, match=r"truncated\.pt: .*not a loadable checkpoint"):
        load_checkpoint(files["truncated"])
    with pytest.raises(ValueError, match=r"crowd\.jpg: not a PyTorch checkpoint"):
        load_checkpoint(files["image"])
    renamed = tmp_path / "photo.pt"
    renamed.write_bytes(files["image"].read_bytes())
    with pytest.raises(ValueError, match=r"photo\.pt: .*not a loadable checkpoint"):
        load_checkpoint(renamed)
    proc = subprocess.run(
        [
            sys.executable,
            str(ROOT / "detect.py"),
            "--weights",
            str(files["truncated"]),
            "--source",
            str(files["image"]),
            "--project",
            str(tmp_path),
        ],
        capture_output=True,
        text=True,
        cwd=tmp_path,
        timeout=300,
    )
    out = proc.stdout + proc.stderr
    assert proc.returncode == 1 and "Traceback" not in out
    assert len([ln for ln in out.splitlines() if "truncated.pt: " in ln and "not a loadable checkpoint" in ln]) == 1


def test_one_read_per_load(files, monkeypatch):
    """val.py reads the training arguments, the count threshold and the model of one file: one unpickling."""
    import utils.checkpoint as checkpoint
    from ultralytics.nn.autobackend import AutoBackend

    reads = []
    original = checkpoint._ULTRALYTICS_LOAD
    monkeypatch.setattr(checkpoint, "_ULTRALYTICS_LOAD", lambda *a, **k: reads.append(a[0]) or original(*a, **k))
    checkpoint._read.cache_clear()
    assert read_train_args(files["anchor"])["imgsz"] == 64 and read_count_conf(files["anchor"]) == 0.4
    backend = AutoBackend(str(files["anchor"]), device=torch.device("cpu"))
    assert type(backend.model).__name__ == "AnchorDetectionModel"
    assert reads == [str(files["anchor"].resolve())]
    assert read_count_conf(files["anchor"]) == 0.4  # the cached copy was not modified by AutoBackend's fusing


def test_loads_from_a_process_started_elsewhere(files, tmp_path):
    code = (
        f"import sys; sys.path.insert(0, {str(ROOT)!r}); from utils.api import HeadCounter; "
        f"print(HeadCounter({str(files['free'])!r}, imgsz=64)({str(files['image'])!r}).conf)"
    )
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=tmp_path, timeout=300)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip().splitlines()[-1] == "0.4"


def test_atomic_write_keeps_the_old_file_when_interrupted(tmp_path, monkeypatch):
    path = AtomicPath(tmp_path) / "last.pt"
    assert isinstance(path, AtomicPath)
    path.write_bytes(b"epoch 1")

    def killed(fd):
        raise KeyboardInterrupt  # stands for a kill between writing and renaming

    monkeypatch.setattr(os, "fsync", killed)
    with pytest.raises(KeyboardInterrupt):
        path.write_bytes(b"epoch 2, half written")
    assert path.read_bytes() == b"epoch 1"
    monkeypatch.undo()
    path.write_bytes(b"epoch 2")
    assert path.read_bytes() == b"epoch 2"


def test_rewrite_atomically_renames_back_or_leaves_originals(tmp_path):
    last, best = tmp_path / "last.pt", tmp_path / "best.pt"
    last.write_bytes(b"last")
    best.write_bytes(b"best")
    with pytest.raises(RuntimeError):
        with rewrite_atomically(last, best) as (l2, b2):
            l2.write_bytes(b"stripped")
            raise RuntimeError("killed")
    assert last.read_bytes() == b"last" and sorted(p.name for p in tmp_path.iterdir()) == ["best.pt", "last.pt"]
    with rewrite_atomically(last, best) as (l2, b2):
        assert l2 != last and l2.suffix == ".pt"
        l2.write_bytes(b"stripped")
        assert last.read_bytes() == b"last"
    assert last.read_bytes() == b"stripped" and best.read_bytes() == b"best"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["best.pt", "last.pt"]
