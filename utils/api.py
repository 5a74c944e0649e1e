"""Count heads in an in-memory image from Python, for embedding the counter in other programs.

Examples:
    >>> import cv2
    >>> from utils.api import HeadCounter, count_heads
    >>> result = count_heads(cv2.imread("crowd.jpg"), "best.pt")  # one-off; the loaded model is cached per path
    >>> counter = HeadCounter("best.pt", tile=True)  # or keep a counter for a stream of frames
    >>> print(counter(frame).count)
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Any

import numpy as np
import torch
from ultralytics.engine.model import Model

from utils import COUNT_IOU, MAX_DET
from utils.checkpoint import trusting
from utils.predictor import ARRAYS, CountingPredictor, resolve_conf
from utils.track_counting import FrameTracks
from utils.tracking import CROSS_FRAMES


@dataclass(frozen=True)
class CountResult:
    """Heads found in one image.

    Attributes:
        count (int): Number of heads at the threshold used.
        boxes (np.ndarray): Boxes (N, 4) x1, y1, x2, y2 in image pixels, float32.
        centres (np.ndarray): Box centres (N, 2) x, y in image pixels.
        scores (np.ndarray): Confidences (N,).
        conf (float): Confidence threshold the count used.
        capped (bool): True when the count reached max_det and may be truncated.
        ids (np.ndarray | None): When tracking, the track ID (N,) of each box; boxes are then the tracked heads,
            while `count` stays the detections above `conf`.
        tracks (FrameTracks | None): When tracking: tracked and unique heads, crossings per line, zone occupancy.
    """

    count: int
    boxes: np.ndarray
    centres: np.ndarray
    scores: np.ndarray
    conf: float
    capped: bool
    ids: np.ndarray | None = None
    tracks: FrameTracks | None = None


class HeadCounter:
    """A loaded model that counts heads in BGR images; reuse one across frames to load the model once.

    Attributes:
        conf (float): Threshold in use: the given one, else the checkpoint's calibrated count threshold, else 0.25.
        max_det (int): Detection limit per image; results that reach it have `capped=True`.
        predictor (CountingPredictor): The Ultralytics predictor doing the work (nothing is saved or logged).

    Examples:
        >>> counter = HeadCounter("best.pt")
        >>> counter(cv2.imread("crowd.jpg")).count
    """

    def __init__(
        self,
        weights: str | Path | torch.nn.Module,
        conf: float | None = None,
        iou: float = COUNT_IOU,
        imgsz: int | tuple[int, int] = 640,
        max_det: int = MAX_DET,
        device: str | None = None,
        half: bool = False,
        tile: bool = False,
        tile_overlap: float = 0.2,
        trust_weights: bool = False,
        track: str | None = None,
        lines=(),
        zones=(),
        min_track_frames: int = 5,
        line_band: float = 0.0,
        fps: float = 30.0,
        min_track_conf: float | None = None,
        cross_frames: int = CROSS_FRAMES,
    ):
        """Load the model.

        Args:
            weights (str | Path | torch.nn.Module): A `.pt` checkpoint, an Ultralytics `YOLO` object or a detection
                module; modules are copied, never modified.
            conf (float, optional): Confidence threshold; None reads the checkpoint's calibrated count threshold.
            iou (float): NMS IoU threshold (the count threshold is calibrated at it).
            imgsz (int | tuple[int, int]): Inference size (h, w), or the tile size with `tile`.
            max_det (int): Maximum detections per image.
            device (str, optional): Torch device, e.g. "cpu" or "0"; None picks automatically.
            half (bool): FP16 inference on GPU.
            tile (bool): Sliced inference at native resolution, for large images with tiny heads.
            tile_overlap (float): Tile overlap fraction.
            trust_weights (bool): Load a checkpoint that needs more than known model classes (its pickle can run
                code); restricted loading refuses it otherwise (utils/checkpoint.py).
            track (str, optional): Tracker YAML (e.g. "ocsort.yaml"): successive calls are frames of one video,
                and results carry track IDs and counts; `summary()` totals them.
            lines (Sequence): With `track`, counting lines, each (2, 2) end points in pixels.
            zones (Sequence): With `track`, zone polygons, each (K, 2) in pixels.
            min_track_frames (int): With `track`, frames a track must last to count as a unique head.
            line_band (float): With `track`, half-width in box heights of the band around each line where a head is
                on neither side (damps jittering boxes).
            fps (float): With `track`, the frame rate of the calls, for dwell times in seconds.
            min_track_conf (float, optional): With `track`, mean score a track must reach to count as a head;
                default: the count threshold + 0.2 (`utils.tracking.TRACK_CONF_MARGIN`).
            cross_frames (int): With `track`, calls a head must be seen on the new side of a line before its
                crossing counts (a box wobbling across the line for a frame or two counts nothing).
        """
        with trusting(trust_weights):  # restricted loading unless the caller vouches for the file
            self.conf, self.max_det = resolve_conf(conf, weights), max_det
            overrides = dict(conf=self.conf, iou=iou, imgsz=imgsz, max_det=max_det, save=False, verbose=False)
            overrides.update(device=device, quantize=16 if half else None)
            self.predictor = CountingPredictor(
                overrides=overrides,
                tile=tile,
                tile_overlap=tile_overlap,
                track=track,
                lines=[np.asarray(x, float) for x in lines],
                zones=[np.asarray(z, float) for z in zones],
                min_track_frames=min_track_frames,
                line_band=line_band,
                min_track_conf=min_track_conf,
                cross_frames=cross_frames,
            )
            self.predictor.frame_dt = 1 / fps
            if isinstance(weights, (str, Path)):
                weights = str(weights)
            elif isinstance(weights, Model):  # the YOLO wrapper: AutoBackend wants the detection module inside it
                weights = weights.model
            self.predictor.setup_model(weights, verbose=False)

    def __call__(self, image_bgr: np.ndarray | str | Path) -> CountResult:
        """Count the heads in one image.

        Args:
            image_bgr (np.ndarray | str | Path): Image (H, W, 3) BGR uint8 as OpenCV reads it, (H, W) grayscale, or
                an image file's path.

        Returns:
            (CountResult): Count, boxes, centres and scores.
        """
        image_bgr = read_image(image_bgr) if isinstance(image_bgr, (str, Path)) else image_bgr
        if not isinstance(image_bgr, np.ndarray):
            raise TypeError(f"image_bgr must be a numpy array (H, W, 3) BGR or a path, got {type(image_bgr).__name__}")
        r = self.predictor(source=image_bgr)[0]
        b = r.boxes.cpu().numpy()
        tracking = self.predictor.tracking is not None
        keep = slice(None) if b.is_track or not tracking else slice(0)  # tracking: the tracked boxes only
        boxes = b.xyxy[keep].astype(np.float32)
        return CountResult(
            count=r.count,
            boxes=boxes,
            centres=(boxes[:, :2] + boxes[:, 2:]) / 2,
            scores=b.conf[keep].astype(np.float32),
            conf=self.conf,
            capped=len(b) >= self.max_det,
            ids=(b.id.astype(np.int64) if b.is_track else np.zeros(0, np.int64)) if tracking else None,
            tracks=r.tracks["frame"] if tracking else None,
        )

    def summary(self) -> dict:
        """Return the tracking totals so far: unique heads, crossings per line, occupancy and dwell per zone."""
        if self.predictor.tracking is None:
            raise ValueError("summary() totals tracks: create the HeadCounter with track='ocsort.yaml'")
        counter = self.predictor.tracking.counters.get(ARRAYS)
        return counter.summary() if counter else {}


def read_image(path: str | Path) -> np.ndarray:
    """Read an image file as BGR (any format Ultralytics reads, HEIC included), or raise naming the file."""
    from ultralytics.utils.patches import imread

    if not Path(path).is_file():
        raise FileNotFoundError(f"image not found: {path}")
    image = imread(str(path))
    if image is None:
        raise ValueError(f"{path}: not an image OpenCV or PIL can read")
    return image


@lru_cache(maxsize=4)
def _counter_for_path(path: str, mtime: float, settings: tuple) -> HeadCounter:
    """Return a cached counter for a checkpoint; the file's mtime in the key reloads it after retraining."""
    return HeadCounter(path, **dict(settings))


