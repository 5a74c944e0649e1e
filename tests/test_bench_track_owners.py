"""bench/track_owners.py: tracks matched to true heads frame by frame, the roles of counted tracks, and missed and
extra crossings by person, by hand."""

from __future__ import annotations

import numpy as np
import pandas as pd

from bench.track_owners import BOX, crossings_by_person, diagnose, match_by_frame, owners, true_crossings
from utils.track_counting import TrackCounter

HEADS = {1: (0, 0, 10, 10), 2: (100, 0, 110, 10), 3: (200, 0, 210, 10), 4: (300, 0, 310, 10)}


def rows(spec: list[tuple[int, int, range]]) -> pd.DataFrame:
    """MOT rows (frame, id, box) for (id, head it sits on, frames)."""
    out = [(f, i, *HEADS[h]) for i, h, frames in spec for f in frames]
    return pd.DataFrame(out, columns=["frame", "id", "x1", "y1", "x2", "y2"]).assign(conf=0.9)


def test_match_by_frame_is_one_to_one_above_the_iou():
    """Two tracked boxes on one head: the better one gets it, the other none; a box 4 px off (IoU 0.43) passes 0.3
    only."""
    gt = rows([(7, 1, range(1, 2))])
    found = pd.DataFrame(
        [(1, 1, 0, 0, 10, 10), (1, 2, 1, 0, 11, 10), (2, 3, 0, 0, 10, 10)],
        columns=["frame", "id", "x1", "y1", "x2", "y2"],
    )
    np.testing.assert_array_equal(match_by_frame(found, gt, 0.3), [7, -1, -1])  # frame 2 has no head
    off = pd.DataFrame([(1, 5, 4, 0, 14, 10)], columns=["frame", "id", "x1", "y1", "x2", "y2"])  # IoU 60 / 140
    assert match_by_frame(off, gt, 0.3)[0] == 7 and match_by_frame(off, gt, 0.5)[0] == -1


def test_roles_and_people_without_a_track():
    """Four people over 10 frames. Track 1 follows person 1 throughout; person 2's track breaks at frame 6 (tracks 3,
    then 4: a first and a second track); track 5 sits on person 3 for 5 frames, then on person 4 for 5 (no one
    person for more than half: 'no one', 2 people); track 6 is 4 frames long and not counted."""
    gt = rows([(1, 1, range(1, 11)), (2, 2, range(1, 11)), (3, 3, range(1, 11)), (4, 4, range(1, 11))])
    found = rows([(1, 1, range(1, 11)), (3, 2, range(1, 6)), (4, 2, range(6, 11))])
    found = pd.concat([found, rows([(5, 3, range(1, 6)), (5, 4, range(6, 11)), (6, 4, range(1, 5))])])
    found = found.sort_values(["frame", "id"], kind="stable").reset_index(drop=True)
    counter = TrackCounter(min_frames=5)
    for _, f in found.groupby("frame"):
        counter.update(f["id"].to_numpy(), f[["x1", "y1", "x2", "y2"]].to_numpy(), f["conf"].to_numpy())
    np.testing.assert_array_equal(counter.counted_ids, [1, 3, 4, 5])

    per = owners(found, match_by_frame(found, gt, 0.3), counter.counted_ids)
    assert per.loc[[1, 3, 4, 5], "role"].tolist() == ["first", "first", "second", "no one"]
    assert per.loc[5, "people"] == 2 and per.loc[5, "matched"] == 1.0 and per.loc[4, "owner"] == 2

    # detections: person 3 in 3 of 10 frames, person 4 never, person 1 in 5; visibility 0.2 / 0.4 / 0.6 / 0.5 (a
    # bin's upper edge is in it)
    dets = rows([(0, 3, range(1, 4)), (0, 1, range(1, 6))])
    got = diagnose(gt.assign(vis=gt["id"].map({1: 0.2, 2: 0.4, 3: 0.6, 4: 0.5})), dets, per)
    assert (got["recall_vis25"], got["recall_vis50"], got["recall_vis75"]) == (0.5, 0.0, 0.3)
    assert np.isnan(got["recall_vis100"])  # no head that visible
    assert (got["people"], got["counted"], got["first"], got["second"], got["no_one"]) == (4, 4, 2, 1, 1)
    assert got["people_without_track"] == 2  # persons 3 and 4: track 5 is neither's for most of its frames
    assert got["their_detection_recall"] == 0.15  # median of 0.3 and 0
    assert got["no_one_frames"] == 10 and got["no_one_people"] == 2


