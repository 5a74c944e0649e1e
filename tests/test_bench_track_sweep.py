"""bench/track_sweep.py: the swept settings from the command line, tracks written as read_mot columns from the
array tracker's outputs, and the repaired detections of `--repairs`."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import torch
from ultralytics.engine.results import Boxes
from ultralytics.utils import YAML, IterableSimpleNamespace

from bench.track import tracks
from bench.track_sweep import repairs, settings
from utils.tracking import find_tracker, fit_thresholds


def test_settings_are_every_combination_with_typed_values():
    """Two keys of 2 and 1 values: 2 settings, ints, floats and booleans parsed as the YAML would hold them."""
    got = settings(["inertia=0.1,0.4", "track_buffer=60", "use_byte=true"])
    assert got == [
        {"inertia": 0.1, "track_buffer": 60, "use_byte": True},
        {"inertia": 0.4, "track_buffer": 60, "use_byte": True},
    ]
    assert type(got[0]["track_buffer"]) is int and settings([]) == [{}]  # nothing swept: the fitted YAML
    for bad in ("inertia", "inertia=", "=0.1"):
        with pytest.raises(ValueError, match=f"--set {bad}: expected KEY=V1,V2"):
            settings([bad])


def test_tracks_are_the_trackers_outputs_by_frame(tmp_path):
    """Two still heads over 3 frames: one row per head and frame, IDs 1 and 2, boxes and scores as detected."""
    path, _ = fit_thresholds(find_tracker("ocsort.yaml"), 0.3, tmp_path / "ocsort.yaml")
    cfg = IterableSimpleNamespace(**YAML.load(path))
    data = torch.tensor([[10, 10, 30, 30, 0.9, 0], [100, 50, 120, 70, 0.8, 0]])
    df = tracks(cfg, [Boxes(data, (200, 200)).numpy()] * 3)
    assert df.frame.tolist() == [1, 1, 2, 2, 3, 3] and df.id.tolist() == [1, 2] * 3
    np.testing.assert_allclose(df[["x1", "y1", "x2", "y2"]].to_numpy()[:2], data[:, :4].numpy(), atol=1e-3)
    np.testing.assert_allclose(df.conf.to_numpy(), [0.9, 0.8] * 3, atol=1e-6)


def test_repairs_remove_one_defect_after_another():
    """Two frames of two true heads (head 2 hidden in frame 2, head 3 in view but never detected). Frame 1: a box 2 px
    off head 1 (score 0.6) and one on background (0.7); frame 2: a box 2 px off head 1 (0.8)."""
    gt = pd.DataFrame(
        [
            (1, 1, 0, 0, 20, 20, 1.0),
            (1, 3, 100, 100, 120, 120, 1.0),
            (2, 1, 0, 0, 20, 20, 1.0),
            (2, 2, 50, 0, 70, 20, 0.0),
        ],
        columns=["frame", "id", "x1", "y1", "x2", "y2", "vis"],
    )
    det = [[[2, 0, 22, 20, 0.6, 0], [150, 150, 170, 170, 0.7, 0]], [[2, 2, 22, 22, 0.8, 0]]]
    got = repairs([Boxes(torch.tensor(d), (200, 200)).numpy() for d in det], gt, 2)
    assert list(got) == ["no false boxes", "true boxes, model scores", "true boxes of found heads", "true boxes"]
    data = {k: [b.data.tolist() for b in v] for k, v in got.items()}
    no_false = np.concatenate([b.data for b in got["no false boxes"]])
    np.testing.assert_allclose(no_false, [[2, 0, 22, 20, 0.6, 0], [2, 2, 22, 22, 0.8, 0]], 1e-6)
    assert [len(b) for b in got["no false boxes"]] == [1, 1]
    np.testing.assert_allclose(data["true boxes, model scores"][1], [[0, 0, 20, 20, 0.8, 0]], atol=1e-6)
    np.testing.assert_allclose(data["true boxes of found heads"][0], [[0, 0, 20, 20, 0.9, 0]], atol=1e-6)
    assert [len(b) for b in got["true boxes"]] == [2, 1]  # heads 1 and 3, then head 1: the hidden head 2 is left out
