"""Frame-prediction metrics, updated with predicted and true frames ``B,S,C,H,W`` in [0, 1]
(``S`` horizon steps), each per frame then averaged over sequences:

- ``mse`` / ``mae``: squared / absolute error summed over the pixels (and channels) of a frame,
  as OpenSTL reports Moving MNIST (values in [0, 1]);
- ``psnr``: ``10 log10(1 / mean squared error)`` of a frame (capped at 100 dB for a perfect one);
- ``ssim``: SSIM (Wang et al. 2004: Gaussian window 11, sigma 1.5, data range 1, valid region)
  averaged over a frame's pixels and channels.

``<name>`` averages over the horizon steps too; ``<name>_steps`` keeps one value per step.
"""

from __future__ import annotations

import math
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor
from torchmetrics import Metric

from rnnvision_kit import DataSpec

NAMES = ("mse", "mae", "ssim", "psnr")
PSNR_CAP = 100.0  # dB of a frame predicted exactly


def _gaussian(size: int = 11, sigma: float = 1.5) -> Tensor:
    g = torch.exp(-((torch.arange(size) - size // 2) ** 2) / (2 * sigma**2))
    return g / g.sum()


def ssim_per_frame(preds: Tensor, targets: Tensor) -> Tensor:
    """SSIM of each frame of ``B,S,C,H,W`` tensors: ``B,S`` (an 11x11 window needs frames of at
    least 11 pixels a side; smaller ones use a window of their size). The Gaussian window is
    applied as two 1-D convolutions, in float32."""
    b, s, c, h, w = preds.shape
    size = min(11, h, w)
    g = _gaussian(size).to(device=preds.device, dtype=torch.float32)
    x = preds.reshape(b * s * c, 1, h, w).float()
    y = targets.reshape(b * s * c, 1, h, w).float()
    # the five maps blurred at once (x, y, x^2, y^2, xy), as channels of one grouped
    # convolution: on the CPU far faster than a batch of one-channel images
    stacked = torch.cat([x, y, x * x, y * y, x * y], 1).view(1, -1, h, w)
    n = stacked.shape[1]
    rows, cols = (
        g.view(1, 1, size, 1).expand(n, 1, size, 1),
        g.view(1, 1, 1, size).expand(n, 1, 1, size),
    )
    blurred = F.conv2d(F.conv2d(stacked, rows, groups=n), cols, groups=n)
    blurred = blurred.view(b * s * c, 5, h - size + 1, -1)
    mx, my, xx, yy, xy = blurred.unbind(1)
    vx, vy, cov = xx - mx**2, yy - my**2, xy - mx * my
    c1, c2 = 0.01**2, 0.03**2
    ssim = ((2 * mx * my + c1) * (2 * cov + c2)) / ((mx**2 + my**2 + c1) * (vx + vy + c2))
    return ssim.view(b, s, -1).mean(-1).to(preds.dtype)


def per_frame(name: str, preds: Tensor, targets: Tensor) -> Tensor:
    """``B,S`` values of metric ``name`` (see the module docstring)."""
    diff = preds.float() - targets.float()
    if name == "mse":
        return diff.square().sum(dim=(2, 3, 4))
    if name == "mae":
        return diff.abs().sum(dim=(2, 3, 4))
    if name == "psnr":
        mean = diff.square().mean(dim=(2, 3, 4)).clamp(min=10 ** (-PSNR_CAP / 10))
        return -10 * torch.log10(mean)
    if name == "ssim":
        return ssim_per_frame(preds.float(), targets.float())
    raise KeyError(f"unknown video-predict metric {name!r}")


class FrameMetric(Metric):
    """One of :data:`NAMES`, averaged over sequences per horizon step; ``compute`` gives the
    mean over steps, or the list of per-step values when ``per_step``."""

    full_state_update = False
    sums: list[Tensor]  # per batch: the step values summed over its sequences
    count: Tensor  # sequences seen

    def __init__(self, name: str, per_step: bool = False, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        if name not in NAMES:
            raise KeyError(f"unknown video-predict metric {name!r}")
        self.name, self.per_step = name, per_step
        self.add_state("sums", default=[], dist_reduce_fx="cat")
        self.add_state("count", default=torch.zeros((), dtype=torch.float64), dist_reduce_fx="sum")

    def update(self, preds: Tensor, targets: Tensor) -> None:
        values = per_frame(self.name, preds.clamp(0, 1), targets)  # B,S
        self.sums.append(values.double().sum(0))
        self.count += values.shape[0]

    def compute(self) -> Tensor | list[float]:
        sums: list[Tensor] | Tensor = self.sums
        if isinstance(sums, Tensor):  # after a distributed reduce: cat of the steps' sums
            sums = [sums]
        if not sums:
            return [] if self.per_step else torch.tensor(math.nan)
        steps = max(s.numel() for s in sums)
        total = torch.zeros(steps, dtype=torch.float64, device=sums[0].device)
        for s in sums:
            total[: s.numel()] += s.view(-1)
        means = total / self.count.clamp(min=1)
        return [float(v) for v in means] if self.per_step else means.mean().float()


def create_metric(name: str, spec: DataSpec, **options: Any) -> Metric:
    """The registered metric ``name`` (``mse``, ``mse_steps``, ...)."""
    base = name.removesuffix("_steps")
    return FrameMetric(base, per_step=name.endswith("_steps"), **options)
