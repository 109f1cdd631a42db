"""The video-action model: normalise, encode each frame, run a sequence head over the clip."""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn


class ClipClassifier(nn.Module):
    """``B,T,C,H,W`` clips in [0, 1] -> frame encoder per frame -> ``B,T,F`` -> head -> logits."""

    def __init__(
        self, encoder: nn.Module, head: nn.Module, mean: Sequence[float], std: Sequence[float]
    ) -> None:
        super().__init__()
        self.encoder = encoder
        self.head = head
        self.register_buffer("mean", torch.tensor(mean).view(1, -1, 1, 1))
        self.register_buffer("std", torch.tensor(std).view(1, -1, 1, 1))

    def forward(self, clips: torch.Tensor) -> torch.Tensor:
        b, t = clips.shape[:2]
        frames = (clips.flatten(0, 1) - self.mean) / self.std
        features = self.encoder(frames).view(b, t, -1)
        return self.head(features)
