"""Turn a dataset YAML into one Ultralytics can read, converting the raw release on first use (never downloading)."""

from __future__ import annotations

import json
from pathlib import Path

from ultralytics.utils import LOGGER, YAML

from utils import ROOT

from .common import CONVERTER_VERSION
from .registry import CONVERTERS, convert


def ensure_dataset(data: str | Path) -> str:
    """Return a data YAML path Ultralytics can read; convert the raw release first if that has not been done.

    Our dataset YAMLs (data/gta_head.yaml, ...) carry 'converter' (a data/prepare.py dataset name), 'raw' (the raw
    release folder, or a list of candidate folders, first existing wins) and 'path' (the converted copy); relative
    folders are relative to the repository root. Optional 'convert_args' are passed to the converter.

    - YAML without 'converter' (any ordinary Ultralytics data YAML), or not a local file: returned unchanged.
    - A converted folder (holding data.yaml): its data.yaml.
    - Converted copy complete (path/data.yaml exists) and made from the same raw folder by this converter version, or
      raw copy absent: path/data.yaml, without touching anything.
    - Otherwise, raw copy present: converted into 'path' (summary logged), then path/data.yaml.
    - Neither raw nor converted copy: FileNotFoundError saying where to get the data and where to put it.

    Args:
        data (str | Path): data YAML or converted folder.

    Returns:
        (str): path of a data YAML with absolute 'path' and only the splits that exist.
    """
    file = Path(data)
    if file.is_dir() and (file / "data.yaml").is_file():
        return str(file / "data.yaml")
    if file.suffix not in {".yaml", ".yml"} or not file.is_file():
        return str(data)
    cfg = YAML.load(file)
    if "converter" not in cfg:
        return str(data)
    name = cfg["converter"]
    if name not in CONVERTERS:
        raise ValueError(f"{file}: converter '{name}' unknown, expected one of {', '.join(CONVERTERS)}")
    out = _resolve(cfg["path"])
    raw_cfg = cfg.get("raw") or []
    raws = [_resolve(r) for r in (raw_cfg if isinstance(raw_cfg, list) else [raw_cfg])]
    raw = next((r for r in raws if r.is_dir()), None)
    done = out / "data.yaml"
    if done.is_file() and (raw is None or _made_from(out, raw)):
        return str(done)
    if raw is None:
        raise FileNotFoundError(_missing(file, name, raws, out))
    LOGGER.info(f"{file}: converting the raw {CONVERTERS[name].title} copy {raw} -> {out} (first use)")
    report = convert(name, raw, out, **(cfg.get("convert_args") or {}))
    LOGGER.info(report.summary())
    return str(done)


def ensure_from_ultralytics(data: dict) -> None:
    """The 'download:' step of our data YAMLs: make the converted copy exist and point `data` at it, offline.

    Ultralytics' check_det_dataset runs the step, as `exec(script, {"yaml": data})`, when the val images are missing,
    then returns `data` as is; so this converts (or finds) the copy and rewrites path/train/val/test in place.

    Args:
        data (dict): the data dict check_det_dataset parsed from our YAML (holds 'yaml_file').
    """
    done = YAML.load(ensure_dataset(data["yaml_file"]))
    root = Path(done["path"])
    data["path"] = root
    for k in ("train", "val", "test"):
        data[k] = str(root / done[k]) if done.get(k) else None


def _resolve(p: str | Path) -> Path:
    """A folder from a dataset YAML: absolute as is, relative to the repository root otherwise."""
    p = Path(p).expanduser()
    return p if p.is_absolute() else (ROOT / p).resolve()


def _made_from(out: Path, raw: Path) -> bool:
    """Whether out was converted from raw by this converter version (per out/summary.json)."""
    try:
        meta = json.loads((out / "summary.json").read_text())
    except (OSError, ValueError):
        return False
    return meta.get("converter_version") == CONVERTER_VERSION and meta.get("src") == str(raw.resolve())


def _missing(file: Path, name: str, raws: list[Path], out: Path) -> str:
    """Where the data was looked for, where to get it, where to put it and how to convert it."""
    info = CONVERTERS[name]
    where = " or ".join(map(str, raws)) or "(no 'raw:' folder given)"
    put = raws[0] if raws else "RAW"
    return (
        f"{info.title} not found: no raw release at {where} ('raw:' in {file}) and no converted copy at {out}.\n"
        f"Get it from {info.url} ({info.licence}) and unpack it to {put}, {info.layout}\n"
        f"Then rerun: it is converted on first use. Or convert it yourself:\n"
        f"  python data/prepare.py {name} --src {put} --dst {out}"
    )
