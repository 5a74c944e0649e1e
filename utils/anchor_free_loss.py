"""Loss of the anchor-free YOLOv5 head ("YOLOv5u"): Ultralytics' detection loss with a chosen classification term.

Ultralytics' `v8DetectionLoss` keeps its task-aligned assignment (TAL) and its box terms (CIoU + DFL); only the class
term changes. For our one class the class score *is* the objectness, so the paper's Focal Loss family (Section III)
applies to it as it does to YOLOv5's objectness. The term is swapped in where Ultralytics calls `self.bce`, so no
line of its loss is copied, and `loss=bce` is Ultralytics' own loss, untouched.
"""

from __future__ import annotations

from typing import Any

import torch
from ultralytics.utils.loss import v8DetectionLoss

from utils.loss import focal_loss, heatmap_focal_loss, mask_focal_loss
from utils.targets import build_heatmap_targets

CLS_LOSSES = ("bce", "focal", "heatmap", "mfl")
MASK_RULES = ("box", "level", "fg")
DEFAULTS = dict(  # the loss keys this head reads from the training configuration (data/hyps/hyp.scratch-u.yaml)
    loss="mfl",
    fl_cls=5.0,
    fl_alpha=0.25,
    fl_gamma=2.0,
    mfl_beta=0.5,
    mfl_poly=True,
    mfl_target="gaussian",
    mfl_mask="fg",
    mfl_quality=False,
    mfl_quality_norm=False,
    mfl_min_align=0.0,
    fl_balance=False,
    hm_beta=4.0,
    hm_eta=1.0,
    hm_eps=6.0,
)


