"""The anchor-free YOLOv5u head end to end: train, checkpoint round trip, val.py, detect.py, API, tiling, resume."""

from __future__ import annotations

import os
import subprocess
import sys
from copy import deepcopy
from pathlib import Path

import cv2
import pandas as pd
import pytest
import torch
from ultralytics.nn.tasks import torch_safe_load

from test_train import _args as train_args
from test_train import tiny_data  # noqa: F401 (the module-scoped fixture, shared)

import detect as detect_cli
import train as train_cli
import val as val_cli
from bench.accuracy import stock_trainer
from models.yolo import AnchorDetectionModel, AnchorFreeDetectionModel, build_model
from utils import ROOT
from utils.api import HeadCounter, count_heads
from utils.checkpoint import read_count_conf
from utils.trainer import MFLTrainer

CFG = str(ROOT / "models" / "yolov5nu-mfl.yaml")


def _args(data: str, project, name: str, **overrides) -> dict:
    """test_train's small deterministic CPU run, on the free head, with SGD so that it learns in 3 epochs."""
    return train_args(data, project, name, **{"model": CFG, "optimizer": "SGD", **overrides})


@pytest.fixture(scope="module")
def trained(tiny_data, tmp_path_factory) -> MFLTrainer:
    """The anchor-free head trained with Mask Focal Loss (the hyp file's default loss)."""
    trainer = MFLTrainer(overrides=_args(tiny_data, tmp_path_factory.mktemp("runs"), "mfl", imgsz=256))
    trainer.train()
    return trainer


def test_counts_use_the_nms_iou_the_threshold_was_calibrated_at(trained):
    """train.py calibrates the count threshold with NMS at 0.6 (YOLOv5's validation IoU); detect.py, val.py and
    HeadCounter count with the same NMS unless told otherwise (detect.py's YOLOv5 default, 0.45, is not it)."""
    w = str(trained.best)
    assert trained.validator.args.iou == 0.6
    assert detect_cli.parse_opt(["--weights", w, "--source", "x.jpg"]).iou_thres == 0.6
    assert val_cli.parse_opt(["--weights", w]).iou_thres == 0.6
    assert HeadCounter(w).predictor.args.iou == 0.6


def test_yaml_builds_every_scale_and_the_p2_variant():
    """yolov5{n,s}u-mfl.yaml pick the scale by name; -p2 adds a stride-4 level; the anchor YAML keeps its head."""
    n = build_model(CFG, nc=1, verbose=False)
    s = build_model(str(ROOT / "models" / "yolov5su-mfl.yaml"), nc=1, verbose=False)
    p2 = build_model(str(ROOT / "models" / "yolov5nu-mfl-p2.yaml"), nc=1, verbose=False)
    assert isinstance(n, AnchorFreeDetectionModel) and (n.yaml["scale"], s.yaml["scale"]) == ("n", "s")
    assert sum(p.numel() for p in s.parameters()) > 3 * sum(p.numel() for p in n.parameters())
    assert p2.stride.tolist() == [4.0, 8.0, 16.0, 32.0]
    assert isinstance(build_model(str(ROOT / "models" / "yolov5n-mfl.yaml"), nc=1, verbose=False), AnchorDetectionModel)


def test_training_uses_ultralytics_recipe_and_learns(trained):
    """The free head trains with Ultralytics' box/cls/dfl gains (hyp.scratch-u.yaml), its loss falls, and the
    checkpoint holds our model class, its loss settings and the calibrated count threshold."""
    assert (trained.args.box, trained.args.cls, trained.args.dfl, trained.args.loss) == (7.5, 0.5, 1.5, "mfl")
    df = pd.read_csv(trained.save_dir / "results.csv")
    total = df["train/box_loss"] + df["train/cls_loss"] + df["train/dfl_loss"]
    assert total.iloc[-1] < total.iloc[0], f"training loss did not fall: {total.tolist()}"
    ckpt, _ = torch_safe_load(str(trained.best))
    model = ckpt["model"]
    assert type(model) is AnchorFreeDetectionModel
    assert model.args["loss"] == "mfl" and (model.args["mfl_mask"], model.args["mfl_quality"]) == ("fg", False)
    conf = read_count_conf(trained.best)
    assert conf is not None and 0.0 < conf < 1.0


def test_checkpoint_round_trip_predicts_as_the_trained_model(trained):
    """last.pt (the final EMA, stored in fp16 as Ultralytics stores it) reloaded predicts as the EMA in memory."""
    ckpt, _ = torch_safe_load(str(trained.last))
    loaded = ckpt["model"].float().eval()
    live = deepcopy(trained.ema.ema).half().float().eval()
    x = torch.rand(1, 3, 128, 128)
    with torch.no_grad():
        torch.testing.assert_close(loaded(x)[0], live(x)[0], rtol=1e-4, atol=1e-4)


