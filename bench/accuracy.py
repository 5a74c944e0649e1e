"""Benchmark: the paper's Table VI for our models, one head × objectness loss per row, same data, epochs and seed.

Trains from scratch once per row (bce, focal, heatmap, mfl with Gaussian targets, mfl with binary targets, on the
YOLOv5 anchor head and, as `free-*`, on the anchor-free YOLOv5u head; `stock` is Ultralytics' own yolov5n) on the
train split (optionally a fixed random subset), then reports on the val split (optionally a fixed subset): MAE, RMSE
at the count threshold calibrated on that val split for the final weights (as train.py's final evaluation stores it;
the stock baseline's "best threshold"; a 0.001 grid), mAP50, and centre F1 within σ_l. `--rescore` scores rows whose
best.pt exists again instead of training them. Writes summary.csv, summary.md and mae_per_epoch.png in the project,
and merges one row per trained model into bench/results/accuracy.csv (committed).

Usage:
    python bench/accuracy.py --data data/scut_head_a.yaml --imgsz 512 --epochs 3 --batch 8 --train-subset 400 \
        --val-subset 200
    python bench/accuracy.py --imgsz 512 --epochs 6 --batch 16 --losses stock free-bce free-mfl --seed 1
    python bench/accuracy.py ... --losses stock --seed 1 --rescore   # same flags as the training run
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

LOSSES = {  # loss name: objectness overrides, for either head
    "bce": {"loss": "bce"},
    "focal": {"loss": "focal"},
    "heatmap": {"loss": "heatmap"},
    "mfl": {"loss": "mfl", "mfl_target": "gaussian"},
    "mfl-binary": {"loss": "mfl", "mfl_target": "binary"},
}
FREE = "free-"  # row prefix of the anchor-free YOLOv5u head
RUNS = {**LOSSES, **{FREE + k: v for k, v in LOSSES.items()}}
RESULTS = ROOT / "bench" / "results" / "accuracy.csv"  # one row per trained model, merged across runs
NOT_VARIANT = {"save_period", "workers", "device", "plots"}  # --set keys that change no trained weight
RESULT_KEY = ["head", "loss", "variant", "seed", "imgsz", "epochs", "train_images", "val_images"]
STOCK = "stock"  # reference row: Ultralytics' own YOLOv5n (anchor-free head, its loss and default hyperparameters)
STOCK_MODEL = "yolov5n.yaml"


def stock_trainer(overrides: dict):
    """Ultralytics' DetectionTrainer on its stock YOLOv5n, validated and checkpointed as ours are (counting report)."""
    from ultralytics.models.yolo.detect import DetectionTrainer

    from utils import MAX_DET
    from utils.offline import provide_fonts
    from utils.trainer import CountingTrainerMixin, amp_mode

    class StockCountingTrainer(CountingTrainerMixin, DetectionTrainer):
        pass

    provide_fonts()
    return StockCountingTrainer(overrides={**overrides, "model": STOCK_MODEL, "max_det": MAX_DET, "amp": amp_mode()})


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
    from ultralytics.utils import YAML

    from utils.trainer import MFLTrainer
    from utils.validator import CountingValidator

    overrides = dict(
        data=data,
        model=opt.cfg_free if name.startswith(FREE) else opt.cfg,
        epochs=opt.epochs,
        imgsz=opt.imgsz,
        batch=opt.batch,
        seed=opt.seed,
        deterministic=True,
        device=opt.device,
        project=str(Path(opt.project).resolve()),
        name=row_name(name, opt),
        exist_ok=True,
        warmup_epochs=opt.warmup_epochs,
        workers=opt.workers,
        plots=False,
        conf=opt.conf,
        iou=0.6,
        **dict(opt.set),
    )
    best = Path(opt.project).resolve() / row_name(name, opt) / "weights" / "best.pt"
    if opt.rescore and best.exists():  # score the trained model again, e.g. after a change of protocol
        settings = YAML.load(best.parents[1] / "args.yaml")  # every key (the checkpoint keeps Ultralytics' only)
    else:
        trainer = stock_trainer(overrides) if name == STOCK else MFLTrainer(overrides={**overrides, **RUNS[name]})
        trainer.train()
        best, settings = Path(trainer.best), vars(trainer.args)
    # The threshold is calibrated on this very pass (as train.py's final evaluation does for the weights it stores).
    # Square letterboxed inputs (rect off), as val.py, exported models and our trainers' validation use.
    val = CountingValidator(
        save_dir=Path(opt.project) / f"{row_name(name, opt)}-val",
        args=dict(
            model=str(best),
            data=data,
            imgsz=opt.imgsz,
            batch=2 * opt.batch,
            conf=opt.conf,
            iou=0.6,
            device=opt.device,
            plots=True,
        ),
        count_conf="auto",
    )
    metrics = val()
    report = val.report.to_dict()
    return {
        "loss": row_name(name, opt),
        "MAE": report["MAE"],
        "RMSE": report["RMSE"],
        "mAP50": metrics["metrics/mAP50(B)"],
        "F1_sigma_l": report["localisation"]["sigma_l"]["F1"],
        "count_conf": val.count_conf,
        "val_images": len(val.report.files),
        "settings": loss_settings(settings) if name != STOCK else "ultralytics defaults",
    }


