"""The README's plots: kernels.png (training-step time per cell and kernel choice) and tasks.png (throughput per task
and input variant; achieved FLOP/s against the measured matmul peak)."""
from __future__ import annotations

from pathlib import Path

import numpy as np

from rnnbench.perf.record import Measurements, atomic_write
from rnnbench.perf.sizes import KERNEL_VARIANTS


def _pyplot():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def plot_kernels(out: Measurements, path: Path) -> bool:
    plt = _pyplot()
    cells = out.items("kernel")
    if not cells:
        return False
    measured = {r.variant for r in out.rows if r.section == "kernel"}
    variants = [(v, m) for m in ("unmasked", "masked") for v in KERNEL_VARIANTS if f"{v}, {m}" in measured]
    fig, ax = plt.subplots(figsize=(8, 4.8))
    width = 0.8 / len(variants)
    colors = {v: f"C{i}" for i, v in enumerate(KERNEL_VARIANTS)}
    for index, (variant, mask) in enumerate(variants):
        values = [out.get("kernel", c, f"{variant}, {mask}", "median_step_ms") or 0.0 for c in cells]
        ax.bar(np.arange(len(cells)) + (index - (len(variants) - 1) / 2) * width, values, width,
               label=f"{variant}, {mask}", color=colors[variant], hatch="//" if mask == "masked" else None)
    ax.set_xticks(np.arange(len(cells)), cells)
    ax.set_ylabel("median training step (ms), lower is better")
    ax.set_title("Kernel choices on this device")
    ax.legend(fontsize=7, ncol=3, loc="upper center", bbox_to_anchor=(0.5, -0.1))
    fig.tight_layout()
    atomic_write(path, lambda p: fig.savefig(p, dpi=100, format="png"))
    plt.close(fig)
    return True


def plot_tasks(out: Measurements, path: Path) -> None:
    plt = _pyplot()
    fig, (left, right) = plt.subplots(1, 2, figsize=(11, 4))
    tasks = out.items("task")
    variants = [("pipeline", "pipeline"), ("pipeline", "cached"), ("padding", "unbucketed")]
    width = 0.8 / len(variants)
    for index, (section, variant) in enumerate(variants):
        values = [out.get(section, t, variant, "train_samples_per_s") or 0.0 for t in tasks]
        left.bar(np.arange(len(tasks)) + (index - 1) * width, values, width, label=variant)
    left.set_xticks(np.arange(len(tasks)), tasks)
    left.set_yscale("log")
    left.set_ylabel("training samples/s (log), higher is better")
    left.legend(fontsize=8)
    left.set_title("Reference lstm per task")
    achieved = [r for r in out.rows if r.section == "flops" and r.metric == "achieved_flops"]
    labels = [f"{r.item}\n{r.variant}" for r in achieved]
    right.barh(np.arange(len(achieved)), [r.value / 1e9 for r in achieved])
    right.set_yticks(np.arange(len(achieved)), labels, fontsize=7)
    for r in out.rows:
        if r.section == "matmul" and r.metric == "peak_flops":
            right.axvline(r.value / 1e9, color="r", linestyle="--")
    right.set_xscale("log")
    right.set_xlabel("GFLOP/s (log); dashed: matmul peak")
    right.set_title("Achieved FLOP/s")
    fig.tight_layout()
    atomic_write(path, lambda p: fig.savefig(p, dpi=100, format="png"))
    plt.close(fig)
