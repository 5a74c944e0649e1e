"""Checkpoint loading that cannot run code, reads each file once, and fails in one line; the extras train.py stores.

Every `.pt` is a pickle, and unpickling can run any code. Ultralytics 8.4 ships a restricted loader
(`torch.load(weights_only=True)` against an allow-list of torch's and its own classes, `torch_safe_load(...,
safe_only=True)`), off by default. Importing this module routes every Ultralytics checkpoint load (AutoBackend,
resume, fine-tuning, our readers) through `load_checkpoint`, which
    - loads restricted unless the user said `--trust-weights` (`trust_weights()`), with our three model classes, and
      nothing else, added to Ultralytics' list;
    - names, in one line, the globals a refused file needs;
    - turns a truncated or corrupt file into one line naming it (ValueError, which every CLI prints as one line);
    - reads a file once: the count threshold, the training arguments and the model of one checkpoint share one read
      (a one-file cache keyed by path, size and modification time, handing out copies because loaders modify them).
"""

from __future__ import annotations

import ast
import contextlib
import copy
import functools
import io
import os
import pickle
import shutil
from collections.abc import Iterator
from pathlib import Path

import torch
from ultralytics.nn import tasks

from utils import COUNT_CONF_KEY

_ULTRALYTICS_LOAD = getattr(tasks.torch_safe_load, "__wrapped__", tasks.torch_safe_load)  # survives a reload
_TRUST = {"weights": False}  # set by --trust-weights


class UnsafeCheckpointError(ValueError):
    """A checkpoint needs globals outside the allow-list: loading it could run arbitrary code."""


def _name(obj: type) -> str:
    """Pickle's name of a class: module and qualified name."""
    return f"{obj.__module__}.{obj.__qualname__}"


def allow_our_classes() -> None:
    """Put our model classes, under the names our checkpoints pickle them by, on torch's weights_only allow-list."""
    from models.head import AnchorDetect
    from models.yolo import AnchorDetectionModel, AnchorFreeDetectionModel

    classes = (AnchorDetect, AnchorDetectionModel, AnchorFreeDetectionModel)
    torch.serialization.add_safe_globals([(c, _name(c)) for c in classes])


def trust_weights(trust: bool = True) -> None:
    """Load checkpoints the unrestricted way for the rest of the process (the user vouched for their source)."""
    _TRUST["weights"] = trust


@contextlib.contextmanager
def trusting(trust: bool) -> Iterator[None]:
    """Within the block, load unrestricted when `trust` (the API's `trust_weights=` argument)."""
    before = _TRUST["weights"]
    _TRUST["weights"] = trust or before
    try:
        yield
    finally:
        _TRUST["weights"] = before


def load_checkpoint(weight: str | Path, safe_only: bool | None = None) -> tuple[dict, str]:
    """Ultralytics' `torch_safe_load`, restricted unless trusted, from a one-file cache, with one-line errors.

    Args:
        weight (str | Path): Checkpoint path.
        safe_only (bool, optional): Force restricted (True) or unrestricted (False) loading; None follows the
            process setting (restricted unless `trust_weights()`).

    Returns:
        (tuple[dict, str]): A private copy of the checkpoint and the file it came from, as Ultralytics returns them.

    Raises:
        UnsafeCheckpointError: The file needs globals outside the allow-list (restricted loading only).
        ValueError: The file is missing, truncated, corrupt, or not an Ultralytics checkpoint.
    """
    path = Path(weight)
    if not path.is_file():
        raise FileNotFoundError(f"{weight}: no such checkpoint file")
    if path.suffix != ".pt":
        raise ValueError(f"{weight}: not a PyTorch checkpoint (expected a .pt file)")
    safe = not _TRUST["weights"] if safe_only is None else safe_only
    stat = path.stat()
    ckpt, file = _read(str(path.resolve()), stat.st_size, stat.st_mtime_ns, safe)
    return copy.deepcopy(ckpt), file


@functools.lru_cache(maxsize=1)
def _read(path: str, size: int, mtime_ns: int, safe: bool) -> tuple[dict, str]:
    """Load one file (size and time make a rewritten file a new key)."""
    if safe:
        allow_our_classes()
    try:
        return _ULTRALYTICS_LOAD(path, safe_only=safe)
    except (TypeError, pickle.UnpicklingError) as e:
        if safe and "outside the supported" in str(e):
            raise _refusal(path) from None
        raise ValueError(f"{path}: {_first_line(e)}") from None
    except ModuleNotFoundError as e:  # unrestricted loading of a file whose classes Python cannot import
        raise ValueError(f"{path}: needs the Python module '{e.name}', which is not importable here") from None
    except (OSError, EOFError, RuntimeError) as e:  # torch's zip reader on a damaged file, before Ultralytics' checks
        raise ValueError(f"{path}: not a loadable checkpoint, the file is truncated or corrupted ({e})") from None


def _refusal(path: str) -> ValueError:
    """The one-line refusal naming the globals outside the allow-list (or saying the file is no checkpoint at all)."""
    allowed = {g[1] if isinstance(g, tuple) else _name(g) for g in torch.serialization.get_safe_globals()}
    try:
        needed = [g for g in torch.serialization.get_unsafe_globals_in_checkpoint(path) if g not in allowed]
    except (ValueError, OSError, RuntimeError):  # not a zip torch.save wrote: an image or archive renamed .pt
        return ValueError(f"{path}: not a loadable checkpoint, the file is not one torch.save wrote")
    return UnsafeCheckpointError(
        f"{path}: refused, it needs {', '.join(needed) or 'unknown globals'}, which a restricted load does not allow "
        "(unpickling them can run code); if you trust the file's source, rerun with --trust-weights"
    )