def loss_settings(args: dict) -> str:
    """The loss settings a row was trained with, for the results table (defaults included: they may change)."""
    from utils.trainer import head_of, loss_defaults

    head = head_of(args["model"])
    args = {**loss_defaults(head), **args}  # runs from before a key existed trained with its default
    free = head == "free"
    if args["loss"] == "bce":  # the focal-family keys do not touch it
        keys = ["loss", "cls" if free else "obj"]
    elif free:
        keys = ["loss", "fl_cls", "mfl_mask", "mfl_min_align", "mfl_quality", "fl_balance", "fl_gamma", "mfl_target"]
    else:
        keys = ["loss", "fl_obj", "mfl_mask", "mfl_quality", "mfl_quality_norm", "fl_balance", "fl_gamma", "mfl_target"]
    return " ".join(f"{k}={args[k]}" for k in keys)


def row_name(name: str, opt: argparse.Namespace) -> str:
    """The row's name in the tables and its run folder: the loss, the `--tag` of a variant, the seed unless 0."""
    return name + (f"[{opt.tag}]" if opt.tag else "") + (f"-seed{opt.seed}" if opt.seed else "")


def base_name(row: str) -> str:
    """The row name without its variant tag and seed: a key of RUNS, or STOCK."""
    return row.split("[")[0].split("-seed")[0]


def result_rows(rows: list[dict], opt: argparse.Namespace, train_images: int) -> pd.DataFrame:
    """This run's rows in the layout of bench/results/accuracy.csv."""
    out = []
    for r in rows:
        base = base_name(r["loss"])
        head = "stock-ultralytics" if base == STOCK else "yolov5u" if base.startswith(FREE) else "yolov5-anchor"
        variant = " ".join(f"{k}={v}" for k, v in opt.set if k not in NOT_VARIANT) or "default"
        out.append(
            dict(
                head=head,
                loss=base.removeprefix(FREE),
                variant=variant,
                seed=opt.seed,
                imgsz=opt.imgsz,
                epochs=opt.epochs,
                train_images=train_images,
                val_images=r["val_images"],
                MAE=round(r["MAE"], 4),
                RMSE=round(r["RMSE"], 4),
                mAP50=round(r["mAP50"], 4),
                F1_sigma_l=round(r["F1_sigma_l"], 4),
                count_conf=round(r["count_conf"], 4),
                settings=r["settings"],
            )
        )
    return pd.DataFrame(out)


def merge_results(new: pd.DataFrame, path: Path = RESULTS) -> pd.DataFrame:
    """Merge rows into the committed results table: a re-run of the same model (RESULT_KEY) replaces its row."""
    table = new
    if path.exists():
        old = pd.read_csv(path, dtype={"variant": str})
        same = old[RESULT_KEY].astype(str).agg("|".join, axis=1).isin(new[RESULT_KEY].astype(str).agg("|".join, axis=1))
        table = pd.concat([old[~same], new], ignore_index=True)
    table = table.sort_values(RESULT_KEY, kind="stable").reset_index(drop=True)
    path.parent.mkdir(parents=True, exist_ok=True)
    table.to_csv(path, index=False)
    return table


def parse_override(text: str) -> tuple[str, object]:
    """'key=value' from the command line, the value typed as Ultralytics' own `yolo ... key=value` CLI types it."""
    from ultralytics.cfg import smart_value

    key, sep, value = text.partition("=")
    if not (sep and key.strip() and value.strip()):
        raise argparse.ArgumentTypeError(f"--set expects key=value, got {text!r}")
    return key.strip(), smart_value(value.strip())


def merge_summary(rows: list[dict], path: Path) -> pd.DataFrame:
    """Rows of this run, plus the rows of an earlier summary.csv in the same project for losses not re-run."""
    table = pd.DataFrame(rows)
    if path.exists():
        old = pd.read_csv(path)
        table = pd.concat([old[~old["loss"].isin(table["loss"])], table], ignore_index=True)
    order = {name: i for i, name in enumerate([*RUNS, STOCK])}
    return table.sort_values("loss", key=lambda c: c.map(base_name).map(order), kind="stable").reset_index(drop=True)


