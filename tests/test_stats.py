"""Dataset statistics: summary numbers, data/stats.py on converted folders and on a data YAML (real SCUT-Head A)."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import pytest
import yaml

from data import stats
from data.converters import convert_scut_head
from data.converters.summary import split_numbers
from tests.test_converters import make_voc

REPO = Path(__file__).resolve().parents[1]


def test_split_numbers_hand_computed():
    """sizes sqrt(w*h) = 6, 1, 16, 4, 6, 5 -> sorted 1 4 5 6 6 16; linear percentiles at ranks 0.05*5 ... 0.95*5."""
    wh = np.array([[4, 9], [1, 1], [16, 16], [2, 8], [3, 12], [5, 5]])
    r = split_numbers(np.array([0, 2, 4]), wh)
    assert (r["images"], r["heads"], r["heads_per_image_max"]) == (3, 6, 4)
    assert r["heads_per_image_mean"] == pytest.approx(2.0)
    got = [r[f"size_p{p}"] for p in (5, 25, 50, 75, 95)]
    assert got == pytest.approx([1.75, 4.25, 5.5, 6.0, 13.5])
    empty = split_numbers(np.zeros(2, dtype=int), np.zeros((0, 2)))
    assert empty["heads"] == 0 and np.isnan(empty["size_p50"])


def test_stats_cli_on_converted_folder(tmp_path: Path, capsys):
    """Heads per image 2, 0 (train) and 1 (val) of 20x40 px boxes in 100x80 images; both plots are real PNGs."""
    items = {
        "a": ((100, 80), (100, 80), [("head", (0, 0, 20, 40)), ("head", (50, 0, 70, 40))], None),
        "b": ((100, 80), (100, 80), [], None),
        "c": ((100, 80), (100, 80), [("head", (10, 10, 30, 50))], None),
    }
    raw = make_voc(tmp_path / "raw", items, {"train": ["a", "b"], "val": ["c"]})
    convert_scut_head(raw, tmp_path / "conv")
    assert stats.main(stats.parse_opt(["--data", str(tmp_path / "conv"), "--save-dir", str(tmp_path / "plots")])) == 0
    out = capsys.readouterr().out
    rows = {
        line.split()[0]: line.split() for line in out.splitlines() if line.split()[:1] in (["train"], ["val"], ["all"])
    }
    assert rows["train"][:5] == ["train", "2", "2", "1.00", "2"]
    assert rows["val"][:5] == ["val", "1", "1", "1.00", "1"]
    assert rows["all"][:5] == ["all", "3", "3", "1.00", "2"]
    assert rows["all"][5] == f"{np.sqrt(800):.1f}"  # every box 20x40 -> sqrt(w*h) = 28.3 at every percentile
    assert "box width  px percentiles p5=20.0" in out
    for name in ("heads_per_image.png", "head_size.png"):
        im = cv2.imread(str(tmp_path / "plots" / name))
        assert im is not None and im.shape[0] > 100 and im.std() > 0


def test_stats_on_real_scut_a_yaml(scut_a: Path, tmp_path: Path, capsys):
    """data/scut_head_a.yaml (raw list as shipped, output redirected to tmp) converts on first use; the heads counted
    back from the written labels equal the converter's."""
    cfg = yaml.safe_load((REPO / "data/scut_head_a.yaml").read_text())
    cfg["path"] = str(tmp_path / "scut_a_yolo")
    f = tmp_path / "scut_head_a.yaml"
    f.write_text(yaml.safe_dump(cfg))
    assert stats.main(stats.parse_opt(["--data", str(f), "--save-dir", str(tmp_path / "plots")])) == 0
    out = capsys.readouterr().out
    summary = yaml.safe_load((tmp_path / "scut_a_yolo/summary.json").read_text())
    rows = {line.split()[0]: line.split() for line in out.splitlines() if line.split()[:1] in (["train"], ["val"])}
    assert int(rows["train"][1]) == summary["splits"]["train"]["images"] == 1100
    assert int(rows["val"][1]) == summary["splits"]["val"]["images"] == 400
    assert int(rows["train"][2]) + int(rows["val"][2]) == summary["boxes"]["written"]
    assert summary["src"] == str(scut_a.resolve())  # the shipped raw list found the shared copy
