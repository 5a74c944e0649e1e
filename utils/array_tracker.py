"""ByteTrack and OC-SORT with every track held in arrays: Ultralytics' algorithms, outputs and YAMLs, without a Python
object per track.

On a crowd, Ultralytics' trackers spend their time in per-track Python: an `STrack` built per detection, box
properties read one track at a time, one Kalman call per match, OC-SORT's observation dictionaries; at 300 heads a
frame OC-SORT took 0.87 of the detector's time on a CPU even with batched Kalman corrections (BENCHMARKS.md, session
13). Here a sequence's tracks are rows of arrays (Kalman means and covariances, IDs, states, OC-SORT's observation
histories and directions), each association stage prices only the track-detection pairs whose boxes overlap
(utils/box_pairs.py) and solves the assignment on the contested groups only (`assign`). The stages, their order and
thresholds, the list orders that decide IDs and output order, and the end-of-frame bookkeeping (`merge_track_pools`,
duplicate removal, even its keeping a track removed for age one more frame) are Ultralytics' (ByteTrack:
`BYTETracker.update`; OC-SORT: `OCSORT`'s OCM, OCR and ORU), and tests/test_array_tracker.py checks frame by frame
that the outputs equal Ultralytics' trackers'. The Kalman filter is Ultralytics' computed on each covariance's 2x2
blocks, to the bit (utils/block_kalman.py), and a frame's matches are corrected in two batches rather than one per
stage (`_match`, `_flush`); the solver is Ultralytics' lapjv; new tracks skip a tracked head's duplicate boxes as
utils/track_births.py describes. Four rules are ours alone (off when their YAML keys are absent, so the tests
compare with them off): a detection that would start a track continues a lost track whose predicted centre is near
instead (`relink_dist`, `ArrayBYTETracker._relink`), a lost track whose predicted centre has left the frame ends
(`drop_exited`, `ArrayBYTETracker._exited`), a lost track overlapping a tracked one is kept rather than removed as
its duplicate (`keep_occluded`, `ArrayBYTETracker._duplicates`), and a track leaving through a border does not take
over a head entering there (`reentry_growth`, `ArrayBYTETracker._reentries`).
"""

from __future__ import annotations

from types import SimpleNamespace

import numpy as np
from ultralytics.trackers.bot_sort import BOTSORT
from ultralytics.trackers.byte_tracker import BYTETracker
from ultralytics.trackers.oc_sort import OCSORT
from ultralytics.trackers.utils import matching
from ultralytics.trackers.utils.kalman_filter import KalmanFilterXYAH
from ultralytics.utils.ops import ltwh2xyxy, xywh2ltwh, xyxy2ltwh

from utils.batched_tracker import BatchedBOTSORT, direction_cost, measurements
from utils.block_kalman import initiate, predict, update
from utils.box_pairs import overlapping_pairs
from utils.track_births import unique_births
from utils.track_reentry import reentries

NO_FRAME = -(2**40)  # an empty slot of the observation history
REMOVED_BUFFER = 1000  # removed tracks remembered (`merge_track_pools`' removed_buffer)


class Rows:
    """Tracks (or detections) as rows of named arrays, all of one length."""

    def __init__(self, **arrays: np.ndarray):
        """Hold the arrays as attributes."""
        self.__dict__.update(arrays)

    def __len__(self) -> int:
        """Number of rows."""
        return len(self.id) if "id" in self.__dict__ else len(self.score)

    def take(self, idx: np.ndarray) -> Rows:
        """The rows at `idx`, in that order."""
        return Rows(**{k: v[idx] for k, v in self.__dict__.items()})

    @staticmethod
    def cat(*parts: Rows) -> Rows:
        """The rows of each part in turn (same fields)."""
        return Rows(**{k: np.concatenate([p.__dict__[k] for p in parts]) for k in parts[0].__dict__})


def xyxy_of(mean: np.ndarray) -> np.ndarray:
    """Boxes (N, 4) x1, y1, x2, y2 from XYAH Kalman means (N, 8), computed as `STrack.xyxy` does."""
    w = mean[:, 2] * mean[:, 3]
    x1, y1 = mean[:, 0] - w / 2, mean[:, 1] - mean[:, 3] / 2
    return np.stack([x1, y1, x1 + w, y1 + mean[:, 3]], 1)


