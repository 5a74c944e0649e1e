"""Benchmark: the paper's Table VI for our model, one objectness loss per row, same model, data, epochs and seed.

Trains from scratch once per loss (bce, focal, heatmap, mfl with Gaussian targets, mfl with binary targets) on the
train split (optionally a fixed random subset), then reports on the val split (optionally a fixed subset): MAE, RMSE
at the count threshold calibrated on that val split at the end of training (as the stock baseline's "best
threshold"), mAP50, and centre F1 within σ_l. Writes summary.csv, summary.md and mae_per_epoch.png.

Usage:
    python bench/accuracy.py --data data/scut_head_a.yaml --imgsz 512 --epochs 3 --batch 8 --train-subset 400 \
        --val-subset 200
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np
import pandas as pd

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from data.resolve import resolve_data  # noqa: E402
from utils import ROOT  # noqa: E402

RUNS = {  # name: objectness overrides
    "bce": {"loss": "bce"},
    "focal": {"loss": "focal"},
    "heatmap": {"loss": "heatmap"},
    "mfl": {"loss": "mfl", "mfl_target": "gaussian"},
    "mfl-binary": {"loss": "mfl", "mfl_target": "binary"},
}


def subset_yaml(data_yaml: str, n_train: int, n_val: int, seed: int, out: Path) -> str:
    """Write a data YAML whose train/val are fixed random subsets (image lists) of the given dataset's splits."""
    from ultralytics.data.utils import check_det_dataset

    data = check_det_dataset(data_yaml)
    rng = np.random.default_rng(seed)
    out.mkdir(parents=True, exist_ok=True)
    lines = {}
    for split, n in (("train", n_train), ("val", n_val)):
        files = sorted(str(p) for p in Path(data[split]).rglob("*") if p.suffix.lower() in {".jpg", ".jpeg", ".png"})
        pick = sorted(rng.choice(files, size=min(n, len(files)), replace=False)) if n else files
        (out / f"{split}.txt").write_text("\n".join(pick) + "\n")
        lines[split] = len(pick)
    yaml_path = out / "subset.yaml"
    yaml_path.write_text(f"path: {out}\ntrain: train.txt\nval: val.txt\nnames:\n  0: head\n")
    print(f"subset: {lines['train']} train, {lines['val']} val images from {data_yaml} (seed {seed})")
    return str(yaml_path)


def run_one(name: str, data: str, opt: argparse.Namespace) -> dict:
    """Train one loss from scratch and validate its best.pt on the val split with localisation."""
    from utils.trainer import MFLTrainer
    from utils.validator import CountingValidator

    overrides = dict(
        data=data,
        model=opt.cfg,
        epochs=opt.epochs,
        imgsz=opt.imgsz,
        batch=opt.batch,
        seed=opt.seed,
        deterministic=True,
        device=opt.device,
        project=str(Path(opt.project).resolve()),
        name=name,
        exist_ok=True,
        warmup_epochs=opt.warmup_epochs,
        workers=opt.workers,
        plots=False,
        conf=opt.conf,
        **RUNS[name],
    )
    trainer = MFLTrainer(overrides=overrides)
    trainer.train()
    val = CountingValidator(
        save_dir=Path(opt.project) / f"{name}-val",
        args=dict(
            model=str(trainer.best),
            data=data,
            imgsz=opt.imgsz,
            batch=opt.batch,
            conf=opt.conf,
            iou=0.6,
            device=opt.device,
            plots=True,
        ),
    )
    metrics = val()
    report = val.report.to_dict()
    return {
        "loss": name,
        "MAE": report["MAE"],
        "RMSE": report["RMSE"],
        "mAP50": metrics["metrics/mAP50(B)"],
        "F1_sigma_l": report["localisation"]["sigma_l"]["F1"],
        "count_conf": val.count_conf,
        "epochs_csv": str(trainer.save_dir / "results.csv"),
    }


def plot_mae(rows: list[dict], path: Path) -> None:
    """Validation MAE per epoch, one line per loss."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6, 4), tight_layout=True)
    for r in rows:
        df = pd.read_csv(r["epochs_csv"])
        ax.plot(df["epoch"], df["metrics/MAE(count)"], marker="o", label=r["loss"])
    ax.set(xlabel="epoch", ylabel="val MAE (calibrated threshold)", title="Validation MAE per epoch")
    ax.legend()
    fig.savefig(path, dpi=120)
    plt.close(fig)


def main(opt: argparse.Namespace) -> pd.DataFrame:
    """Run every loss and write the table."""
    project = Path(opt.project).resolve()
    data = resolve_data(opt.data)
    if opt.train_subset or opt.val_subset:
        data = subset_yaml(data, opt.train_subset, opt.val_subset, opt.seed, project / "subset")
    rows = [run_one(name, data, opt) for name in opt.losses]
    table = pd.DataFrame(rows).drop(columns="epochs_csv")
    table.to_csv(project / "summary.csv", index=False)
    header = "| " + " | ".join(table.columns) + " |\n|" + "---|" * len(table.columns) + "\n"
    body = "".join(
        "| " + " | ".join(f"{v:.3f}" if isinstance(v, float) else str(v) for v in row) + " |\n"
        for row in table.itertuples(index=False)
    )
    (project / "summary.md").write_text(header + body)
    plot_mae(rows, project / "mae_per_epoch.png")
    print(table.to_string(index=False, float_format=lambda v: f"{v:.3f}"))
    return table


def parse_opt() -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--data", default=str(ROOT / "data" / "scut_head_a.yaml"))
    p.add_argument("--cfg", default=str(ROOT / "models" / "yolov5n-mfl.yaml"))
    p.add_argument("--losses", nargs="+", default=list(RUNS), choices=list(RUNS))
    p.add_argument("--imgsz", type=int, default=512)
    p.add_argument("--epochs", type=int, default=3)
    p.add_argument("--batch", type=int, default=8)
    p.add_argument("--train-subset", type=int, default=0, help="fixed random subset of train images (0: all)")
    p.add_argument("--val-subset", type=int, default=0, help="fixed random subset of val images (0: all)")
    p.add_argument("--warmup-epochs", type=float, default=1.0)
    p.add_argument("--workers", type=int, default=2)
    p.add_argument("--conf", type=float, default=0.01, help="validation NMS confidence (count sweep start)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--device", default="")
    p.add_argument("--project", default=str(ROOT / "runs" / "bench_accuracy"))
    return p.parse_args()


if __name__ == "__main__":
    main(parse_opt())
