"""Counting on top of tracks: unique heads, line crossings in each direction, zone occupancy and dwell time.

Per-track state lives in arrays indexed by track ID (Ultralytics' trackers number tracks 1, 2, 3, ...), so one frame
updates every track and every line with a few numpy operations, whatever the size of the crowd.

Conventions (pixels of the source frame, y down):
    - A head is at its box centre.
    - A line runs from (x1, y1) to (x2, y2). A head crossing it from the left-hand side to the right-hand side, as seen
      walking from the first point to the second, counts as "in"; the other way as "out". For a line drawn left to
      right across the image, "in" is downwards.
    - A crossing is a change of strict side whose step (from the last position strictly on the old side to the first
      one strictly on the new side) passes between the line's end points. A head touching the line and going back,
      or starting on it, does not cross; one going over and back crosses twice (in, then out).
    - With `settle` > 1 a change of side counts only once the head has been seen strictly on the new side in `settle`
      updates without going back (updates on the line in between neither add nor reset); the step tested is then
      the one that first reached the new side. A head whose box wobbles across the line for a frame or two counts
      nothing. A head that reaches the new side and whose track is then not seen for `settle` updates (lost or
      ended there: an occlusion as it crosses, a track broken at the line) crosses at that update, and one still
      settling when the video ends crosses at `end`.
    - With a `band` > 0 a head is strictly on a side only when its centre lies farther than band x its box height from
      the line: a detector's boxes jitter by a few pixels between frames, and without the band a head standing on
      the line counts an in and an out at every wobble.
    - A zone is a polygon; a head is in it when its centre is (matplotlib's point-in-polygon test; a centre exactly
      on an edge may fall either way).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import cv2
import numpy as np
from matplotlib.path import Path as Polygon


def parse_points(text: str, flag: str, min_points: int, max_points: int | None = None) -> np.ndarray:
    """Parse "x1,y1,x2,y2,..." into an (N, 2) float array, with a one-line error naming the flag.

    Args:
        text (str): Comma-separated pixel coordinates.
        flag (str): Flag name for the error, e.g. "--line".
        min_points (int): Fewest points accepted.
        max_points (int, optional): Most points accepted.

    Returns:
        (np.ndarray): Points (N, 2) x, y.
    """
    try:
        values = [float(v) for v in text.replace(" ", "").split(",")]
    except ValueError:
        raise ValueError(f"{flag} {text}: expected comma-separated pixel coordinates x1,y1,x2,y2,...") from None
    n = len(values) // 2
    if len(values) % 2 or n < min_points or (max_points and n > max_points):
        want = f"{min_points} points" if max_points == min_points else f"at least {min_points} points"
        raise ValueError(f"{flag} {text}: expected {want} (x,y pairs), got {len(values)} numbers")
    if not np.isfinite(values).all():
        raise ValueError(f"{flag} {text}: coordinates must be finite numbers")
    pts = np.array(values).reshape(n, 2)
    if flag == "--line" and np.array_equal(pts[0], pts[1]):
        raise ValueError(f"{flag} {text}: the two end points are the same")
    if flag == "--zone" and cv2.contourArea(pts.astype(np.float32)) == 0:
        raise ValueError(f"{flag} {text}: the polygon has no area")
    return pts


def check_inside_frame(points: np.ndarray, width: int, height: int, what: str) -> None:
    """Raise a one-line ValueError when a line or zone has a point outside a width x height frame."""
    outside = (points < 0).any(1) | (points[:, 0] > width) | (points[:, 1] > height)
    if outside.any():
        p = points[outside][0]
        raise ValueError(f"{what}: point ({p[0]:g}, {p[1]:g}) lies outside the {width}x{height} frame")


def _cross(d: np.ndarray, v: np.ndarray) -> np.ndarray:
    """z of the 2D cross product d × v, broadcasting over leading dimensions."""
    return d[..., 0] * v[..., 1] - d[..., 1] * v[..., 0]


@dataclass
class FrameTracks:
    """What the tracks of one frame add up to.

    Attributes:
        tracked (int): Tracks in this frame.
        unique (int): Tracks counted so far (`TrackCounter.unique`).
        crossings (np.ndarray): Cumulative crossings (L, 2) per line, columns in and out.
        occupancy (np.ndarray): Tracks inside each zone now (Z,).
        dwell (np.ndarray): Seconds each of this frame's tracks has spent in each zone so far (Z, N).
    """

    tracked: int
    unique: int
    crossings: np.ndarray
    occupancy: np.ndarray
    dwell: np.ndarray = field(repr=False)


class TrackCounter:
    """Accumulate unique heads, line crossings and zone occupancy/dwell from per-frame tracks of one video.

    Attributes:
        lines (np.ndarray): Lines (L, 2, 2), end points in pixels.
        zones (list[np.ndarray]): Polygons (K, 2) in pixels.
        min_frames (int): Frames a track must be seen in to count as a unique head.
        min_conf (float): Mean score a track must have to count.
        band (float): Half-width, in box heights, of the band around each line where a head is on neither side.
        settle (int): Updates a head must be seen on the new side of a line for its crossing to count.
        dt (float): Seconds between two updates (vid_stride / fps).
        trail (int): Centres kept per track for drawing trails.
        frames (int): Updates so far.

    Examples:
        >>> tc = TrackCounter(lines=[np.array([[0, 50], [100, 50.0]])], min_frames=1)
        >>> _ = tc.update(np.array([1]), np.array([[40, 30, 60, 40.0]]))
        >>> tc.update(np.array([1]), np.array([[40, 60, 60, 70.0]])).crossings  # crossed downwards: in
        array([[1, 0]])
    """

    def __init__(
        self,
        lines=(),
        zones=(),
        min_frames: int = 5,
        dt: float = 1 / 30,
        trail: int = 20,
        band: float = 0.0,
        min_conf: float = 0.0,
        settle: int = 1,
    ):
        """Start an empty count.

        Args:
            lines (Sequence[np.ndarray]): Lines, each (2, 2) end points.
            zones (Sequence[np.ndarray]): Polygons, each (K, 2) with K >= 3.
            min_frames (int): Frames a track needs to count as a unique head.
            dt (float): Seconds per update, for dwell times.
            trail (int): Centres kept per track for trails (>= 2).
            band (float): Half-width of the band around each line, in box heights, inside which a head is on neither
                side (0: the line itself).
            min_conf (float): Mean score a track needs, besides `min_frames` frames, to count: as a unique head, a
                crossing or a zone visitor. A track counts from the first update at which it meets both, and stays
                counted, so running totals never go down.
            settle (int): Updates a head must be seen strictly on the new side of a line for its crossing to count
                (or, after reaching it, not be seen at all).
        """
        if min_frames < 1:
            raise ValueError(f"min_frames must be >= 1, got {min_frames}")
        if band < 0:
            raise ValueError(f"band must be >= 0, got {band}")
        if settle < 1:
            raise ValueError(f"settle must be >= 1, got {settle}")
        self.band, self.settle = band, settle
        self.lines = np.asarray(lines, dtype=np.float64).reshape(-1, 2, 2)
        self.zones = [np.asarray(z, dtype=np.float64) for z in zones]
        self._paths = [Polygon(z) for z in self.zones]
        self.min_frames, self.min_conf, self.dt, self.trail = min_frames, min_conf, dt, max(2, trail)
        self.frames = 0
        self._occupancy_sum = np.zeros(len(self.zones))
        self._occupancy_max = np.zeros(len(self.zones), dtype=np.int64)
        self._occupancy_now = np.zeros(len(self.zones), dtype=np.int64)
        L, Z = len(self.lines), len(self.zones)
        self._seen = np.zeros(0, np.int64)  # frames each ID was seen in
        self._score = np.zeros(0)  # sum of its scores
        self._counted = np.zeros(0, bool)  # met min_frames and min_conf at some update
        self._crossed = np.zeros((L, 0, 2), np.int64)  # crossings in, out of each line by each ID
        self._side = np.zeros((L, 0), np.int8)  # last strict side of each line, 0 = none yet
        self._at = np.zeros((L, 0, 2))  # centre when that side was last seen
        self._next = np.zeros((L, 0), np.int8)  # the other side it is settling on, 0 = none
        self._settled = np.zeros((L, 0), np.int64)  # updates seen on that side so far
        self._reached = np.zeros((L, 0, 2))  # centre when it first reached that side
        self._inside = np.zeros((Z, 0), np.int64)  # updates spent in each zone
        self._seen_at = np.zeros(0, np.int64)  # the update each ID was last seen in (from 1)
        self._trail = np.zeros((0, self.trail, 2), np.float32)  # recent centres, oldest first
        self._grow(64)

    def _grow(self, capacity: int):
        """Make the per-ID arrays (ID on their `axis`) hold IDs below `capacity`, keeping their contents."""
        per_id = ("_seen", "_score", "_counted", "_trail", "_seen_at")
        per_line = ("_crossed", "_side", "_at", "_next", "_settled", "_reached", "_inside")
        for name, axis in (*((n, 0) for n in per_id), *((n, 1) for n in per_line)):
            a = getattr(self, name)
            setattr(
                self, name, np.pad(a, [(0, capacity - a.shape[axis]) if d == axis else (0, 0) for d in range(a.ndim)])
            )

    def update(self, ids: np.ndarray, xyxy: np.ndarray, conf: np.ndarray | None = None) -> FrameTracks:
        """Add one frame's tracks.

        Args:
            ids (np.ndarray): Track IDs (N,), non-negative integers, unique within the frame.
            xyxy (np.ndarray): Their boxes (N, 4) in pixels.
            conf (np.ndarray, optional): Their scores (N,); 1 when not given.

        Returns:
            (FrameTracks): This frame's tracked count, unique heads so far, cumulative crossings, occupancy, dwell.
        """
        ids = np.asarray(ids, dtype=np.int64).reshape(-1)
        boxes = np.asarray(xyxy, dtype=np.float64).reshape(-1, 4)
        c = (boxes[:, :2] + boxes[:, 2:]) / 2
        if len(ids) and ids.max() >= len(self._seen):
            self._grow(max(2 * len(self._seen), int(ids.max()) + 1))
        new = self._seen[ids] == 0
        self._seen[ids] += 1
        self._score[ids] += 1.0 if conf is None else np.asarray(conf, dtype=np.float64).reshape(-1)
        self._counted[ids] |= (self._seen[ids] >= self.min_frames) & (
            self._score[ids] >= self.min_conf * self._seen[ids]
        )
        self._trail[ids[new]] = c[new, None].astype(np.float32)  # a new trail starts as its first point
        self._trail[ids] = np.concatenate([self._trail[ids, 1:], c[:, None].astype(np.float32)], 1)
        self._count_crossings(ids, c, boxes[:, 3] - boxes[:, 1])
        self._seen_at[ids] = self.frames + 1
        self._close_gone()
        inside = np.array([p.contains_points(c) for p in self._paths], dtype=bool).reshape(len(self.zones), len(ids))
        self._inside[:, ids] += inside
        occupancy = inside.sum(1)
        self._occupancy_now = occupancy
        self._occupancy_sum += occupancy
        self._occupancy_max = np.maximum(self._occupancy_max, occupancy)
        self.frames += 1
        return FrameTracks(
            tracked=len(ids),
            unique=self.unique,
            crossings=self.crossings,
            occupancy=occupancy,
            dwell=self._inside[:, ids] * self.dt,
        )

    def _count_crossings(self, ids: np.ndarray, c: np.ndarray, h: np.ndarray):
        """Add the crossings of every line by this frame's steps, and move each track's last strict side."""
        if not len(self.lines) or not len(ids):
            return
        a, d = self.lines[:, None, 0], (self.lines[:, 1] - self.lines[:, 0])[:, None]  # (L, 1, 2)
        dist = _cross(d, c[None] - a) / np.linalg.norm(d, axis=-1)  # (L, N) signed distance in pixels
        side = (np.sign(dist) * (np.abs(dist) > self.band * h[None])).astype(np.int8)  # +1 right, -1 left, 0 on it
        before, p = self._side[:, ids], self._at[:, ids]
        flipped, q = self._settle(ids, side, before, c)
        crossed = flipped & self._through(p, q)
        li, ni = np.nonzero(crossed)  # IDs are unique within a frame, so no (line, ID) pair repeats
        self._crossed[li, ids[ni], (before[li, ni] > 0).astype(np.int64)] += 1
        taken = (side != 0) & ((side == before) | (before == 0) | flipped)  # a side still settling is not taken yet
        li, ni = np.nonzero(taken)
        self._side[li, ids[ni]] = side[li, ni]
        self._at[li, ids[ni]] = c[ni]

    def _through(self, p: np.ndarray, q: np.ndarray, li: np.ndarray | None = None) -> np.ndarray:
        """Whether each step from `p` to `q` (L, N, 2), or (K, 2) on lines `li`, passes between its line's end
        points."""
        a, d = self.lines[:, None, 0], (self.lines[:, 1] - self.lines[:, 0])[:, None]
        if li is not None:
            a, d = a[li, 0], d[li, 0]
        step = q - p  # from the last point strictly on the old side to the first one strictly on the new side
        return _cross(step, a - p) * _cross(step, a + d - p) <= 0  # the end points lie on either side of the step

    def end(self) -> None:
        """Close the sequence: a head still settling on the other side of a line (seen there fewer than `settle`
        updates, and not back) crosses it now. Otherwise no crossing in the last `settle - 1` frames of a video could
        count (a 3 % undercount on 150-frame videos at `settle` 5). Later calls add nothing."""
        self._close(*np.nonzero(self._next))

    def _close_gone(self):
        """A head settling on the other side of a line whose track has not been seen for `settle` updates crosses it
        now: its track was lost or ended there (an occlusion as it crossed, a track broken at the line), and waiting
        for more updates on that side would drop the crossing."""
        li, i = np.nonzero(self._next)
        gone = self.frames + 1 - self._seen_at[i] >= self.settle
        self._close(li[gone], i[gone])

    def _close(self, li: np.ndarray, i: np.ndarray):
        """Count the pending crossings of lines `li` by IDs `i` that pass between the end points; settle those heads
        on their new side."""
        through = self._through(self._at[li, i], self._reached[li, i], li)
        self._crossed[li[through], i[through], (self._side[li[through], i[through]] > 0).astype(np.int64)] += 1
        self._side[li, i], self._at[li, i] = self._next[li, i], self._reached[li, i]
        self._next[li, i], self._settled[li, i] = 0, 0

    def _settle(self, ids: np.ndarray, side: np.ndarray, before: np.ndarray, c: np.ndarray):
        """Return where each head has now been `settle` updates on the other side of each line (L, N), and the
        centres (L, N, 2) at which it first reached that side."""
        other = (side != 0) & (before != 0) & (side != before)
        upcoming, n = self._next[:, ids], self._settled[:, ids]
        fresh = other & (side != upcoming)  # a visit to the other side starts now
        back = side == before  # back on its side: the visit is over
        n = np.where(fresh, 1, np.where(back, 0, n + other))
        upcoming = np.where(fresh, side, np.where(back, 0, upcoming))
        li, ni = np.nonzero(fresh)
        self._reached[li, ids[ni]] = c[ni]
        flipped = other & (n >= self.settle)
        self._next[:, ids], self._settled[:, ids] = np.where(flipped, 0, upcoming), np.where(flipped, 0, n)
        return flipped, self._reached[:, ids]

    @property
    def unique(self) -> int:
        """Tracks counted so far: seen in `min_frames` frames with a mean score of at least `min_conf`."""
        return int(self._counted.sum())

    @property
    def counted_ids(self) -> np.ndarray:
        """IDs of the tracks counted so far, ascending."""
        return np.flatnonzero(self._counted)

    @property
    def crossings(self) -> np.ndarray:
        """Cumulative crossings (L, 2), in and out, by the counted tracks (a track's crossings before it was counted
        join the total when it is)."""
        return self._crossed[:, self._counted].sum(1)

    def trails(self, ids: np.ndarray) -> np.ndarray:
        """Return the last `trail` centres (N, trail, 2) of the given tracks, oldest first (short tracks repeat their
        first point)."""
        return self._trail[np.asarray(ids, dtype=np.int64)]

    def summary(self) -> dict:
        """Return the video's totals: frames, unique heads, crossings per line, occupancy and dwell per zone."""
        confirmed = self._counted
        zones = []
        for z, poly in enumerate(self.zones):
            dwell = self._inside[z] * self.dt
            visitors = np.nonzero((self._inside[z] > 0) & confirmed)[0]
            zones.append(
                {
                    "polygon": poly.tolist(),
                    "occupancy_now": int(self._occupancy_now[z]),
                    "occupancy_max": int(self._occupancy_max[z]),
                    "occupancy_mean": round(float(self._occupancy_sum[z] / max(self.frames, 1)), 3),
                    "visitors": len(visitors),
                    "dwell_s_mean": round(float(dwell[visitors].mean()), 3) if len(visitors) else 0.0,
                    "dwell_s_max": round(float(dwell[visitors].max()), 3) if len(visitors) else 0.0,
                    "dwell_s": {int(i): round(float(dwell[i]), 3) for i in visitors},
                }
            )
        return {
            "frames": self.frames,
            "unique_heads": self.unique,
            "min_track_frames": self.min_frames,
            "min_track_conf": round(float(self.min_conf), 4),
            "cross_frames": self.settle,
            "tracks": int((self._seen > 0).sum()),
            "lines": [
                {"points": line.tolist(), "in": int(n_in), "out": int(n_out)}
                for line, (n_in, n_out) in zip(self.lines, self.crossings)
            ],
            "zones": zones,
        }