def assign(shape: tuple[int, int], pairs: tuple, thresh: float) -> tuple[np.ndarray, ...]:
    """Ultralytics' `matching.linear_assignment` (lapjv; a pair costing `thresh` or more is left unmatched) for a cost
    given only on overlapping pairs, every other pair costing 1 or more (IoU distance 1), with `thresh` < 1.

    The pairs below `thresh` link tracks and detections into groups, and the optimal assignment is the union of the
    groups': a pair at `thresh` or more costs no less than leaving both unmatched. In a crowd most groups are one
    track and one detection, matched as they are; lapjv solves the rest together on their rows and columns only (a
    third of them on a crowd of 300 heads), where a pair that does not compete costs 1.

    Args:
        shape (tuple[int, int]): Tracks and detections.
        pairs (tuple[np.ndarray, np.ndarray, np.ndarray]): Track and detection indices of the priced pairs, and
            their costs.
        thresh (float): The highest cost a match may have (excluded), below 1.

    Returns:
        (tuple[np.ndarray, ...]): Matched rows and their columns (by row), unmatched rows and columns (ascending).
    """
    (n, m), (i, j, cost) = shape, pairs
    edge = cost < thresh
    i, j, cost = i[edge], j[edge], cost[edge]
    lone = (np.bincount(i, minlength=n)[i] == 1) & (np.bincount(j, minlength=m)[j] == 1)  # a group of one pair
    mr, mc = i[lone], j[lone]
    in_r, in_c = np.zeros(n, bool), np.zeros(m, bool)  # tracks and detections of larger groups
    in_r[i[~lone]], in_c[j[~lone]] = True, True
    if in_r.any():
        rest_r, rest_c = np.flatnonzero(in_r), np.flatnonzero(in_c)
        sub = np.ones((len(rest_r), len(rest_c)), np.float32)
        sub[(np.cumsum(in_r) - 1)[i[~lone]], (np.cumsum(in_c) - 1)[j[~lone]]] = cost[~lone]
        k = np.asarray(matching.linear_assignment(sub, thresh)[0], np.int64).reshape(-1, 2)
        mr, mc = np.concatenate([mr, rest_r[k[:, 0]]]), np.concatenate([mc, rest_c[k[:, 1]]])
    free_r, free_c = np.ones(n, bool), np.ones(m, bool)
    free_r[mr], free_c[mc] = False, False
    order = np.argsort(mr)
    return mr[order], mc[order], np.flatnonzero(free_r), np.flatnonzero(free_c)


