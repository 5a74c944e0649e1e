"""Benchmark: the tracker alone, Ultralytics' against ours, on the detections of generated crowd videos (issue 17).

Each video's frames are detected once (the counting predictor at the checkpoint's size, keeping boxes down to the
low-score threshold of the fitted ByteTrack YAML, so one pass serves every tracker); then each tracker YAML, fitted to
the count threshold as detect.py fits it, runs over those detections as Ultralytics' tracker (with our duplicate-birth
rule, utils/track_births.py, so that both sides follow the same YAML) and as detect.py's twin
(`utils.array_tracker.fast_tracker`) with our own rules off (`relink_dist`, `drop_exited`, `keep_occluded`,
`reentry_growth`), alternately, --repeats times each. Reported: milliseconds per frame of each (fastest repeat),
their ratio, whether the twin's outputs equal Ultralytics' in every frame (boxes, IDs, scores), and the twin's time
as detect.py runs it, our rules on.

Usage:
    python bench/tracker_speed.py --weights runs/train/synth320_align/weights/best.pt
"""

from __future__ import annotations

import argparse
import hashlib
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd
import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # run as a script from anywhere

from ultralytics.engine.results import Boxes  # noqa: E402
from ultralytics.trackers.track import TRACKER_MAP  # noqa: E402
from ultralytics.utils import YAML, IterableSimpleNamespace  # noqa: E402

from bench.common import load, machine_header, markdown_table  # noqa: E402
from bench.track import VIDEOS  # noqa: E402
from data.synthetic_video import ensure_crowd_video  # noqa: E402
from utils import CACHE_DIR, COUNT_IOU, ROOT  # noqa: E402
from utils.array_tracker import fast_tracker  # noqa: E402
from utils.checkpoint import read_train_args  # noqa: E402
from utils.predictor import CountingPredictor  # noqa: E402
from utils.track_births import DuplicateBirths  # noqa: E402
from utils.track_eval import sequence_frames  # noqa: E402
from utils.tracking import ARRAY_RULES_OFF, find_tracker, fit_thresholds  # noqa: E402


def parse_opt() -> argparse.Namespace:
    """Benchmark flags."""
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--weights", required=True, help="a trained checkpoint")
    p.add_argument("--imgsz", type=int, default=None, help="inference size (default: the checkpoint's training size)")
    p.add_argument("--frames", type=int, default=150, help="frames per video")
    p.add_argument("--size", type=int, default=640, help="video frame side in pixels")
    p.add_argument("--trackers", nargs="+", default=["ocsort.yaml", "bytetrack.yaml", "botsort.yaml"])
    p.add_argument("--videos", nargs="+", default=list(VIDEOS), metavar="PEOPLE:SEED", help="generated videos")
    p.add_argument("--repeats", type=int, default=5, help="runs of each tracker, alternating")
    p.add_argument("--out", default=str(ROOT / "bench" / "results" / "tracker_speed.csv"))
    return p.parse_args()


def detections(predictor: CountingPredictor, frames_dir: Path) -> list[Boxes]:
    """The numpy boxes of every frame, as Ultralytics' track callback hands them to a tracker.

    Kept in CACHE_DIR / "track_detections", keyed by the frames, the checkpoint file (path, size, modification time)
    and the predictor's size, confidence and IoU: the benchmarks of the tracker alone rerun on the same detections
    without the detector's minutes per video."""
    a, weights = predictor.args, Path(predictor.args.model)
    stat = weights.stat()
    key = f"{frames_dir.resolve()}|{weights.resolve()}|{stat.st_size}|{stat.st_mtime_ns}|{a.imgsz}|{a.conf}|{a.iou}"
    path = CACHE_DIR / "track_detections" / f"{hashlib.sha1(key.encode()).hexdigest()[:16]}.npz"
    if path.is_file():
        with np.load(path) as z:
            return [Boxes(d, tuple(z["shape"])) for d in np.split(z["data"], z["ends"][:-1])]
    boxes = [r.boxes.cpu().numpy() for r in predictor(source=str(frames_dir), stream=True)]
    path.parent.mkdir(parents=True, exist_ok=True)
    data = np.concatenate([b.data for b in boxes])
    np.savez(path, data=data, ends=np.cumsum([len(b) for b in boxes]), shape=boxes[0].orig_shape)
    return boxes


