"""Ultralytics' trackers on the counting predictor: one tracker and one `TrackCounter` per video, folder of frames or
stream, the track columns of counts.csv and the per-video summary.

The trackers are Ultralytics' (ByteTrack, BoT-SORT, ... chosen by their YAML, with its settings), registered with
`register_tracker` so they run as they do in `yolo track`; ByteTrack and OC-SORT then run as their twins on arrays
(utils/array_tracker.py, the same outputs). Ultralytics resets a tracker whenever the result's path
changes, which for a folder of frames means at every frame; the trackers are therefore registered as persistent and
reset here, when a new sequence starts.
"""

from __future__ import annotations

import json
import tempfile
from pathlib import Path

import numpy as np
import torch
from ultralytics.trackers.track import register_tracker
from ultralytics.utils import LOGGER, YAML
from ultralytics.utils.checks import check_yaml

from utils.array_tracker import fast_tracker
from utils.track_counting import TrackCounter, check_inside_frame

DEFAULT_TRACKER = "ocsort.yaml"  # fewer unique-count errors than ByteTrack on held-out videos (BENCHMARKS.md)
FITTED = {"bytetrack", "botsort", "ocsort", "deepocsort", "fasttrack"}  # share ByteTrack's thresholds
# utils/track_births.py: chosen on nine held-out generated videos with two detectors (BENCHMARKS.md, session 16; 0.05
# without relinking, session 12), and again with occluded tracks kept (session 21)
NEW_TRACK_MAX_IOU = 0.2
# utils/array_tracker.py's `_relink`, in track heights: off since occluded tracks are kept, which mends the breaks it
# mended without its hand-overs (BENCHMARKS.md, session 21; 1.0 in sessions 16-20)
RELINK_DIST = None
DROP_EXITED = True  # a lost track whose predicted centre left the frame ends (BENCHMARKS.md, session 20)
KEEP_OCCLUDED = True  # a lost track hidden behind a tracked head is no duplicate of it (BENCHMARKS.md, session 21)
# utils/track_reentry.py: a track whose recent boxes narrowed into a sliver at a border and whose detection is wider
# again, each by this share of the sliver's length along the border, has passed to a head entering there
# (BENCHMARKS.md, session 22)
REENTRY_GROWTH = 0.1
# A track counts when its mean score is this far above the count threshold: tracks on background hover just above it
# (held-out generated videos, BENCHMARKS.md session 13; 0.2 since tracks that left the frame end, session 20)
TRACK_CONF_MARGIN = 0.2
# tracker YAML keys of ours and the values `fit_thresholds` writes where a YAML lacks them
OUR_KEYS = {
    "new_track_max_iou": NEW_TRACK_MAX_IOU,
    "relink_dist": RELINK_DIST,
    "drop_exited": DROP_EXITED,
    "keep_occluded": KEEP_OCCLUDED,
    "reentry_growth": REENTRY_GROWTH,
}
TRACKER_KEYS = tuple(OUR_KEYS)
# the array trackers' own rules off (the birth rule is not: tests and benches give it to Ultralytics' side too)
ARRAY_RULES_OFF = {"relink_dist": None, "drop_exited": False, "keep_occluded": False, "reentry_growth": None}
CROSS_FRAMES = 5  # frames past a line before a crossing counts (held-out generated videos, BENCHMARKS.md session 13)


def find_tracker(tracker: str) -> str:
    """Return the path of a tracker YAML: a file, or the name of one of Ultralytics' (bytetrack.yaml, botsort.yaml).

    Raises:
        FileNotFoundError: One line naming the tracker and where it was looked for.
    """
    if Path(tracker).is_file():
        return str(tracker)
    if "://" in tracker:  # check_yaml would download it: the counter runs offline
        raise FileNotFoundError(f"--tracker {tracker}: tracker YAMLs are read from disk, not downloaded")
    try:
        return check_yaml(tracker)
    except FileNotFoundError:
        raise FileNotFoundError(
            f"--tracker {tracker}: no such file, nor one of Ultralytics' trackers (bytetrack.yaml, botsort.yaml, ...)"
        ) from None


