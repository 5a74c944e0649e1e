"""Turn the `--data` argument into a data YAML that Ultralytics can read, preparing the data on first use."""

from __future__ import annotations

from pathlib import Path

SYNTHETIC = "synthetic"


def resolve_data(data: str | Path) -> str:
    """Return a usable data YAML path for `data`.

    Args:
        data (str | Path): "synthetic" for the built-in generated crowd set, or a data YAML path; our dataset YAMLs
            (data/scut_head_a.yaml, ...) convert their raw release on first use (data/converters/ensure.py).

    Returns:
        (str): Path of a data YAML whose images and labels exist.
    """
    if str(data) == SYNTHETIC:
        from data.synthetic import ensure_synthetic_crowd

        return str(ensure_synthetic_crowd())
    if not Path(data).is_file():  # Ultralytics would otherwise try to download a YAML of that name
        raise FileNotFoundError(f"--data {data}: no such file (give a data YAML, or 'synthetic' for the built-in set)")
    from data.prepare import ensure_dataset

    return ensure_dataset(data)