def run(tracker, frames: list) -> tuple[float, list[np.ndarray]]:
    """Seconds per frame and the outputs of one tracker over the frames."""
    img, out = np.zeros((8, 8, 3), np.uint8), []
    t = time.perf_counter()
    for det in frames:
        out.append(tracker.update(det, img).reshape(-1, 8))
    return (time.perf_counter() - t) / len(frames), out


def compare(cfg, frames: list, repeats: int) -> dict:
    """Ultralytics' tracker of the YAML's type (with our birth rule) against its twin with our rules off (the same
    algorithm), and the twin as detect.py runs it (the YAML's rules of ours), alternately."""
    stock = type("Stock", (DuplicateBirths, TRACKER_MAP[cfg.tracker_type]), {})
    same_algorithm = IterableSimpleNamespace(**{**vars(cfg), **ARRAY_RULES_OFF})  # rules Ultralytics lacks
    times = {"ultralytics": [], "ours": [], "ours_shipped": []}
    for _ in range(repeats):
        t_stock, a = run(stock(args=same_algorithm), frames)
        twin = fast_tracker(TRACKER_MAP[cfg.tracker_type](args=same_algorithm))
        t_ours, b = run(twin, frames)
        t_shipped, _ = run(fast_tracker(TRACKER_MAP[cfg.tracker_type](args=cfg)), frames)
        times["ultralytics"].append(t_stock), times["ours"].append(t_ours), times["ours_shipped"].append(t_shipped)
    same = all(x.shape == y.shape and np.allclose(x, y, rtol=1e-6, atol=1e-4) for x, y in zip(a, b))
    ms = {k: 1000 * min(v) for k, v in times.items()}
    return {
        "twin": type(twin).__name__,
        "ultralytics_ms": ms["ultralytics"],
        "ours_ms": ms["ours"],
        "speedup": ms["ultralytics"] / ms["ours"],
        "identical": same,
        "ours_shipped_ms": ms["ours_shipped"],
    }


def main(opt: argparse.Namespace):
    """Detect each video once, then time every tracker on its detections; print and save the table."""
    imgsz = opt.imgsz or read_train_args(opt.weights).get("imgsz", 640)
    predictor = CountingPredictor(overrides={"model": opt.weights, "imgsz": imgsz, "iou": COUNT_IOU, "verbose": False})
    dest = Path(tempfile.mkdtemp(prefix="tracker_speed"))
    _, low = fit_thresholds(find_tracker("bytetrack.yaml"), predictor.count_conf, dest / "low.yaml")
    predictor.args.conf = low
    rows = []
    for video in opt.videos:
        people, seed = (int(x) for x in video.split(":"))
        seq = ensure_crowd_video(people, opt.frames, opt.size, seed=seed, root=CACHE_DIR / "track_bench")
        frames = detections(predictor, sequence_frames(seq)[0])
        for name in opt.trackers:
            path, _ = fit_thresholds(find_tracker(name), predictor.count_conf, dest / Path(name).name)
            cfg = IterableSimpleNamespace(**{**YAML.load(path), "gmc_method": "none"})  # generated: no camera motion
            row = {"video": seq.name, "detections_per_frame": np.mean([len(f) for f in frames]), "tracker": name}
            rows.append({**row, **compare(cfg, frames, opt.repeats)})
            print(rows[-1], flush=True)
    Path(opt.out).parent.mkdir(parents=True, exist_ok=True)
    pd.DataFrame(rows).to_csv(opt.out, index=False, float_format="%.4g")
    print(machine_header(torch.device("cpu")), f"load {load()}")
    cols = list(rows[0])
    print(markdown_table(cols, [[f"{r[c]:.3g}" if isinstance(r[c], float) else str(r[c]) for c in cols] for r in rows]))


if __name__ == "__main__":
    main(parse_opt())
