"""The report of an evaluated split (the test split after training), in the run folder:

- ``predictions_<split>.png``: for the first few sequences, three rows each: the context
  frames, the true frames of the horizon, and the model's rollout;
- ``predictions_<split>.gif``: the same sequences playing, the true frame (left) beside the
  model's (right; the context frames themselves while the model reads them);
- ``error_by_step_<split>.png``: MSE per frame against the horizon step, the model's and
  copy-last's (the ``mse_steps`` and ``copy_last_mse_steps`` lists of the results).
"""

from __future__ import annotations

from collections.abc import Sized
from pathlib import Path
from typing import Any, cast

import numpy as np
import torch

from rnnkit_videopredict.config import PredictConfig
from rnnkit_videopredict.models import FramePredictor, convert_channels
from rnnkit_videopredict.predict import rollout, strip, to_rgb8, write_gif, write_png
from rnnvision_kit import ReportContext, reason, warn

SHOWN = 4  # sequences in the grid and the GIF
GIF_FPS = 4.0
GAP = 4


def _sequences(ctx: ReportContext, count: int) -> torch.Tensor:
    """The first ``count`` sequences of the split: ``B,T,C,H,W``."""
    n = min(count, len(cast(Sized, ctx.dataset)))
    return torch.stack([ctx.dataset[i][0] for i in range(n)])


def write_grid(path: Path, context: torch.Tensor, truth: torch.Tensor, preds: torch.Tensor) -> Path:
    """Rows per sequence: context, truth, prediction (``B,T,C,H,W`` each); a gap between
    sequences."""
    rows = []
    for b in range(context.shape[0]):
        rows += [[to_rgb8(context[b])], [to_rgb8(truth[b])], [to_rgb8(preds[b])]]
    return write_png(path, strip(rows, gap=GAP))


def write_playing(path: Path, frames: torch.Tensor, shown: torch.Tensor) -> Path:
    """A GIF: per time step, each sequence's true frame beside ``shown``'s, sequences stacked."""
    images = []
    for t in range(frames.shape[1]):
        pairs = [
            [to_rgb8(frames[b, t : t + 1]), to_rgb8(shown[b, t : t + 1])]
            for b in range(frames.shape[0])
        ]
        images.append(strip(pairs, gap=GAP))
    return write_gif(path, np.stack(images), GIF_FPS)


def plot_steps(path: Path, model: list[float], copy_last: list[float] | None, title: str) -> Path:
    """MSE per frame against the horizon step: the model and copy-last."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    steps = list(range(1, len(model) + 1))
    fig, ax = plt.subplots(figsize=(6, 4))
    ax.plot(steps, model, marker="o", markersize=3, label="model")
    if copy_last:
        ax.plot(steps, copy_last, marker="s", markersize=3, label="copy-last", linestyle="--")
    ax.set(xlabel="horizon step (frames ahead)", ylabel="MSE per frame", title=title)
    ax.set_ylim(bottom=0)
    ax.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return path


def write_report(ctx: ReportContext) -> None:
    """``predictions_<split>.png``, ``predictions_<split>.gif`` and ``error_by_step_<split>.png``
    in ``ctx.run_dir`` (a file that cannot be written is a warning line)."""
    config = cast(PredictConfig, ctx.config)
    model = cast(FramePredictor, ctx.model)
    split, context = ctx.split, config.data.context
    try:
        frames = _sequences(ctx, SHOWN).to(ctx.device)
        if frames.shape[0] and frames.shape[1] > context:
            horizon = frames.shape[1] - context
            preds = rollout(model, frames[:, :context], horizon)
            truth = convert_channels(frames, model.out_channels)
            write_grid(
                ctx.run_dir / f"predictions_{split}.png",
                truth[:, :context],
                truth[:, context:],
                preds,
            )
            shown = torch.cat([truth[:, :context], preds], 1)
            write_playing(ctx.run_dir / f"predictions_{split}.gif", truth, shown)
        steps: Any = ctx.results.get(f"{split}/mse_steps")
        if isinstance(steps, list | tuple) and steps:
            copy = ctx.results.get(f"{split}/copy_last_mse_steps")
            plot_steps(
                ctx.run_dir / f"error_by_step_{split}.png",
                [float(v) for v in steps],
                [float(v) for v in copy] if isinstance(copy, list | tuple) else None,
                f"{split}: MSE per frame by horizon step",
            )
    except OSError as error:
        warn(f"{ctx.run_dir}: video-predict report not written ({reason(error)})")
