"""Benchmark: training step time of yolov5n-mfl per objectness loss, and how its time and peak memory grow.

One training step = network forward + YOLOv5Loss (assignment, targets, box/objectness losses) + backward, as the
trainer runs it (`model.loss(batch)`, then `loss.sum().backward()`), on random batches from bench/targets.py
(uniform centres, 6-60 px heads). Every table interleaves its contenders in one run and reports medians:

1. Same model, same batch, 1,000 heads per image: loss = bce, focal, heatmap, mfl. Goal: mfl / bce <= 1.05.
2. Heads per image 0, 100, 1,000, 3,000, 5,000 (mfl and bce): step time and peak memory.
3. Image size 320 to 1280 at a small batch (mfl and bce): step time and peak memory.

Peak memory: torch.cuda.max_memory_allocated on a GPU; on CPU the resident-set high-water mark of one step over the
RSS before it (see bench/common.py `PeakMemory`), an upper bound on tensor memory that includes allocator overhead.

CPU default: 1 torch thread, so that other jobs on the machine do not turn the timings into scheduler noise; --threads 0
gives every core, as the trainer does (use it on an idle machine).

Usage:
    python bench/train_speed.py                                    # CPU defaults, a few minutes on 2 cores
    python bench/train_speed.py --threads 0                        # every core, idle machine
    python bench/train_speed.py --device 0 --batch 16 --size-batch 8 --repeats 20 --sweep-repeats 10
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # run as a script from anywhere, like bench/targets.py

from bench.common import (
    THREADS_HELP,
    PeakMemory,
    interleaved_times,
    load,
    machine_header,
    markdown_table,
    med,
    spread,
    sync,
)  # noqa: E402
from bench.targets import make_batch  # noqa: E402
from models.yolo import AnchorDetectionModel  # noqa: E402
from utils import ROOT  # noqa: E402
from utils.detection_loss import OBJ_LOSSES, YOLOv5Loss  # noqa: E402
from utils.threads import use_all_cores  # noqa: E402
from utils.trainer import HYPS  # noqa: E402

GOAL = 1.05  # mfl step time / bce step time at 1,000 heads per image


class Stepper:
    """Training steps of one model with one objectness loss each, timing forward, loss and backward separately.

    Attributes:
        model (AnchorDetectionModel): The network, in training mode.
        criteria (dict[str, YOLOv5Loss]): Loss kind -> criterion built from the hyp file with that `loss`.
        phases (dict[str, list[tuple[float, float, float]]]): Contender -> (forward, loss, backward) seconds per step.
    """

    def __init__(self, cfg: str, device: torch.device, losses: tuple[str, ...]):
        """Build the model and one criterion per loss kind, with hyp.scratch.yaml's values as in training."""
        from ultralytics.utils import YAML

        self.device = device
        self.model = AnchorDetectionModel(cfg, nc=1, verbose=False).to(device).train()
        hyp = YAML.load(HYPS["anchor"])
        self.criteria = {}
        for kind in losses:
            self.model.args = {**hyp, "loss": kind}
            self.criteria[kind] = YOLOv5Loss.from_model(self.model)
        self.phases: dict[str, list[tuple[float, float, float]]] = {}

    def step(self, kind: str, batch: dict[str, torch.Tensor], tag: str | None = None) -> None:
        """One training step with loss `kind`, recording its phases under `tag` when given."""
        self.model.zero_grad(set_to_none=True)
        self.model.criterion = self.criteria[kind]  # what model.loss() uses, as the trainer calls it
        t0 = time.perf_counter()
        preds = self.model(batch["img"])
        sync(self.device)
        t1 = time.perf_counter()
        loss, _ = self.model.loss(batch, preds)
        sync(self.device)
        t2 = time.perf_counter()
        loss.sum().backward()
        sync(self.device)
        if tag:
            self.phases.setdefault(tag, []).append((t1 - t0, t2 - t1, time.perf_counter() - t2))

    def phase_medians(self, tag: str, skip: int) -> tuple[float, float, float]:
        """Median forward, loss and backward seconds of a contender's steps after the first `skip` (warm-up)."""
        rows = self.phases[tag][skip:]
        return tuple(med([r[i] for r in rows]) for i in range(3))

    def peak_mib(self, kind: str, batch: dict[str, torch.Tensor]) -> float | None:
        """Peak memory of one step beyond what is allocated before it (MiB)."""
        self.model.zero_grad(set_to_none=True)
        with PeakMemory(self.device) as mem:
            self.step(kind, batch)
        self.model.zero_grad(set_to_none=True)
        return mem.value


def loss_table(st: Stepper, batch: dict, opt: argparse.Namespace) -> str:
    """Table 1: step time per objectness loss on one batch."""
    kinds = list(st.criteria)
    times = interleaved_times({k: lambda k=k: st.step(k, batch, k) for k in kinds}, opt.repeats, st.device)
    ref = med(times["bce"])
    rows = []
    for k in kinds:
        fwd, lss, bwd = st.phase_medians(k, skip=1)
        rows.append(
            [
                k,
                f"{med(times[k]) * 1e3:.0f}",
                spread(times[k]),
                f"{fwd * 1e3:.0f}",
                f"{lss * 1e3:.1f}",
                f"{bwd * 1e3:.0f}",
                f"{med(times[k]) / ref:.3f}",
            ]
        )
    ratio = med(times["mfl"]) / ref
    verdict = "met" if ratio <= GOAL else f"MISSED by {100 * (ratio / GOAL - 1):.1f}%"
    head = ["loss", "step (ms)", "spread", "forward (ms)", "loss (ms)", "backward (ms)", "step / bce"]
    return (
        f"### 1. Step time per objectness loss (batch {opt.batch}, {opt.imgsz}x{opt.imgsz}, {opt.heads} heads per "
        f"image, {opt.repeats} interleaved repeats, median)\n\n{markdown_table(head, rows)}\n\n"
        f"mfl / bce = {ratio:.3f} (goal <= {GOAL}): {verdict}. Load after: {load()}\n"
    )


