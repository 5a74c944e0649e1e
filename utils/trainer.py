"""Ultralytics detection trainer for YOLOv5-MFL: our model, our loss hyperparameters, and the counting validator.

Lives in an importable module (not train.py's __main__) because Ultralytics' multi-GPU DDP launch pickles the trainer
class and re-imports it by module path in each worker.
"""

from __future__ import annotations

import math
from copy import copy
from pathlib import Path
from typing import Any

import torch
from ultralytics.cfg import cfg2dict
from ultralytics.data import build_yolo_dataset
from ultralytics.models.yolo.detect import DetectionTrainer
from ultralytics.utils import DEFAULT_CFG, RANK, YAML
from ultralytics.utils.torch_utils import unwrap_model

from models.head import AnchorDetect
from models.yolo import build_model, is_anchor_free
from utils import COUNT_CONF_KEY, COUNT_IOU, MAX_DET, ROOT
from utils.checkpoint import AtomicPath, rewrite_atomically, store_count_conf
from utils.offline import provide_fonts
from utils.threads import use_all_cores

HYPS = {  # the default hyp file of each head
    "anchor": ROOT / "data" / "hyps" / "hyp.scratch.yaml",  # YOLOv5's scratch recipe, YOLOv5's loss scale
    "free": ROOT / "data" / "hyps" / "hyp.scratch-u.yaml",  # Ultralytics' defaults, as its own YOLOv5u trains
}
# The model that counts best at the accuracy benchmark's budget (BENCHMARKS.md): the anchor-free YOLOv5u head with MFL
DEFAULT_MODEL = ROOT / "models" / "yolov5nu-mfl.yaml"


def amp_mode() -> bool | str:
    """Mixed precision that needs no download: bf16 autocast where the GPU has it, else none.

    Ultralytics validates fp16 AMP by downloading yolo26n.pt and comparing outputs; it skips that check for bf16,
    which needs no gradient scaler either. On CPU the value is irrelevant (Ultralytics disables AMP there).
    """
    return "bf16" if torch.cuda.is_available() and torch.cuda.is_bf16_supported() else False


class CountingTrainerMixin:
    """What every trainer of ours adds to an Ultralytics trainer: the counting validator, the stored count threshold,
    and both CPU cores for training.

    Shared by `MFLTrainer` and by the stock Ultralytics baseline in bench/accuracy.py, so both are validated and
    checkpointed the same way.
    """

    def __init__(self, *args, **kwargs):
        """Ultralytics' trainer, whose checkpoint paths write atomically (a killed run never leaves a partial file)."""
        super().__init__(*args, **kwargs)
        self.wdir, self.last, self.best = (AtomicPath(p) for p in (self.wdir, self.last, self.best))
        if RANK in {-1, 0}:
            for partial in [*self.wdir.glob("*.tmp"), *self.wdir.glob("*.tmp.pt")]:  # cut short by a kill
                partial.unlink()

    def final_eval(self):
        """Ultralytics' final evaluation of best.pt, with two changes.

        - Its in-place optimizer stripping works on copies renamed back after (a kill never truncates best.pt).
        - The count threshold is calibrated anew on the final pass and stored in best.pt: the per-epoch calibration
          ran on the fp32 EMA, and best.pt holds it in fp16; on an undertrained model one threshold step can move
          the MAE by half (bench/results/accuracy.csv), so the stored threshold must come from the stored weights.
        """
        last, best = self.last, self.best
        self.validator.final_calibration = True
        with rewrite_atomically(last, best) as (self.last, self.best):
            try:
                super().final_eval()
            finally:
                self.last, self.best = last, best
        conf = self.validator.calibrated_conf
        if RANK in {-1, 0} and best.exists() and conf is not None and math.isfinite(conf):
            store_count_conf(best, conf)

    def _setup_train(self):
        """Set up as Ultralytics does, then give torch every core on CPU.

        Ultralytics trains on CPU with no data-loader workers and `cpu_count - 1` torch threads, which leaves one of
        two cores idle; the model's forward and backward are the bottleneck, so they get both.
        """
        super()._setup_train()
        if self.device.type == "cpu":
            use_all_cores()

    def get_dataset(self) -> dict:
        """Ultralytics' dataset check, plus a clear stop when the data has no train split (an evaluation-only copy)."""
        data = super().get_dataset()
        if not data.get("train"):
            have = ", ".join(s for s in ("val", "test") if data.get(s)) or "none"
            raise FileNotFoundError(
                f"--data {self.args.data}: no train split to train on (splits present: {have}); "
                "convert a release with a train list, or evaluate with val.py --task test"
            )
        return data

    def get_validator(self):
        """Return the counting validator (MAE/RMSE and the calibrated count threshold on every validation pass)."""
        from utils.validator import CountingValidator

        return CountingValidator(
            self.test_loader, save_dir=self.save_dir, args=copy(self.args), _callbacks=self.callbacks
        )

    def save_model(self):
        """Attach the count threshold calibrated on the validation split to the model before Ultralytics saves it."""
        setattr(self.ema.ema, COUNT_CONF_KEY, getattr(self.validator, "count_conf", None))
        return super().save_model()


