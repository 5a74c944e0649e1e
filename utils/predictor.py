"""Ultralytics' detection predictor as a head counter: per-frame counts, overlays, tiling and bad-input reports.

`CountingPredictor` overrides DetectionPredictor hooks only: source set-up (a loader that reports unreadable files
instead of skipping or aborting), preprocess/postprocess (tiled inference), result construction (an OpenCV overlay in
place of the font-downloading Annotator) and video saving (mp4 at the source's frame rate and size).
"""

from __future__ import annotations

import csv
import logging
import math
import os
import time
from collections import defaultdict, deque
from collections.abc import Callable
from pathlib import Path
from typing import Any

import cv2
import numpy as np
import torch
from ultralytics.data.loaders import LoadImagesAndVideos, LoadStreams, SourceTypes
from ultralytics.data.utils import IMG_FORMATS, VID_FORMATS
from ultralytics.engine.results import Results
from ultralytics.models.yolo.detect import DetectionPredictor
from ultralytics.utils import DEFAULT_CFG, LOGGER, TQDM, ops

from utils import COUNT_CONF_KEY, MAX_DET
from utils.checkpoint import read_count_conf
from utils.mot import seqinfo_frame_rate
from utils.nms import grid_kernel
from utils.overlay import STYLES, annotate, draw_count, draw_tracks
from utils.threads import use_all_cores
from utils.tiling import crop_tiles, merge_tiles, tile_windows
from utils.tracking import CROSS_FRAMES, VideoTracking

DEFAULT_CONF = 0.25  # used only when the checkpoint stores no calibrated count threshold
CSV_HEADER = ("source", "frame", "time", "count", "smoothed")  # tracking adds VideoTracking.columns
ARRAYS = "frames"  # the sequence name of images passed as arrays (the API's successive calls)
_REMOTE = ("rtsp://", "rtmp://", "tcp://", "http://", "https://")


def resolve_conf(conf: float | None, weights: Any) -> float:
    """Return the confidence threshold to count with: the user's, else the checkpoint's calibrated one, else 0.25.

    Args:
        conf (float | None): Threshold given by the user; wins when not None.
        weights (Any): A `.pt` path, an Ultralytics `YOLO` object (its `ckpt` is read) or a bare module.

    Returns:
        (float): The threshold; the fallback is announced with a note, never applied silently.
    """
    if conf is not None:
        return float(conf)
    stored = None
    name = getattr(weights, "ckpt_path", None) or ("the model" if weights is None else type(weights).__name__)
    if isinstance(weights, (str, Path)):
        stored, name = read_count_conf(weights), str(weights)
    elif isinstance(getattr(weights, "ckpt", None), dict):
        stored = weights.ckpt.get(COUNT_CONF_KEY)
    if stored is None:
        LOGGER.warning(f"{name} stores no calibrated count threshold ('{COUNT_CONF_KEY}'), using conf {DEFAULT_CONF}")
        return DEFAULT_CONF
    LOGGER.info(f"Counting at conf {float(stored):.4g}, the threshold calibrated on the validation split ({name})")
    return float(stored)


def is_local_source(source: Any) -> bool:
    """Return True for a file, folder, glob or list file on disk, False for streams, webcams, URLs and arrays."""
    if not isinstance(source, (str, Path)):
        return False
    s = str(source).lower()
    return not (s.isnumeric() or s.startswith(_REMOTE) or s.endswith(".streams") or s.split(" ")[0] == "screen")


