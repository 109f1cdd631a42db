"""The data kind ``frames`` of video-predict: unlabelled frame sequences (no torch import).

An item is ``(frames, index)``: float32 ``T,C,H,W`` in [0, 1] (``T = context + horizon``; the
evaluation splits may hold longer sequences, ``context + eval_horizon``) and the sequence's
int64 index in its split.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

from rnnvision_kit import DataSpec

KIND = "frames"


@dataclass(frozen=True)
class FramesSpec(DataSpec):
    """Spec of ``frames`` data: ``context`` frames in, ``horizon`` frames out (training)."""

    context: int = 10  # frames the model reads before predicting
    horizon: int = 10  # frames it predicts in training (evaluation may roll out further)

    kind: ClassVar[str] = KIND
