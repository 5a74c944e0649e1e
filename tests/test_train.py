"""End-to-end training on a tiny generated crowd set: every objectness loss, resume, fine-tuning, head output."""

from __future__ import annotations

import pandas as pd
import pytest
import torch
from ultralytics.utils.nms import non_max_suppression

import train as train_cli
from data.synthetic import ensure_synthetic_crowd
from models.head import AnchorDetect
from models.yolo import AnchorDetectionModel
from utils import ROOT
from utils.checkpoint import read_count_conf
from utils.trainer import MFLTrainer

CFG = str(ROOT / "models" / "yolov5n-mfl.yaml")
# Same images every epoch, so the epoch-mean training loss is comparable across epochs.
NO_AUGMENT = dict(mosaic=0.0, fliplr=0.0, hsv_h=0.0, hsv_s=0.0, hsv_v=0.0, translate=0.0, scale=0.0)


@pytest.fixture(scope="module")
def tiny_data(tmp_path_factory) -> str:
    """12 + 4 images of 128 px with up to 60 heads, generated deterministically."""
    return str(ensure_synthetic_crowd(12, 4, 128, 60, seed=1, root=tmp_path_factory.mktemp("crowd")))


def _args(data: str, project, name: str, **overrides) -> dict:
    """Small deterministic CPU run: 3 epochs of 3 batches at 128 px, no augmentation."""
    base = dict(
        data=data,
        model=CFG,
        epochs=3,
        imgsz=128,
        batch=4,
        workers=0,
        device="cpu",
        project=str(project),
        name=name,
        exist_ok=True,
        plots=False,
        seed=0,
        deterministic=True,
        warmup_epochs=0,
        lr0=0.02,
    )
    return {**base, **NO_AUGMENT, **overrides}


def _train(data: str, project, name: str, **overrides) -> MFLTrainer:
    trainer = MFLTrainer(overrides=_args(data, project, name, **overrides))
    trainer.train()
    return trainer


@pytest.mark.parametrize("loss", ["bce", "focal", "heatmap", "mfl", "mfl-binary"])
def test_each_loss_trains_and_writes_weights(tiny_data, tmp_path, loss):
    """Each objectness loss runs end to end: the training loss falls and last.pt/best.pt are written."""
    kind, _, target = loss.partition("-")
    gain = {"obj": (640 / 128) ** 2} if kind == "bce" else {}  # YOLOv5 scales obj by (imgsz / 640)²: 1/25 here
    trainer = _train(tiny_data, tmp_path, loss, loss=kind, mfl_target=target or "gaussian", **gain)
    df = pd.read_csv(trainer.save_dir / "results.csv")
    assert "train/cls_loss" not in df.columns  # one class: no class term, no column of zeros
    total = df["train/box_loss"] + df["train/obj_loss"]
    assert total.iloc[-1] < total.iloc[0], f"{loss}: training loss did not fall: {total.tolist()}"
    assert trainer.last.is_file() and trainer.best.is_file()
    assert "metrics/MAE(count)" in df.columns and df["metrics/MAE(count)"].notna().all()
    conf = read_count_conf(trainer.best)
    assert conf is not None and 0.0 < conf < 1.0


def test_resume_continues_interrupted_run(tiny_data, tmp_path):
    """A run killed after its first checkpoint resumes from last.pt and finishes the remaining epochs."""

    def crash_after_first_save(trainer):
        raise RuntimeError("simulated interruption")

    trainer = MFLTrainer(overrides=_args(tiny_data, tmp_path, "run"))
    trainer.add_callback("on_model_save", crash_after_first_save)
    with pytest.raises(RuntimeError, match="simulated interruption"):
        trainer.train()
    last = trainer.last
    assert torch.load(last, weights_only=False)["epoch"] == 0
    assert len(pd.read_csv(trainer.save_dir / "results.csv")) == 1

    resumed = MFLTrainer(overrides={"resume": str(last)})
    resumed.train()
    assert resumed.start_epoch == 1
    assert resumed.save_dir == trainer.save_dir
    assert len(pd.read_csv(resumed.save_dir / "results.csv")) == 3


