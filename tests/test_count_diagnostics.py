"""bench/count_diagnostics.py: which heads a model finds once, twice or never, on hand-made boxes."""

from __future__ import annotations

import numpy as np

import pytest

from bench.count_diagnostics import diagnose, expand_weights


def test_found_once_duplicated_missed_and_stray():
    """Heads A (20 px), B (10 px), C (10 px). Two detections near A's centre, one on B twice the size, one far away.

    σ_l of A = sqrt(20² + 20²) / 2 = 14.1 px: a centre 10 px off still sits on A. C gets nothing. The stray detection
    sits on no head. Size ratios: A's detections are 20 and 16 px (1.0, 0.8), B's is 20 px (2.0).
    """
    gt = np.array([[0, 0, 20, 20], [100, 100, 110, 110], [200, 0, 210, 10]], float)
    det = np.array([[0, 0, 20, 20], [12, 0, 28, 16], [95, 95, 115, 115], [300, 300, 310, 310]], float)
    d = diagnose(det, gt)
    assert (d["heads"], d["detections"]) == (3, 4)
    assert (d["found_once"], d["duplicated"], d["missed"], d["on_no_head"]) == (1, 1, 1, 1)
    np.testing.assert_allclose(sorted(d["size_ratios"]), [0.8, 1.0, 2.0])
    np.testing.assert_allclose(d["duplicate_ious"], [128 / 528], rtol=1e-6)  # A's pair: 8x16 px shared of 400 + 256


def test_no_detections():
    d = diagnose(np.zeros((0, 4)), np.array([[0, 0, 10, 10.0]]))
    assert (d["missed"], d["on_no_head"], d["size_ratios"], d["duplicate_ious"]) == (1, 0, [], [])


def test_run_folder_expands_to_its_epoch_checkpoints_in_epoch_order(tmp_path):
    run = tmp_path / "mfl"
    (run / "weights").mkdir(parents=True)
    for name in ("epoch10.pt", "epoch2.pt", "epoch1.pt", "best.pt", "last.pt"):
        (run / "weights" / name).touch()
    got = expand_weights(["other/best.pt", str(run)])
    assert got == ["other/best.pt", *(str(run / "weights" / f"epoch{n}.pt") for n in (1, 2, 10))]


def test_run_folder_without_epoch_checkpoints_says_how_to_get_them(tmp_path):
    (tmp_path / "weights").mkdir()
    with pytest.raises(SystemExit, match="save_period=1"):
        expand_weights([str(tmp_path)])
