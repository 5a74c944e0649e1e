"""AutoAnchor for the YOLOv5 anchor head, as YOLOv5 users know it: check how well the anchors fit the dataset's heads
before training and re-fit them (k-means, then evolution) when they fit badly.

The fit is YOLOv5's: a head box and an anchor match when neither side ratio exceeds `anchor_t` (the assignment rule of
utils/detection_loss.py); the best possible recall (BPR) is the share of heads that match at least one anchor.
"""

from __future__ import annotations

import numpy as np
import torch
from ultralytics.utils import LOGGER, colorstr

PREFIX = colorstr("AutoAnchor: ")
GOOD_BPR = 0.98  # YOLOv5's threshold: below it the anchors are re-fitted


def ratio_fit(anchors: np.ndarray, wh: np.ndarray, thr: float) -> np.ndarray:
    """(M, K) how well each anchor fits each box: the worse of the two side ratios, in (0, 1]; 1 is a perfect fit."""
    r = wh[:, None] / anchors[None]
    return np.minimum(r, 1 / r).min(2)


def anchor_metrics(anchors: np.ndarray, wh: np.ndarray, thr: float) -> tuple[float, float]:
    """Best possible recall and mean number of anchors per box that pass the ratio rule `thr` (YOLOv5's BPR, AAT)."""
    x = ratio_fit(anchors, wh, thr)
    return float((x.max(1) > 1 / thr).mean()), float((x > 1 / thr).sum(1).mean())


def fitness(anchors: np.ndarray, wh: np.ndarray, thr: float) -> float:
    """YOLOv5's anchor fitness: the mean over boxes of the best anchor's fit, counting only fits that pass the rule."""
    best = ratio_fit(anchors, wh, thr).max(1)
    return float((best * (best > 1 / thr)).mean())


def kmean_anchors(wh: np.ndarray, n: int, thr: float, gen: int = 1000, seed: int = 0) -> np.ndarray:
    """Fit n anchors to box sizes: k-means on the sizes, then `gen` generations of multiplicative mutation that keep
    what raises `fitness`. Returned sorted by area (smallest first), as the levels expect.

    Args:
        wh (np.ndarray): (M, 2) box widths and heights in pixels at the training image size.
        n (int): Number of anchors (levels × anchors per level).
        thr (float): The assignment's size-ratio threshold (anchor_t).
        gen (int): Evolution generations.
        seed (int): Random seed, for reproducible anchors.
    """
    from scipy.cluster.vq import kmeans

    rng = np.random.default_rng(seed)
    large = wh[(wh >= 2.0).all(1)]  # as YOLOv5, fit to boxes of 2 px and more, unless that leaves too few
    wh = large if len(large) >= n else wh
    k = np.zeros((0, 2))
    if len(wh) >= n:
        s = wh.std(0) + 1e-9
        k = kmeans(wh / s, n, iter=30, rng=seed)[0] * s
    if len(k) < n:  # too few boxes, or k-means merged centroids: start from sizes spread over the boxes' range
        k = rng.uniform(wh.min(0), wh.max(0), (n, 2))
    best = fitness(k, wh, thr)
    for _ in range(gen):
        v = np.ones_like(k)
        while (v == 1).all():  # mutate until something changes
            v = ((rng.random(k.shape) < 0.9) * rng.random() * rng.standard_normal(k.shape) * 0.1 + 1).clip(0.3, 3.0)
        candidate = (k * v).clip(min=2.0)
        f = fitness(candidate, wh, thr)
        if f > best:
            best, k = f, candidate
    return k[np.argsort(k.prod(1))]


def dataset_wh(dataset, imgsz: int, seed: int = 0) -> np.ndarray:
    """(M, 2) head sizes in pixels as training sees them: each image resized so its long side is `imgsz`, with
    YOLOv5's random 0.9-1.1 scale for augmentation."""
    rng = np.random.default_rng(seed)
    parts = []
    for label in dataset.labels:
        h, w = label["shape"]
        boxes = np.asarray(label["bboxes"], dtype=np.float64).reshape(-1, 4)
        parts.append(boxes[:, 2:4] * np.array([w, h]) * imgsz / max(h, w) * rng.uniform(0.9, 1.1))
    return np.concatenate(parts) if parts else np.zeros((0, 2))


def check_anchors(head: torch.nn.Module, wh: np.ndarray, thr: float) -> bool:
    """Print how well the head's anchors fit the boxes; re-fit them in place when BPR < 0.98 and the new ones are
    better. Returns True when the anchors were replaced."""
    anchors = head.anchors.detach().cpu().numpy().reshape(-1, 2)
    bpr, aat = anchor_metrics(anchors, wh, thr)
    msg = f"{PREFIX}{aat:.2f} anchors/target, {bpr:.3f} Best Possible Recall (BPR). "
    if bpr > GOOD_BPR or not len(wh):
        LOGGER.info(f"{msg}Current anchors are a good fit to dataset ✅")
        return False
    LOGGER.info(f"{msg}Anchors are a poor fit to dataset ⚠️, attempting to improve...")
    new = kmean_anchors(wh, len(anchors), thr)
    new_bpr, new_aat = anchor_metrics(new, wh, thr)
    if new_bpr <= bpr:
        LOGGER.info(f"{PREFIX}Done ⚠️ (original anchors better than new anchors, proceeding with original anchors)")
        return False
    head.anchors.copy_(torch.tensor(new, dtype=head.anchors.dtype).view_as(head.anchors))
    shown = ", ".join(f"{w:.0f},{h:.0f}" for w, h in new)
    LOGGER.info(f"{PREFIX}New anchors {shown} (BPR {new_bpr:.3f}, {new_aat:.2f} anchors/target) saved to model")
    return True