class ArrayBYTETracker:
    """ByteTrack (Ultralytics' `BYTETracker`, its YAML keys) on arrays; the base of `ArrayOCSORT`.

    Attributes:
        args (IterableSimpleNamespace): The tracker YAML's settings (with `new_track_max_iou`, if set).
        frame_id (int): Frames seen since the last reset.
        tracks (Rows): Tracked tracks (in Ultralytics' `tracked_stracks` order) followed by lost ones.
        kalman_filter (KalmanFilterXYAH): The motion model.
    """

    use_byte = True  # ByteTrack's second stage on low-score detections
    history = 5  # observed boxes kept per track (`reentry_growth` reads them)

    def __init__(self, args):
        """Start empty, with the settings of a tracker YAML (ByteTrack's keys)."""
        self.args = args
        self.max_frames_lost = args.track_buffer
        self.kalman_filter = KalmanFilterXYAH()
        self.reset()

    def reset(self):
        """Forget every track; IDs restart at 1."""
        self.frame_id, self.next_id = 0, 1
        self.tracks, self.removed_ids = self._empty(), np.zeros(0, np.int64)
        self._queued = []  # matches whose Kalman correction waits for `_flush`

    def _empty(self) -> Rows:
        """No track, with every field."""
        return Rows(
            id=np.zeros(0, np.int64), tracked=np.zeros(0, bool), activated=np.zeros(0, bool),
            mean=np.zeros((0, 8)), cov=np.zeros((0, 2, 2, 4)),
            obs_frame=np.zeros((0, self.history), np.int64), obs_box=np.zeros((0, self.history, 4), np.float32),
            score=np.zeros(0, np.float32), cls=np.zeros(0, np.float32), idx=np.zeros(0, np.float32),
            frame=np.zeros(0, np.int64), start=np.zeros(0, np.int64),
        )  # fmt: skip

    @property
    def tracked_stracks(self) -> list:
        """What Ultralytics' track callback reads when nothing is output: the tracked tracks' `is_activated`."""
        return [SimpleNamespace(is_activated=a) for a in self.tracks.activated[self.tracks.tracked]]

    def update(self, results, img: np.ndarray | None = None, **kwargs) -> np.ndarray:
        """Track one frame's detections, as `BYTETracker.update`.

        Args:
            results (Boxes): NumPy detections exposing `conf`, `cls` and `xywh`.
            img (np.ndarray, optional): The frame (unused: no camera-motion compensation or appearance).

        Returns:
            (np.ndarray): (N, 8) rows x1, y1, x2, y2, track ID, score, class, detection index of the confirmed
                tracked tracks, float32.
        """
        self.frame_id += 1
        high, low = self._detections(results)
        t = self.tracks
        unconfirmed = np.flatnonzero(t.tracked & ~t.activated)
        pool = np.concatenate([np.flatnonzero(t.tracked & t.activated), np.flatnonzero(~t.tracked)])
        self._predict(pool)
        was_tracked, matched = t.tracked.copy(), np.zeros(len(t), bool)
        rows, left = self._first_association(pool, high, matched)
        refind = [rows[~was_tracked[rows]]]
        left = self._recover(pool[~matched[pool]], high, left, matched, was_tracked, refind)
        lost = self._second_association(pool[~matched[pool] & was_tracked[pool]], low, matched)
        left = self._confirm(unconfirmed, high, left, matched)
        shape = getattr(results, "orig_shape", None)
        entering = self._reentries(matched, shape)
        self._flush()  # the rules for new tracks look at where the matched heads are now
        clear = self._clear(high.xyxy[left], matched)
        left, clear, relinked = self._relink(pool[~matched[pool]], high, left, clear, matched, was_tracked, refind)
        self._flush()
        if len(relinked):  # clear of the relinked heads too, where their correction put them
            clear &= self._clear(high.xyxy[left], relinked)
        born = self._births(Rows.cat(high.take(left[clear]), *entering))
        refind = np.concatenate(refind)
        self._merge(matched, refind[matched[refind]], lost[~matched[lost]], born, shape)
        return self._output()

    def _detections(self, results) -> tuple[Rows, Rows]:
        """High- and low-score detections (`BYTETracker._split_detections`): boxes, scores, classes and indices."""
        conf = np.asarray(results.conf, np.float32)
        xywh = np.asarray(results.xywh, np.float32)
        valid = (xywh[:, 2] > 0) & (xywh[:, 3] > 0)  # a zero height would give an infinite aspect
        a = self.args
        high = valid & (conf >= a.track_high_thresh)
        low = valid & (conf > a.track_low_thresh) & (conf < a.track_high_thresh)
        tlwh = xywh2ltwh(xywh)
        xyxy = ltwh2xyxy(tlwh)
        cls = np.asarray(results.cls, np.float32)
        idx = np.arange(len(conf), dtype=np.float32)
        return tuple(Rows(tlwh=tlwh[m], xyxy=xyxy[m], score=conf[m], cls=cls[m], idx=idx[m]) for m in (high, low))

    def _predict(self, rows: np.ndarray):
        """Kalman prediction of the pool; a lost track's height stops changing (`STrack.multi_predict`)."""
        if not len(rows):
            return
        t = self.tracks
        mean = t.mean[rows]
        mean[~t.tracked[rows], 7] = 0
        t.mean[rows], t.cov[rows] = predict(self.kalman_filter, mean, t.cov[rows])

    def cost(self, rows: np.ndarray, dets: Rows) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Association cost of tracks `rows` with `dets` on their overlapping pairs (`assign`'s input): IoU distance,
        fused with the scores when the YAML says so."""
        i, j, iou = overlapping_pairs(xyxy_of(self.tracks.mean[rows]), dets.xyxy)
        return i, j, self._fuse(1 - iou, dets.score[j])

    def _fuse(self, cost: np.ndarray, score: np.ndarray) -> np.ndarray:
        """`matching.fuse_score` of IoU distances and their detections' scores, when `fuse_score` is set."""
        return 1 - (1 - cost) * score if self.args.fuse_score else cost

    def _first_association(self, pool: np.ndarray, high: Rows, matched: np.ndarray):
        """Pool (tracked then lost) against the high-score detections; returns the matched pool rows and the
        detections left (ascending)."""
        r, c, _, left = assign((len(pool), len(high)), self.cost(pool, high), self.args.match_thresh)
        self._match(pool[r], high.take(c), matched)
        return pool[r], left

    def _recover(self, rows, high, left, matched, was_tracked, refind) -> np.ndarray:
        """OC-SORT's recovery stage (none here); returns the detections left."""
        return left

    def _clear(self, boxes: np.ndarray, rows: np.ndarray) -> np.ndarray:
        """Which detection boxes (N, 4) are no duplicate of the tracks `rows` (row indices or a mask): none of them
        overlaps such a track by IoU above `new_track_max_iou` (utils/track_births.py)."""
        return unique_births(boxes, xyxy_of(self.tracks.mean[rows]), getattr(self.args, "new_track_max_iou", None))

    def _relink(self, rows, high, left, clear, matched, was_tracked, refind) -> tuple[np.ndarray, ...]:
        """Lost tracks (lost in this frame or before) continued by the detections that would start a new track, when
        such a detection's centre lies within `relink_dist` track heights of the track's predicted centre (a YAML
        key; absent or None: no such stage, as Ultralytics). A head coming back from an occlusion a box width from
        where its track predicted it fails the IoU gates and would otherwise be counted again as a new person.
        Nearest first, one to one (`assign`) among the detections `clear` of the heads matched so far.

        Returns:
            (tuple[np.ndarray, ...]): The detections left, whether each is clear, the relinked tracks' rows.
        """
        reach = getattr(self.args, "relink_dist", None)
        if not reach or not len(rows) or not len(left):
            return left, clear, rows[:0]
        t = self.tracks
        cand = left[clear & (high.score[left] >= self.args.new_track_thresh)]
        dets = high.take(cand)
        centre, radius = t.mean[rows, :2], reach * t.mean[rows, 3:4]
        i, j, _ = overlapping_pairs(np.concatenate([centre - radius, centre + radius], 1), dets.xyxy)  # near pairs
        dist = np.linalg.norm((dets.xyxy[j, :2] + dets.xyxy[j, 2:]) / 2 - centre[i], axis=1) / radius[i, 0]
        r, c, _, _ = assign((len(rows), len(cand)), (i, j, 0.99 * dist), 0.99)  # assign wants costs below 1
        back = ~was_tracked[rows[r]]
        self._match(rows[r], dets.take(c), matched, back)
        refind.append(rows[r][back])
        keep = ~np.isin(left, cand[c])
        return left[keep], clear[keep], rows[r]

    def _re_update(self, rows: np.ndarray, boxes: np.ndarray):
        """OC-SORT's re-update of lost tracks found again (none here)."""

    def _second_association(self, rows: np.ndarray, low: Rows, matched: np.ndarray) -> np.ndarray:
        """Tracked tracks left against the low-score detections on IoU alone (threshold 0.5, ByteTrack's); returns
        the tracks that become lost."""
        if self.use_byte and len(rows) and len(low):
            i, j, iou = overlapping_pairs(xyxy_of(self.tracks.mean[rows]), low.xyxy)
            r, c, _, _ = assign((len(rows), len(low)), (i, j, 1 - iou), 0.5)
            self._match(rows[r], low.take(c), matched)
        self.tracks.tracked[rows[~matched[rows]]] = False
        return rows[~matched[rows]]

    def _confirm(self, unconfirmed: np.ndarray, high: Rows, left: np.ndarray, matched: np.ndarray) -> np.ndarray:
        """Tracks born last frame against the detections left (threshold 0.7): matched ones are confirmed, the others
        removed; returns the detections left."""
        if not len(unconfirmed):
            return left
        r, c, _, u = assign((len(unconfirmed), len(left)), self.cost(unconfirmed, high.take(left)), 0.7)
        self._match(unconfirmed[r], high.take(left[c]), matched)
        return left[u]

    def _match(self, rows: np.ndarray, dets: Rows, matched: np.ndarray, back: np.ndarray | None = None):
        """Tracks `rows` matched to `dets`: they become tracked and confirmed now, their Kalman correction
        (`STrack.update`, or `re_activate` where `back`: lost tracks found again) waits for `_flush`.

        The stages up to the rules for new tracks read only unmatched tracks, so one batch per frame part does the
        work of one correction per stage, with the same results."""
        if not len(rows):
            return
        t = self.tracks
        t.tracked[rows] = t.activated[rows] = matched[rows] = True
        self._queued.append((rows, dets, np.zeros(len(rows), bool) if back is None else back))

    def _dequeue(self) -> tuple[np.ndarray, Rows, np.ndarray]:
        """The queued matches in one batch (track rows, detections, whether re-found), emptying the queue."""
        rows = np.concatenate([r for r, _, _ in self._queued])
        dets = Rows.cat(*(d for _, d, _ in self._queued))
        back = np.concatenate([b for _, _, b in self._queued])
        self._queued = []
        return rows, dets, back

    def _flush(self):
        """Correct every queued match in one batch: re-updates across gaps first (OC-SORT), then the corrections."""
        if not self._queued:
            return
        rows, dets, back = self._dequeue()
        self._re_update(rows[back], dets.xyxy[back])
        self._correct(rows, dets)

    def _reentries(self, matched: np.ndarray, shape: tuple | None) -> list[Rows]:
        """Undo the queued matches that join a track leaving through a border of a frame of `shape` to a head
        entering there (utils/track_reentry.py), when the YAML sets `reentry_growth`: the track ends (unmatched while
        tracked, `_merge` removes it) and its detection is returned to start a track of its own.

        Returns:
            (list[Rows]): The undone matches' detections, as one part; none when the rule is off or nothing matched.
        """
        growth = getattr(self.args, "reentry_growth", None)
        if not growth or shape is None or not self._queued:
            return []
        rows, dets, back = self._dequeue()
        t = self.tracks
        split = reentries(t.obs_box[rows], t.obs_frame[rows] > NO_FRAME, dets.xyxy, shape, growth)
        matched[rows[split]] = False
        keep = np.flatnonzero(~split)
        self._queued = [(rows[keep], dets.take(keep), back[keep])]
        return [dets.take(np.flatnonzero(split))]

    def _correct(self, rows: np.ndarray, dets: Rows):
        """Kalman correction of tracks `rows` by their detections, with their score, class and index."""
        t = self.tracks
        z = measurements(self.kalman_filter, dets.tlwh)
        t.mean[rows], t.cov[rows] = update(self.kalman_filter, t.mean[rows], t.cov[rows], z)
        t.frame[rows] = self.frame_id
        t.score[rows], t.cls[rows], t.idx[rows] = dets.score, dets.cls, dets.idx
        t.obs_frame[rows] = np.concatenate([t.obs_frame[rows, 1:], np.full((len(rows), 1), self.frame_id)], 1)
        t.obs_box[rows] = np.concatenate([t.obs_box[rows, 1:], dets.xyxy[:, None]], 1)

    def _births(self, dets: Rows) -> Rows:
        """New tracks from the detections left that are clear of every head matched in this frame: those scoring
        `new_track_thresh` or more; confirmed at once only on the first frame."""
        dets = dets.take(np.flatnonzero(dets.score >= self.args.new_track_thresh))
        n = len(dets)
        mean, cov = initiate(self.kalman_filter, measurements(self.kalman_filter, dets.tlwh))
        ids = np.arange(self.next_id, self.next_id + n)
        self.next_id += n
        frame = np.full(n, self.frame_id)
        new = {"id": ids, "tracked": np.ones(n, bool), "activated": np.full(n, self.frame_id == 1)}
        obs_frame = np.full((n, self.history), NO_FRAME, np.int64)
        obs_frame[:, -1] = self.frame_id
        obs_box = np.zeros((n, self.history, 4), np.float32)
        obs_box[:, -1] = xyxy_of(mean)  # the initial box (`OCSortTrack.activate`)
        new |= {"mean": mean, "cov": cov, "obs_frame": obs_frame, "obs_box": obs_box}
        new |= {"score": dets.score, "cls": dets.cls, "idx": dets.idx}
        return Rows(**new, frame=frame, start=frame.copy(), **self._observe_births(mean, cov))

    def _observe_births(self, mean: np.ndarray, cov: np.ndarray) -> dict:
        """Extra fields of new tracks with these Kalman states (OC-SORT's observations; none here)."""
        return {}

    def _merge(self, matched: np.ndarray, refind: np.ndarray, lost: np.ndarray, born: Rows, shape: tuple | None):
        """End-of-frame bookkeeping of `merge_track_pools`: tracked = tracks that stayed tracked (their order), then
        new tracks, then re-found ones; lost = lost tracks not re-found, then the newly lost, less those removed in
        earlier frames; then of a tracked and a lost track overlapping by IoU > 0.85 only the longer-lived one stays
        (`_duplicates`).

        As in Ultralytics, a lost track removed for age (`track_buffer`) leaves the lost tracks one frame later, so it
        can still be found again in the next frame; and a track's removal is remembered (last 1,000) by its ID. A lost
        track that has left the frame (`_exited`, of a frame of `shape`) is removed at once.
        """
        n = len(self.tracks)
        t = Rows.cat(self.tracks, born) if len(born) else self.tracks
        refound, newly_lost = np.zeros(n, bool), np.zeros(n, bool)
        refound[refind], newly_lost[lost] = True, True
        old = slice(0, n)
        stayed = np.flatnonzero(t.tracked[old] & matched & ~refound)
        old_lost = np.flatnonzero(~t.tracked[old] & ~newly_lost)
        stale = old_lost[self.frame_id - t.frame[old_lost] > self.max_frames_lost]
        tracked = np.concatenate([stayed, np.arange(n, len(t)), refind])
        lost_rows = np.concatenate([old_lost, lost])
        gone = self._exited(t.mean[lost_rows], shape)
        exited = lost_rows[gone]
        lost_rows = lost_rows[~np.isin(t.id[lost_rows], self.removed_ids) & ~gone]
        removed = t.id[np.concatenate([np.flatnonzero(t.tracked[old] & ~matched), stale, exited])]
        self.removed_ids = np.concatenate([self.removed_ids, removed])[-REMOVED_BUFFER:]
        drop = self._duplicates(t, tracked, lost_rows)
        order = np.concatenate([tracked, lost_rows])
        self.tracks = t.take(order[~drop[order]])

    def _duplicates(self, t: Rows, tracked: np.ndarray, lost: np.ndarray) -> np.ndarray:
        """Which rows of `t` `merge_track_pools` drops as duplicates: of a tracked and a lost track overlapping by IoU
        above 0.85, the shorter-lived one; none when the YAML sets `keep_occluded`.

        In a crowd such a pair is mostly a head hidden behind another, not one head tracked twice (a tracked head's
        second boxes start no track, utils/track_births.py). Dropping the hidden head's track makes it a new person
        when it comes out again; dropping the visible head's (when the hidden one is older) hands its detection to the
        hidden head's ID. Skipping the removal took the second tracks of people on 600-frame generated videos from 541
        to 296 (BENCHMARKS.md, session 21)."""
        drop = np.zeros(len(t), bool)
        if getattr(self.args, "keep_occluded", False):
            return drop
        p, q, iou = overlapping_pairs(xyxy_of(t.mean[tracked]), xyxy_of(t.mean[lost]))
        p, q = tracked[p[1 - iou < 0.15]], lost[q[1 - iou < 0.15]]
        longer = t.frame[p] - t.start[p] > t.frame[q] - t.start[q]
        drop[p[~longer]], drop[q[longer]] = True, True
        return drop

    def _exited(self, mean: np.ndarray, shape: tuple | None) -> np.ndarray:
        """Which lost tracks (Kalman means (N, 8)) have left a frame of `shape` (the detections' `orig_shape`, height
        first): their predicted centre lies outside it, when the YAML sets `drop_exited` and the shape is known.

        A person walking out of the frame leaves a lost track behind whose last observed box is a sliver at the
        border; kept for `track_buffer` frames, it takes over the next person who enters there (OC-SORT's recovery on
        last observations matches the two slivers), so two people count as one. Such a track ends at once instead."""
        if not getattr(self.args, "drop_exited", False) or shape is None:
            return np.zeros(len(mean), bool)
        h, w = shape[:2]
        x, y = mean[:, 0], mean[:, 1]
        return (x < 0) | (x > w) | (y < 0) | (y > h)

    def _output(self) -> np.ndarray:
        """Confirmed tracked tracks as `BYTETracker._format_output` rows."""
        t = self.tracks.take(np.flatnonzero(self.tracks.tracked & self.tracks.activated))
        cols = [xyxy_of(t.mean), t.id[:, None], t.score[:, None], t.cls[:, None], t.idx[:, None]]
        return np.concatenate(cols, 1).astype(np.float32)


class ArrayOCSORT(ArrayBYTETracker):
    """OC-SORT (Ultralytics' `OCSORT`, its YAML keys: `delta_t`, `inertia`, `use_byte`) on arrays.

    Each track keeps its last `delta_t + 2` observed boxes (frames and boxes), its direction of motion and its Kalman
    state at the last observation, for OC-SORT's three parts: the momentum cost (OCM) in the first association, the
    recovery stage on last observations (OCR) and the re-update across a gap (ORU).
    """

    def __init__(self, args):
        """Start empty, with the settings of an OC-SORT YAML."""
        self.delta_t = getattr(args, "delta_t", 3)
        self.inertia = getattr(args, "inertia", 0.2)
        self.use_byte = getattr(args, "use_byte", False)
        self.history = self.delta_t + 2
        super().__init__(args)

    def _empty(self) -> Rows:
        """No track, with every field, OC-SORT's included."""
        return Rows(**super()._empty().__dict__, **self._observe_births(np.zeros((0, 8)), np.zeros((0, 2, 2, 4))))

    def _observe_births(self, mean: np.ndarray, cov: np.ndarray) -> dict:
        """New tracks' OC-SORT fields: no direction of motion yet, the Kalman state saved at their first observation
        (their initial box, from the Kalman mean as `OCSortTrack.activate` has it, starts the base class's history)."""
        n = len(mean)
        return {
            "velocity": np.zeros((n, 2), np.float32),
            "moving": np.zeros(n, bool),
            "saved_mean": mean.copy(),
            "saved_cov": cov.copy(),
        }

    def cost(self, rows: np.ndarray, dets: Rows) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """IoU distance (fused with scores when set) plus `inertia` times the momentum cost (`OCSORT.get_dists`), on
        the overlapping pairs: the others cost at least 1 whatever their angle, above every threshold the
        assignments use."""
        t = self.tracks
        i, j, iou = overlapping_pairs(xyxy_of(t.mean[rows]), dets.xyxy)
        cost = self._fuse(1 - iou, dets.score[j])
        last = t.obs_box[:, -1]
        on = t.moving[rows[i]] & (last[rows[i], 0] >= 0)
        r = rows[i[on]]
        origin = (last[r, :2] + last[r, 2:]) / 2
        target = (dets.xyxy[j[on], :2] + dets.xyxy[j[on], 2:]) / 2
        cost[on] += self.inertia * direction_cost(origin, t.velocity[r], target)
        return i, j, cost

    def _recover(self, rows, high, left, matched, was_tracked, refind) -> np.ndarray:
        """OCR (`OCSORT._post_first_association`): tracks left, the tracked ones first, against the detections left
        on the IoU of their last observed box; lost tracks found again are re-updated across their gap (ORU)."""
        t = self.tracks
        for part in (rows[was_tracked[rows]], rows[~was_tracked[rows]]):
            if not len(part) or not len(left):
                continue
            last = t.obs_box[part, -1]
            boxes = np.where(last[:, :1] >= 0, last, xyxy_of(t.mean[part]))
            dets = high.take(left)
            i, j, iou = overlapping_pairs(boxes, dets.xyxy)
            pairs = (i, j, self._fuse(1 - iou, dets.score[j]))
            r, c, _, u = assign((len(part), len(left)), pairs, self.args.match_thresh)
            back = ~was_tracked[part[r]]
            self._match(part[r], dets.take(c), matched, back)
            refind.append(part[r][back])
            left = left[u]
        return left

    def _re_update(self, rows: np.ndarray, boxes: np.ndarray):
        """ORU (`OCSortTrack.apply_oru`): from the state at the last observation, one prediction and a correction by a
        box interpolated towards `boxes` per missed frame, then a prediction to this frame."""
        t = self.tracks
        gap = self.frame_id - t.obs_frame[rows, -1]
        order = np.argsort(-gap, kind="stable")[: np.count_nonzero(gap > 1)]  # longest gap first
        rows, gap, boxes = rows[order], gap[order], boxes[order]
        if not len(rows):
            return
        kf, steps = self.kalman_filter, np.arange(1, gap[0])
        alpha = steps[:, None] / gap  # (steps, tracks); the virtual boxes in float32, as Ultralytics computes them
        last, new = t.obs_box[rows, -1], boxes.astype(np.float32)
        virtual = (1 - alpha).astype(np.float32)[..., None] * last + alpha.astype(np.float32)[..., None] * new
        z = measurements(kf, xyxy2ltwh(virtual.reshape(-1, 4))).reshape(virtual.shape)
        mean, cov = t.saved_mean[rows], t.saved_cov[rows]
        for s, k in zip(steps - 1, (gap > steps[:, None]).sum(1)):  # the tracks still in their gap lead
            m, c = predict(kf, mean[:k], cov[:k])
            mean[:k], cov[:k] = update(kf, m, c, z[s, :k])
        t.mean[rows], t.cov[rows] = predict(kf, mean, cov)

    def _correct(self, rows: np.ndarray, dets: Rows):
        """The Kalman correction, then the observation recorded, the state saved and the direction of motion updated
        (`OCSortTrack.update` / `re_activate`)."""
        super()._correct(rows, dets)
        t = self.tracks
        t.saved_mean[rows], t.saved_cov[rows] = t.mean[rows], t.cov[rows]
        t.velocity[rows], t.moving[rows] = self._directions(t.obs_frame[rows], t.obs_box[rows])

    def _directions(self, frames: np.ndarray, boxes: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """OC-SORT's direction of motion (`OCSortTrack._compute_velocity`) from observation histories (N, K): the
        unit vector from the centre of the latest observation at least `delta_t` frames old (else the oldest) to
        the centre of the newest; zero when they coincide. Also whether a track has one (two observations or more)."""
        valid = frames > NO_FRAME
        back = valid & (frames <= frames[:, -1:] - self.delta_t)
        k = frames.shape[1]
        j = np.where(back.any(1), k - 1 - np.argmax(back[:, ::-1], 1), np.argmax(valid, 1))
        centre = (boxes[..., :2] + boxes[..., 2:]) / 2
        d = centre[:, -1] - centre[np.arange(len(j)), j]
        norm = np.linalg.norm(d, axis=1, keepdims=True)
        unit = np.where(norm < 1e-6, 0, d / np.maximum(norm, 1e-6)).astype(np.float32)
        return unit, valid.sum(1) >= 2


FAST = {BYTETracker: ArrayBYTETracker, OCSORT: ArrayOCSORT, BOTSORT: BatchedBOTSORT}


def fast_tracker(tracker):
    """Return a fresh Ultralytics tracker's faster twin with the same settings (ByteTrack and OC-SORT on arrays,
    BoT-SORT with batched Kalman corrections), or the tracker itself when it has none, has already run, or its
    `match_thresh` is 1 or more (the array trackers price overlapping boxes only, `assign`)."""
    cls = FAST.get(type(tracker))
    if cls in (ArrayBYTETracker, ArrayOCSORT) and tracker.args.match_thresh >= 1:
        return tracker
    return cls(args=tracker.args) if cls and tracker.frame_id == 0 else tracker