def fit_thresholds(tracker: str, conf: float, dest: Path) -> tuple[str, float]:
    """Move an Ultralytics tracker YAML's score thresholds onto the count threshold, as a new YAML at `dest`.

    Ultralytics' YAMLs start tracks at 0.25 and rescue tracks with detections down to 0.1, i.e. they assume a detector
    whose threshold is 0.25. Our count threshold is calibrated on the validation split instead: tracks start at it
    (`track_high_thresh`, `new_track_thresh`), and the second, low-score association stage keeps the YAML's ratio
    (low = conf * 0.1 / 0.25 for the stock files). `fuse_score` (IoU times score) is turned off: with scores near a
    count threshold of 0.2, a head that moved keeps an IoU of 0.6 but a fused similarity of 0.12, below the 0.2 that
    `match_thresh` 0.8 asks, and every track broke within a few frames. This applies to the trackers built on
    ByteTrack's two stages (ByteTrack, BoT-SORT, OC-SORT, Deep OC-SORT, FastTrack); other tracker types (TrackTrack,
    whose thresholds mean something else) are returned unchanged. Five keys of ours are added when absent:
    `new_track_max_iou` (a second box on a tracked head starts no track, utils/track_births.py), `relink_dist` (a
    detection that would start a track continues a lost track whose predicted centre is this many track heights away
    or less; None, off), `drop_exited` (a lost track whose predicted centre has left the frame ends),
    `keep_occluded` (a lost track on a tracked head is kept, not removed as its duplicate) and `reentry_growth` (a
    track leaving through a border does not take over a head entering there, utils/track_reentry.py); the last four
    for ByteTrack and OC-SORT, utils/array_tracker.py. `VideoTracking` fits only Ultralytics' YAMLs given by name: a
    user's file is used as written.

    Returns:
        (tuple[str, float]): The YAML to track with and the confidence NMS must keep detections from: the low
            threshold, or the count threshold itself when the YAML turns the low-score stage off (`use_byte: false`).
    """
    cfg = YAML.load(tracker)
    if cfg.get("tracker_type") not in FITTED:
        return tracker, conf
    low = round(conf * cfg["track_low_thresh"] / cfg["track_high_thresh"], 6)
    cfg.update(track_high_thresh=conf, new_track_thresh=conf, track_low_thresh=low, fuse_score=False)
    for key, value in OUR_KEYS.items():
        cfg.setdefault(key, value)
    YAML.save(dest, cfg)
    return str(dest), low if cfg.get("use_byte", True) else conf


