"""Detection models: the YOLOv5 anchor head (the paper's model) and the anchor-free YOLOv5u head, both built by
Ultralytics from our YAMLs and trained with the Focal Loss family."""

from __future__ import annotations

import torch
from ultralytics.nn.tasks import DetectionModel, yaml_model_load

from models.head import AnchorDetect


class AnchorDetectionModel(DetectionModel):
    """YOLOv5 with an anchor-based head whose objectness is trained by the Focal Loss family (utils/detection_loss.py).

    The YAML's `backbone` and `head` (the neck) go through Ultralytics' `parse_model`; its `anchor_head` block
    (`from`, `anchors`) names the levels and anchors of `AnchorDetect`, registered here in one place because
    `parse_model` passes input channels only to its own head classes.

    Examples:
        >>> model = AnchorDetectionModel("models/yolov5n-mfl.yaml", nc=1, verbose=False)
        >>> y, raw = model.eval()(torch.zeros(1, 3, 64, 64))  # y: (1, 5, A)
    """

    def __init__(self, cfg: str | dict = "models/yolov5n-mfl.yaml", ch: int = 3, nc: int | None = None, verbose=True):
        """Build the model.

        Args:
            cfg (str | dict): Model YAML path (scale from the file name, e.g. yolov5s-mfl.yaml) or dict.
            ch (int): Input channels.
            nc (int, optional): Number of classes, overriding the YAML.
            verbose (bool): Print the model summary.
        """
        super().__init__(cfg, ch=ch, nc=nc, verbose=False)
        spec = self.yaml["anchor_head"]
        frm = list(spec["from"])
        head = AnchorDetect(self.yaml["nc"], spec["anchors"], self._channels(frm, ch))
        head.i, head.f, head.type, head.np = (
            len(self.model),
            frm,
            "AnchorDetect",
            sum(p.numel() for p in head.parameters()),
        )
        self.model.append(head)
        self.save = sorted(set(self.save) | set(frm))
        s = 256  # dry-run size: a multiple of the largest stride
        with torch.no_grad():
            _, raw = self.eval()._predict_once(torch.zeros(1, ch, s, s))
        self.train()
        head.stride.copy_(torch.tensor([s / r.shape[2] for r in raw]))
        self.stride = head.stride.clone()
        head.bias_init()
        if verbose:
            self.info()

    def _channels(self, layers: list[int], ch: int) -> tuple[int, ...]:
        """Output channels of the given layers, read from one small dry run (embed returns pooled features)."""
        was_training = self.training
        self.eval()
        with torch.no_grad():
            chans = tuple(len(self._predict_once(torch.zeros(1, ch, 64, 64), embed=[i])[0]) for i in layers)
        self.train(was_training)
        return chans

    def init_criterion(self):
        """Return the YOLOv5 loss with the objectness loss chosen by `args.loss`."""
        from utils.detection_loss import YOLOv5Loss

        return YOLOv5Loss.from_model(self)


class AnchorFreeDetectionModel(DetectionModel):
    """YOLOv5 with Ultralytics' anchor-free Detect head ("YOLOv5u"), its class score trained by `args.loss`.

    The network is Ultralytics' own, built from models/yolov5u-mfl.yaml; only the loss differs
    (utils/anchor_free_loss.py). A subclass of its own so checkpoints say which loss family they were trained with.

    Examples:
        >>> model = AnchorFreeDetectionModel("models/yolov5nu-mfl.yaml", nc=1, verbose=False)
        >>> y, _ = model.eval()(torch.zeros(1, 3, 64, 64))  # y: (1, 5, A)
    """

    def init_criterion(self):
        """Return Ultralytics' detection loss with the class term chosen by `args.loss`."""
        from utils.anchor_free_loss import AnchorFreeLoss

        return AnchorFreeLoss(self)


def is_anchor_free(cfg: str | dict) -> bool:
    """True for a model YAML (path or dict) without an `anchor_head` block: Ultralytics' Detect head."""
    return "anchor_head" not in (cfg if isinstance(cfg, dict) else yaml_model_load(cfg))


def build_model(cfg: str | dict, nc: int | None = None, ch: int = 3, verbose: bool = True) -> DetectionModel:
    """Build the model a YAML describes: the anchor head when it has an `anchor_head` block, else the YOLOv5u head."""
    cls = AnchorFreeDetectionModel if is_anchor_free(cfg) else AnchorDetectionModel
    return cls(cfg, ch=ch, nc=nc, verbose=verbose)
