"""PNG plots of a run: learning curves and a confusion matrix (matplotlib, Agg backend)."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any


def _pyplot() -> Any:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def plot_curves(rows: Sequence[dict[str, Any]], path: Path) -> None:
    """Loss (train and val), the other validation metrics, and the gradient norm before clipping
    (mean and max) with the fraction of clipped steps, per epoch."""
    if not rows:
        return
    plt = _pyplot()
    epochs = [r["epoch"] + 1 for r in rows]

    def curve(ax: Any, key: str) -> None:  # epochs without the key (train.val_every) left out
        points = [(r["epoch"] + 1, r[key]) for r in rows if r.get(key) is not None]
        ax.plot(*zip(*points, strict=True), marker="o", label=key)

    metric_keys = sorted(
        key
        for key, value in rows[-1].items()
        if key.startswith("val/")
        and key not in ("val/loss", "val/samples", "val/unreadable")
        and isinstance(value, int | float)
    )
    fig, (ax_loss, ax_metric, ax_grad) = plt.subplots(1, 3, figsize=(15, 4))
    for key in ("train/loss", "val/loss"):
        if key in rows[-1]:
            curve(ax_loss, key)
    ax_loss.set(xlabel="epoch", ylabel="loss", title="loss")
    ax_loss.legend()
    for key in metric_keys:
        curve(ax_metric, key)
    ax_metric.set(xlabel="epoch", title="validation metrics")
    if metric_keys:
        ax_metric.legend()
    _plot_gradients(ax_grad, epochs, rows)
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)


def _plot_gradients(ax: Any, epochs: list[int], rows: Sequence[dict[str, Any]]) -> None:
    ax.set(xlabel="epoch", ylabel="gradient norm", title="gradients (before clipping)")
    if not any("train/grad_norm" in r for r in rows):
        return
    for key, label in (("train/grad_norm", "mean"), ("train/grad_norm_max", "max")):
        ax.plot(epochs, [r.get(key) for r in rows], marker="o", label=label)
    norms = [r.get(key) for r in rows for key in ("train/grad_norm", "train/grad_norm_max")]
    if any(isinstance(v, int | float) and v > 0 for v in norms):  # (a model without gradients)
        ax.set_yscale("log")
    clipped = ax.twinx()
    clipped.bar(epochs, [r.get("train/clipped", 0.0) for r in rows], alpha=0.25, color="red")
    clipped.set(ylabel="fraction of steps clipped", ylim=(0, 1))
    ax.legend(loc="upper right")


def plot_confusion(
    matrix: Sequence[Sequence[float]], class_names: Sequence[str], path: Path
) -> None:
    """A confusion matrix, rows = true class, columns = predicted class, counts in the cells."""
    plt = _pyplot()
    n = len(class_names)
    size = max(4.0, 0.5 * n + 2)
    fig, ax = plt.subplots(figsize=(size, size))
    ax.imshow(matrix, cmap="Blues")
    ax.set_xticks(range(n), labels=class_names, rotation=90)
    ax.set_yticks(range(n), labels=class_names)
    ax.set(xlabel="predicted", ylabel="true", title="confusion matrix")
    if n <= 30:
        top = max((max(row) for row in matrix), default=0) or 1
        for i in range(n):
            for j in range(n):
                value = matrix[i][j]
                color = "white" if value > top / 2 else "black"
                ax.text(j, i, f"{value:g}", ha="center", va="center", color=color, fontsize=7)
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)
