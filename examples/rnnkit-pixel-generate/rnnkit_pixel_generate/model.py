"""A Row LSTM for images of discrete levels (PixelRNN-style, van den Oord et al., 2016).

The likelihood factorises in raster order, ``p(x) = prod_r prod_c p(x[r, c] | x[<r, :], x[r, <c])``:
an LSTM runs down the rows and its state before row ``r`` summarises the rows above; a causal
convolution along row ``r`` sees only the pixels left of ``c``. Both are added and mapped to
per-pixel categorical logits. The output layer starts at zero, so an untrained model predicts the
uniform distribution: ``log2(levels)`` bits per dimension.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn


class CausalRowConv(nn.Module):
    """A 1-D convolution along a row whose output at column ``c`` sees columns ``< c`` only."""

    def __init__(self, in_channels: int, out_channels: int, width: int) -> None:
        super().__init__()
        self.width = width
        self.conv = nn.Conv1d(in_channels, out_channels, kernel_size=width)

    def forward(self, rows: torch.Tensor) -> torch.Tensor:  # N,C,W -> N,out,W
        padded = F.pad(rows, (self.width, 0))  # output c covers padded [c, c+W) = columns c-W..c-1
        return self.conv(padded)[..., : self.width]


class RowLSTM(nn.Module):
    """``B,H,W`` level indices in, ``B,levels,H,W`` logits out (each pixel given the ones before)."""

    def __init__(
        self,
        height: int,
        width: int,
        levels: int,
        *,
        hidden_size: int = 128,
        channels: int = 32,
        num_layers: int = 1,
    ) -> None:
        super().__init__()
        self.height, self.width, self.levels, self.channels = height, width, levels, channels
        self.start = nn.Parameter(torch.zeros(width * levels))  # the input standing for row -1
        self.lstm = nn.LSTM(width * levels, hidden_size, num_layers=num_layers, batch_first=True)
        self.context = nn.Linear(hidden_size, width * channels)
        self.left = CausalRowConv(levels, channels, width)
        self.hidden = nn.Conv1d(channels, channels, kernel_size=1)
        self.out = nn.Conv1d(channels, levels, kernel_size=1)
        nn.init.zeros_(self.out.weight)
        nn.init.zeros_(self.out.bias)

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        b, h, w = images.shape
        one_hot = F.one_hot(images, self.levels).float()  # B,H,W,L
        rows = one_hot.flatten(2)  # B,H,W*L
        above = torch.cat([self.start.expand(b, 1, -1), rows[:, :-1]], dim=1)  # rows shifted down
        state, _ = self.lstm(above)  # B,H,hidden: row r's state has seen rows < r
        context = self.context(state).view(b * h, w, self.channels).transpose(1, 2)
        left = self.left(one_hot.view(b * h, w, self.levels).transpose(1, 2))  # N,C,W
        features = F.relu(self.hidden(F.relu(context + left)))
        logits = self.out(features)  # B*H, L, W
        return logits.view(b, h, self.levels, w).transpose(1, 2)

    @torch.no_grad()
    def sample(self, count: int, generator: torch.Generator | None = None) -> torch.Tensor:
        """``count`` images ``N,H,W`` drawn pixel by pixel in raster order (one pass per pixel)."""
        device = self.start.device
        images = torch.zeros(count, self.height, self.width, dtype=torch.long, device=device)
        for r in range(self.height):
            for c in range(self.width):
                probabilities = self(images)[:, :, r, c].float().softmax(dim=1)
                images[:, r, c] = torch.multinomial(probabilities.cpu(), 1, generator=generator)[
                    :, 0
                ].to(device)
        return images
