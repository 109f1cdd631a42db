"""Bits per dimension, the usual likelihood metric of image models, as a torchmetrics Metric,
and the factory ``plugin.py`` registers it with (metric ``bpd``, for ``levels`` data)."""

from __future__ import annotations

import math
from typing import Any

import torch
import torch.nn.functional as F
from torchmetrics import Metric

from rnnvision_kit import DataSpec


class BitsPerDim(Metric):
    """Mean negative log2-likelihood per dimension (pixel); lower is better.

    ``update(logits, targets)`` takes per-pixel logits ``B,L,H,W`` over the ``L`` levels and the
    level indices ``B,H,W`` (what ``StepOutput`` carries for ``levels`` data, so that the runner
    can update it for any task of that kind). Sums are synchronised across DDP processes.
    """

    higher_is_better = False
    is_differentiable = False
    full_state_update = False

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.add_state("nats", default=torch.tensor(0.0), dist_reduce_fx="sum")
        self.add_state("count", default=torch.tensor(0), dist_reduce_fx="sum")

    def update(self, logits: torch.Tensor, targets: torch.Tensor) -> None:
        nll = F.cross_entropy(logits.detach().float(), targets, reduction="sum")
        self.nats += nll
        self.count += targets.numel()

    def compute(self) -> torch.Tensor:
        return self.nats / self.count.clamp(min=1) / math.log(2)


METRICS = {"bpd": BitsPerDim}


def create_metric(name: str, spec: DataSpec, **options: Any) -> Metric:
    """The metric ``name`` (a key of ``METRICS``) for data of ``spec``."""
    return METRICS[name](**options)
