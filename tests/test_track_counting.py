"""Counting on tracks, on hand-made tracks: line crossings (touch, twice, start on the line, past the end), zones and
dwell, unique heads and which tracks count (frames, mean score), trails, and the --line / --zone parsing and frame
checks."""

from __future__ import annotations

import numpy as np
import pytest

from utils.track_counting import TrackCounter, check_inside_frame, parse_points

LINE = np.array([[0.0, 50.0], [100.0, 50.0]])  # left to right: "in" is downwards


def box(x: float, y: float, s: float = 10.0) -> np.ndarray:
    """A box of side s centred on (x, y)."""
    return np.array([x - s / 2, y - s / 2, x + s / 2, y + s / 2])


def run(paths: dict[int, list[tuple[float, ...] | None]], **kwargs) -> tuple[TrackCounter, list]:
    """Feed tracks frame by frame; paths maps ID -> (x, y) centre or (x, y, score) per frame (None: not seen in that
    frame; score 1 when not given). Every track counts from its first frame unless kwargs say otherwise."""
    tc = TrackCounter(**{"lines": [LINE], "min_frames": 1, **kwargs})
    frames = []
    for k in range(max(len(p) for p in paths.values())):
        here = {i: p[k] for i, p in paths.items() if k < len(p) and p[k] is not None}
        ids = np.array(list(here), dtype=np.int64)
        xyxy = np.array([box(*c[:2]) for c in here.values()]).reshape(-1, 4)
        conf = np.array([c[2] if len(c) > 2 else 1.0 for c in here.values()])
        frames.append(tc.update(ids, xyxy, conf))
    return tc, frames


def test_crossings_by_hand():
    """Track 1 goes down across the line (in), 2 touches it and goes back (none), 3 starts on it and goes up (none),
    4 crosses down then up (in and out), 5 crosses down beyond the line's right end (none), 6 crosses up (out)."""
    tc, frames = run(
        {
            1: [(10, 40), (10, 45), (10, 55), (10, 60)],
            2: [(20, 40), (20, 50), (20, 40), (20, 30)],
            3: [(30, 50), (30, 45), (30, 40), (30, 35)],
            4: [(40, 45), (40, 55), (40, 45), (40, 40)],
            5: [(150, 40), (150, 60), (150, 70), (150, 80)],
            6: [(60, 70), (60, 60), (60, 40), (60, 30)],
        }
    )
    assert tc.crossings.tolist() == [[2, 2]]  # in: 1 and 4; out: 4 and 6
    assert [f.crossings.tolist() for f in frames] == [[[0, 0]], [[1, 0]], [[2, 2]], [[2, 2]]]


def test_crossing_through_the_line_over_missed_frames_and_touching_steps():
    """A track unseen for two frames is counted once it reappears on the other side; a step that stops on the line
    and then leaves on the other side counts once, when it leaves."""
    tc, frames = run({1: [(10, 40), None, None, (10, 70)], 2: [(20, 40), (20, 50), (20, 50), (20, 60)]})
    assert [f.crossings[0, 0] for f in frames] == [0, 0, 0, 2]


def test_zone_occupancy_dwell_and_unique_heads():
    """Zone = left half above the line. Occupancy per frame, dwell = frames inside x dt, unique needs min_frames."""
    zone = np.array([[0, 0], [50, 0], [50, 50], [0, 50.0]])
    tc, frames = run(
        {1: [(10, 10)] * 4, 2: [(80, 10), (40, 10), (40, 20), (80, 20)], 3: [None, None, (10, 30)]},
        zones=[zone],
        min_frames=3,
        dt=0.5,
    )
    assert [int(f.occupancy[0]) for f in frames] == [1, 2, 3, 1]
    assert [f.unique for f in frames] == [0, 0, 2, 2]  # 1 and 2 reach 3 frames at the third; 3 is seen once
    np.testing.assert_allclose(frames[-1].dwell, [[2.0, 1.0]])  # ids 1 and 2 in the last frame
    z = tc.summary()["zones"][0]
    assert (z["occupancy_now"], z["occupancy_max"], z["visitors"]) == (1, 3, 2)  # 3 is not confirmed
    assert z["dwell_s"] == {1: 2.0, 2: 1.0} and z["dwell_s_mean"] == 1.5 and z["occupancy_mean"] == 1.75


