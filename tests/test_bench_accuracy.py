"""bench/accuracy.py's table bookkeeping: re-running some rows keeps the others, in a fixed order."""

from __future__ import annotations

import pandas as pd

from bench.accuracy import merge_results, merge_summary, parse_opt, result_rows, row_name


def test_merge_summary_replaces_rerun_rows_and_keeps_the_rest(tmp_path):
    path = tmp_path / "summary.csv"
    pd.DataFrame([{"loss": "mfl", "MAE": 9.0}, {"loss": "bce", "MAE": 7.0}]).to_csv(path, index=False)
    table = merge_summary([{"loss": "stock", "MAE": 5.0}, {"loss": "mfl", "MAE": 3.0}], path)
    assert list(table["loss"]) == ["bce", "mfl", "stock"]  # RUNS order, the stock reference last
    assert list(table["MAE"]) == [7.0, 3.0, 5.0]  # mfl's old 9.0 replaced by the re-run


def test_merge_summary_without_earlier_table(tmp_path):
    table = merge_summary([{"loss": "heatmap", "MAE": 1.5}], tmp_path / "summary.csv")
    assert table.to_dict("records") == [{"loss": "heatmap", "MAE": 1.5}]


def test_subset_yaml_draws_fixed_subsets(tmp_path):
    from bench.accuracy import subset_yaml

    for split, n in (("train", 10), ("val", 4)):
        (tmp_path / "ds" / "images" / split).mkdir(parents=True)
        for i in range(n):
            (tmp_path / "ds" / "images" / split / f"{i}.jpg").touch()
    (tmp_path / "ds" / "notes.txt").touch()
    data = tmp_path / "ds.yaml"
    data.write_text(f"path: {tmp_path / 'ds'}\ntrain: images/train\nval: images/val\nnames:\n  0: head\n")

    first = subset_yaml(str(data), 3, 0, seed=0, out=tmp_path / "a")
    again = subset_yaml(str(data), 3, 0, seed=0, out=tmp_path / "b")
    train = (tmp_path / "a" / "train.txt").read_text().split()
    assert len(train) == 3 and len(set(train)) == 3 and all(p.endswith(".jpg") for p in train)
    assert train == (tmp_path / "b" / "train.txt").read_text().split()  # same seed, same images
    assert len((tmp_path / "a" / "val.txt").read_text().split()) == 4  # 0: the whole split
    assert "train: train.txt" in open(first).read() and "val: val.txt" in open(again).read()


def test_set_overrides_are_typed_and_malformed_ones_stop_with_one_line(capsys):
    import pytest

    from bench.accuracy import parse_opt

    opt = parse_opt(["--set", "warmup_bias_lr=0.0", "optimizer=AdamW", "mfl_poly=false", "epochs=3"])
    assert dict(opt.set) == {"warmup_bias_lr": 0.0, "optimizer": "AdamW", "mfl_poly": False, "epochs": 3}
    with pytest.raises(SystemExit):
        parse_opt(["--set", "warmup_bias_lr"])
    err = capsys.readouterr().err.strip().splitlines()[-1]
    assert "--set expects key=value, got 'warmup_bias_lr'" in err


def test_results_table_rows_and_merge(tmp_path):
    """One row per trained model: head and loss from the row name, the --set overrides as the variant; a re-run of
    the same model replaces its row, other models' rows stay."""
    opt = parse_opt(["--seed", "1", "--epochs", "6", "--set", "fl_cls=2.0"])
    rows = [
        {
            "loss": row_name(n, opt),
            "MAE": m,
            "RMSE": 2 * m,
            "mAP50": 0.3,
            "F1_sigma_l": 0.6,
            "count_conf": 0.5,
            "val_images": 400,
            "settings": "loss=mfl",
        }
        for n, m in (("free-mfl", 5.0), ("stock", 6.0), ("mfl", 7.0))
    ]
    table = result_rows(rows, opt, train_images=1100)
    assert table[["head", "loss", "seed", "variant"]].values.tolist() == [
        ["yolov5u", "mfl", 1, "fl_cls=2.0"],
        ["stock-ultralytics", "stock", 1, "fl_cls=2.0"],
        ["yolov5-anchor", "mfl", 1, "fl_cls=2.0"],
    ]
    path = tmp_path / "accuracy.csv"
    merge_results(table, path)
    rerun = table.iloc[[0]].assign(MAE=4.5)
    merged = merge_results(rerun, path)
    assert len(merged) == 3 and sorted(merged["MAE"]) == [4.5, 6.0, 7.0]
    assert merged.equals(pd.read_csv(path, dtype={"variant": str}))
