"""The image-classify model: normalise, read the image as rows (and/or columns), sum the heads."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from rnnvision_kit.nn import encoder_trunk, lr_groups


class RowSequenceClassifier(nn.Module):
    """Normalise, turn ``B,C,H,W`` into a ``B,H,C*W`` row sequence (and/or columns), apply heads.

    With an ``encoder`` the heads read its ``B,C',H',W'`` feature map instead of the pixels
    (ReNet/CRNN style); gray images are repeated to 3 channels for it. ``pixels=True`` reads one
    pixel per step instead: ``B,H*W,C`` in row-major order (``rows`` head) or column-major
    (``columns``), each reordered by ``order`` (a permutation of ``H*W``, kept as a buffer) when
    given: sequential and permuted sequential MNIST."""

    mean: torch.Tensor  # buffers: 1,C,1,1 (C: 3 with an encoder of gray images)
    std: torch.Tensor
    order: torch.Tensor | None  # a permutation of H*W, or None

    def __init__(
        self,
        heads: dict[str, nn.Module],
        mean: Sequence[float],
        std: Sequence[float],
        encoder: nn.Module | None = None,
        gray: bool = False,
        pretrained_lr: float = 1.0,
        pixels: bool = False,
        order: torch.Tensor | None = None,
    ):
        super().__init__()
        self.pixels = pixels
        self.register_buffer("order", order)
        self.heads = nn.ModuleDict(heads)
        self.register_buffer("mean", torch.tensor(mean).view(1, -1, 1, 1))
        self.register_buffer("std", torch.tensor(std).view(1, -1, 1, 1))
        self.encoder: Any = encoder  # a backbone with feature_map(), or None
        self.gray = gray and encoder is not None
        self.pretrained_lr = pretrained_lr

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        if self.gray:
            images = images.expand(-1, 3, -1, -1)
        x = (images - self.mean) / self.std
        if self.encoder is not None:
            x = self.encoder.feature_map(x)
        b, c, h, w = x.shape
        logits: Any = 0  # the heads' logits, summed
        if self.pixels:
            for scan, head in self.heads.items():
                grid = x if scan == "rows" else x.transpose(2, 3)
                sequence = grid.flatten(2).transpose(1, 2)  # B,H*W,C
                if self.order is not None:
                    sequence = sequence[:, self.order]
                logits = logits + head(sequence)
            return logits
        if "rows" in self.heads:
            logits = logits + self.heads["rows"](x.permute(0, 2, 1, 3).reshape(b, h, c * w))
        if "columns" in self.heads:
            logits = logits + self.heads["columns"](x.permute(0, 3, 1, 2).reshape(b, w, c * h))
        return logits

    def param_groups(self) -> list[dict[str, Any]]:
        """The runner's optimizer groups: the encoder's trunk at ``pretrained_lr`` times the
        learning rate; one group when there is no encoder or the multiplier is 1."""
        if self.encoder is None or self.pretrained_lr == 1.0:
            return [{"params": list(self.parameters())}]
        return lr_groups(self, [encoder_trunk(self.encoder)], self.pretrained_lr)


def random_shift(images: torch.Tensor, max_shift: int) -> torch.Tensor:
    """Shift each image of a batch by its own random offset of up to ``max_shift`` pixels."""
    b, _, h, w = images.shape
    offsets = torch.randint(-max_shift, max_shift + 1, (b, 2), device=images.device)
    theta = torch.zeros(b, 2, 3, device=images.device, dtype=images.dtype)
    theta[:, 0, 0] = theta[:, 1, 1] = 1.0
    theta[:, 0, 2] = offsets[:, 0] * 2.0 / w
    theta[:, 1, 2] = offsets[:, 1] * 2.0 / h
    grid = F.affine_grid(theta, list(images.shape), align_corners=False)
    return F.grid_sample(images, grid, mode="nearest", padding_mode="zeros", align_corners=False)
