"""YOLOv5 anchor-based detection head that speaks Ultralytics' detection layout at inference."""

from __future__ import annotations

import math

import torch
import torch.nn as nn

from utils import MAX_DET


class AnchorDetect(nn.Module):
    """YOLOv5 head: per level and anchor, 4 box logits, 1 objectness logit and `nc` class logits on every cell.

    Training returns the raw maps; inference decodes them with YOLOv5's grid rule (xy = 2σ(t) - 0.5 + cell,
    wh = (2σ(t))² anchor) and returns Ultralytics' layout (B, 4 + nc, A) of xywh pixel boxes and per-class scores
    objectness × class probability, so Ultralytics' NMS, validator, predictor and exporter use it unchanged.

    Attributes:
        nc (int): Number of classes.
        nl (int): Number of levels.
        na (int): Anchors per level.
        anchors (torch.Tensor): (nl, na, 2) anchor sizes in input pixels.
        stride (torch.Tensor): (nl,) level strides, set by the model after a dry run.
        m (nn.ModuleList): One 1x1 convolution per level.

    Examples:
        >>> head = AnchorDetect(1, [[8, 8, 12, 12, 17, 17]], ch=(64,))
        >>> head.stride = torch.tensor([8.0])
        >>> raw = head([torch.zeros(2, 64, 10, 10)])  # training: [(2, 3, 10, 10, 6)]
    """

    end2end = False  # plain NMS, no one-to-one branch
    export = False  # set by Ultralytics' exporter
    format = None
    dynamic = False
    max_det = MAX_DET

    def __init__(self, nc: int, anchors: list[list[float]], ch: tuple[int, ...]):
        """Build the head.

        Args:
            nc (int): Number of classes.
            anchors (list[list[float]]): Per level, flat w, h pairs in input pixels.
            ch (tuple[int, ...]): Input channels per level.
        """
        super().__init__()
        self.nc, self.no = nc, nc + 5
        self.nl, self.na = len(anchors), len(anchors[0]) // 2
        self.register_buffer("anchors", torch.tensor(anchors, dtype=torch.float32).view(self.nl, self.na, 2))
        self.register_buffer("stride", torch.zeros(self.nl))
        self.m = nn.ModuleList(nn.Conv2d(c, self.no * self.na, 1) for c in ch)

    def forward(
        self, x: list[torch.Tensor]
    ) -> list[torch.Tensor] | tuple[torch.Tensor, list[torch.Tensor]] | torch.Tensor:
        """Return raw maps (training), (decoded, raw) (inference) or decoded only (export).

        Args:
            x (list[torch.Tensor]): Feature maps, one per level.

        Returns:
            Training: list of (B, na, H, W, 5 + nc) raw logits. Inference: ((B, 4 + nc, A), raw). Export: decoded.
        """
        raw = [self._raw(conv(f)) for conv, f in zip(self.m, x, strict=True)]
        if self.training:
            return raw
        y = torch.cat([self._decode(r, i) for i, r in enumerate(raw)], 1).transpose(1, 2)
        return y if self.export else (y, raw)

    def _raw(self, p: torch.Tensor) -> torch.Tensor:
        """(B, na * no, H, W) -> (B, na, H, W, no)."""
        b, _, h, w = p.shape
        return p.view(b, self.na, self.no, h, w).permute(0, 1, 3, 4, 2).contiguous()

    def _decode(self, raw: torch.Tensor, i: int) -> torch.Tensor:
        """Decode level `i` to (B, na * H * W, 4 + nc): xywh in pixels, then objectness × class scores."""
        b, _, h, w, _ = raw.shape
        ys, xs = torch.meshgrid(
            torch.arange(h, device=raw.device, dtype=raw.dtype),
            torch.arange(w, device=raw.device, dtype=raw.dtype),
            indexing="ij",
        )
        grid = torch.stack((xs, ys), -1) - 0.5  # (H, W, 2)
        s = raw.sigmoid()
        xy = (s[..., :2] * 2 + grid) * self.stride[i]
        wh = (s[..., 2:4] * 2).square() * self.anchors[i].view(1, self.na, 1, 1, 2)
        scores = s[..., 4:5] * s[..., 5:]
        return torch.cat((xy, wh, scores), -1).view(b, -1, 4 + self.nc)

    def bias_init(self, objects_per_image: float = 8.0, imgsz: int = 640):
        """Initialise biases so the first predictions match priors (YOLOv5: 8 objects per 640 image, 0.6 class prob)."""
        for conv, s in zip(self.m, self.stride.tolist(), strict=True):
            b = conv.bias.view(self.na, self.no)
            b.data[:, 4] += math.log(objects_per_image / (imgsz / s) ** 2)
            b.data[:, 5:] += math.log(0.6 / (self.nc - 0.99999))
