"""val.py and CountingValidator end to end on a tiny generated crowd set, with a stock yolov5n trained for 1 epoch."""

from __future__ import annotations

import csv
import json
import socket
from copy import copy
from pathlib import Path

import cv2
import numpy as np
import pytest
import torch
import yaml
from ultralytics.models.yolo.detect import DetectionTrainer
from ultralytics.utils import DEFAULT_CFG_DICT, IterableSimpleNamespace

from utils import COUNT_CONF_KEY, MAX_DET
from utils.counting import CountReport
from utils.validator import COUNT_KEYS, CountingValidator, CountMetrics
from val import main, parse_opt

W, H, HEAD = 128, 96, 16  # image size and head box side (pixels)
VAL_HEADS = {"val0": 3, "val1": 0, "val2": None, "val3": 5}  # None: no label file at all


def _heads(n: int) -> np.ndarray:
    """Centres of n heads laid out in rows of four (pixels)."""
    k = np.arange(n)
    return np.stack([16 + (24 * k) % 112, 20 + 30 * (k // 4)], 1).astype(float)


def _make_split(root: Path, split: str, heads: dict[str, int | None]) -> None:
    """Grey images with red discs as heads; YOLO txt labels (an empty file for 0 heads, none for None)."""
    (root / "images" / split).mkdir(parents=True)
    (root / "labels" / split).mkdir(parents=True)
    for name, n in heads.items():
        im = np.full((H, W, 3), 90, np.uint8)
        for x, y in _heads(n or 0):
            cv2.circle(im, (int(x), int(y)), HEAD // 2, (30, 30, 200), -1)
        cv2.imwrite(str(root / "images" / split / f"{name}.jpg"), im)
        if n is not None:
            rows = [f"0 {x / W:.6f} {y / H:.6f} {HEAD / W:.6f} {HEAD / H:.6f}" for x, y in _heads(n)]
            (root / "labels" / split / f"{name}.txt").write_text("\n".join(rows))


class _CountingTrainer(DetectionTrainer):
    """What the lead's MFLTrainer does with our validator."""

    def get_validator(self):
        self.loss_names = "box_loss", "cls_loss", "dfl_loss"
        return CountingValidator(
            self.test_loader, save_dir=self.save_dir, args=copy(self.args), _callbacks=self.callbacks
        )


@pytest.fixture(scope="module")
def crowd(tmp_path_factory) -> dict:
    """Dataset YAML, a 1-epoch checkpoint trained through CountingValidator, and variants of it."""
    root = tmp_path_factory.mktemp("crowd")
    _make_split(root / "ds", "train", {"train0": 3, "train1": 5, "train2": 2, "train3": 4})
    _make_split(root / "ds", "val", VAL_HEADS)
    data = root / "ds" / "data.yaml"
    data.write_text(
        yaml.safe_dump(
            {
                "path": str(root / "ds"),
                "train": "images/train",
                "val": "images/val",
                "test": "images/val",
                "names": {0: "head"},
            }
        )
    )
    cfg = {**DEFAULT_CFG_DICT, "mfl_gamma": 4.0, "loss": "mfl"}  # extra hyps as our trainer carries them
    overrides = dict(
        model="yolov5n.yaml",
        data=str(data),
        epochs=1,
        imgsz=64,
        batch=4,
        workers=0,
        plots=False,
        project=str(root / "runs"),
        name="train",
        device="cpu",
        amp=False,
    )
    trainer = _CountingTrainer(cfg=cfg, overrides=overrides)
    trainer.train()
    best = trainer.best
    ckpt = torch.load(best, weights_only=False)
    ckpt[COUNT_CONF_KEY] = 0.37
    stored = root / "stored.pt"
    torch.save(ckpt, stored)
    for head_conv in ckpt["model"].model[-1].cv3:  # every anchor scores ~1: predictions pile up to max_det
        head_conv[-1].bias.data.fill_(10.0)
    ckpt.pop(COUNT_CONF_KEY)
    hot = root / "hot.pt"
    torch.save(ckpt, hot)
    return {"data": data, "best": best, "stored": stored, "hot": hot, "trainer": trainer}


def _val(crowd: dict, weights: str, project: Path, *extra: str) -> tuple[dict, Path]:
    """Run val.py's main in-process; return its stats and run folder."""
    argv = [
        "--data",
        str(crowd["data"]),
        "--weights",
        str(crowd[weights]),
        "--imgsz",
        "64",
        "--batch-size",
        "4",
        "--device",
        "cpu",
        "--project",
        str(project),
        "--name",
        "exp",
        *extra,
    ]
    return main(parse_opt(argv)), project / "exp"


def _read_counts(run: Path) -> dict[str, tuple[int, int, int]]:
    with open(run / "counts.csv", newline="") as f:
        return {r["image"]: (int(r["gt"]), int(r["pred"]), int(r["error"])) for r in csv.DictReader(f)}


def test_val_writes_counting_report(crowd, tmp_path, monkeypatch):
    """Files written, GT counts from the labels (empty file and missing file both GT 0, the missing one listed),
    MAE/RMSE consistent with counts.csv and with the sweep, and no network access at all (fonts included)."""
    attempts = []

    def no_network(*args, **kwargs):
        attempts.append(args)
        raise OSError("network disabled in this test")

    monkeypatch.setattr(socket, "getaddrinfo", no_network)
    monkeypatch.setattr(socket.socket, "connect", no_network)
    stats, run = _val(crowd, "stored", tmp_path, "--save-json", "--save-txt")
    assert attempts == []

    counts = _read_counts(run)
    assert {k: v[0] for k, v in counts.items()} == {"val0.jpg": 3, "val1.jpg": 0, "val2.jpg": 0, "val3.jpg": 5}
    assert all(err == pred - gt for gt, pred, err in counts.values())
    m = json.loads((run / "metrics.json").read_text())
    errors = np.array([v[2] for v in counts.values()], dtype=float)
    assert m["MAE"] == pytest.approx(np.abs(errors).mean(), abs=1e-6)
    assert m["RMSE"] == pytest.approx(np.sqrt((errors**2).mean()), abs=1e-6)
    assert (m["images"], m["mean_gt"], m["missing_labels"]) == (4, 2.0, ["val2.jpg"])
    i = m["sweep"]["conf"].index(m["count_conf"])
    assert m["sweep"]["MAE"][i] == pytest.approx(m["MAE"], abs=1e-6)
    assert m["sweep"]["MAE"][m["sweep"]["conf"].index(m["calibrated_conf"])] == min(m["sweep"]["MAE"])
    assert set(m["localisation"]) == {"sigma_s", "sigma_l", "4px", "8px"} and m["max_det"] == MAX_DET
    assert stats[COUNT_KEYS[0]] == pytest.approx(m["MAE"], abs=1e-5)
    for name in (
        "counts_scatter.png",
        "counts_error_hist.png",
        "counts_mae_vs_conf.png",
        "val_batch0_pred.jpg",
        "predictions.json",
    ):
        assert (run / name).stat().st_size > 0, name
    assert len(list((run / "worst_images").glob("worst_*.jpg"))) == 4
    assert (run / "labels").is_dir()


def test_rect_batches_letterbox_less_and_count_the_same_labels(crowd, tmp_path, monkeypatch):
    """--rect: 128x96 images at 256 px enter as Ultralytics' rect shape, ceil(side / 32 + 0.5) strides: 224 rows
    (0.75 x 8 + 0.5 = 6.5 -> 7) by 288 columns (8.5 -> 9); square 256 without it; the same ground truth is read."""
    shapes = []
    preprocess = CountingValidator.preprocess

    def record(self, batch):
        shapes.append(tuple(batch["img"].shape[2:]))
        return preprocess(self, batch)

    monkeypatch.setattr(CountingValidator, "preprocess", record)
    _, square = _val(crowd, "stored", tmp_path / "square", "--imgsz", "256")
    assert set(shapes) == {(256, 256)}
    shapes.clear()
    _, rect = _val(crowd, "stored", tmp_path / "rect", "--imgsz", "256", "--rect")
    assert set(shapes) == {(224, 288)}
    assert {k: v[0] for k, v in _read_counts(rect).items()} == {k: v[0] for k, v in _read_counts(square).items()}


def test_count_threshold_policy(crowd, tmp_path):
    """--task test uses the threshold stored in the weights unless --count-conf is given; 'auto' tunes on the split
    and says so; weights without one are calibrated on val first, then applied to test."""
    read = lambda run: json.loads((run / "metrics.json").read_text())  # noqa: E731

    m = read(_val(crowd, "stored", tmp_path / "a", "--task", "test")[1])
    assert (m["count_conf"], m["count_conf_source"], m["tuned_on_evaluated_split"]) == (0.37, "checkpoint", False)
    m = read(_val(crowd, "stored", tmp_path / "b", "--task", "test", "--count-conf", "0.5")[1])
    assert (m["count_conf"], m["count_conf_source"], m["tuned_on_evaluated_split"]) == (0.5, "argument", False)
    m = read(_val(crowd, "stored", tmp_path / "c", "--task", "test", "--count-conf", "auto")[1])
    assert m["tuned_on_evaluated_split"] and m["count_conf_source"] == "auto"
    assert m["count_conf"] == m["calibrated_conf"] and m["split"] == "test"

    run = _val(crowd, "best", tmp_path / "d", "--task", "test")[1]
    m, cal = read(run), read(run / "calibration-val")
    assert cal["split"] == "val" and cal["tuned_on_evaluated_split"]
    assert (m["count_conf"], m["count_conf_source"]) == (cal["calibrated_conf"], "calibrated on val by val.py")
    assert not m["tuned_on_evaluated_split"]


def test_bad_inputs_fail_clearly(crowd, tmp_path):
    """A missing weights file and a stored threshold below the NMS floor are one-line errors naming the file."""
    with pytest.raises(FileNotFoundError, match="nope.pt"):
        main(parse_opt(["--data", str(crowd["data"]), "--weights", str(tmp_path / "nope.pt")]))
    with pytest.raises(SystemExit):
        parse_opt(["--data", "d.yaml", "--weights", "w.pt", "--count-conf", "1.5"])
    args = dict(model=str(crowd["stored"]), data=str(crowd["data"]), conf=0.5, imgsz=64, device="cpu", plots=False)
    with pytest.raises(ValueError, match="stored.pt: stored count_conf 0.37 is below conf=0.5"):
        CountingValidator(save_dir=tmp_path, args=args)()


def test_max_det_cap_is_reported(crowd, tmp_path):
    """Predictions reaching --max-det are listed, never silently capped; counts at the cap are flagged."""
    _, run = _val(crowd, "hot", tmp_path, "--max-det", "5", "--count-conf", "0.5")
    m = json.loads((run / "metrics.json").read_text())
    assert sorted(m["max_det_reached"]) == ["val0.jpg", "val1.jpg", "val2.jpg", "val3.jpg"]
    assert {v[1] for v in _read_counts(run).values()} == {5}


def test_validator_gt_in_original_pixels(crowd, tmp_path):
    """GT boxes come back from the letterboxed 64 px batch to the 128x96 image: centres and sizes as labelled."""
    v = CountingValidator(
        save_dir=tmp_path,
        args=dict(model=str(crowd["stored"]), data=str(crowd["data"]), imgsz=64, batch=4, device="cpu", plots=False),
    )
    v()
    got = {Path(f).stem: g for f, g in zip(v.counter.files, v.counter.gt_xywh)}
    for name, n in VAL_HEADS.items():
        assert len(got[name]) == (n or 0)
        if n:
            order = np.lexsort(got[name][:, :2].T[::-1])
            np.testing.assert_allclose(got[name][order, :2], _heads(n), atol=0.5)
            np.testing.assert_allclose(got[name][:, 2:], HEAD, atol=0.5)
    assert v.count_conf == 0.37 and v.count_conf_source == "checkpoint"


def test_validator_tolerates_trainer_args():
    """Extra hyperparameter keys are ignored (get_cfg would raise SyntaxError); Ultralytics' max_det 300 becomes
    MAX_DET while an explicit value is kept; a count threshold below the NMS floor is refused."""
    v = CountingValidator(args=IterableSimpleNamespace(**{**DEFAULT_CFG_DICT, "mfl_gamma": 4.0, "loss": "mfl"}))
    assert v.args.max_det == MAX_DET and not hasattr(v.args, "mfl_gamma")
    assert CountingValidator(args={"max_det": 500}).args.max_det == 500
    assert v.metrics.keys[-len(COUNT_KEYS) :] == list(COUNT_KEYS)
    with pytest.raises(ValueError, match="count_conf"):
        CountingValidator(args={"conf": 0.1}, count_conf=0.05)


def test_fitness_formula():
    """fitness = 0.5 mAP50-95 + 0.5 / (1 + MAE / max(mean GT, 1)). No detections (mAP 0), MAE 2, mean GT 4:
    0.5 / (1 + 0.5) = 1/3; with mean GT 0.5 the scale is 1: 0.5 / (1 + 2) = 1/6. Before counting: mAP50-95 only."""
    m = CountMetrics()
    assert m.fitness == 0.0

    def report(mae, mean_gt):
        return CountReport(
            [],
            np.zeros(0),
            np.zeros(0),
            0.3,
            0.3,
            np.zeros(0),
            np.zeros(0),
            np.zeros(0),
            {"MAE": mae, "RMSE": mae, "mean_gt": mean_gt},
        )

    m.count = report(2.0, 4.0)
    assert m.fitness == pytest.approx(1 / 3)
    m.count = report(2.0, 0.5)
    assert m.fitness == pytest.approx(1 / 6)


def test_training_adds_counting_columns(crowd):
    """Each training validation adds MAE/RMSE/count_conf to results.csv, calibrates count_conf on val for the
    trainer, and the trainer's best fitness is the counting fitness of that validation (mean GT = 8/4 = 2)."""
    trainer = crowd["trainer"]
    with open(trainer.csv, newline="") as f:
        rows = list(csv.DictReader(f))
    assert len(rows) == 1 and all(k in rows[0] for k in COUNT_KEYS)
    row = {k.strip(): float(v) for k, v in rows[0].items()}
    conf = row["metrics/count_conf"]
    assert trainer.validator.args.conf <= conf < 1 and conf == round(conf, 3)  # on the 0.001 sweep, above NMS conf
    expected = 0.5 * row["metrics/mAP50-95(B)"] + 0.5 / (1 + row["metrics/MAE(count)"] / 2.0)
    assert trainer.best_fitness == pytest.approx(expected, abs=1e-4)
    assert isinstance(trainer.validator.count_conf, float)


def test_postprocess_never_drops_images_on_slow_nms(monkeypatch):
    """Ultralytics' NMS stops after its time budget and leaves later images empty; ours keeps every image.

    The clock is faked to advance 100 s per reading, so any time limit is exceeded after the first image.
    """
    from types import SimpleNamespace

    from ultralytics.utils import nms as nms_module

    from utils.validator import CountingValidator

    clock = iter(range(0, 10**9, 100))
    monkeypatch.setattr(nms_module, "time", SimpleNamespace(time=lambda: next(clock)))
    xy = torch.arange(10, dtype=torch.float32) * 50 + 25  # 10 disjoint 20 px boxes per image
    one = torch.stack((xy, xy, torch.full_like(xy, 20), torch.full_like(xy, 20), torch.full_like(xy, 0.9)))
    preds = one.expand(3, -1, -1).clone()  # (3 images, 5, 10)
    default = nms_module.non_max_suppression(preds, 0.001, 0.6, max_det=3000)
    assert [len(d) for d in default] != [10, 10, 10], "the fake clock must trip Ultralytics' default time limit"
    out = CountingValidator(args={"conf": 0.001, "iou": 0.6, "max_det": 3000}).postprocess(preds)
    assert [len(o["bboxes"]) for o in out] == [10, 10, 10]


def test_cap_warning_once_per_run_and_sweep_shows_the_best_threshold(crowd, tmp_path, monkeypatch):
    """A validator run twice (as the trainer does every epoch) warns about max_det once; the sweep printout always
    has a column for the threshold it calls best, also off the 0.05 grid (e.g. 0.99)."""
    from ultralytics.utils import LOGGER

    warnings, infos = [], []
    monkeypatch.setattr(LOGGER, "warning", lambda msg, *a, **k: warnings.append(str(msg)))
    monkeypatch.setattr(LOGGER, "info", lambda msg, *a, **k: infos.append(str(msg)))
    args = dict(model=str(crowd["hot"]), data=str(crowd["data"]), imgsz=64, batch=4, device="cpu", plots=False)
    v = CountingValidator(save_dir=tmp_path, args={**args, "max_det": 5})
    v()
    v.capped = ["val0.jpg"]  # as after the next epoch's pass
    v._warn_capped()
    assert sum("reached max_det=5" in w for w in warnings) == 1
    v.report.calibrated_conf = 0.99  # off the printed 0.05 grid, as for an over-firing model
    infos.clear()
    v.print_results()
    sweep = next(i for i in infos if i.startswith("Count threshold sweep"))
    assert "lowest MAE at 0.99" in sweep
    assert "0.99" in sweep.splitlines()[1].split()[1:], sweep
