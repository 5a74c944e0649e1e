"""No new track from a second detection of a head that is already tracked.

A crowd detector fires twice on some heads: on a generated crowd video the 40-epoch synthetic model put a second box
above the count threshold on about one head in five, overlapping the first by IoU 0.3 to 0.9 (median 0.59); NMS at
the count's IoU (0.6) keeps those below it, and lowering NMS' IoU removes true neighbours too (the per-frame count
falls apart in dense frames). Ultralytics' trackers match one of the two boxes to the head's track and start a new track
from the other, which lives as long as the duplicates keep coming: every such head is counted as several unique
people. Here a detection left over after association starts a track only when it overlaps no track matched in the
same frame by more than `new_track_max_iou` (a tracker YAML key; without it, Ultralytics' behaviour; `fit_thresholds`
sets utils/tracking.py's NEW_TRACK_MAX_IOU). A head entering across the frame edge touches no tracked head; one
coming out from behind another starts its track once clear of it, unless its own lost track picks it up first.
On held-out generated videos, lowering the limit from 0.3 to 0.05 left 1-3 % of the people without any track and
removed a third of the extra tracks (BENCHMARKS.md, session 12); but with the true boxes as detections 0.05 also
blocks real neighbours (-13 % unique heads on a dense video). With utils/array_tracker.py continuing lost tracks from
the detections that could start one (`relink_dist`), the limit became 0.2 (session 16); it stays 0.2 with relinking
off and occluded heads' tracks kept (0.1 and 0.3 counted worse on 600-frame videos, session 21).
"""

from __future__ import annotations

import numpy as np

from utils.box_pairs import overlapping_pairs


def unique_births(candidates: np.ndarray, matched: np.ndarray, limit: float | None) -> np.ndarray:
    """Which candidate boxes (N, 4) may start a track: those overlapping no box of a track matched in this frame
    (M, 4) by IoU above `limit` (all of them when `limit` is None).

    Returns:
        (np.ndarray): (N,) bool.
    """
    if limit is None:
        return np.ones(len(candidates), bool)
    best = np.zeros(len(candidates), np.float32)
    i, _, iou = overlapping_pairs(candidates, matched)
    np.maximum.at(best, i, iou)
    return best <= limit


class DuplicateBirths:
    """Mixin for Ultralytics' BYTETracker family: detections overlapping a track matched in the frame by IoU >
    `args.new_track_max_iou` start no track."""

    def _init_new_tracks(self, u_detection, detections, activated, refind=None) -> None:
        """Drop the duplicates among the unmatched detections, then start tracks from the rest as Ultralytics does."""
        matched = activated + (refind or [])
        if len(u_detection) and matched:
            left = np.stack([detections[i].xyxy for i in u_detection])
            keep = unique_births(
                left, np.stack([t.xyxy for t in matched]), getattr(self.args, "new_track_max_iou", None)
            )
            u_detection = [i for i, k in zip(u_detection, keep) if k]
        super()._init_new_tracks(u_detection, detections, activated, refind)
