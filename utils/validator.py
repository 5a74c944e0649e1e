"""`CountingValidator`: Ultralytics' detection validator plus the crowd-counting report, for val.py and training.

The report: MAE/RMSE/NAE, the count threshold and its sweep, centre localisation; during training MAE, RMSE and the
calibrated threshold become results.csv columns and enter the fitness that picks best.pt.

Counting threshold policy (`count_conf`):
    - float: count detections scoring >= it.
    - "auto": the MAE-minimising threshold on the split being evaluated (said loudly outside training).
    - None (default): during training "auto" on the val split (the calibration the trainer stores as
      ckpt["count_conf"]); standalone, the threshold stored in the weights, or "auto" with a warning if they have none.
"""

from __future__ import annotations

import csv
import json
import os
from importlib.util import find_spec
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.distributed as dist
from ultralytics.data.utils import img2label_paths
from ultralytics.models.yolo.detect import DetectionValidator
from ultralytics.utils import DEFAULT_CFG, DEFAULT_CFG_DICT, LOGGER, RANK, colorstr, ops
from ultralytics.utils.metrics import DetMetrics

from utils import MAX_DET
from utils.checkpoint import read_count_conf
from utils.counting import CountingEvaluator, CountReport
from utils.nms import topk_nms
from utils.offline import provide_fonts
from utils.peaks import head_strides, level_shapes, peak_filter
from utils.plots import (
    plot_count_scatter,
    plot_error_histogram,
    plot_point_mosaic,
    plot_threshold_sweep,
    plot_worst_images,
)

COUNT_KEYS = ("metrics/MAE(count)", "metrics/RMSE(count)", "metrics/count_conf")  # results.csv columns we add
PREVIEW_CONF = 0.25  # val_batch mosaics when the count threshold is only known at the end (Ultralytics' predict conf)


class CountMetrics(DetMetrics):
    """Detection metrics plus counting error; `keys`/`results_dict` gain COUNT_KEYS and `fitness` counts errors.

    fitness = 0.5 * mAP50-95 + 0.5 / (1 + MAE / max(mean GT count, 1)): half Ultralytics' detection fitness, half a
    scale-free count score in (0, 1] (1 = exact counts, 0.5 = off by the mean crowd size).
    """

    def __init__(self, names: dict[int, str] | None = None) -> None:
        """Initialise with no counting result yet."""
        super().__init__(names)
        self.count: CountReport | None = None

    @property
    def keys(self) -> list[str]:
        """Detection keys followed by COUNT_KEYS."""
        return [*super().keys, *COUNT_KEYS]

    def mean_results(self) -> list[float]:
        """P, R, mAP50, mAP50-95, MAE, RMSE, count threshold."""
        c = self.count
        extra = [c.errors["MAE"], c.errors["RMSE"], c.count_conf] if c else [float("nan")] * len(COUNT_KEYS)
        return [*super().mean_results(), *extra]

    @property
    def fitness(self) -> float:
        """Half mAP50-95, half count score (detection fitness alone before counting is evaluated)."""
        box = self.box.fitness()
        if self.count is None or not np.isfinite(self.count.errors["MAE"]):
            return box
        scale = max(self.count.errors["mean_gt"], 1.0)
        return 0.5 * box + 0.5 / (1.0 + self.count.errors["MAE"] / scale)