class ReportingLoader(LoadImagesAndVideos):
    """Ultralytics' image/video loader that reports unreadable images and videos by name and moves on.

    The stock loader logs a bare warning for an undecodable image and raises mid-run on a video it cannot open, which
    would abort the remaining files; here both are passed to `on_error` and skipped.

    Attributes:
        on_error (Callable[[str, str], None]): Called with (path, reason) for each file that cannot be read.
    """

    def __init__(self, path: str | Path, on_error: Callable[[str, str], None], **kwargs):
        """Check a single file's type, then list the files like Ultralytics does.

        Args:
            path (str | Path): Image, video, folder, glob, or *.txt / *.csv list of them.
            on_error (Callable[[str, str], None]): Failure reporter.
            **kwargs (Any): Passed to LoadImagesAndVideos (batch, vid_stride, channels).
        """
        self.on_error = on_error  # set first: the parent opens the first video in __init__
        suffix = Path(path).suffix.lower()[1:]
        if Path(path).is_file() and suffix not in IMG_FORMATS | VID_FORMATS | {"txt", "csv"}:
            raise ValueError(f"not an image or video file (suffix '.{suffix}')")
        super().__init__(path, **kwargs)

    def _append_image(self, paths: list, imgs: list, info: list, path: str, im0: np.ndarray | None, idx: int):
        """Report an image that cannot be decoded; keep the others."""
        if im0 is None:
            self.on_error(path, "cannot be read as an image (corrupt, empty or not an image)")
        else:
            super()._append_image(paths, imgs, info, path, im0, idx)

    def _new_video(self, path: str):
        """Report a video that cannot be opened and leave an unopened capture, which the loader skips."""
        try:
            super()._new_video(path)
        except FileNotFoundError:
            self.frames = 0
            self.on_error(path, "cannot open video (corrupt, empty or unsupported codec)")


class CountResults(Results):
    """Detection results that plot the counting overlay with OpenCV (never a font download).

    Attributes:
        style (str): Overlay style, one of `utils.overlay.STYLES`.
        text (str): Count line drawn in the corner.
        subtext (str): Smaller line under the count (smoothing window, or empty).
    """

    style, text, subtext, tracks, count = "boxes", "", "", None, 0

    def plot(self, line_width: int | None = None, conf: bool = True, labels: bool = True, **kwargs) -> np.ndarray:
        """Return the annotated image; accepts the keyword arguments BasePredictor.write_results passes."""
        b = self.boxes.cpu().numpy()
        text, tracked = self.text, self.tracks is not None
        im = annotate(
            self.orig_img,
            b.xyxy,
            b.conf,
            b.cls,
            self.names,
            self.style,
            "" if tracked else text,  # tracking draws the count last, over the trails
            self.subtext,
            line_width,
            labels and not tracked,  # tracking labels boxes with their IDs
            conf,
        )
        if not tracked:
            return im
        draw_tracks(
            im, b.xyxy, b.id.astype(int) if b.is_track else np.zeros(0, int), line_width=line_width, **self.tracks
        )
        return draw_count(im, text, self.subtext)


class _OneSummary(logging.Filter):
    """Drop Ultralytics' 'Results saved to' line, printed after every source: detect.py says it once, at the end,
    and only when something was saved."""

    def filter(self, record: logging.LogRecord) -> bool:
        ultralytics_summary = record.pathname.endswith(os.path.join("engine", "predictor.py"))
        return not (ultralytics_summary and str(record.msg).startswith("Results saved to"))


ONE_SUMMARY = _OneSummary()