def test_a_track_counts_once_it_has_its_frames_and_mean_score_and_then_stays_counted():
    """min_frames 2, min_conf 0.5. Track 1 (scores 0.9) crosses in at frame 2 and counts there. Track 2 crosses in at
    frame 2 with scores 0.3, 0.3 (mean 0.3): its crossing waits until frame 3, where the mean reaches (0.3 + 0.3 +
    0.9) / 3 = 0.5. Track 3 crosses out at frame 2 with mean (0.9 + 0.1) / 2 = 0.5 and stays counted when its mean
    falls to 0.3. Track 4 (0.4 throughout) crosses in, out and in and never counts."""
    tc, frames = run(
        {
            1: [(10, 40, 0.9), (10, 60, 0.9), (10, 65, 0.9), (10, 70, 0.9)],
            2: [(20, 40, 0.3), (20, 60, 0.3), (20, 65, 0.9), (20, 70, 0.9)],
            3: [(30, 60, 0.9), (30, 40, 0.1), (30, 35, 0.1), (30, 30, 0.1)],
            4: [(40, 40, 0.4), (40, 60, 0.4), (40, 40, 0.4), (40, 60, 0.4)],
        },
        min_frames=2,
        min_conf=0.5,
    )
    assert [f.unique for f in frames] == [0, 2, 3, 3]
    assert [f.crossings.tolist() for f in frames] == [[[0, 0]], [[1, 1]], [[2, 1]], [[2, 1]]]
    s = tc.summary()
    assert (s["unique_heads"], s["tracks"], s["min_track_conf"]) == (3, 4, 0.5)
    assert [(x["in"], x["out"]) for x in s["lines"]] == [(2, 1)]
    assert run({4: [(40, 40, 0.4), (40, 60, 0.4)]}, min_conf=0.4)[0].crossings.tolist() == [[1, 0]]  # mean = limit


def test_many_ids_grow_the_state_and_trails_keep_recent_centres():
    """IDs far above the initial capacity work; a trail holds the last `trail` centres, padded with the first."""
    tc = TrackCounter(trail=3)
    tc.update(np.array([5000]), box(1, 1)[None])
    tc.update(np.array([5000, 7]), np.stack([box(2, 2), box(9, 9)]))
    tc.update(np.array([5000]), box(3, 3)[None])
    tc.update(np.array([5000]), box(4, 4)[None])
    np.testing.assert_allclose(tc.trails([5000])[0], [[2, 2], [3, 3], [4, 4]])
    np.testing.assert_allclose(tc.trails([7])[0], [[9, 9]] * 3)
    assert tc.summary()["tracks"] == 2 and tc.frames == 4


def test_empty_frames():
    """Frames without tracks count nothing and keep the totals."""
    tc = TrackCounter(lines=[LINE], zones=[np.array([[0, 0], [9, 0], [0, 9.0]])])
    f = tc.update(np.zeros(0), np.zeros((0, 4)))
    assert (f.tracked, f.unique, f.crossings.tolist(), f.occupancy.tolist()) == (0, 0, [[0, 0]], [0])


def test_parse_points_and_frame_checks():
    """Flags parse to (N, 2) arrays; wrong counts, non-numbers, degenerate shapes and outside points are one line."""
    np.testing.assert_array_equal(parse_points("1,2, 3,4", "--line", 2, 2), [[1, 2], [3, 4]])
    assert parse_points("0,0,10,0,10,10,0,10", "--zone", 3).shape == (4, 2)
    for text, flag, n, match in (
        ("1,2,3", "--line", 2, "expected 2 points"),
        ("1,2,3,4,5,6", "--line", 2, "expected 2 points"),
        ("a,b,c,d", "--line", 2, "comma-separated"),
        ("5,5,5,5", "--line", 2, "same"),
        ("0,0,1,1,2,2", "--zone", 3, "no area"),
        ("0,0,1,1", "--zone", 3, "at least 3 points"),
    ):
        with pytest.raises(ValueError, match=match):
            parse_points(text, flag, n, 2 if flag == "--line" else None)
    check_inside_frame(np.array([[0, 0], [640, 480.0]]), 640, 480, "--line 1")
    with pytest.raises(ValueError, match=r"--line 1: point \(700, 10\) lies outside the 640x480 frame"):
        check_inside_frame(np.array([[0, 10], [700, 10.0]]), 640, 480, "--line 1")


