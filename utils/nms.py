"""Ultralytics' NMS on the best-scored candidates first: the same boxes, far fewer comparisons on dense score maps.

Greedy NMS keeps a box when no kept box of higher score overlaps it, so whether a box is kept depends only on the boxes
scored above it: NMS run on the k best candidates gives exactly the full result cut to those k. Once that cut already
holds `max_det` boxes, the boxes beyond it could only have been appended after them and `max_det` drops them, so the
result is the full one; and when an image has no more than k candidates nothing was cut. Only an image where neither
holds is run again, on four times as many candidates. torchvision's NMS costs about kept x candidates, so the saving
is the candidates beyond the first pass: the box-mask MFL anchor model scores 10,000-13,000 of a 512 px image's
16,128 points above val.py's 0.001 and fills max_det 3,000 within its best 9,000, 1.6x less NMS time (BENCHMARKS.md).
"""

from __future__ import annotations

import torch
import torchvision  # noqa: F401  Ultralytics' NMS uses torchvision's kernel only once it is imported (else 40x slower)
from ultralytics.utils import nms


def candidates(prediction: torch.Tensor, conf_thres: float, nc: int = 0, multi_label: bool = False) -> torch.Tensor:
    """Per image, how many (box, class) pairs Ultralytics' NMS would consider: scores above `conf_thres`.

    Args:
        prediction (torch.Tensor): (B, 4 + nc + extra, A) model output in Ultralytics' layout.
        conf_thres (float): Confidence threshold.
        nc (int): Number of classes; 0 takes every channel after the box.
        multi_label (bool): Count every class above the threshold, not only each box's best.

    Returns:
        (torch.Tensor): (B,) counts.
    """
    scores = prediction[:, 4 : 4 + (nc or prediction.shape[1] - 4)]
    above = scores > conf_thres
    return above.sum((1, 2)) if multi_label else above.any(1).sum(1)


def topk_nms(
    prediction: torch.Tensor,
    conf_thres: float = 0.25,
    iou_thres: float = 0.45,
    *,
    max_det: int = 300,
    first_k: int | None = None,
    **kwargs,
) -> list[torch.Tensor]:
    """Ultralytics' `non_max_suppression` with no time limit, run on the `first_k` best candidates per image first.

    Args:
        prediction (torch.Tensor | tuple): (B, 4 + nc + extra, A) model output in Ultralytics' layout, or a tuple
            that starts with it.
        conf_thres (float): Confidence threshold.
        iou_thres (float): IoU threshold.
        max_det (int): Most boxes kept per image.
        first_k (int, optional): Candidates of the first pass; 3 x max_det when None.
        **kwargs (Any): Ultralytics' other NMS arguments (classes, agnostic, multi_label, nc, ...), except max_nms.

    Returns:
        (list[torch.Tensor]): Per image (n, 6 + extra) boxes xyxy, conf, cls, extra: the full NMS result.
    """
    if isinstance(prediction, (list, tuple)):  # (decoded, raw) of a model in eval mode, as Ultralytics' NMS takes
        prediction = prediction[0]
    k = first_k or 3 * max_det
    kwargs = {"max_time_img": float("inf"), **kwargs}
    out = nms.non_max_suppression(prediction, conf_thres, iou_thres, max_det=max_det, max_nms=k, **kwargs)
    n = candidates(prediction, conf_thres, kwargs.get("nc", 0), kwargs.get("multi_label", False)).tolist()
    todo = [i for i, r in enumerate(out) if len(r) < max_det and n[i] > k]
    while todo:  # over images whose first pass may have cut a box that the full NMS keeps
        k *= 4
        again = nms.non_max_suppression(prediction[todo], conf_thres, iou_thres, max_det=max_det, max_nms=k, **kwargs)
        for i, r in zip(todo, again):
            out[i] = r
        todo = [i for i, r in zip(todo, again) if len(r) < max_det and n[i] > k]
    return out