class CountingPredictor(DetectionPredictor):
    """Count heads in images, folders, videos and streams, writing overlays, counts.csv and YOLO labels.

    Attributes:
        style (str): Overlay style for saved and shown images.
        smooth (int): Frames in the moving-average count shown on videos and streams (1 = off).
        tile (bool): Sliced inference at native resolution with imgsz tiles.
        tile_overlap (float): Overlap of neighbouring tiles as a fraction of the tile.
        counts_csv (Path | None): File to append one row per image or frame to, None to write none.
        failures (dict[str, str]): Source → reason for every input that could not be processed, across runs.
        capped (dict[str, int]): Source → number of images or frames whose detections reached max_det.
        threads (int): CPU threads torch uses, set when the model is loaded.

    Examples:
        >>> p = CountingPredictor(overrides={"model": "best.pt", "save": False}, style="points")
        >>> n = len(p(source=image_bgr)[0].boxes)
    """

    def __init__(
        self,
        cfg=DEFAULT_CFG,
        overrides: dict[str, Any] | None = None,
        _callbacks: dict | None = None,
        *,
        style: str = "boxes",
        smooth: int = 1,
        tile: bool = False,
        tile_overlap: float = 0.2,
        counts_csv: str | Path | None = None,
        track: str | None = None,
        lines=(),
        zones=(),
        min_track_frames: int = 5,
        line_band: float = 0.0,
        min_track_conf: float | None = None,
        cross_frames: int = CROSS_FRAMES,
    ):
        """Resolve the count threshold and max_det, then set up Ultralytics' predictor (and tracker).

        Args:
            cfg (str | dict | SimpleNamespace): Base configuration.
            overrides (dict, optional): Ultralytics overrides; conf None means the checkpoint's count threshold.
            _callbacks (dict, optional): Ultralytics callbacks.
            style (str): Overlay style, one of `utils.overlay.STYLES`.
            smooth (int): Moving-average window in frames for the displayed count.
            tile (bool): Run sliced inference.
            tile_overlap (float): Tile overlap fraction in [0, 1).
            counts_csv (str | Path, optional): counts.csv path.
            track (str, optional): Tracker YAML (Ultralytics' name or a file) to track heads with; None tracks none.
            lines (Sequence[np.ndarray]): With `track`, counting lines (2, 2) in source pixels.
            zones (Sequence[np.ndarray]): With `track`, zone polygons (K, 2) in source pixels.
            min_track_frames (int): With `track`, frames a track must last to count as a unique head.
            line_band (float): With `track`, half-width in box heights of the band around each line where a head is
                on neither side.
            min_track_conf (float, optional): With `track`, mean score a track must reach to count; default: the
                count threshold + `utils.tracking.TRACK_CONF_MARGIN`.
            cross_frames (int): With `track`, updates a head must be seen on the new side of a line to cross it.
        """
        if style not in STYLES:
            raise ValueError(f"unknown style '{style}', expected one of {STYLES}")
        if smooth < 1:
            raise ValueError(f"smooth must be >= 1 frame, got {smooth}")
        overrides = {"batch": 1, "rect": True, "max_det": MAX_DET, **(overrides or {})}
        overrides["conf"] = resolve_conf(overrides.get("conf"), overrides.get("model"))
        self.count_conf = overrides["conf"]  # tracking may lower args.conf: the tracker also uses weaker detections
        self.frame_dt: float | None = None  # the API's seconds per frame; None: from the source
        super().__init__(cfg, overrides, _callbacks)
        self.style, self.smooth, self.tile, self.tile_overlap = style, smooth, tile, tile_overlap
        self.counts_csv = Path(counts_csv) if counts_csv else None
        self.failures: dict[str, str] = {}
        self.capped: dict[str, int] = defaultdict(int)
        self.threads = torch.get_num_threads()
        self._windows: list[np.ndarray] = []
        self._bar, self._bar_key, self._bar_srcs = None, None, {}
        self._reset_run()
        self.tracking = None
        if track:
            summary = self.counts_csv.with_name("summary.json") if self.counts_csv else None
            self.tracking = VideoTracking(
                self,
                track,
                lines,
                zones,
                min_track_frames,
                line_band,
                summary_json=summary,
                min_track_conf=min_track_conf,
                cross_frames=cross_frames,
            )
        elif lines or zones:
            raise ValueError("lines and zones count tracks: they need tracking (--track)")
        self.add_callback("on_predict_postprocess_end", lambda p: p._write_rows())  # after the tracker's update
        self.add_callback("on_predict_end", lambda p: p._end_run())
        LOGGER.addFilter(ONE_SUMMARY)  # the same object each time: added once

    # ---- Ultralytics hooks ----
    def setup_model(self, model, verbose: bool = True):
        """Load the model, then give torch every core: Ultralytics' device selection leaves one idle."""
        super().setup_model(model, verbose)
        self.threads = use_all_cores()

    def setup_source(self, source, stride: int | None = None):
        """Load local files through `ReportingLoader`, everything else through Ultralytics' own loaders."""
        self._reset_run()
        self._source = str(source) if isinstance(source, (str, Path)) else ARRAYS  # names a folder of frames
        if is_local_source(source):
            loader = ReportingLoader(
                source, self.fail, batch=self.args.batch, vid_stride=self.args.vid_stride, channels=3
            )
            loader.source_type = SourceTypes()
            source = loader
        elif isinstance(source, (str, Path)) and not str(source).endswith(".streams"):  # name it as the user did
            self._names[ops.clean_str(str(source)).replace(os.sep, "_")] = str(source)
        super().setup_source(source, stride)

    def preprocess(self, im):
        """Cut each image into native-resolution tiles when tiling, else letterbox as usual."""
        if not self.tile or isinstance(im, torch.Tensor):
            return super().preprocess(im)
        tile_hw = tuple(self.imgsz)
        self._windows = [tile_windows(x.shape[:2], tile_hw, self.tile_overlap) for x in im]
        tiles = np.concatenate([crop_tiles(x, w, tile_hw) for x, w in zip(im, self._windows)])
        return super().preprocess(list(tiles))  # tiles already have the model's size: the letterbox is a no-op

    def postprocess(self, preds, img, orig_imgs, **kwargs):
        """Build results (merging tiles into their images when tiling) and record their counts; NMS on large candidate
        sets runs on `grid_nms`'s kernel (the same boxes, faster on dense crowds)."""
        with grid_kernel():
            results = self._merge_tiles(preds, orig_imgs) if self.tile else super().postprocess(preds, img, orig_imgs)
        self._record(results)
        return results

    def construct_result(self, pred, img, orig_img, img_path):
        """Return Ultralytics' result as `CountResults`, which draws with OpenCV."""
        r = super().construct_result(pred, img, orig_img, img_path)
        return CountResults(r.orig_img, path=r.path, names=r.names, boxes=r.boxes.data)

    def write_results(self, i: int, p: Path, im: torch.Tensor, s: list[str]) -> str:
        """Remember which image is being written, for the frame rate `save_predicted_images` needs."""
        self._fps = self.results[i].fps
        return super().write_results(i, p, im, s)

    def save_predicted_images(self, save_path: Path, frame: int | None = 0):
        """Save images as jpg, videos and streams as mp4 with the source's frame size and rate (over vid_stride)."""
        if self.dataset.mode == "image":
            return super().save_predicted_images(save_path, frame)
        im = self.plotted_img
        if save_path not in self.vid_writer:
            fps = self._fps / self.args.vid_stride if self.dataset.mode == "video" else self._fps
            self.vid_writer[save_path] = cv2.VideoWriter(
                str(save_path.with_suffix(".mp4")), cv2.VideoWriter_fourcc(*"mp4v"), fps, (im.shape[1], im.shape[0])
            )
        self.vid_writer[save_path].write(im)

    def show(self, p: str = ""):
        """Show the image; remember a user's 'q' so a stream stopped on purpose is not reported as dropped."""
        try:
            super().show(p)
        except StopIteration:
            self._user_stopped = True
            raise

    # ---- counting bookkeeping ----
    def fail(self, source: str, reason: str):
        """Record and report, once per source, why it could not be (fully) processed."""
        if source not in self.failures:
            self.failures[source] = reason
            LOGGER.error(f"{source}: {reason}")

    def _reset_run(self):
        """Clear the per-run state: smoothing windows, frame tallies, progress bar."""
        self._close_bar()  # left open when the previous run raised
        self._recent: dict[str, deque] = {}
        self._frames: dict[str, list[int]] = defaultdict(list)  # source -> counts of its frames
        self._t0: dict[str, float] = {}
        self._names: dict[str, str] = {}  # Ultralytics' sanitised stream name -> the source as given
        self._user_stopped, self._fps = False, 30.0
        self._rows: list[tuple] = []  # counts.csv rows of the batch, written after the tracker's update

    def _merge_tiles(self, preds, orig_imgs: list[np.ndarray]) -> list[CountResults]:
        """Merge each image's tile predictions with one NMS and wrap them as results."""
        preds = preds[0] if isinstance(preds, (list, tuple)) else preds
        th, tw = self.imgsz
        overlap = (round(self.tile_overlap * tw), round(self.tile_overlap * th))
        splits = torch.split(preds, [len(w) for w in self._windows])
        results = []
        a = self.args
        for p, win, im0, path in zip(splits, self._windows, orig_imgs, self.batch[0]):
            det = merge_tiles(p, win, im0.shape[:2], overlap, a.conf, a.iou, a.max_det, a.classes, a.agnostic_nms)
            results.append(CountResults(im0, path=path, names=self.model.names, boxes=det))
        return results

    def _frame_info(self, i: int, im0: np.ndarray) -> tuple[int | None, float | None, float, bool]:
        """Return (frame number, time in s, source fps, signal lost) of the batch's i-th image."""
        ds = self.dataset
        if ds.mode == "video":
            frame = ds.frame * self.args.vid_stride  # 1-based index in the source video
            fps = ds.fps if ds.fps and ds.fps > 0 else 30.0
            return frame, (frame - 1) / fps, fps, False
        if ds.mode == "stream" and isinstance(ds, LoadStreams):
            src = ds.sources[i]
            now = time.monotonic()
            t = now - self._t0.setdefault(src, now)
            return ds.count + 1, t, ds.fps[i], not im0.any()  # LoadStreams fills a lost frame with zeros
        return None, None, 30.0, False

    def _record(self, results: list[CountResults]):
        """Count each result, label it for the overlay, warn at max_det, log, and queue its counts.csv row."""
        self._recorded = list(results)  # the tracker replaces the items of the list it is given
        for i, r in enumerate(results):
            n, src = int((r.boxes.conf > self.count_conf).sum()), self._names.get(r.path, r.path)
            frame, t, r.fps, lost = self._frame_info(i, r.orig_img)
            r.style, r.count = self.style, n
            if lost:
                self.fail(src, f"stream signal lost at frame {frame}")
                r.text, smoothed = "NO SIGNAL", None
                self._rows.append((src, frame, t, None, None))
                continue
            capped = n >= self.args.max_det
            if capped:
                self.capped[src] += 1
                if self.capped[src] == 1:
                    where = f" frame {frame}" if frame else ""
                    LOGGER.warning(
                        f"{src}{where}: {n} detections reached --max-det {self.args.max_det}, the count is "
                        f"capped; raise --max-det"
                    )
            r.text = f"Count: {n}{'+' if capped else ''}"
            smoothed = None
            if frame is not None:
                self._frames[src].append(n)
                recent = self._recent.setdefault(src, deque(maxlen=self.smooth))
                recent.append(n)
                smoothed = sum(recent) / len(recent)
                if self.smooth > 1:
                    r.text = f"Count: {smoothed:.0f}"
                    r.subtext = f"mean of {len(recent)} frames, this frame {n}{'+ (max-det)' if capped else ''}"
                self._progress(src)
            elif self.counts_csv:  # a CLI run: one line per image, as YOLOv5 prints
                LOGGER.info(f"{self.batch[2][i]}{n} head{'' if n == 1 else 's'}")
            self._rows.append((src, frame, t, n, smoothed))

    @staticmethod
    def _retype(r: Results, recorded: CountResults) -> CountResults:
        """Return a tracked result as `CountResults`, with the overlay text the untracked one was given."""
        if isinstance(r, CountResults):
            return r
        out = CountResults(r.orig_img, path=r.path, names=r.names, boxes=r.boxes.data)
        for attr in ("style", "text", "subtext", "fps", "count"):
            setattr(out, attr, getattr(recorded, attr))
        return out

    def sequence_keys(self) -> list[str]:
        """Name the sequence each result of the batch belongs to: its video, its stream, or the folder of frames."""
        mode = self.dataset.mode
        return [self._names.get(r.path, r.path) if mode != "image" else self._source for r in self.results]

    def frame_interval(self, i: int) -> float:
        """Seconds between two processed frames of the batch's i-th source (vid_stride / fps, a MOT folder's
        seqinfo.ini frameRate; 30 fps if unknown)."""
        if self.frame_dt:
            return self.frame_dt
        ds = self.dataset
        fps = ds.fps if ds.mode == "video" else ds.fps[i] if ds.mode == "stream" else seqinfo_frame_rate(self._source)
        return (self.args.vid_stride if ds.mode == "video" else 1) / (fps if fps and fps > 0 else 30.0)

    def _write_rows(self):
        """Write the batch's counts.csv rows, with the track columns when tracking.

        The file is opened and closed per batch, so a killed live run keeps every row so far.
        """
        rows, self._rows = self._rows, []
        if self.tracking:  # the tracker's callback replaced our results with plain ones holding the tracked boxes
            self.results = [self._retype(r, old) for r, old in zip(self.results, self._recorded)]
            for j, (key, r) in enumerate(zip(self.sequence_keys(), self.results)):
                src, frame, t, n, smoothed = rows[j]
                k, tk, values = self.tracking.count(key, r)
                rows[j] = (src, k if frame is None else frame, tk if t is None else t, n, smoothed, *values)
        if not self.counts_csv or not rows:
            return
        new = not self.counts_csv.exists()
        with open(self.counts_csv, "a", newline="") as f:
            w = csv.writer(f)
            if new:
                w.writerow(CSV_HEADER + (self.tracking.columns if self.tracking else ()))
            fmt = lambda v, spec: "" if v is None else format(v, spec)
            for src, frame, t, n, smoothed, *extra in rows:
                w.writerow((src, fmt(frame, "d"), fmt(t, ".3f"), fmt(n, "d"), fmt(smoothed, ".2f"), *extra))

    def _progress(self, src: str):
        """Advance the progress bar, which shows frames per second: one per video, one for all streams together."""
        video = self.dataset.mode == "video"
        key = src if video else "streams"
        if key != self._bar_key:
            self._close_bar()
            total = self.dataset.frames if video and self.dataset.frames > 0 else None
            self._bar = TQDM(total=total, desc=Path(src).name if video else "streams", unit="frame")
            self._bar_key = key
        self._bar_srcs[src] = None  # an ordered set
        self._bar.update(1)

    def _close_bar(self):
        """Close the progress bar and summarise the videos or streams it tracked."""
        if self._bar is not None:
            self._bar.close()
        for src in self._bar_srcs:
            if counts := self._frames[src]:
                LOGGER.info(f"{src}: {len(counts)} frames, mean count {np.mean(counts):.1f}, max {max(counts)}")
        self._bar, self._bar_key, self._bar_srcs = None, None, {}

    def _end_run(self):
        """After a run: close the bar, report videos that yielded no frame and live streams that ended."""
        self._close_bar()
        ds = self.dataset
        if isinstance(ds, LoadImagesAndVideos):
            for path, is_video in zip(ds.files, ds.video_flag):
                if is_video and path not in self.failures and not self._frames.get(path):
                    self.fail(path, "no frame could be decoded (corrupt or empty video)")
        elif isinstance(ds, LoadStreams) and not self._user_stopped:
            for src, total in zip(ds.sources, ds.frames):
                src = self._names.get(src, src)
                if math.isinf(total):  # a live source has no end: it ending means the connection dropped
                    self.fail(src, f"stream ended after {len(self._frames.get(src, []))} frames (connection lost)")
