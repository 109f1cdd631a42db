"""Export of the image-classify model: a whole image in, logits out (no state: each image is one
sequence of rows or columns, read in one call). The batch axis is dynamic."""

from __future__ import annotations

import torch
from torch import nn

from rnnvision_kit import Exportable, ExportContext


class _Logits(nn.Module):
    """``images B,C,H,W`` in [0, 1] -> ``(logits B,K,)``."""

    def __init__(self, model: nn.Module) -> None:
        super().__init__()
        self.model = model

    def forward(self, images: torch.Tensor) -> tuple[torch.Tensor]:
        return (self.model(images),)


def export_model(ctx: ExportContext) -> Exportable:
    """``images -> logits``; the check varies the batch size."""
    spec = ctx.spec
    shape = (spec.channels, spec.height, spec.width)

    def sample(n: int, generator: torch.Generator) -> tuple[torch.Tensor, ...]:
        return (torch.rand(n, *shape, generator=generator),)

    return Exportable(
        module=_Logits(ctx.model),
        inputs=("images",),
        outputs=("logits",),
        sample=sample,
        dynamic_axes={"images": {0: "batch"}, "logits": {0: "batch"}},
        vary="batch",
        sizes=(1, 3, 17),
        info={
            "mode": "image",
            "step": (
                "images: B,C,H,W float32 in [0, 1] at frame_size -> logits: B,K "
                "(softmax for probabilities); no state"
            ),
        },
    )