def sweep_table(
    st: Stepper, title: str, label: str, points: list[int], batches: list[dict], opt: argparse.Namespace
) -> str:
    """Tables 2 and 3: mfl and bce step time and peak memory at each point of a sweep, all interleaved."""
    contenders = {}
    for p, b in zip(points, batches):
        for k in ("mfl", "bce"):
            contenders[f"{k}@{p}"] = lambda k=k, b=b, tag=f"{k}@{p}": st.step(k, b, tag)
    times = interleaved_times(contenders, opt.sweep_repeats, st.device)
    rows = []
    for p, b in zip(points, batches):
        m, c = med(times[f"mfl@{p}"]), med(times[f"bce@{p}"])
        mem_m, mem_c = st.peak_mib("mfl", b), st.peak_mib("bce", b)
        fmt = lambda v: "n/a" if v is None else f"{v:.0f}"  # noqa: E731
        rows.append(
            [
                p,
                f"{m * 1e3:.0f}",
                spread(times[f"mfl@{p}"]),
                f"{st.phase_medians(f'mfl@{p}', 1)[1] * 1e3:.1f}",
                f"{c * 1e3:.0f}",
                f"{st.phase_medians(f'bce@{p}', 1)[1] * 1e3:.1f}",
                f"{m / c:.3f}",
                fmt(mem_m),
                fmt(mem_c),
            ]
        )
    head = [
        label,
        "mfl step (ms)",
        "spread",
        "mfl loss (ms)",
        "bce step (ms)",
        "bce loss (ms)",
        "mfl / bce",
        "mfl peak (MiB)",
        "bce peak (MiB)",
    ]
    return f"{title}\n\n{markdown_table(head, rows)}\n\nLoad after: {load()}\n"


def main(opt: argparse.Namespace) -> None:
    """Print the three tables in markdown."""
    device = torch.device("cuda:0" if opt.device.isdigit() else opt.device)
    threads = use_all_cores()  # as MFLTrainer on CPU, unless --threads says otherwise
    if opt.threads:
        torch.set_num_threads(threads := opt.threads)
    torch.manual_seed(0)
    st = Stepper(opt.cfg, device, OBJ_LOSSES)
    print(machine_header(device))
    print(f"- model {Path(opt.cfg).name}, threads {threads}; peak memory: {PeakMemory.method(device)}\n")
    print(loss_table(st, make_batch(opt.batch, opt.imgsz, opt.heads, device), opt), flush=True)
    heads = [int(h) for h in opt.heads_sweep.split(",")]
    title = (
        f"### 2. Heads per image (batch {opt.batch}, {opt.imgsz}x{opt.imgsz}, {opt.sweep_repeats} interleaved "
        f"repeats, median)"
    )
    print(
        sweep_table(st, title, "heads/img", heads, [make_batch(opt.batch, opt.imgsz, h, device) for h in heads], opt),
        flush=True,
    )
    sizes = [int(s) for s in opt.sizes.split(",")]
    small = " (small batch: CPU default)" if device.type == "cpu" and opt.size_batch < opt.batch else ""
    title = (
        f"### 3. Image size (batch {opt.size_batch}{small}, {opt.heads} heads per image, {opt.sweep_repeats} "
        f"interleaved repeats, median)"
    )
    print(
        sweep_table(st, title, "imgsz", sizes, [make_batch(opt.size_batch, s, opt.heads, device) for s in sizes], opt)
    )


def parse_opt() -> argparse.Namespace:
    """Benchmark settings; the defaults finish in a few minutes on a 2-core CPU."""
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--device", default="cpu", help="cpu, or a CUDA index such as 0")
    p.add_argument("--cfg", default=str(ROOT / "models" / "yolov5n-mfl.yaml"), help="model YAML")
    p.add_argument("--batch", type=int, default=2, help="batch of tables 1 and 2")
    p.add_argument("--imgsz", type=int, default=640, help="image size of tables 1 and 2")
    p.add_argument("--heads", type=int, default=1000, help="heads per image in tables 1 and 3")
    p.add_argument("--repeats", type=int, default=10, help="timed rounds of table 1")
    p.add_argument("--sweep-repeats", type=int, default=5, help="timed rounds of tables 2 and 3")
    p.add_argument("--heads-sweep", default="0,100,1000,3000,5000", help="heads per image of table 2")
    p.add_argument("--sizes", default="320,640,960,1280", help="image sizes of table 3")
    p.add_argument("--size-batch", type=int, default=1, help="batch of table 3")
    p.add_argument("--threads", type=int, default=1, help=THREADS_HELP)
    return p.parse_args()


if __name__ == "__main__":
    main(parse_opt())
