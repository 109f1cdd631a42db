"""Reference ConvGRU with six separate convolutions, for tests and ``benchmarks/convgru.py``.

Not public API: it exists to check :class:`~rnnvision_kit.nn.convrnn.ConvGRUCell` numerically
and to measure it against the textbook formulation.
"""

from __future__ import annotations

import torch
from torch import Tensor, nn

from rnnvision_kit.nn.convrnn import ConvGRUCell


class NaiveConvGRUCell(nn.Module):
    """ConvGRU step with convolutions ``W_xr, W_hr, W_xz, W_hz, W_xn, W_hn`` (biases on ``W_x*``)."""

    def __init__(
        self,
        input_channels: int,
        hidden_channels: int,
        kernel_size: int = 3,
        dilation: int = 1,
        bias: bool = True,
    ) -> None:
        super().__init__()
        pad = dilation * (kernel_size - 1) // 2
        self.hidden_channels = hidden_channels

        def conv(cin: int, with_bias: bool) -> nn.Conv2d:
            return nn.Conv2d(
                cin, hidden_channels, kernel_size, padding=pad, dilation=dilation, bias=with_bias
            )

        self.W_xr, self.W_xz, self.W_xn = (conv(input_channels, bias) for _ in range(3))
        self.W_hr, self.W_hz, self.W_hn = (conv(hidden_channels, False) for _ in range(3))

    def forward(self, x: Tensor, h: Tensor) -> Tensor:
        r = torch.sigmoid(self.W_xr(x) + self.W_hr(h))
        z = torch.sigmoid(self.W_xz(x) + self.W_hz(h))
        n = torch.tanh(self.W_xn(x) + self.W_hn(r * h))
        return (1 - z) * h + z * n


def naive_sequence(cell: NaiveConvGRUCell, x: Tensor, h: Tensor | None = None) -> Tensor:
    """Unroll ``cell`` over a clip ``B,T,C,H,W`` from ``h`` (zeros if None); outputs ``B,T,hid,H,W``."""
    if h is None:
        b, _, _, height, width = x.shape
        h = x.new_zeros(b, cell.hidden_channels, height, width)
    outputs = []
    for xt in x.unbind(1):
        h = cell(xt, h)
        outputs.append(h)
    return torch.stack(outputs, 1)


@torch.no_grad()
def copy_naive_to_fused(naive: NaiveConvGRUCell, cell: ConvGRUCell) -> None:
    """Load ``naive``'s weights into the fused ``cell`` so both compute the same function."""
    cell.input_conv.weight.copy_(
        torch.cat([naive.W_xr.weight, naive.W_xz.weight, naive.W_xn.weight])
    )
    if cell.input_conv.bias is not None:
        biases = [naive.W_xr.bias, naive.W_xz.bias, naive.W_xn.bias]
        cell.input_conv.bias.copy_(torch.cat([b for b in biases if b is not None]))
    cell.gate_conv.weight.copy_(torch.cat([naive.W_hr.weight, naive.W_hz.weight]))
    cell.candidate_conv.weight.copy_(naive.W_hn.weight)
