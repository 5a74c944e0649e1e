"""The three CLIs as a user runs them: one-line errors with exit 1 for every mistake, no run folder left behind,
YOLOv5's run folder names, positive image sizes, and val.py reproducing the end of training from the checkpoint."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from bench.common import untrained_checkpoint
from data.synthetic import ensure_synthetic_crowd
from utils import ROOT
from utils.checkpoint import read_count_conf


def cli(script: str, *args: str, cwd: Path) -> subprocess.CompletedProcess:
    """Run one of our CLIs as a user would, from another folder."""
    return subprocess.run(
        [sys.executable, str(ROOT / script), *args], capture_output=True, text=True, cwd=cwd, timeout=600
    )


def one_error_line(proc: subprocess.CompletedProcess, expected: str) -> None:
    """Exit 1, no traceback, and the last stderr line is the expected one-line error."""
    assert proc.returncode == 1, proc.stdout + proc.stderr
    assert "Traceback" not in proc.stderr
    assert proc.stderr.strip().splitlines()[-1] == expected


@pytest.fixture(scope="module")
def tiny(tmp_path_factory) -> tuple[Path, Path]:
    """A tiny crowd set and an untrained checkpoint that stores no training data."""
    root = tmp_path_factory.mktemp("cli")
    data = ensure_synthetic_crowd(4, 2, 96, 20, seed=3, root=root / "crowd")
    return Path(data), untrained_checkpoint(root / "w.pt", str(ROOT / "models" / "yolov5n-mfl.yaml"))


def test_val_mistakes_are_one_line(tiny, tmp_path):
    data, weights = tiny
    one_error_line(cli("val.py", "--weights", "nope.pt", cwd=tmp_path), "ERROR: --weights nope.pt: no such file")
    one_error_line(
        cli("val.py", "--weights", str(weights), "--data", "missing.yaml", cwd=tmp_path),
        "ERROR: --data missing.yaml: no such file (give a data YAML, or 'synthetic' for the built-in set)",
    )
    one_error_line(
        cli("val.py", "--weights", str(weights), "--data", str(data), "--task", "test", cwd=tmp_path),
        f"ERROR: --data {data} has no 'test' split; use --task with a split it has",
    )
    one_error_line(
        cli("val.py", "--weights", str(weights), cwd=tmp_path),
        f"ERROR: --weights {weights} does not say which data it was trained on; give --data",
    )
    assert not (tmp_path / "runs").exists() and not (ROOT / "runs" / "val" / "nope").exists()


@pytest.mark.skipif(torch.cuda.is_available(), reason="needs a machine without CUDA")
def test_missing_cuda_device_is_one_line(tiny, tmp_path):
    data, weights = tiny
    for script, args in (
        ("val.py", ["--weights", str(weights), "--data", str(data)]),
        ("train.py", ["--data", str(data)]),
    ):
        proc = cli(script, *args, "--device", "0", "--project", str(tmp_path / script), cwd=tmp_path)
        assert proc.returncode == 1 and "Traceback" not in proc.stderr
        assert proc.stderr.strip().splitlines()[-1].startswith("ERROR: Invalid CUDA 'device=0' requested.")
    assert not (tmp_path / "train.py").exists()


def test_train_missing_files_touch_nothing(tmp_path):
    """--resume PATH resumes that run or stops; --weights nope.pt never asks GitHub; no empty run folder is left."""
    project = tmp_path / "runs"
    missing = tmp_path / "nope" / "last.pt"
    one_error_line(
        cli("train.py", "--resume", str(missing), "--project", str(project), cwd=tmp_path),
        f"ERROR: --resume {missing}: no such file",
    )
    proc = cli("train.py", "--weights", "nope.pt", "--project", str(project), cwd=tmp_path)
    one_error_line(proc, "ERROR: --weights nope.pt: no such file")
    assert "github" not in (proc.stdout + proc.stderr).lower()
    assert not project.exists()


@pytest.mark.parametrize("script", ["train.py", "val.py", "detect.py"])
def test_image_size_must_be_positive(script, tmp_path):
    proc = (
        cli(script, "--img", "0", "--weights", "w.pt", "--source", "x.jpg", cwd=tmp_path)
        if script == "detect.py"
        else cli(script, "--img", "0", "--weights", "w.pt", cwd=tmp_path)
    )
    assert proc.returncode == 2 and "image size must be positive, got 0" in proc.stderr


@pytest.mark.parametrize("script", ["val.py", "detect.py"])
def test_tracking_numbers_are_refused_by_their_flag(script, tmp_path):
    """A negative --line-band or a --min-track-frames below 1 stops at parsing, naming the flag (not the weights)."""
    source = ["--source", "x.jpg"] if script == "detect.py" else []
    for flag, value, message in (
        ("--line-band", "-1", "must be >= 0, got -1"),
        ("--min-track-frames", "0", "must be >= 1, got 0"),
        ("--min-track-frames", "2.5", "expected an integer, got '2.5'"),
    ):
        proc = cli(script, "--weights", "w.pt", *source, flag, value, cwd=tmp_path)
        assert proc.returncode == 2 and f"argument {flag}: {message}" in proc.stderr.strip().splitlines()[-1]


def test_run_folders_are_named_like_yolov5(tiny, tmp_path):
    """A second run of detect.py (and of val.py) goes to exp2, not exp-2."""
    data, weights = tiny
    image = next((data.parent / "images" / "val").iterdir())
    for _ in range(2):
        assert (
            cli(
                "detect.py",
                "--weights",
                str(weights),
                "--source",
                str(image),
                "--img",
                "96",
                "--project",
                str(tmp_path / "det"),
                cwd=tmp_path,
            ).returncode
            == 0
        )
        assert (
            cli(
                "val.py",
                "--weights",
                str(weights),
                "--data",
                str(data),
                "--img",
                "96",
                "--project",
                str(tmp_path / "val"),
                "--count-conf",
                "0.5",
                cwd=tmp_path,
            ).returncode
            == 0
        )
    assert sorted(p.name for p in (tmp_path / "det").iterdir()) == ["exp", "exp2"]
    assert sorted(p.name for p in (tmp_path / "val").iterdir()) == ["exp", "exp2"]


def _last_mae(text: str) -> float:
    return float(re.findall(r"Counting \(.*?\): MAE ([0-9.]+)", text)[-1])


def test_val_reproduces_the_end_of_training(tiny, tmp_path):
    """`val.py --weights best.pt` with no other flag takes the checkpoint's data and image size and prints the MAE
    the training run printed for the same best.pt at its end (same images, size, threshold: equal to 3 decimals)."""
    data, _ = tiny
    train = cli(
        "train.py",
        "--data",
        str(data),
        "--img",
        "96",
        "--epochs",
        "2",
        "--batch-size",
        "2",
        "--project",
        str(tmp_path / "train"),
        cwd=tmp_path,
    )
    assert train.returncode == 0, train.stderr[-3000:]
    assert (tmp_path / "train" / "exp").is_dir()
    best = tmp_path / "train" / "exp" / "weights" / "best.pt"
    val = cli("val.py", "--weights", str(best), "--project", str(tmp_path / "val"), cwd=tmp_path)
    assert val.returncode == 0, val.stderr[-3000:]
    assert _last_mae(val.stdout + val.stderr) == pytest.approx(_last_mae(train.stdout + train.stderr), abs=1e-3)
    # the threshold stored in best.pt is the one calibrated on the final pass over best.pt itself
    final = re.findall(
        r"Counting \(score >= ([0-9.]+), calibrated on this split for the final weights\)", train.stdout + train.stderr
    )
    assert len(final) == 1 and read_count_conf(best) == pytest.approx(float(final[0]), abs=5e-4)


def test_yolov5_training_flags_reach_the_trainer(tiny, tmp_path):
    """YOLOv5's --rect --noval --optimizer --freeze --cos-lr --single-cls --save-period map to Ultralytics' keys;
    --evolve, which Ultralytics' trainer cannot honour, stops in one line and says what to use instead."""
    import train as train_cli

    data, _ = tiny
    flags = ["--data", str(data), "--rect", "--noval", "--optimizer", "AdamW", "--freeze", "10", "--cos-lr"]
    ov = train_cli.overrides_from(train_cli.parse_opt([*flags, "--single-cls", "--save-period", "5"]))
    assert (ov["rect"], ov["val"], ov["optimizer"], ov["freeze"], ov["cos_lr"]) == (True, False, "AdamW", 10, True)
    assert (ov["single_cls"], ov["save_period"]) == (True, 5)
    assert train_cli.overrides_from(train_cli.parse_opt(["--data", str(data), "--freeze", "0", "3"]))["freeze"] == [
        0,
        3,
    ]
    plain = train_cli.overrides_from(train_cli.parse_opt(["--data", str(data)]))
    assert "optimizer" not in plain and plain["val"] and "freeze" not in plain  # the hyp file's choices stand
    proc = cli("train.py", "--evolve", cwd=tmp_path)
    assert proc.returncode == 1 and proc.stderr.strip().startswith("ERROR: --evolve is not supported")
    assert "(default: False)" in cli("train.py", "--help", cwd=tmp_path).stdout


def test_cfg_takes_the_scale_in_the_name():
    """--cfg models/yolov5s-mfl.yaml and models/yolov5nu-mfl.yaml name a scale of a YAML that exists (Ultralytics'
    convention, used in README's commands); a name matching no YAML is one error."""
    import train

    for cfg in ("models/yolov5s-mfl.yaml", "models/yolov5nu-mfl.yaml", "models/yolov5mu-mfl-p2.yaml"):
        train.check_paths(train.parse_opt(["--cfg", str(ROOT / cfg)]))
    with pytest.raises(FileNotFoundError, match=r"yolov5x-nope.yaml: no such file \(nor .*yolov5-nope.yaml"):
        train.check_paths(train.parse_opt(["--cfg", str(ROOT / "models/yolov5x-nope.yaml")]))