def count_images(data_yaml: str, split: str) -> int:
    """Number of images in a split of a data YAML (a folder or an image list)."""
    from ultralytics.data.utils import IMG_FORMATS, check_det_dataset

    src = Path(check_det_dataset(data_yaml)[split])
    if src.is_file():
        return sum(1 for line in src.read_text().splitlines() if line.strip())
    return sum(1 for p in src.rglob("*") if p.suffix.lower().lstrip(".") in IMG_FORMATS)


def plot_mae(project: Path, names: list[str], path: Path) -> None:
    """Validation MAE per epoch (each run's results.csv), one line per loss."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6, 4), tight_layout=True)
    for name in names:
        df = pd.read_csv(project / name / "results.csv")
        ax.plot(df["epoch"], df["metrics/MAE(count)"], marker="o", label=name)
    ax.set_yscale("log")  # early epochs can miscount by 100x; the last epochs differ by a few heads
    ax.set(xlabel="epoch", ylabel="val MAE (calibrated threshold)", title="Validation MAE per epoch")
    ax.legend()
    fig.savefig(path, dpi=120)
    plt.close(fig)


def main(opt: argparse.Namespace) -> pd.DataFrame:
    """Run every loss and write the table."""
    project = Path(opt.project).resolve()
    data = resolve_data(opt.data)
    if opt.train_subset or opt.val_subset:
        data = subset_yaml(data, opt.train_subset, opt.val_subset, opt.subset_seed, project / "subset")
    rows = [run_one(name, data, opt) for name in opt.losses]
    merge_results(result_rows(rows, opt, count_images(data, "train")), opt.results)
    table = merge_summary(rows, project / "summary.csv")
    table.to_csv(project / "summary.csv", index=False)
    header = "| " + " | ".join(table.columns) + " |\n|" + "---|" * len(table.columns) + "\n"
    body = "".join(
        "| " + " | ".join(f"{v:.3f}" if isinstance(v, float) else str(v) for v in row) + " |\n"
        for row in table.itertuples(index=False)
    )
    (project / "summary.md").write_text(header + body)
    plot_mae(project, list(table["loss"]), project / "mae_per_epoch.png")
    print(table.to_string(index=False, float_format=lambda v: f"{v:.3f}"))
    return table


def parse_opt(args: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--data", default=str(ROOT / "data" / "scut_head_a.yaml"))
    p.add_argument("--cfg", default=str(ROOT / "models" / "yolov5n-mfl.yaml"), help="model YAML of the anchor rows")
    p.add_argument("--cfg-free", default=str(ROOT / "models" / "yolov5nu-mfl.yaml"), help="model YAML of free-* rows")
    p.add_argument("--tag", default="", help="variant label appended to row names, e.g. for an ablation via --set")
    p.add_argument("--results", type=Path, default=RESULTS, help="merged per-model results table (CSV)")
    p.add_argument(
        "--losses",
        nargs="+",
        default=list(RUNS),
        choices=[*RUNS, STOCK],
        help=f"rows to (re)train; '{STOCK}' adds Ultralytics' own {STOCK_MODEL} with its defaults as a reference",
    )
    p.add_argument("--imgsz", type=int, default=512)
    p.add_argument("--epochs", type=int, default=3)
    p.add_argument("--batch", type=int, default=8)
    p.add_argument("--train-subset", type=int, default=0, help="fixed random subset of train images (0: all)")
    p.add_argument("--val-subset", type=int, default=0, help="fixed random subset of val images (0: all)")
    p.add_argument("--warmup-epochs", type=float, default=1.0)
    p.add_argument("--workers", type=int, default=2)
    p.add_argument("--conf", type=float, default=0.01, help="validation NMS confidence (count sweep start)")
    p.add_argument("--seed", type=int, default=0, help="training seed")
    p.add_argument("--subset-seed", type=int, default=0, help="seed of the subset draws, fixed across training seeds")
    p.add_argument(
        "--set",
        nargs="*",
        default=[],
        type=parse_override,
        metavar="KEY=VALUE",
        help="trainer overrides for every row, e.g. optimizer=auto warmup_bias_lr=0.0",
    )
    p.add_argument("--rescore", action="store_true", help="re-validate rows whose best.pt exists instead of training")
    p.add_argument("--device", default="")
    p.add_argument("--project", default=str(ROOT / "runs" / "bench_accuracy"))
    return p.parse_args(args)


if __name__ == "__main__":
    main(parse_opt())
