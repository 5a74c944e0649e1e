"""YOLOv5 training loss whose objectness term is chosen among BCE and the Focal Loss family (paper Section IV-D)."""

from __future__ import annotations

from typing import Any

import torch
import torch.nn.functional as F
from ultralytics.utils.metrics import bbox_iou

from utils.loss import focal_loss, heatmap_focal_loss, mask_focal_loss
from utils.targets import build_heatmap_targets

OBJ_LOSSES = ("bce", "focal", "heatmap", "mfl")
MASK_RULES = ("box", "fg", "best")
_NEIGHBOURS = torch.tensor(
    [[0, 0], [1, 0], [0, 1], [-1, 0], [0, -1]], dtype=torch.float32
)  # centre, left, up, right, down


class YOLOv5Loss:
    """Box (CIoU) and class (BCE) losses on YOLOv5's matched positives, plus an objectness loss over every cell.

    Objectness (`loss`):
        - "bce": stock YOLOv5, BCE towards the IoU at matched cells, per-cell mean, level balance 4.0 / 1.0 / 0.4
          (P2 models: 4.0 / 1.0 / 0.25 / 0.06) and gain `obj` × (imgsz / 640)² × 3 / nl, as YOLOv5's train.py sets it.
        - "focal": L_f (Eq. 2) with the matched cells as the binary positives.
        - "heatmap": L_h (Eq. 3) on Gaussian heatmaps of the boxes YOLOv5's anchor rule assigns to each level/anchor.
        - "mfl": L_m^P1 (Eq. 7; L_m, Eq. 6, with `mfl_poly=False`) on the same heatmaps and box masks; with
          `mfl_target="binary"` the heatmap is 1 over the whole mask (Section IV-D, binary-feature-map detectors).
    The focal family is normalised by N = the number of ground-truth heads in the batch, as in the paper.

    The mask of L_m (`mfl_mask`): "fg" (the default), only the matched cells, the ones whose boxes are trained and so
    can land on the head; "best", the matched cells of the one level/anchor pair whose anchor fits the head best
    (YOLOv3's single responsible anchor), the other matched pairs being negatives, so a head is not trained to fire on
    up to nine anchors whose boxes NMS cannot merge (it counted worse: BENCHMARKS.md); or "box", every cell inside a
    box on each anchor its size passes (the paper's reading, which over-fires early and duplicates heads).

    `mfl_quality` q in [0, 1] (True = 1) multiplies the target by (1 - q) + q × CIoU, CIoU being the matched cell's
    detached CIoU (0 outside the matched cells), the value the BCE objectness regresses to: YOLOv5's `gr` blend, so a
    cell whose box misses the head is trained to a lower score while q < 1 keeps a floor for the first epochs.
    `fl_balance=True` scales L_m's cells outside the mask by 1 - α instead of α (RetinaNet's balance; Eq. 6 as
    printed uses α for both).
    With `mfl_quality` > 0, `mfl_quality_norm=True` divides each matched cell's CIoU by the best CIoU among its head's
    matched cells on every level (TAL's per-box normalisation), so each head keeps a cell trained towards the full
    Gaussian peak while its worse-placed copies are trained lower; while a head's boxes all miss (every CIoU 0) its
    targets stay the Gaussian. With `mfl_mask: fg` this is the anchor head's default in hyp.scratch.yaml: it counted
    best (BENCHMARKS.md).

    Examples:
        >>> criterion = YOLOv5Loss.from_model(model)
        >>> total, items = criterion(model(batch["img"]), batch)  # items: box_loss, obj_loss (+ cls_loss if nc > 1)
    """

    def __init__(
        self,
        head: torch.nn.Module,
        *,
        loss: str = "mfl",
        box: float = 0.05,
        cls: float = 0.5,
        obj: float = 1.0,
        fl_obj: float = 0.1,
        anchor_t: float = 4.0,
        imgsz: int = 640,
        fl_alpha: float = 0.25,
        fl_gamma: float = 2.0,
        mfl_beta: float = 0.5,
        hm_beta: float = 4.0,
        mfl_poly: bool = True,
        mfl_target: str = "gaussian",
        mfl_mask: str = "fg",
        mfl_quality: float = 0.0,
        fl_balance: bool = False,
        mfl_quality_norm: bool = False,
        hm_eta: float = 1.0,
        hm_eps: float = 6.0,
    ):
        """Store the head geometry and the loss hyperparameters (data/hyps/hyp.scratch.yaml documents each)."""
        if loss not in OBJ_LOSSES:
            raise ValueError(f"unknown objectness loss '{loss}', choose one of {', '.join(OBJ_LOSSES)}")
        if mfl_target not in {"gaussian", "binary"}:
            raise ValueError(f"mfl_target must be 'gaussian' or 'binary', got '{mfl_target}'")
        if mfl_mask not in MASK_RULES:
            raise ValueError(f"mfl_mask must be one of {', '.join(MASK_RULES)}, got '{mfl_mask}'")
        self.nc, self.nl, self.na = head.nc, head.nl, head.na
        self.stride = head.stride.detach().clone()
        self.anchors = head.anchors.detach() / self.stride.view(-1, 1, 1)  # grid units
        self.balance = [4.0, 1.0, 0.4] if self.nl == 3 else [4.0, 1.0, 0.25, 0.06, 0.02][: self.nl]
        self.kind, self.anchor_t = loss, anchor_t
        obj = obj * (imgsz / 640) ** 2  # YOLOv5 scales the objectness gain to the image size
        self.gain = {"box": box * 3 / self.nl, "cls": cls * self.nc / 80 * 3 / self.nl, "obj": obj * 3 / self.nl}
        self.fl_obj = fl_obj
        self.fl = {"alpha": fl_alpha, "gamma": fl_gamma}
        self.mfl_beta, self.hm_beta, self.mfl_poly, self.binary = mfl_beta, hm_beta, mfl_poly, mfl_target == "binary"
        if not 0 <= float(mfl_quality) <= 1:
            raise ValueError(f"mfl_quality must be in [0, 1] (or a bool), got {mfl_quality}")
        self.mfl_mask, self.mfl_quality, self.quality_norm = mfl_mask, float(mfl_quality), bool(mfl_quality_norm)
        self.alpha_neg = 1 - fl_alpha if fl_balance else None  # RetinaNet's balance on L_m's mask = 0 branch
        self.hm_eta, self.hm_eps = hm_eta, hm_eps

    @classmethod
    def from_model(cls, model: torch.nn.Module) -> YOLOv5Loss:
        """Build from a model whose `args` (set by the trainer) hold the hyperparameters; missing keys keep defaults."""
        args: Any = getattr(model, "args", None)
        args = vars(args) if hasattr(args, "__dict__") else dict(args or {})
        keys = cls.__init__.__kwdefaults__
        return cls(model.model[-1], **{k: args[k] for k in keys if args.get(k) is not None})

    def __call__(self, preds: Any, batch: dict[str, torch.Tensor]) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        """Compute the loss.

        Args:
            preds (list | tuple): Raw head maps (training) or (decoded, raw) (validation).
            batch (dict): Ultralytics batch with img, batch_idx, cls and normalised xywh bboxes.

        Returns:
            (tuple[torch.Tensor, dict]): Loss × batch size (2,), (3,) with classes, and the detached items by name.
        """
        raw = preds[1] if isinstance(preds, tuple) else preds
        device = raw[0].device
        bs, _, img_h, img_w = batch["img"].shape
        targets = torch.cat((batch["batch_idx"].view(-1, 1), batch["cls"].view(-1, 1), batch["bboxes"]), 1).to(device)
        lbox, lcls, lobj = (torch.zeros((), device=device) for _ in range(3))
        n_obj = max(targets.shape[0], 1)
        best = self._best_pair(targets, (img_h, img_w)) if self.kind == "mfl" and self.mfl_mask == "best" else None
        matches, ious = [], []
        for i, p in enumerate(raw):
            b, a, gj, gi, tbox, anchors, t, assigned = match = self._match(targets, i, p.shape[2:4])
            iou = torch.zeros(0, device=device)
            if b.numel():
                ps = p[b, a, gj, gi].float()
                pbox = torch.cat((ps[:, :2].sigmoid() * 2 - 0.5, (ps[:, 2:4].sigmoid() * 2).square() * anchors), 1)
                iou = bbox_iou(pbox, tbox, CIoU=True).squeeze(-1)
                lbox = lbox + (1.0 - iou).mean()
                if self.nc > 1:
                    onehot = F.one_hot(targets[t, 1].long(), self.nc).float()
                    lcls = lcls + F.binary_cross_entropy_with_logits(ps[:, 5:], onehot)
            matches.append(match)
            ious.append(iou)
        quality = self._quality(ious, [m[6] for m in matches], targets.shape[0])
        for i, (p, (b, a, gj, gi, _, _, t, assigned), q) in enumerate(zip(raw, matches, quality)):
            on_best = None if best is None else best[t] == i * self.na + a
            lobj = lobj + self._objectness(p[..., 4], (b, a, gj, gi), q, assigned, i, (img_h, img_w), n_obj, on_best)
        items = {"box_loss": lbox * self.gain["box"], "obj_loss": lobj}
        if self.nc > 1:  # one class (heads) has no class term: no column of zeros in results.csv and results.png
            items["cls_loss"] = lcls * self.gain["cls"]
        total = torch.stack(list(items.values()))
        return total * bs, {k: v.detach() for k, v in items.items()}

    def _objectness(self, logits, cells, quality, assigned, i, img_hw, n_obj, on_best=None) -> torch.Tensor:
        """Objectness loss of level `i` for the configured kind (`quality`: the matched cells' detached CIoU from
        `_quality`; `on_best`: which matched cells are on a best pair)."""
        if self.kind in {"bce", "focal"}:
            tobj = torch.zeros_like(logits, dtype=torch.float32)
            tobj[cells] = quality.to(tobj.dtype)  # IoU-aware target (YOLOv5, gr = 1)
            if self.kind == "bce":
                return F.binary_cross_entropy_with_logits(logits.float(), tobj) * self.balance[i] * self.gain["obj"]
            return self.fl_obj * focal_loss(logits, (tobj > 0).float(), num_objects=n_obj, **self.fl)
        heatmap, mask = self._heatmap(assigned, i, logits.shape, img_hw)
        if self.kind == "heatmap":
            return self.fl_obj * heatmap_focal_loss(logits, heatmap, beta=self.hm_beta, num_objects=n_obj, **self.fl)
        heatmap, mask = self._mfl_targets(heatmap, mask, cells, quality, on_best)
        return self.fl_obj * mask_focal_loss(
            logits,
            heatmap,
            mask,
            beta=self.mfl_beta,
            poly=self.mfl_poly,
            num_objects=n_obj,
            alpha_neg=self.alpha_neg,
            **self.fl,
        )

    @torch.no_grad()
    def _quality(self, ious: list[torch.Tensor], owners: list[torch.Tensor], n: int) -> list[torch.Tensor]:
        """Detached CIoU of each level's matched cells, clamped at 0; with `mfl_quality_norm` (mfl only), divided by
        the best of its head's cells over all levels (`owners`: each cell's index in the targets, of `n`)."""
        ious = [iou.detach().float().clamp(0) for iou in ious]
        if not (self.quality_norm and self.kind == "mfl" and n):
            return ious
        eps = 1e-3  # a head whose cells all have CIoU 0 keeps targets of 1 x the Gaussian
        best = torch.zeros(n, device=ious[0].device).scatter_reduce(0, torch.cat(owners), torch.cat(ious), "amax")
        return [(iou + eps) / (best[t] + eps) for iou, t in zip(ious, owners)]  # <= 1: best is their maximum

    @torch.no_grad()
    def _mfl_targets(self, heatmap, mask, cells, quality, on_best=None) -> tuple[torch.Tensor, torch.Tensor]:
        """Target p and mask of L_m under the configured mask rule, target kind and quality scaling."""
        if self.mfl_mask == "best":
            cells, quality = tuple(c[on_best] for c in cells), quality[on_best]
        if self.mfl_mask in {"fg", "best"}:
            mask = torch.zeros_like(mask)
            mask[cells] = True
        if self.binary:
            heatmap = mask.float()
        if self.mfl_quality:
            per_cell = torch.zeros_like(heatmap)
            per_cell[cells] = quality
            heatmap = heatmap * (1 - self.mfl_quality + self.mfl_quality * per_cell)  # YOLOv5's gr blend
        return heatmap * mask, mask

    @torch.no_grad()
    def _heatmap(self, assigned, i, shape, img_hw) -> tuple[torch.Tensor, torch.Tensor]:
        """(B, na, H, W) heatmap and mask of level `i` from the boxes assigned to each anchor (batch × anchor grids)."""
        bs, na, gh, gw = shape
        img_a, boxes = assigned
        scale = torch.tensor([img_hw[1], img_hw[0], img_hw[1], img_hw[0]], device=boxes.device)
        heatmap, mask = build_heatmap_targets(
            boxes * scale, img_a, bs * na, (gh, gw), float(self.stride[i]), eta=self.hm_eta, eps=self.hm_eps
        )
        return heatmap.view(shape), mask.view(shape)

    @torch.no_grad()
    def _best_pair(self, targets: torch.Tensor, img_hw: tuple[int, int]) -> torch.Tensor:
        """(n,) index level × na + anchor of the anchor whose worst side ratio to each box is smallest (first on ties)."""
        anchors_px = (self.anchors * self.stride.view(-1, 1, 1)).view(-1, 2).to(targets.device)  # (nl * na, 2)
        wh = targets[:, 4:6] * torch.tensor([img_hw[1], img_hw[0]], device=targets.device)
        ratio = wh[:, None] / anchors_px[None]  # (n, nl * na, 2)
        return torch.max(ratio, 1 / ratio).amax(2).argmin(1)

    @torch.no_grad()
    def _match(self, targets: torch.Tensor, i: int, grid_hw: tuple[int, int]):
        """YOLOv5's assignment at level `i`: anchors whose size ratio to a box is under `anchor_t`, on the box's
        centre cell and the two neighbouring cells nearest the centre.

        Returns:
            b, a, gj, gi (torch.Tensor): Image, anchor, row and column of each positive.
            tbox (torch.Tensor): (m, 4) target xywh relative to the positive's cell, grid units.
            anchors (torch.Tensor): (m, 2) anchor sizes of the positives, grid units.
            t (torch.Tensor): (m,) index of each positive's box in `targets`.
            assigned (tuple[torch.Tensor, torch.Tensor]): (image * na + anchor, normalised xywh) of each box-anchor
                pair that passed the ratio rule, for the heatmap targets.
        """
        gh, gw = grid_hw
        device = targets.device
        anchors = self.anchors[i].to(device)  # (na, 2)
        size = torch.tensor([gw, gh], device=device, dtype=torch.float32)
        xy, wh = targets[:, 2:4] * size, targets[:, 4:6] * size  # (n, 2) grid units
        ratio = wh[None] / anchors[:, None]  # (na, n, 2)
        keep = torch.max(ratio, 1 / ratio).amax(2) < self.anchor_t  # (na, n)
        a, t = keep.nonzero(as_tuple=True)
        img = targets[t, 0].long()
        assigned = (img * self.na + a, targets[t, 2:6])
        gxy, gxi = xy[t], size - xy[t]
        near = torch.cat(((gxy % 1 < 0.5) & (gxy > 1), (gxi % 1 < 0.5) & (gxi > 1)), 1).T  # (4, m)
        use = torch.cat((torch.ones_like(near[:1]), near), 0)  # (5, m): centre + up to 2 neighbours
        k, j = use.nonzero(as_tuple=True)
        a, t, img, gxy = a[j], t[j], img[j], gxy[j]
        gij = (gxy - _NEIGHBOURS.to(device)[k] * 0.5).long()
        gi, gj = gij[:, 0].clamp(0, gw - 1), gij[:, 1].clamp(0, gh - 1)
        tbox = torch.cat((gxy - torch.stack((gi, gj), 1), wh[t]), 1)
        return img, a, gj, gi, tbox, anchors[a], t, assigned
