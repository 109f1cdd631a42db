"""The video-action model: normalise, encode each frame, run a sequence head over the clip."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import torch
from torch import nn

from rnnvision_kit.nn import State, encoder_trunk, lr_groups


class ClipClassifier(nn.Module):
    """``B,T,C,H,W`` clips in [0, 1] -> frame encoder per frame -> ``B,T,F`` -> head -> logits.

    Per-step API (``rnnkit stream``, ONNX export), for a head that can stream (causal layers,
    unidirectional, ``pooling="last"``; :attr:`stream_blocker` says why another cannot):

    - ``encode_frame(frames B,C,H,W in [0, 1]) -> features B,F``: normalise and encode new
      frames (one encoder call per frame, however long the video);
    - ``initial_state(batch) -> state``: the head's zero state, a tuple of tensors described by
      ``head.state_spec()`` (each layer's, e.g. ``layer0_h``);
    - ``step(features B,F, state) -> (logits B,K, state)``: one step;
    - ``scan(features B,T,F, state) -> (logits B,T,K, state)``: a chunk of frames, the logits
      after each.

    The logits after frame ``t`` equal ``forward`` on frames ``0..t`` (eval mode, within float
    rounding): ``step(encode_frame(x[:, t]), state)`` from ``initial_state`` at ``t = 0``.
    """

    mean: torch.Tensor  # buffers: 1,C,1,1
    std: torch.Tensor

    def __init__(
        self,
        encoder: nn.Module,
        head: nn.Module,
        mean: Sequence[float],
        std: Sequence[float],
        pretrained_lr: float = 1.0,
    ) -> None:
        super().__init__()
        self.encoder = encoder
        self.head: Any = head  # a SequenceHead (per-step API), or a whole head (mean)
        self.pretrained_lr = pretrained_lr  # learning-rate multiplier of the encoder's trunk
        self.register_buffer("mean", torch.tensor(mean).view(1, -1, 1, 1))
        self.register_buffer("std", torch.tensor(std).view(1, -1, 1, 1))

    def forward(self, clips: torch.Tensor) -> torch.Tensor:
        b, t = clips.shape[:2]
        frames = (clips.flatten(0, 1) - self.mean) / self.std
        features = self.encoder(frames).view(b, t, -1)
        return self.head(features)

    def param_groups(self) -> list[dict[str, Any]]:
        """The runner's optimizer groups: the encoder's trunk at ``pretrained_lr`` times the
        learning rate, the rest (projection, head) at the learning rate; one group at 1.0."""
        if self.pretrained_lr == 1.0:
            return [{"params": list(self.parameters())}]
        return lr_groups(self, [encoder_trunk(self.encoder)], self.pretrained_lr)

    # ------------------------------------------------------------------ per-step API

    @property
    def stream_blocker(self) -> str | None:
        """Why this model cannot stream frame by frame, or None when it can."""
        blocker = getattr(self.head, "stream_blocker", None)
        if blocker is None and not callable(getattr(self.head, "scan", None)):
            return f"its head ({type(self.head).__name__}) has no per-step API"
        return blocker

    def encode_frame(self, frames: torch.Tensor) -> torch.Tensor:
        """Features ``B,F`` of frames ``B,C,H,W`` in [0, 1]."""
        return self.encoder((frames - self.mean) / self.std).flatten(1)

    def initial_state(self, batch: int = 1) -> State:
        """The head's zero state before the first frame."""
        return self.head.initial_state(batch)

    def step(
        self, features: torch.Tensor, state: State | None = None
    ) -> tuple[torch.Tensor, State]:
        """Logits ``B,K`` after one new frame's ``features B,F``, and the next state."""
        return self.head.step(features, state)

    def scan(
        self, features: torch.Tensor, state: State | None = None
    ) -> tuple[torch.Tensor, State]:
        """Logits ``B,T,K`` after each frame of ``features B,T,F``, and the last state."""
        return self.head.scan(features, state)