def test_finetune_from_checkpoint(tiny_data, tmp_path):
    """train.py --weights best.pt starts a new run from the checkpoint: its architecture and its weights."""
    first = _train(tiny_data, tmp_path, "first", epochs=1)
    opt = train_cli.parse_opt(
        [
            "--weights",
            str(first.best),
            "--data",
            tiny_data,
            "--img",
            "128",
            "--epochs",
            "1",
            "--batch-size",
            "4",
            "--device",
            "cpu",
            "--project",
            str(tmp_path),
            "--name",
            "second",
        ]
    )
    second = MFLTrainer(overrides=train_cli.overrides_from(opt), hyp=opt.hyp)
    second._setup_train()
    ckpt = torch.load(first.best, weights_only=False)["model"].float().state_dict()
    state = second.model.state_dict()
    key = "model.0.conv.weight"
    torch.testing.assert_close(state[key].cpu(), ckpt[key])


def test_head_output_goes_through_ultralytics_nms_to_pixel_boxes():
    """A crafted logit map decodes, with YOLOv5's grid rule, to the expected pixel box after Ultralytics' NMS.

    Level stride 8, cell row 2 col 3, anchor 0 (8 x 8 px), tx = ty = tw = th = 0: centre = (2 * 0.5 - 0.5 + (3, 2)) * 8
    = (28, 20), size = (2 * 0.5)² * 8 = 8, so xyxy = (24, 16, 32, 24); objectness and class logits 10 give score ~1.
    """
    head = AnchorDetect(1, [[8, 8, 12, 12, 17, 17]], ch=(18,)).eval()
    head.stride = torch.tensor([8.0])
    with torch.no_grad():
        head.m[0].weight.copy_(torch.eye(18).view(18, 18, 1, 1))
        head.m[0].bias.zero_()
    feat = torch.full((1, 3, 6, 5, 8), -10.0)[..., :6].clone()  # (B, na, H, W, no) logits, all background
    feat[..., :4] = 0.0
    feat[0, 0, 2, 3, 4:] = 10.0  # anchor 0, row 2, col 3
    x = feat.permute(0, 1, 4, 2, 3).reshape(1, 18, 6, 5)
    y, raw = head([x])
    assert y.shape == (1, 5, 3 * 6 * 5)
    det = non_max_suppression(y, conf_thres=0.5, iou_thres=0.5, max_det=3000)[0]
    assert det.shape[0] == 1
    torch.testing.assert_close(det[0, :4], torch.tensor([24.0, 16.0, 32.0, 24.0]))
    assert det[0, 4] > 0.99


def test_full_model_inference_layout():
    """The whole model emits (B, 4 + nc, A) with A = na * Σ cells and boxes inside plausible pixel ranges."""
    model = AnchorDetectionModel(CFG, nc=1, verbose=False).eval()
    y, raw = model(torch.rand(2, 3, 96, 128))
    cells = sum(96 * 128 // int(s) ** 2 for s in model.stride)
    assert y.shape == (2, 5, 3 * cells)
    assert [r.shape[-1] for r in raw] == [6, 6, 6]
    assert (y[:, 4] >= 0).all() and (y[:, 4] <= 1).all()


def test_missing_data_yaml_is_a_one_line_error(tmp_path):
    """train.py --data with a missing file stops before training with an error naming the file."""
    import subprocess
    import sys

    missing = tmp_path / "nosuch.yaml"
    proc = subprocess.run(
        [sys.executable, str(ROOT / "train.py"), "--data", str(missing)],
        capture_output=True,
        text=True,
        cwd=tmp_path,
        timeout=120,
    )
    assert proc.returncode == 1
    assert proc.stderr.strip().splitlines()[-1] == (
        f"ERROR: --data {missing}: no such file (give a data YAML, or 'synthetic' for the built-in set)"
    )
    assert "Traceback" not in proc.stderr
