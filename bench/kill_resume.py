"""Kill training at random moments and during checkpoint writes; every time, `--resume` must pick the run up.

Trains train.py on a small synthetic crowd set once without interruption, then once more under fire: after the first
checkpoint exists the run is SIGKILLed again and again, alternately at a random moment and the instant a checkpoint
write begins (its temporary file appears), and resumed from last.pt after each kill. Reports how many kills landed
mid-write, whether last.pt always loaded and `--resume` always succeeded, and the final metrics of both runs.

Usage:
    python bench/kill_resume.py --kills 20
"""

from __future__ import annotations

import argparse
import json
import random
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pandas as pd

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from data.synthetic import ensure_synthetic_crowd  # noqa: E402
from utils import ROOT  # noqa: E402
from utils.checkpoint import load_checkpoint  # noqa: E402

METRICS = ("metrics/mAP50(B)", "metrics/MAE(count)", "metrics/RMSE(count)")


def train_cmd(data: str, project: Path, name: str, opt: argparse.Namespace) -> list[str]:
    """train.py command line of the benchmark's small run."""
    return [
        sys.executable, str(ROOT / "train.py"), "--data", data, "--epochs", str(opt.epochs), "--imgsz", str(opt.imgsz),
        "--batch-size", "8", "--workers", "0", "--project", str(project), "--name", name, "--exist-ok",
    ]  # fmt: skip


def final_metrics(run: Path) -> dict[str, float]:
    """Losses and metrics of the last row of results.csv: a resumed run on the same trajectory matches them all."""
    row = pd.read_csv(run / "results.csv").rename(columns=str.strip).iloc[-1]
    keys = [k for k in row.index if "loss" in k] + list(METRICS)
    return {k: round(float(row[k]), 5) for k in keys} | {"epochs_logged": int(row["epoch"])}


def wait_for(predicate, proc: subprocess.Popen, poll: float) -> bool:
    """Poll until `predicate()` holds (True) or the process exits (False)."""
    while proc.poll() is None:
        if predicate():
            return True
        time.sleep(poll)
    return False


def nth_write(weights: Path, n: int):
    """A predicate that turns true when the n-th checkpoint write since its creation is under way."""
    state = {"seen": 0, "writing": False}

    def check() -> bool:
        writing = any(weights.glob("*.tmp"))
        state["seen"] += writing and not state["writing"]
        state["writing"] = writing
        return writing and state["seen"] >= n

    return check


def kill_once(cmd: list[str], weights: Path, during_write: bool, rng: random.Random, run_s: float, epochs: int) -> str:
    """Start `cmd`, kill it (mid-write or at a random moment); return 'killed', 'killed-mid-write' or 'finished'.

    Mid-write kills land in the 1st to 3rd checkpoint write of the resumed run, random ones within about three epochs
    of an uninterrupted run (`run_s` over `epochs`), so the run advances between kills.
    """
    for stale in weights.glob("*.tmp"):  # left by the previous kill mid-write (the trainer removes them too)
        stale.unlink()
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    if during_write:
        landed = wait_for(nth_write(weights, rng.randint(1, 3)), proc, 0.0005)
    else:
        deadline = time.monotonic() + rng.uniform(2.0, 3 * run_s / epochs)  # within about three epochs
        landed = wait_for(lambda: time.monotonic() > deadline, proc, 0.01)
    if not landed:
        return "finished" if proc.returncode == 0 else f"resume failed (exit {proc.returncode})"
    mid_write = any(weights.glob("*.tmp"))
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    return "killed-mid-write" if mid_write else "killed"


def main(opt: argparse.Namespace) -> dict:
    """Run the uninterrupted and the killed run, and write the report."""
    project = Path(opt.project).resolve()
    for name in ("uninterrupted", "killed"):
        shutil.rmtree(project / name, ignore_errors=True)
    data = str(ensure_synthetic_crowd(24, 8, opt.imgsz, 60, seed=1, root=project / "crowd"))
    t0 = time.perf_counter()
    subprocess.run(train_cmd(data, project, "uninterrupted", opt), check=True, capture_output=True)
    clean_s = time.perf_counter() - t0

    weights = project / "killed" / "weights"
    rng, log = random.Random(opt.seed), []
    cmd = train_cmd(data, project, "killed", opt)
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    wait_for(lambda: (weights / "last.pt").exists(), proc, 0.05)  # a resume needs one complete epoch
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    resume = [*cmd, "--resume", str(weights / "last.pt")]
    while len([e for e in log if e["event"].startswith("killed")]) < opt.kills:
        event = kill_once(resume, weights, len(log) % 2 == 0, rng, clean_s, opt.epochs)
        try:
            epoch = load_checkpoint(weights / "last.pt", safe_only=False)[0]["epoch"]
            loads = True
        except ValueError:
            epoch, loads = None, False
        log.append({"event": event, "last_pt_loads": loads, "last_pt_epoch": epoch})
        print(log[-1], flush=True)
        if not event.startswith("killed"):
            break
    if log[-1]["event"].startswith("killed"):  # let the last resume run to the end
        rc = subprocess.run(resume, capture_output=True).returncode
        log.append({"event": "finished" if rc == 0 else f"resume failed (exit {rc})"})
    report = {
        "kills": sum(e["event"].startswith("killed") for e in log),
        "kills_mid_write": sum(e["event"] == "killed-mid-write" for e in log),
        "last_pt_always_loaded": all(e.get("last_pt_loads", True) for e in log),
        "resumes_failed": sum(e["event"].startswith("resume failed") for e in log),
        "finished": log[-1]["event"] == "finished",
        "uninterrupted": final_metrics(project / "uninterrupted"),
        "killed_and_resumed": final_metrics(project / "killed"),
        "uninterrupted_s": round(clean_s, 1),
        "events": log,
        "settings": {"epochs": opt.epochs, "imgsz": opt.imgsz, "seed": opt.seed},
    }
    out = ROOT / "bench" / "results" / "kill_resume.json"
    out.write_text(json.dumps(report, indent=1) + "\n")
    print(json.dumps({k: v for k, v in report.items() if k != "events"}, indent=1))
    return report


def parse_opt(args: list[str] | None = None) -> argparse.Namespace:
    """Command-line options."""
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--kills", type=int, default=20, help="kills after the first checkpoint")
    p.add_argument("--epochs", type=int, default=30)
    p.add_argument("--imgsz", type=int, default=128)
    p.add_argument("--seed", type=int, default=0, help="seed of the kill times")
    p.add_argument("--project", default=str(ROOT / "runs" / "kill_resume"))
    return p.parse_args(args)


if __name__ == "__main__":
    main(parse_opt())
