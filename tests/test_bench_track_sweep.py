"""bench/track_sweep.py: the swept settings from the command line, and tracks written as read_mot columns from the
array tracker's outputs."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from ultralytics.engine.results import Boxes
from ultralytics.utils import YAML, IterableSimpleNamespace

from bench.track import tracks
from bench.track_sweep import settings
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