def test_settle_counts_a_crossing_once_the_head_stays_on_the_other_side():
    """settle 3. Track 1 dips below the line for one frame (nothing); 2 goes below, touches the line (neither adds
    nor resets) and stays: in at frame 5, its third update below; 3 ends two updates below: in at frame 6, its third
    update unseen; 4 goes below for two updates, back above, then below for three: in at frame 7. With settle 1 the
    same tracks count in 5, out 2."""
    paths = {
        1: [(10, 40), (10, 55), (10, 45), (10, 40), (10, 38), (10, 36), (10, 34)],
        2: [(20, 40), (20, 55), (20, 50), (20, 60), (20, 65), (20, 70), (20, 75)],
        3: [(30, 40), (30, 60), (30, 65)],
        4: [(40, 40), (40, 55), (40, 60), (40, 45), (40, 55), (40, 60), (40, 65)],
    }
    tc, frames = run(paths, settle=3)
    assert [f.crossings.tolist() for f in frames] == [[[0, 0]]] * 4 + [[[1, 0]], [[2, 0]], [[3, 0]]]
    assert run(paths)[0].crossings.tolist() == [[5, 2]]
    with pytest.raises(ValueError, match="settle must be >= 1"):
        TrackCounter(settle=0)


def test_a_head_lost_while_settling_crosses_after_settle_updates_unseen():
    """settle 3. Tracks 1 and 4 reach the line's other side once and are not seen again for 3 updates: in at frame 5.
    2 is seen there again at frame 4, then lost: in at frame 7, three updates after it was last seen. 3 is lost below
    and comes back above within 2 updates: nothing. 4 then comes back above and stays three updates: out at frame 8.
    9 stands still above the line."""
    paths = {
        1: [(10, 40), (10, 60)],
        2: [(20, 40), (20, 60), None, (20, 65)],
        3: [(30, 40), (30, 60), None, (30, 40), (30, 40)],
        4: [(40, 40), (40, 60), None, None, None, (40, 40), (40, 40), (40, 40)],
        9: [(90, 30)] * 8,
    }
    tc, frames = run(paths, settle=3)
    assert [f.crossings.tolist() for f in frames] == [[[0, 0]]] * 4 + [[[2, 0]]] * 2 + [[[3, 0]], [[3, 1]]]
    tc.end()
    assert tc.crossings.tolist() == [[3, 1]]


def test_band_ignores_a_wobble_on_the_line_and_keeps_real_crossings():
    """Boxes 10 px high, band 0.5: a centre wobbling 3 px either side of the line counts nothing (without the band:
    in, out, in); one that wobbles and then leaves 10 px below counts one in, from its last point 10 px above."""
    wobble = {1: [(10, 47), (10, 53), (10, 47), (10, 53)]}
    assert run(wobble)[0].crossings.tolist() == [[2, 1]]
    assert run(wobble, band=0.5)[0].crossings.tolist() == [[0, 0]]
    tc, frames = run({1: [(10, 40), (10, 53), (10, 47), (10, 60)], 2: [(30, 44), (30, 56)]}, band=0.5)
    assert [f.crossings.tolist() for f in frames] == [[[0, 0]], [[1, 0]], [[1, 0]], [[2, 0]]]  # 2 is 6 px each side
    with pytest.raises(ValueError, match="band must be >= 0"):
        TrackCounter(band=-0.1)


def test_end_counts_the_crossings_still_settling():
    """settle 3. Track 1 crosses down and is seen twice below the line when the video ends: no crossing before `end`,
    one in after it. Track 2 crosses and comes back, 3 crosses and is lost before the end, 4 crosses beyond the
    line's right end, 5 crosses up and settles (one out either way): `end` adds one in for 3 (unseen for two
    updates, one short of crossing as gone), and nothing for the others, nor a second time."""
    tc, frames = run(
        {
            1: [(10, 40), (10, 40), (10, 40), (10, 60), (10, 70)],
            2: [(20, 40), (20, 40), (20, 60), (20, 65), (20, 40)],
            3: [(30, 40), (30, 60), (30, 65), None, None],
            4: [(150, 40), (150, 40), (150, 40), (150, 60), (150, 70)],
            5: [(40, 60), (40, 40), (40, 35), (40, 30), (40, 30)],
        },
        settle=3,
    )
    assert frames[-1].crossings.tolist() == [[0, 1]]
    tc.end()
    assert tc.crossings.tolist() == [[2, 1]]
    tc.end()
    assert tc.crossings.tolist() == [[2, 1]] and tc.summary()["lines"][0] == {
        "points": LINE.tolist(),
        "in": 2,
        "out": 1,
    }
