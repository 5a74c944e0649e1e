"""bench/accuracy.py's table bookkeeping: re-running some rows keeps the others, in a fixed order."""

from __future__ import annotations

import pandas as pd

from bench.accuracy import merge_summary


def test_merge_summary_replaces_rerun_rows_and_keeps_the_rest(tmp_path):
    path = tmp_path / "summary.csv"
    pd.DataFrame([{"loss": "mfl", "MAE": 9.0}, {"loss": "bce", "MAE": 7.0}]).to_csv(path, index=False)
    table = merge_summary([{"loss": "stock", "MAE": 5.0}, {"loss": "mfl", "MAE": 3.0}], path)
    assert list(table["loss"]) == ["bce", "mfl", "stock"]  # RUNS order, the stock reference last
    assert list(table["MAE"]) == [7.0, 3.0, 5.0]  # mfl's old 9.0 replaced by the re-run


def test_merge_summary_without_earlier_table(tmp_path):
    table = merge_summary([{"loss": "heatmap", "MAE": 1.5}], tmp_path / "summary.csv")
    assert table.to_dict("records") == [{"loss": "heatmap", "MAE": 1.5}]