class AnchorFreeLoss(v8DetectionLoss):
    """Ultralytics' detection loss (TAL, CIoU + DFL) with the class term chosen by `loss` (one class: objectness).

    Class term (`loss`), each scaled by Ultralytics' `cls` gain:
        - "bce": Ultralytics' own BCE towards TAL's IoU-aware soft labels, normalised by their sum.
        - "focal": L_f (Eq. 2), TAL's foreground points as the binary positives.
        - "heatmap": L_h (Eq. 3) on the Gaussian heatmap (Eq. 10) of every box on every level's anchor-point grid.
        - "mfl": L_m^P1 (Eq. 7; L_m, Eq. 6, with `mfl_poly=False`): the Gaussian heatmap inside the box mask, focal
          negatives outside it; `mfl_target="binary"` puts 1 over the whole mask instead.
    The focal family is normalised by N = the number of heads in the batch, as in the paper, and scaled by `fl_cls`.

    Which anchor points form the mask (`mfl_mask`):
        - "box": every point inside a box, on every level.
        - "level": the points inside a box on the levels where TAL gives that box positives.
        - "fg": TAL's positives only (default).
    `fl_balance=True` scales the points outside the mask by 1 - α instead of α (RetinaNet's balance).
    `mfl_quality` q in [0, 1] (True = 1) multiplies the target by (1 - q) + q × TAL's soft label (the IoU-aware score
    the BCE term regresses to), YOLOv5's `gr` blend; `mfl_quality_norm` divides each soft label by the largest of
    its head's, as the anchor head does. `mfl_min_align` (fg rule) drops from the mask the positives whose soft label
    is below this fraction of their head's best: TAL makes every point inside a small head a positive, including the
    stride-32 one whose predicted box is nothing like the head, and weights its box terms by that tiny soft label, so
    its box is never learned; a Gaussian target there taught the model confident frame-sized boxes (4 to 13 per
    image on the synthetic crowd, BENCHMARKS.md session 12). With 0.1 such points are negatives instead: that ended
    the frame-sized boxes and raised SCUT-Head's F1 on two seeds, but counted worse on one (MAE 6.79 against 4.99),
    so it is off (0) by default. The
    defaults (fg mask, plain Gaussian target, fl_cls 5) are the best of the variants measured in BENCHMARKS.md: on
    the mask of TAL's positives the Gaussian alone counted better than with the quality factor, which lowers the
    targets of small heads (their boxes lose more IoU per pixel) and undercounts the densest images. On the wider
    masks (`level`, `box`) the plain Gaussian leaves the score map diffuse.

    Examples:
        >>> criterion = AnchorFreeLoss(model)  # model.args holds `loss`, `fl_*`, `mfl_*`, `hm_*`, box, cls, dfl
        >>> total, items = criterion(model(batch["img"]), batch)  # items: box_loss, cls_loss, dfl_loss
    """

    def __init__(self, model: torch.nn.Module, tal_topk: int = 10):
        """Build Ultralytics' loss, then put the chosen class term where it calls `self.bce`."""
        super().__init__(model, tal_topk)
        cfg = {k: getattr(self.hyp, k, v) for k, v in DEFAULTS.items()}
        if cfg["loss"] not in CLS_LOSSES:
            raise ValueError(f"unknown class loss '{cfg['loss']}', choose one of {', '.join(CLS_LOSSES)}")
        if cfg["mfl_mask"] not in MASK_RULES:
            raise ValueError(f"mfl_mask must be one of {', '.join(MASK_RULES)}, got '{cfg['mfl_mask']}'")
        if cfg["mfl_target"] not in {"gaussian", "binary"}:
            raise ValueError(f"mfl_target must be 'gaussian' or 'binary', got '{cfg['mfl_target']}'")
        if cfg["loss"] != "bce" and self.nc != 1:
            raise ValueError(f"loss '{cfg['loss']}' trains a one-class (head) detector, the model has nc={self.nc}")
        self.cfg = cfg
        self.fl = {"alpha": cfg["fl_alpha"], "gamma": cfg["fl_gamma"]}
        self._context: dict[str, Any] = {}
        if cfg["loss"] != "bce":
            self._tal = self.assigner
            self.assigner = self._assign_and_keep  # the class term needs TAL's foreground and box indices
            self.bce = self._focal_family

    def loss(self, preds: dict[str, torch.Tensor], batch: dict[str, torch.Tensor]):
        """Ultralytics' loss; the grids and boxes are kept for the class term, which Ultralytics calls mid-way."""
        self._context = {"grids": [f.shape[2:] for f in preds["feats"]], "batch": batch}
        return super().loss(preds, batch)

    def _assign_and_keep(self, *args, **kwargs):
        """Run TAL and keep its foreground mask and box index per anchor point."""
        out = self._tal(*args, **kwargs)
        self._context["fg"], self._context["gt_idx"] = out[3], out[4].long()  # float when the batch has no box
        return out

    def _focal_family(self, logits: torch.Tensor, target_scores: torch.Tensor) -> torch.Tensor:
        """The chosen term, returned pre-multiplied by Σ target_scores, which Ultralytics divides the class term by."""
        x, fg = logits[..., 0], self._context["fg"]
        n = self._context["batch"]["cls"].shape[0]  # N: heads in the batch
        kind = self.cfg["loss"]
        if kind == "focal":
            value = focal_loss(x, fg.float(), num_objects=n, **self.fl)
        elif kind == "heatmap":
            heatmap, _ = self.targets(x.shape[0], levels=None)
            value = heatmap_focal_loss(x, heatmap, beta=self.cfg["hm_beta"], num_objects=n, **self.fl)
        else:
            heatmap, mask = self.mfl_targets(target_scores[..., 0])
            alpha_neg = 1 - self.fl["alpha"] if self.cfg["fl_balance"] else None
            value = mask_focal_loss(
                x, heatmap, mask, beta=self.cfg["mfl_beta"], poly=self.cfg["mfl_poly"], num_objects=n,
                alpha_neg=alpha_neg, **self.fl,
            )  # fmt: skip
        return value * self.cfg["fl_cls"] * target_scores.sum().clamp(min=1)

    @torch.no_grad()
    def mfl_targets(self, soft_labels: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """(B, A) heatmap p and mask of L_m under the configured mask rule, target kind and quality scaling."""
        fg, rule = self._context["fg"], self.cfg["mfl_mask"]
        heatmap, mask = self.targets(fg.shape[0], levels=self._levels_with_positives() if rule == "level" else None)
        align = self._relative_alignment(soft_labels.float())
        if rule == "fg":
            mask = fg & (align >= self.cfg["mfl_min_align"])
        if self.cfg["mfl_target"] == "binary":
            heatmap = mask.float()
        if q := float(self.cfg["mfl_quality"]):
            heatmap = heatmap * (1 - q + q * (align if self.cfg["mfl_quality_norm"] else soft_labels.float()))
        return heatmap * mask, mask

    @torch.no_grad()
    def _relative_alignment(self, soft_labels: torch.Tensor) -> torch.Tensor:
        """(B, A) each TAL positive's soft label over the largest soft label of its head; 0 off the positives."""
        fg, gt_idx = self._context["fg"], self._context["gt_idx"]
        key = gt_idx + torch.arange(fg.shape[0], device=fg.device)[:, None] * (int(gt_idx.max()) + 1)  # (image, head)
        best = soft_labels.new_zeros(key.numel()).scatter_reduce(0, key[fg], soft_labels[fg], "amax")
        return torch.where(fg, soft_labels / best[key].clamp(min=1e-9), 0.0)

    @torch.no_grad()
    def targets(self, batch_size: int, levels: torch.Tensor | None) -> tuple[torch.Tensor, torch.Tensor]:
        """(B, A) Gaussian heatmap (Eq. 10) and box mask on the anchor points of every level, in Ultralytics' order.

        Args:
            batch_size (int): Images in the batch.
            levels (torch.Tensor, optional): (n, nl) bool, the levels each box is drawn on; None: every level.
        """
        batch, grids = self._context["batch"], self._context["grids"]
        imgsz = torch.tensor(grids[0], device=self.device, dtype=torch.float32) * self.stride[0]  # h, w
        boxes = batch["bboxes"].to(self.device).float() * imgsz[[1, 0, 1, 0]]
        idx = batch["batch_idx"].to(self.device)
        maps = []
        for i, (hw, s) in enumerate(zip(grids, self.stride.tolist())):
            keep = slice(None) if levels is None else levels[:, i]
            maps.append(
                build_heatmap_targets(
                    boxes[keep], idx[keep], batch_size, tuple(hw), s, eta=self.cfg["hm_eta"], eps=self.cfg["hm_eps"]
                )
            )
        heatmap = torch.cat([h.flatten(1) for h, _ in maps], 1)
        mask = torch.cat([m.flatten(1) for _, m in maps], 1)
        return heatmap, mask

    @torch.no_grad()
    def _levels_with_positives(self) -> torch.Tensor:
        """(n, nl) bool: for each box of the batch, the levels on which TAL made at least one positive for it."""
        fg, gt_idx, grids = self._context["fg"], self._context["gt_idx"], self._context["grids"]
        batch_idx = self._context["batch"]["batch_idx"].to(self.device).long()
        bs, nl = fg.shape[0], len(grids)
        if not batch_idx.numel():
            return torch.zeros(0, nl, dtype=torch.bool, device=self.device)
        level = torch.cat([torch.full((h * w,), i, device=self.device) for i, (h, w) in enumerate(grids)])
        hit = torch.zeros(bs, int(batch_idx.bincount(minlength=bs).max()), nl, device=self.device)
        b, a = fg.nonzero(as_tuple=True)
        hit[b, gt_idx[b, a], level[a]] = 1.0
        # Ultralytics' `preprocess` lays the boxes of each image out in batch order: box k is slot k - first(image)
        first = torch.zeros(bs + 1, dtype=torch.long, device=self.device)
        first.scatter_add_(0, batch_idx + 1, torch.ones_like(batch_idx))
        slot = torch.arange(batch_idx.numel(), device=self.device) - first.cumsum(0)[batch_idx]
        return hit[batch_idx, slot] > 0
