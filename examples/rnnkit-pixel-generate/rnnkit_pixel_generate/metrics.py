"""Bits per dimension, the usual likelihood metric of image models, as a torchmetrics Metric."""

from __future__ import annotations

import math

import torch
from torchmetrics import Metric


class BitsPerDim(Metric):
    """Mean negative log2-likelihood per dimension (pixel); lower is better.

    ``update(nll)`` takes per-dimension negative log-likelihoods in nats, any shape (a second
    argument, the targets, is accepted and ignored so that the default ``Task.update_metrics``
    works). Sums are synchronised across DDP processes.
    """

    higher_is_better = False
    is_differentiable = False
    full_state_update = False

    def __init__(self, **kwargs: object) -> None:
        super().__init__(**kwargs)
        self.add_state("nats", default=torch.tensor(0.0), dist_reduce_fx="sum")
        self.add_state("count", default=torch.tensor(0), dist_reduce_fx="sum")

    def update(self, nll: torch.Tensor, target: torch.Tensor | None = None) -> None:
        self.nats += nll.detach().float().sum()
        self.count += nll.numel()

    def compute(self) -> torch.Tensor:
        return self.nats / self.count.clamp(min=1) / math.log(2)