class VideoTracking:
    """Track heads across the frames of each sequence a `CountingPredictor` reads, and count what the tracks do.

    Attributes:
        lines (list[np.ndarray]): Counting lines, each (2, 2) end points in source pixels.
        zones (list[np.ndarray]): Zones, each a (K, 2) polygon in source pixels.
        min_track_frames (int): Frames a track must last to count as a unique head.
        min_track_conf (float): Mean score a track must reach to count (`TrackCounter`'s `min_conf`).
        cross_frames (int): Updates a head must stay on the new side of a line, or its track stay unseen after
            reaching it, to cross it (`TrackCounter`'s `settle`).
        line_band (float): Half-width, in box heights, of the band around each line where a head is on neither side.
        trail (int): Centres per track drawn as its trail.
        counters (dict[str, TrackCounter]): Sequence → its counts; finished sequences stay until `reset`.
        summaries (dict[str, dict]): Sequence → its summary, filled as sequences finish.
        summary_json (Path | None): File the summaries are written to as they finish.
    """

    def __init__(
        self,
        predictor,
        tracker: str = DEFAULT_TRACKER,
        lines=(),
        zones=(),
        min_track_frames: int = 5,
        line_band: float = 0.0,
        trail: int = 20,
        summary_json: str | Path | None = None,
        min_track_conf: float | None = None,
        cross_frames: int = CROSS_FRAMES,
    ):
        """Register Ultralytics' tracker callbacks on the predictor, after a callback that resets them per sequence.

        Args:
            predictor (CountingPredictor): The predictor to track with; its args switch to mode "track".
            tracker (str): Tracker YAML path or Ultralytics tracker name.
            lines (Sequence[np.ndarray]): Counting lines (2, 2).
            zones (Sequence[np.ndarray]): Zone polygons (K, 2).
            min_track_frames (int): Frames a track must last to count as a unique head.
            line_band (float): Half-width, in box heights, of the band around each line where a head is on neither
                side (`TrackCounter`'s `band`).
            trail (int): Centres per track drawn as its trail.
            summary_json (str | Path, optional): Where to write the per-sequence summaries; the fitted tracker YAML
                goes beside it.
            min_track_conf (float, optional): Mean score a track must reach to count as a head (unique, crossing,
                zone visitor); default: the predictor's count threshold + `TRACK_CONF_MARGIN`.
            cross_frames (int): Updates a head must be seen on the new side of a line for its crossing to count.
        """
        if min_track_frames < 1:
            raise ValueError(f"--min-track-frames must be >= 1, got {min_track_frames}")
        if line_band < 0:
            raise ValueError(f"--line-band must be >= 0, got {line_band}")
        if cross_frames < 1:
            raise ValueError(f"--cross-frames must be >= 1, got {cross_frames}")
        self.cross_frames = cross_frames
        self.min_track_conf = predictor.args.conf + TRACK_CONF_MARGIN if min_track_conf is None else min_track_conf
        predictor.args.mode, predictor.args.tracker = "track", find_tracker(tracker)
        if not Path(tracker).is_file():  # Ultralytics' own YAML: fit its thresholds to the calibrated count threshold
            dest = Path(summary_json).parent if summary_json else Path(tempfile.mkdtemp(prefix="tracker"))
            predictor.args.tracker, predictor.args.conf = fit_thresholds(
                predictor.args.tracker, predictor.args.conf, dest / Path(tracker).name
            )
        self.lines, self.zones = [np.asarray(x, float) for x in lines], [np.asarray(z, float) for z in zones]
        self.min_track_frames, self.line_band, self.trail = min_track_frames, line_band, trail
        self.summary_json = Path(summary_json) if summary_json else None
        self.counters: dict[str, TrackCounter] = {}
        self.summaries: dict[str, dict] = {}
        self._slots: dict[int, str] = {}  # tracker slot (stream index, else 0) → the sequence it is tracking
        predictor.add_callback("on_predict_postprocess_end", self._start_sequences)
        register_tracker(predictor, persist=True)
        predictor.add_callback("on_predict_start", self._fast_trackers)  # after Ultralytics' creates the trackers

    @staticmethod
    def _fast_trackers(predictor):
        """Swap fresh ByteTrack / OC-SORT / BoT-SORT trackers for their faster twins (same results)."""
        predictor.trackers = [fast_tracker(t) for t in predictor.trackers]

    @property
    def columns(self) -> tuple[str, ...]:
        """counts.csv columns this adds: tracked and unique heads, in/out per line, occupancy per zone."""
        lines = [f"line{k + 1}_{d}" for k in range(len(self.lines)) for d in ("in", "out")]
        return ("tracked", "unique", *lines, *(f"zone{k + 1}" for k in range(len(self.zones))))

    def _start_sequences(self, predictor):
        """Before the tracker update: when a slot moves to a new sequence, finish the old one and reset its tracker."""
        for i, key in enumerate(predictor.sequence_keys()):
            slot = i if predictor.dataset.mode == "stream" else 0
            if self._slots.get(slot) == key:
                continue
            if slot in self._slots:
                self.finish(self._slots[slot])
            predictor.trackers[slot].reset()
            self._slots[slot] = key
            self._check_geometry(predictor.results[i].orig_img.shape)
            self.counters[key] = TrackCounter(
                self.lines,
                self.zones,
                self.min_track_frames,
                predictor.frame_interval(i),
                self.trail,
                self.line_band,
                self.min_track_conf,
                self.cross_frames,
            )

    def _check_geometry(self, shape: tuple[int, ...]):
        """Refuse lines and zones that lie outside the first frame of a sequence (a one-line ValueError)."""
        h, w = shape[:2]
        for k, line in enumerate(self.lines):
            check_inside_frame(line, w, h, f"--line {k + 1}")
        for k, zone in enumerate(self.zones):
            check_inside_frame(zone, w, h, f"--zone {k + 1}")

    def count(self, key: str, result) -> tuple[int, float, tuple[int, ...]]:
        """Add one tracked result to its sequence's counter and give it the overlay's track data.

        Returns:
            (tuple): Frame number in the sequence (from 1), its time in seconds, and the values of `columns`.
        """
        b = result.boxes.cpu().numpy()
        if not b.is_track:  # no confirmed track: Ultralytics leaves the raw detections, which would be drawn and saved
            result.update(boxes=torch.zeros((0, 7), device=result.boxes.data.device))
        ids = b.id.astype(np.int64) if b.is_track else np.zeros(0, np.int64)
        counter = self.counters[key]
        f = counter.update(ids, b.xyxy[: len(ids)], b.conf[: len(ids)])
        result.tracks = {"trails": counter.trails(ids), "lines": self.lines, "zones": self.zones, "frame": f}
        result.subtext = "  ".join(filter(None, (f"unique {f.unique}", result.subtext)))
        values = (f.tracked, f.unique, *f.crossings.reshape(-1).tolist(), *f.occupancy.tolist())
        return counter.frames, (counter.frames - 1) * counter.dt, values

    def finish(self, key: str) -> dict | None:
        """Summarise a sequence: print one line, add it to the summaries and write the JSON."""
        counter = self.counters.get(key)
        if counter is None or not counter.frames:
            return None
        counter.end()
        summary = self.summaries[key] = counter.summary()
        rule = f"tracks of >= {self.min_track_frames} frames, mean score >= {self.min_track_conf:.3g}"
        parts = [f"{summary['unique_heads']} unique heads ({rule})"]
        parts += [f"line{k + 1} in {x['in']} out {x['out']}" for k, x in enumerate(summary["lines"])]
        parts += [
            f"zone{k + 1} now {z['occupancy_now']} max {z['occupancy_max']} mean dwell {z['dwell_s_mean']:.1f} s"
            for k, z in enumerate(summary["zones"])
        ]
        LOGGER.info(f"{key}: {summary['frames']} frames, " + ", ".join(parts))
        if self.summary_json:
            self.summary_json.write_text(json.dumps(self.summaries, indent=1))
        return summary

    def finish_all(self):
        """Summarise every sequence still open, e.g. at the end of detect.py or when a stream is interrupted."""
        for key in dict.fromkeys(self._slots.values()):
            if key not in self.summaries:
                self.finish(key)