def walk(spec: list[tuple[int, float, range]], still: bool = False) -> pd.DataFrame:
    """MOT rows of 10-px heads walking down 6 px a frame (centre y 23 in frame 1, 53 in frame 6: across y = 50
    between frames 5 and 6), or standing with centre y 15 (left edge x), or 85 (left edge x - 1000), for (id, left
    edge, frames)."""

    def top(x: float, f: int) -> float:
        return (10 if x < 1000 else 80) if still else 18 + 6 * (f - 1)

    out = [(f, i, x % 1000, top(x, f), x % 1000 + 10, top(x, f) + 10) for i, x, frames in spec for f in frames]
    return pd.DataFrame(out, columns=["frame", "id", "x1", "y1", "x2", "y2"]).assign(conf=0.9, vis=1.0)


def test_crossings_matched_when_they_happen():
    """Five people cross y = 50 in 11 frames; persons 5 and 6 stand above and below it. Person 1's track crosses with
    them (matched); person 2's breaks at the line (tracks 3 and 4, neither crossing), person 3's only track ends before
    it, person 4's crosses but lasts 4 frames, too short to count: three missed. Track 7 crosses where no one is, and
    track 8 jumps from person 5 to person 6, across the line neither crossed: two extra, one on no one. Person 9's
    track slips onto person 10, standing just past the line beside their path, in the frame it crosses, and is back
    on person 9 two frames later: the crossing is still person 9's (it is matched by a person followed within 12
    frames, not only by the one followed in the crossing frame). Why each was missed: person 3 is followed on the
    first side only (unseen), person 2 on both by different tracks (broken), person 4 across by one (kept)."""
    lines = [np.array([[0.0, 50], [800, 50]])]
    gt = walk([(p, 100 * (p - 1), range(1, 12)) for p in (1, 2, 3, 4)] + [(9, 700, range(1, 12))])
    beside = pd.DataFrame([(f, 10, 711, 48, 721, 58) for f in range(1, 12)], columns=["frame", "id", *BOX])
    gt = pd.concat([gt, walk([(5, 600, range(1, 12)), (6, 1600, range(1, 12))], still=True)])
    gt = pd.concat([gt, beside.assign(conf=0.9, vis=1.0)])
    found = walk([(1, 0, range(1, 12)), (3, 100, range(1, 6)), (4, 100, range(6, 12)), (5, 200, range(1, 6))])
    found = pd.concat([found, walk([(6, 300, range(3, 7)), (7, 500, range(1, 12))])])
    found = pd.concat([found, walk([(9, 700, range(1, 6)), (9, 711, range(6, 8)), (9, 700, range(8, 12))])])
    found = pd.concat([found, walk([(8, 600, range(1, 6)), (8, 1600, range(6, 12))], still=True)])
    gt, found = (d.sort_values(["frame", "id"], kind="stable").reset_index(drop=True) for d in (gt, found))
    person = match_by_frame(found, gt, 0.3)
    per, got = crossings_by_person(
        true_crossings(gt, 11, lines), found, person, 11, lines, {"min_frames": 5, "settle": 1}
    )
    assert sorted(per.index) == [1, 3, 4, 5, 7, 8, 9]
    assert got == {
        "crossings": 5,
        "found": 4,
        "missed": 3,
        "missed_unseen": 1,
        "missed_broken": 1,
        "missed_kept": 1,
        "extra": 2,
        "extra_no_one": 1,
    }


def test_a_track_is_credited_with_its_own_persons_crossing_not_a_neighbours():
    """Person 1 crosses y = 50 at frame 6, person 2 (100 px away, no track of their own) at frame 7. Track 1 follows
    person 1 in every frame but frame 3, where it is on person 2; at settle 2 it counts its crossing at frame 7, the
    very frame of person 2's. It is person 1's crossing (followed in 10 of its 11 frames), one frame late, not person
    2's; person 2's is missed, and unseen: no track followed them after frame 3."""
    lines = [np.array([[0.0, 50], [800, 50]])]
    second = walk([(2, 100, range(1, 12))]).assign(frame=lambda d: d["frame"] + 1)  # a frame behind person 1
    gt = pd.concat([walk([(1, 0, range(1, 12))]), second]).sort_values(["frame", "id"], kind="stable")
    found = walk([(1, 0, range(1, 12))])
    found.loc[found["frame"] == 3, BOX] = second.loc[second["frame"] == 3, BOX].to_numpy()
    truth = true_crossings(gt.reset_index(drop=True), 12, lines)
    assert truth[["frame", "id"]].values.tolist() == [[6, 1], [7, 2]]
    person = match_by_frame(found, gt, 0.3)
    assert (person == 2).sum() == 1
    _, got = crossings_by_person(truth, found, person, 12, lines, {"min_frames": 5, "settle": 2})
    assert got == {
        "crossings": 2,
        "found": 1,
        "missed": 1,
        "missed_unseen": 1,
        "missed_broken": 0,
        "missed_kept": 0,
        "extra": 0,
        "extra_no_one": 0,
    }