def count_heads(
    image_bgr: np.ndarray | str | Path,
    weights_or_model: str | Path | torch.nn.Module | HeadCounter,
    conf: float | None = None,
    **kwargs: Any,
) -> CountResult:
    """Count heads in a BGR image.

    Args:
        image_bgr (np.ndarray | str | Path): Image (H, W, 3) BGR uint8, as `cv2.imread` returns it, or its path.
        weights_or_model (str | Path | torch.nn.Module | HeadCounter): A checkpoint path (its loaded model is cached
            per path and settings), a model (loaded on every call), or a `HeadCounter` to reuse (`conf` and `kwargs`
            are then ignored).
        conf (float, optional): Confidence threshold; None uses the checkpoint's calibrated count threshold.
        **kwargs (Any): Other `HeadCounter` settings: iou, imgsz, max_det, device, half, tile, tile_overlap,
            trust_weights.

    Returns:
        (CountResult): Count, boxes (N, 4) xyxy pixels, centres (N, 2), scores (N,).

    Examples:
        >>> r = count_heads(cv2.imread("crowd.jpg"), "best.pt", tile=True)
        >>> r.count, r.centres.shape
    """
    if isinstance(weights_or_model, HeadCounter):
        counter = weights_or_model
    elif isinstance(weights_or_model, (str, Path)):
        path = Path(weights_or_model).resolve()
        if not path.exists():
            raise FileNotFoundError(f"weights not found: {weights_or_model}")
        hashable = {k: tuple(v) if isinstance(v, list) else v for k, v in {**kwargs, "conf": conf}.items()}
        settings = tuple(sorted(hashable.items()))
        counter = _counter_for_path(str(path), path.stat().st_mtime, settings)
    else:
        counter = HeadCounter(weights_or_model, conf=conf, **kwargs)
    return counter(image_bgr)