def test_val_detect_api_and_tiling(trained, tiny_data, tmp_path):
    """val.py reports counts with the stored threshold; detect.py, the API and tiling count what they saved."""
    metrics = val_cli.main(
        val_cli.parse_opt(
            ["--data", tiny_data, "--weights", str(trained.best), "--img", "128", "--project", str(tmp_path)]
        )
    )
    assert metrics["metrics/count_conf"] == pytest.approx(read_count_conf(trained.best))
    images = sorted((Path(tiny_data).parent / "images" / "val").iterdir())
    env = {**os.environ, "YOLO_CONFIG_DIR": str(tmp_path / "cfg")}
    cmd = [sys.executable, str(ROOT / "detect.py"), "--weights", str(trained.best), "--source", str(images[0])]
    cmd += ["--imgsz", "128", "--save-txt", "--project", str(tmp_path / "det"), "--name", "exp"]
    proc = subprocess.run(cmd, cwd=ROOT, env=env, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-2000:]
    counts = pd.read_csv(tmp_path / "det" / "exp" / "counts.csv")
    label = tmp_path / "det" / "exp" / "labels" / f"{images[0].stem}.txt"
    n_saved = len(label.read_text().splitlines()) if label.exists() else 0
    assert int(counts["count"].iloc[0]) == n_saved
    image = cv2.imread(str(images[0]))
    result = count_heads(image, trained.best, imgsz=128)
    assert result.count == n_saved
    assert (result.scores >= read_count_conf(trained.best)).all()
    tiled = HeadCounter(trained.best, imgsz=64, tile=True)(image)
    assert tiled.boxes.shape == (tiled.count, 4)


def test_resume_and_finetune_keep_the_free_head(tiny_data, tmp_path):
    """A killed run resumes as the free head; train.py --weights fine-tunes the free head with its own recipe."""

    def crash(trainer):
        raise RuntimeError("simulated interruption")

    first = MFLTrainer(overrides=_args(tiny_data, tmp_path, "run", epochs=2))
    first.add_callback("on_model_save", crash)
    with pytest.raises(RuntimeError, match="simulated interruption"):
        first.train()
    resumed = MFLTrainer(overrides={"resume": str(first.last)})
    resumed.train()
    assert resumed.start_epoch == 1 and type(resumed.model) is AnchorFreeDetectionModel
    assert len(pd.read_csv(resumed.save_dir / "results.csv")) == 2

    opt = train_cli.parse_opt(
        ["--weights", str(resumed.best), "--data", tiny_data, "--img", "128", "--epochs", "1", "--batch-size", "4"]
        + ["--device", "cpu", "--project", str(tmp_path), "--name", "tuned"]
    )
    tuned = MFLTrainer(overrides=train_cli.overrides_from(opt), hyp=opt.hyp or None)
    tuned._setup_train()
    assert type(tuned.model) is AnchorFreeDetectionModel and tuned.args.box == 7.5
    key = "model.24.cv2.0.0.conv.weight"
    ckpt = torch.load(resumed.best, weights_only=False)["model"].float().state_dict()
    torch.testing.assert_close(tuned.model.state_dict()[key].cpu(), ckpt[key])


def test_free_bce_is_stock_ultralytics_bit_for_bit(tiny_data, tmp_path):
    """`--cfg yolov5nu-mfl.yaml --loss bce` trains exactly as Ultralytics' own YOLO("yolov5n.yaml") with its own
    trainer and defaults: same training losses every epoch and the same final weights, bit for bit (same seed, CPU).
    Validation losses are not compared: ours validates on square inputs (as val.py), Ultralytics' on rect batches."""
    common = dict(data=tiny_data, epochs=2, imgsz=128, batch=4, workers=0, device="cpu", project=str(tmp_path))
    common.update(exist_ok=True, plots=False, seed=0, deterministic=True, iou=0.6, conf=0.01)
    stock = stock_trainer({**common, "name": "stock"})
    stock.train()
    ours = MFLTrainer(overrides={**common, "name": "free", "model": CFG, "loss": "bce"})
    ours.train()
    assert type(ours.model) is AnchorFreeDetectionModel and ours.args.box == 7.5
    a, b = (pd.read_csv(t.save_dir / "results.csv").filter(regex=r"^train/.*loss") for t in (stock, ours))
    assert a.shape == (2, 3)
    pd.testing.assert_frame_equal(a, b)
    wa, wb = (torch.load(t.last, weights_only=False)["model"].state_dict() for t in (stock, ours))
    assert wa.keys() == wb.keys() and all(torch.equal(wa[k], wb[k]) for k in wa)