class CountingValidator(DetectionValidator):
    """Detection validator that also reports counting and localisation; the Ultralytics hooks are extended, not copied.

    Attributes:
        count_conf (float | None): Threshold used for the counts of the latest pass. In training it is the
            MAE-minimising threshold on the val split, for the trainer to store as ckpt["count_conf"].
        calibrated_conf (float | None): MAE-minimising threshold on the split of the latest pass.
        count_conf_source (str): Where `count_conf` came from: argument, checkpoint or auto.
        report (CountReport | None): Full counting results of the latest pass.
        missing_labels (list[str]): Images whose label file is missing (counted as background, GT 0).
        capped (list[str]): Images whose post-NMS predictions reached max_det.

    Examples:
        >>> v = CountingValidator(args=dict(model="best.pt", data="data.yaml", split="test"), count_conf="auto")
        >>> stats = v()  # prints P, R, mAP, then MAE/RMSE/NAE, the threshold sweep and localisation
        >>> v.count_conf, stats["metrics/MAE(count)"]
    """

    def __init__(
        self,
        dataloader=None,
        save_dir: Path | None = None,
        args: Any = None,
        _callbacks: dict | None = None,
        count_conf: float | str | None = None,
        count_conf_source: str | None = None,
        peak_filter: bool = False,
    ) -> None:
        """Initialise; `args` may carry our trainer's extra hyperparameters, which are not validator settings.

        Args:
            dataloader (torch.utils.data.DataLoader, optional): Loader of the split to evaluate.
            save_dir (Path, optional): Report folder.
            args (Any): Ultralytics settings (dict or namespace); keys unknown to Ultralytics' cfg are ignored.
            _callbacks (dict, optional): Ultralytics callbacks.
            count_conf (float | str | None): Count threshold policy, see the module docstring.
            count_conf_source (str, optional): Label for a float `count_conf` in the report (default "argument").
            peak_filter (bool): Keep only local maxima of each level's score map before NMS (utils/peaks.py); off
                by default: on SCUT-Head it drops true heads next to brighter ones (BENCHMARKS.md).
        """
        super().__init__(dataloader, save_dir, _known_cfg(args), _callbacks)
        if self.args.max_det == DEFAULT_CFG.max_det:  # Ultralytics' 300 would truncate dense crowds
            self.args.max_det = MAX_DET
        if isinstance(count_conf, str) and count_conf != "auto":
            count_conf = float(count_conf)
        if isinstance(count_conf, float) and not self.args.conf <= count_conf < 1:
            raise ValueError(f"count_conf={count_conf} must lie in [conf={self.args.conf}, 1)")
        self._count_conf_arg = count_conf
        self._source_arg = count_conf_source
        self._weights: str | Path | None = None
        self.peak_filter = peak_filter
        self.final_calibration = False  # set by the trainer: calibrate on the final weights' pass (utils/trainer.py)
        self._strides: torch.Tensor | None = None
        self._input_hw: tuple[int, int] = (0, 0)
        self.metrics = CountMetrics()
        self.counter = CountingEvaluator()
        self.count_conf: float | None = None
        self.calibrated_conf: float | None = None
        self.count_conf_source = ""
        self.report: CountReport | None = None
        self.missing_labels: list[str] = []
        self.capped: list[str] = []

    def __call__(self, trainer=None, model=None, **kwargs) -> dict[str, Any] | None:
        """Validate; standalone runs call check_det_dataset(), whose check_font() would fetch Arial.ttf otherwise."""
        provide_fonts()
        return super().__call__(trainer, model, **kwargs)

    def get_model(self, model, trainer=None, **kwargs):
        """Remember the weights file of a standalone run (it may store the count threshold)."""
        src = self.args.model if model is None else model
        self._weights = src if trainer is None and isinstance(src, (str, Path)) else None
        return super().get_model(model, trainer, **kwargs)

    def init_metrics(self, model: torch.nn.Module) -> None:
        """Reset the counting state, fix the count threshold policy and list images without a label file."""
        super().init_metrics(model)
        self._strides = head_strides(model) if self.peak_filter else None
        self.counter = CountingEvaluator(min_conf=self.args.conf)
        self._fixed_conf, self.count_conf_source = self._resolve_count_conf()
        dataset = self.dataloader.dataset
        self._root = os.path.commonpath([os.path.dirname(f) for f in dataset.im_files]) if dataset.im_files else ""
        labels = img2label_paths(dataset.im_files)
        self.missing_labels = [self._name(f) for f, lb in zip(dataset.im_files, labels) if not os.path.isfile(lb)]
        self.capped = []

    def _resolve_count_conf(self) -> tuple[float | None, str]:
        """Return the fixed count threshold (None: calibrate on this split) and where it comes from."""
        arg = self._count_conf_arg
        if self.final_calibration:
            return None, "calibrated on this split for the final weights"
        if isinstance(arg, float):
            return arg, self._source_arg or "argument"
        if arg == "auto" or self.training:
            return None, "auto"
        stored = read_count_conf(self._weights) if self._weights else None
        if stored is not None and stored < self.args.conf:
            raise ValueError(f"{self._weights}: stored count_conf {stored} is below conf={self.args.conf}; lower conf")
        if stored is not None:
            return stored, "checkpoint"
        LOGGER.warning(
            f"{self._weights or 'model'} stores no count threshold (ckpt['count_conf']): falling back to 'auto', "
            f"the MAE-minimising threshold on the '{self.args.split}' split being evaluated"
        )
        return None, "auto (weights store none)"

    def preprocess(self, batch: dict[str, Any]) -> dict[str, Any]:
        """Ultralytics' preprocessing; remember the input size, which fixes the levels' grid shapes."""
        batch = super().preprocess(batch)
        self._input_hw = tuple(batch["img"].shape[2:])
        return batch

    def postprocess(self, preds: torch.Tensor) -> list[dict[str, torch.Tensor]]:
        """The peak filter (when on and the model's level strides are known), then Ultralytics' NMS with no time limit
        on the best candidates first (`utils.nms.topk_nms`: the same boxes, fewer comparisons).

        Its default budget (2 s + 0.05 s per image and batch) silently returns no boxes for the rest of the batch
        once spent; dense crowds at the mAP confidence of 0.001 on a CPU spend it routinely (323 of 400 SCUT-Head
        val images lost their detections in bench/val_speed.py), corrupting counts, mAP and the calibration.
        """
        if self._strides is not None:
            preds = preds[0] if isinstance(preds, (list, tuple)) else preds
            preds = peak_filter(preds, level_shapes(self._input_hw, self._strides, preds.shape[-1]))
        outputs = topk_nms(
            preds,
            self.args.conf,
            self.args.iou,
            nc=0,
            multi_label=True,
            agnostic=self.args.single_cls or self.args.agnostic_nms,
            max_det=self.args.max_det,
        )
        return [{"bboxes": x[:, :4], "conf": x[:, 4], "cls": x[:, 5], "extra": x[:, 6:]} for x in outputs]

    def update_metrics(self, preds: list[dict[str, torch.Tensor]], batch: dict[str, Any]) -> None:
        """Ultralytics' detection statistics, then each image's GT and predictions in original-image pixels."""
        super().update_metrics(preds, batch)
        for si, pred in enumerate(preds):
            pbatch = self._prepare_batch(si, batch)
            gt = pbatch["bboxes"].reshape(-1, 4).clone()
            gt = ops.scale_boxes(pbatch["imgsz"], gt, pbatch["ori_shape"], ratio_pad=pbatch["ratio_pad"])
            boxes = self.scale_preds(pred, pbatch)["bboxes"]
            self.counter.process(pbatch["im_file"], gt, boxes, pred["conf"])
            if len(pred["conf"]) >= self.args.max_det:
                self.capped.append(self._name(pbatch["im_file"]))

    def gather_stats(self) -> None:
        """Ultralytics' DDP gathering, plus each rank's counting state merged on rank 0."""
        super().gather_stats()
        if RANK == -1:
            return
        state = (self.counter.files, self.counter.gt_xywh, self.counter.pred_xy, self.counter.pred_conf, self.capped)
        gathered = [None] * dist.get_world_size() if RANK == 0 else None
        dist.gather_object(state, gathered, dst=0)
        if RANK == 0:
            self.counter.reset()
            for files, gt, xy, conf, capped in gathered:
                self.counter.files += files
                self.counter.gt_xywh += gt
                self.counter.pred_xy += xy
                self.counter.pred_conf += conf
            self.capped = [c for *_, capped in gathered for c in capped]

    def get_stats(self) -> dict[str, Any]:
        """Return detection statistics plus COUNT_KEYS, with the counting fitness in `stats['fitness']`."""
        self.report = self.counter.evaluate(self._fixed_conf, localise=not self.training)
        self.metrics.count = self.report
        self.count_conf, self.calibrated_conf = self.report.count_conf, self.report.calibrated_conf
        self._warn_capped()
        return super().get_stats()

    def _warn_capped(self) -> None:
        """Never a silent cap: say which images hit max_det and whether their counts are affected (once per run: the
        trainer reuses its validator every epoch)."""
        if not self.capped or getattr(self, "_capped_warned", False):
            return
        self._capped_warned = True
        n_at_cap = int((self.report.pred >= self.args.max_det).sum())
        impact = (
            f"{n_at_cap} of them reach it at the count threshold: their counts are LOWER BOUNDS"
            if n_at_cap
            else "counts at the count threshold are unaffected, low-score detections for mAP are dropped"
        )
        LOGGER.warning(
            f"{len(self.capped)} image(s) reached max_det={self.args.max_det} post-NMS detections at "
            f"conf>={self.args.conf} (e.g. {self.capped[0]}); {impact}. Raise --max-det if this matters."
        )

    def finalize_metrics(self) -> None:
        """Ultralytics' finalisation, then the counting report files of a standalone run."""
        super().finalize_metrics()
        if not self.training and self.report is not None:
            self._save_report()

    def print_results(self) -> None:
        """Ultralytics' detection row (per class with verbose), then counting, the threshold sweep and localisation."""
        m = self.metrics
        pf = "%22s" + "%11i" * 2 + "%11.3g" * len(m.box.mean_results())  # Ultralytics' row under get_desc()
        LOGGER.info(pf % ("all", self.seen, m.nt_per_class.sum(), *m.box.mean_results()))
        if m.nt_per_class.sum() == 0:
            LOGGER.warning("no labels found in the evaluated split: detection metrics are undefined")
        if self.args.verbose and not self.training and self.nc > 1:
            for i, c in enumerate(m.ap_class_index):
                LOGGER.info(pf % (self.names[c], m.nt_per_image[c], m.nt_per_class[c], *m.class_result(i)))
        r = self.report
        if r is None:
            return
        e = r.errors
        tuned = self._fixed_conf is None
        where = f"tuned on '{self.args.split}'" if tuned and not self.final_calibration else self.count_conf_source
        LOGGER.info(
            f"Counting (score >= {r.count_conf:.3g}, {where}): MAE {e['MAE']:.3f}  RMSE {e['RMSE']:.3f}  "
            f"NAE {e['NAE']:.3f}  mean GT {e['mean_gt']:.2f}  mean pred {e['mean_pred']:.2f}  images {e['images']}"
        )
        if self.training:
            return
        if tuned and not self.final_calibration:
            LOGGER.warning(
                f"COUNT THRESHOLD {r.count_conf:.3g} WAS TUNED ON THE '{self.args.split}' SPLIT BEING EVALUATED: "
                "these MAE/RMSE are optimistic, not a held-out result"
            )
        on_grid = np.isclose(r.thresholds * 20, np.round(r.thresholds * 20))  # every 0.05, plus the threshold used
        cols = np.flatnonzero(on_grid | np.isin(r.thresholds, (r.count_conf, r.calibrated_conf)))
        LOGGER.info(
            f"Count threshold sweep (lowest MAE at {r.calibrated_conf:.3g}):\n"
            + "\n".join(
                f"{name:>6}" + "".join(f" {v:7.4g}" for v in values[cols])
                for name, values in (("conf", r.thresholds), ("MAE", r.mae_sweep), ("RMSE", r.rmse_sweep))
            )
        )
        loc = "  ".join(f"{k} P {v['P']:.3f} R {v['R']:.3f} F1 {v['F1']:.3f}" for k, v in r.localisation.items())
        LOGGER.info(f"Localisation (centres, one-to-one max matching, score >= {r.count_conf:.3g}): {loc}")
        if self.missing_labels:
            shown = ", ".join(self.missing_labels[:5]) + (" ..." if len(self.missing_labels) > 5 else "")
            LOGGER.warning(f"{len(self.missing_labels)} image(s) have no label file, counted as GT 0: {shown}")
        LOGGER.info(f"Counting report: {colorstr('bold', self.save_dir / 'counts.csv')}, metrics.json")

    def _save_report(self) -> None:
        """Write counts.csv, metrics.json and, with plots on, the counting figures and worst images."""
        r, d = self.report, self.save_dir
        with open(d / "counts.csv", "w", newline="", encoding="utf-8") as f:
            w = csv.writer(f)
            w.writerow(("image", "gt", "pred", "error"))
            w.writerows(zip((self._name(x) for x in r.files), r.gt.tolist(), r.pred.tolist(), r.error.tolist()))
        detection = dict(zip(self.metrics.keys, self.metrics.box.mean_results()))
        summary = {
            "weights": str(self._weights) if self._weights else None,
            "data": str(self.args.data),
            "split": self.args.split,
            "count_conf_source": self.count_conf_source,
            "tuned_on_evaluated_split": self._fixed_conf is None,
            **r.to_dict(),
            "detection": {k: round(float(v), 6) for k, v in detection.items()},
            "fitness": round(float(self.metrics.fitness), 6),
            "conf_nms": self.args.conf,
            "iou_nms": self.args.iou,
            "max_det": self.args.max_det,
            "max_det_reached": self.capped,
            "missing_labels": self.missing_labels,
            "matching": "one-to-one maximum-cardinality bipartite matching (Hopcroft-Karp), distance <= radius",
        }
        (d / "metrics.json").write_text(json.dumps(summary, indent=2), encoding="utf-8")
        if self.args.plots:
            plot_count_scatter(r.gt, r.pred, d / "counts_scatter.png")
            plot_error_histogram(r.error, d / "counts_error_hist.png")
            plot_threshold_sweep(r.thresholds, r.mae_sweep, r.rmse_sweep, r.count_conf, d / "counts_mae_vs_conf.png")
            preds = [xy[:k] for xy, k in zip(self.counter.pred_xy, r.pred)]
            gts = [g[:, :2] for g in self.counter.gt_xywh]
            plot_worst_images(r.files, gts, preds, r.error, d / "worst_images")

    def plot_val_samples(self, batch: dict[str, Any], ni: int) -> None:
        """GT is drawn in the val_batch*_pred.jpg point mosaic instead (Ultralytics' plot_images downloads a font)."""

    def plot_predictions(self, batch: dict[str, Any], preds: list[dict[str, torch.Tensor]], ni: int) -> None:
        """Point mosaic of the batch: GT centres as rings, predictions above the count threshold as dots."""
        conf = self._fixed_conf if self._fixed_conf is not None else PREVIEW_CONF
        img = batch["img"]
        images = (img * 255 if img.dtype != torch.uint8 else img).clamp(0, 255).byte().cpu().numpy()
        h, w = images.shape[2:]
        scale = torch.tensor([w, h], device=batch["bboxes"].device)
        gts = [(batch["bboxes"][batch["batch_idx"] == i, :2] * scale).cpu().numpy() for i in range(len(images))]
        cxcy = [((p["bboxes"][:, :2] + p["bboxes"][:, 2:]) / 2)[p["conf"] >= conf].cpu().numpy() for p in preds]
        plot_point_mosaic(images, gts, cxcy, self.save_dir / f"val_batch{ni}_pred.jpg")

    def eval_json(self, stats: dict[str, Any]) -> dict[str, Any]:
        """COCO mAP from predictions.json only if faster-coco-eval is installed (Ultralytics would pip-install it)."""
        if self.args.save_json and find_spec("faster_coco_eval") is None:
            LOGGER.info("faster-coco-eval not installed: predictions.json saved, COCO-style mAP skipped")
            return stats
        return super().eval_json(stats)

    def _name(self, file: str) -> str:
        """Image path relative to the split's common folder (unique, readable)."""
        return os.path.relpath(file, self._root) if self._root else str(file)


def _known_cfg(args: Any) -> dict[str, Any] | None:
    """Keep the settings Ultralytics' cfg knows; get_cfg() raises SyntaxError on our trainer's loss hyperparameters."""
    if args is None:
        return None
    items = vars(args).items() if not isinstance(args, dict) else args.items()
    return {k: v for k, v in items if k in DEFAULT_CFG_DICT}


__all__ = "COUNT_KEYS", "CountMetrics", "CountingValidator"