def _first_line(e: BaseException) -> str:
    """Ultralytics' message without its emoji prefix and advice lines."""
    line = next((ln.strip() for ln in str(e).splitlines() if ln.strip()), type(e).__name__)
    return line.removeprefix("ERROR ❌️ ").strip()


def _install() -> None:
    """Route Ultralytics' own loads (AutoBackend, resume, fine-tuning) through `load_checkpoint`."""
    if tasks.torch_safe_load is not load_checkpoint:
        load_checkpoint.__wrapped__ = _ULTRALYTICS_LOAD
        tasks.torch_safe_load = load_checkpoint


_install()


class AtomicPath(type(Path())):
    """A path whose `write_bytes` replaces the file in one step: readers see the old file or the new one, whole.

    Ultralytics' trainer saves last.pt and best.pt with `Path.write_bytes`; a process killed mid-write would leave a
    truncated file, and `--resume` would fail on the one file it needs. The bytes go to a temporary file in the same
    folder, are flushed to disk, and are renamed over the target (`os.replace` is atomic within a file system).
    """

    def write_bytes(self, data: bytes) -> int:
        """Write `data` to a temporary sibling, fsync it, then rename it over this path."""
        tmp = self.with_name(f"{self.name}.{os.getpid()}.tmp")
        with open(tmp, "wb") as f:
            n = f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, self)
        return n


@contextlib.contextmanager
def rewrite_atomically(*paths: Path) -> Iterator[list[Path]]:
    """Yield temporary copies of `paths` to rewrite in place (Ultralytics' strip_optimizer); then rename them back.

    A kill inside the block leaves the originals whole; the copies are removed if the block raises.
    """
    copies = [p.with_name(f"{p.stem}.{os.getpid()}.tmp{p.suffix}") if p.exists() else p for p in paths]
    for p, c in zip(paths, copies):
        if c != p:
            shutil.copyfile(p, c)
    try:
        yield copies
    except BaseException:
        for p, c in zip(paths, copies):
            if c != p:
                c.unlink(missing_ok=True)
        raise
    for p, c in zip(paths, copies):
        if c != p and c.exists():
            os.replace(c, p)


def store_count_conf(weights: Path, conf: float) -> None:
    """Attach a count threshold to the model of a checkpoint this process wrote, rewriting the file atomically."""
    ckpt = torch.load(weights, map_location="cpu", weights_only=False)  # our own file, written moments ago
    setattr(ckpt.get("model") or ckpt["ema"], COUNT_CONF_KEY, float(conf))
    buffer = io.BytesIO()
    torch.save(ckpt, buffer)
    AtomicPath(weights).write_bytes(buffer.getvalue())


def count_conf_of(ckpt: dict) -> float | None:
    """Return the count threshold stored in a loaded checkpoint: a top-level key, or an attribute of its model.

    train.py attaches it to the model (`model.count_conf`) so that it travels with every copy Ultralytics makes
    (last.pt, best.pt, the stripped final checkpoints, and models loaded by the predictor).
    """
    value = ckpt.get(COUNT_CONF_KEY)
    if value is None:
        model = ckpt.get("model") or ckpt.get("ema")
        value = getattr(model, COUNT_CONF_KEY, None)
    return None if value is None else float(value)


def is_exported(weights: str | Path) -> bool:
    """True for an exported model (ONNX file, OpenVINO folder, TorchScript file, ...), False for a `.pt` checkpoint."""
    return Path(weights).is_dir() or Path(weights).suffix != ".pt"


def export_metadata(weights: str | Path) -> dict:
    """Ultralytics' metadata of an exported model, read without loading it (our exporter adds count_conf and data)."""
    from ultralytics.nn.backends.base import BaseBackend

    if not Path(weights).exists():
        raise FileNotFoundError(f"{weights}: no such exported model")
    return {k: _literal(v) for k, v in (BaseBackend.read_metadata(weights) or {}).items()}


def _literal(value):
    """ONNX keeps metadata as strings ("[640, 640]", "0.21"): their Python value, else the string."""
    if not isinstance(value, str):
        return value
    try:
        return ast.literal_eval(value)
    except (ValueError, SyntaxError):
        return value


def read_count_conf(weights: str | Path) -> float | None:
    """Return the count threshold calibrated at the end of training, or None if the weights store none.

    Args:
        weights (str | Path): A `.pt` checkpoint written by train.py (or any Ultralytics checkpoint), or a model
            exported by export.py.

    Returns:
        (float | None): The stored confidence threshold used for counting.
    """
    if is_exported(weights):
        value = export_metadata(weights).get(COUNT_CONF_KEY)
        return None if value in (None, "None") else float(value)
    ckpt, _ = load_checkpoint(weights)
    return count_conf_of(ckpt) if isinstance(ckpt, dict) else None


def read_train_args(weights: str | Path) -> dict:
    """Return the training arguments stored in a checkpoint (data, imgsz, ...), empty when it has none.

    For an exported model: the training data and the export's input size, from its metadata.
    """
    if is_exported(weights):
        meta = export_metadata(weights)
        return {k: v for k, v in (("data", meta.get("data")), ("imgsz", meta.get("imgsz"))) if v is not None}
    ckpt, _ = load_checkpoint(weights)
    args = ckpt.get("train_args") if isinstance(ckpt, dict) else None
    return dict(args or {})
