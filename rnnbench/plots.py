"""Plots of one run: its learning curves and its attention weights."""
from __future__ import annotations

from pathlib import Path

import numpy as np


def plot_learning_curve(history: dict, metric: str, path: Path, title: str = "") -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    names = [n for n in ("loss", metric) if history.get(n) or history.get(f"val_{n}")]
    if not names:  # nothing was trained in this process and no earlier epochs were recorded
        return
    fig, axes = plt.subplots(1, len(names), figsize=(5 * len(names), 3.5), squeeze=False)
    for ax, name in zip(axes[0], names):
        epochs = range(1, len(history.get(name) or history[f"val_{name}"]) + 1)
        if name in history:
            ax.plot(epochs, history[name], label=f"train {name}")
        if f"val_{name}" in history:
            ax.plot(epochs, history[f"val_{name}"], label=f"val {name}")
        ax.set_xlabel("epoch")
        ax.set_ylabel(name)
        ax.legend()
    fig.suptitle(title)
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)


def plot_attention(weights: np.ndarray, path: Path, title: str = "") -> None:
    """Pooling weights (examples x steps) as rows, or the first head's step-by-step map of the first example."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    matrix = weights if weights.ndim == 2 else weights[0, 0]
    fig, ax = plt.subplots(figsize=(8, 3 if weights.ndim == 2 else 6))
    image = ax.imshow(matrix, aspect="auto", cmap="viridis")
    ax.set_xlabel("attended step")
    ax.set_ylabel("example" if weights.ndim == 2 else "query step")
    fig.colorbar(image, ax=ax)
    ax.set_title(f"{title} attention")
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)