def loss_defaults(head: str = "anchor") -> dict[str, Any]:
    """Every loss key of both heads, for the keys Ultralytics' configuration lacks; `head`'s defaults win shared keys.

    Args:
        head (str): "anchor" or "free" (see `head_of`): the heads share key names (mfl_mask, mfl_quality) whose
            defaults differ.
    """
    from utils.anchor_free_loss import DEFAULTS
    from utils.detection_loss import YOLOv5Loss

    anchor = YOLOv5Loss.__init__.__kwdefaults__
    return {**DEFAULTS, **anchor} if head == "anchor" else {**anchor, **DEFAULTS}


def head_of(model: str | Path) -> str:
    """'anchor' or 'free': the head of a model YAML, or of the model stored in a checkpoint."""
    if str(model).endswith(".pt"):
        from utils.checkpoint import load_checkpoint

        ckpt, _ = load_checkpoint(model)
        cfg = (ckpt.get("ema") or ckpt["model"]).yaml
    else:
        cfg = str(model)
    return "free" if is_anchor_free(cfg) else "anchor"


class MFLTrainer(CountingTrainerMixin, DetectionTrainer):
    """Train a YOLOv5 head counter whose objectness is learned by the loss chosen by `loss` (default Mask Focal Loss).

    Both heads: the YOLOv5 anchor head (models/yolov5-mfl.yaml, the paper's model) and the anchor-free YOLOv5u head
    (models/yolov5u-mfl.yaml). Our hyperparameter keys (loss, obj, fl_*, mfl_*, hm_*) join Ultralytics' configuration
    with their defaults and the values of the head's hyp YAML, so command-line overrides of them pass Ultralytics' key
    check, also in the DDP re-launch.

    Examples:
        >>> trainer = MFLTrainer(overrides={"data": "data.yaml", "epochs": 1, "loss": "mfl"})
        >>> trainer.train()
    """

    def __init__(
        self, cfg: Any = DEFAULT_CFG, overrides: dict | None = None, _callbacks=None, hyp: str | Path | None = None
    ):
        """Merge model and loss defaults and the hyp YAML into the configuration, then defer to Ultralytics.

        Args:
            cfg (Any): Base configuration (Ultralytics' default).
            overrides (dict, optional): Values that win over the configuration (the command line).
            _callbacks (dict, optional): Ultralytics callbacks.
            hyp (str | Path, optional): Hyperparameter YAML; defaults to the model head's file in `HYPS`.
        """
        # YOLOv5's validation NMS IoU rather than Ultralytics' 0.7: fewer duplicate heads in the counts
        base = {
            **cfg2dict(cfg),
            "model": str(DEFAULT_MODEL),
            "max_det": MAX_DET,
            "iou": COUNT_IOU,
            "project": str(ROOT / "runs" / "train"),
            "amp": amp_mode(),
            "noautoanchor": False,  # YOLOv5's flag: skip the anchor check of the anchor head
        }
        model = (overrides or {}).get("model") or base["model"]
        head = "anchor" if (overrides or {}).get("resume") else head_of(model)
        base.update({k: v for k, v in loss_defaults(head).items() if k not in base})  # so every loss key exists
        base.update(YAML.load(hyp or HYPS[head]))
        provide_fonts()  # plots and dataset checks would otherwise download Arial.ttf
        super().__init__(cfg=base, overrides=overrides, _callbacks=_callbacks)

    def _setup_train(self):
        """Set up as Ultralytics does, then AutoAnchor the anchor head unless `noautoanchor` or resuming."""
        super()._setup_train()
        head = self.model.model[-1] if hasattr(self.model, "model") else None
        if self.args.noautoanchor or self.args.resume or not isinstance(head, AnchorDetect):
            return  # Ultralytics' Detect has an `anchors` tensor too, but of grid points, not box priors
        from utils.autoanchor import check_anchors, dataset_wh

        if check_anchors(head, dataset_wh(self.train_loader.dataset, self.args.imgsz), self.args.anchor_t):
            self.ema.ema.model[-1].anchors.copy_(head.anchors)  # the EMA copy was made before the re-fit

    def build_dataset(self, img_path: str, mode: str = "train", batch: int | None = None):
        """Ultralytics' dataset, but validation letterboxes square images (rect only with `--rect`), as val.py does.

        Ultralytics' trainer validates on rect batches padded by half a stride while its standalone `model.val()`,
        exported models and bench/accuracy.py use square inputs: the count threshold stored in best.pt would then be
        calibrated on other inputs (other scores, another MAE) than val.py and export give it. The stock baseline of
        bench/accuracy.py keeps Ultralytics' own trainer, rect validation included.
        """
        if mode == "train":
            return super().build_dataset(img_path, mode, batch)
        stride = max(int(unwrap_model(self.model).stride.max()), 32)
        return build_yolo_dataset(self.args, img_path, batch, self.data, mode=mode, stride=stride)

    def get_model(self, cfg: str | dict | None = None, weights=None, verbose: bool = True):
        """Build the model of a YAML (or of a checkpoint's YAML), either head, and load `weights` if given."""
        model = build_model(
            cfg or self.args.model, nc=self.data["nc"], ch=self.data["channels"], verbose=verbose and RANK == -1
        )
        model = self.set_model_names_for_load(model)
        if weights:
            model.load(weights)
        return model
