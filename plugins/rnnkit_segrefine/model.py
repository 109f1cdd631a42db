"""The seg-refine model: an smp segmenter applied to each frame, then a ConvGRU (or ConvLSTM)
that refines the per-frame logits across the frames of a clip (video mode) or across K
iterations on each image (image mode), as a residual correction. The model also holds its loss
(:meth:`SegRefiner.loss`: cross-entropy + Dice on the refined logits, plus an auxiliary term on
the per-frame ones)."""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from typing import Any, cast

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from rnnkit_segrefine.config import SegModelConfig
from rnnkit_segrefine.readers import check_divisible
from rnnvision_kit import ConfigError, DataError
from rnnvision_kit.nn import ConvGRU, ConvGRUCell, ConvLSTM, ConvLSTMCell

State = Any  # per-layer recurrent states, as ConvGRU/ConvLSTM return them


def create_segmenter(m: SegModelConfig, num_classes: int) -> nn.Module:
    """``smp.create_model(arch, encoder_name=..., encoder_weights=None, in_channels=3, classes=K)``
    with the configured extras; smp's own errors become one line naming the settings."""
    import segmentation_models_pytorch as smp

    try:
        return smp.create_model(m.arch, in_channels=3, classes=num_classes, **m.smp_kwargs())
    except Exception as error:  # smp raises KeyError/ValueError/TypeError/AssertionError
        detail = " ".join(str(error).split())[:200] or type(error).__name__
        raise ConfigError(
            f"model.arch={m.arch}, model.encoder={m.encoder}: smp cannot build this segmenter "
            f"({type(error).__name__}: {detail})"
        ) from None


def probe_segmenter(
    segmenter: nn.Module, m: SegModelConfig, height: int, width: int, setting: str = "data.size"
) -> int:
    """Check the input size, then freeze parameters the segmenter never uses; return their count.

    The size rule is the architecture's: H and W divisible by the encoder's output stride
    (``2**encoder_depth``: 32 at depth 5) unless smp says the model pads itself. One frame is then
    run forward and backward to be sure the masks come out ``H x W``; a one-line ConfigError
    naming ``setting`` (``data.size``, ``data.crop_size``) reports a problem. Parameters without a
    gradient (e.g. resnet stages beyond ``encoder_depth``, which smp keeps) are frozen so that DDP
    does not wait for their gradients, and listed in ``segmenter.unused_parameters`` (the run
    leaves them out of its parameter counts; dropping them would break smp's pretrained state
    dicts and saved checkpoints).
    """
    stride = int(getattr(getattr(segmenter, "encoder", None), "output_stride", 1) or 1)
    which = f"model.arch={m.arch} with encoder {m.encoder} (encoder_depth={m.encoder_depth})"
    if getattr(segmenter, "requires_divisible_input_shape", True) and stride > 1:
        try:
            check_divisible((height, width), stride)
        except DataError:
            up = (-(-height // stride) * stride, -(-width // stride) * stride)
            raise ConfigError(
                f"{setting}: frames are {height}x{width} (HxW) but {which} needs H and W "
                f"divisible by {stride}; set e.g. --set {setting}=[{up[0]},{up[1]}]"
            ) from None
    was_training = segmenter.training
    segmenter.eval()  # batch statistics of one frame would fail in some decoders (PSPNet)
    try:
        with torch.inference_mode(False), torch.enable_grad():
            out = segmenter(torch.zeros(1, 3, height, width))
            out.float().sum().backward()
    except Exception as error:
        detail = " ".join(str(error).split())[:160]
        raise ConfigError(
            f"{setting}: {which} fails on {height}x{width} frames ({type(error).__name__}: {detail})"
        ) from None
    finally:
        segmenter.train(was_training)
    if tuple(out.shape[-2:]) != (height, width):
        raise ConfigError(
            f"model.encoder_depth: {which} gives {out.shape[-2]}x{out.shape[-1]} masks for "
            f"{height}x{width} frames; try model.encoder_depth=null (the architecture's default)"
        )
    unused: list[nn.Parameter] = []
    for parameter in segmenter.parameters():
        if parameter.grad is None and parameter.requires_grad:
            parameter.requires_grad_(False)
            unused.append(parameter)
        parameter.grad = None
    known = list(getattr(segmenter, "unused_parameters", ()))
    # the runner leaves these out of the parameter counts it shows (runner.run.parameter_counts)
    object.__setattr__(segmenter, "unused_parameters", (*known, *unused))
    return len(unused)


MEMORY_BIAS = 1.5  # gate bias at the start: each step keeps ~80% of the state (sigmoid(1.5))


def _remember(cell: ConvGRUCell | ConvLSTMCell) -> None:
    """Start a cell as a long memory, so that what earlier frames showed reaches frames that show
    nothing (dropped, occluded): GRU update gate ``z`` biased towards keeping the state, LSTM
    forget gate towards remembering."""
    hid, bias = cell.hidden_channels, cell.input_conv.bias
    assert bias is not None  # the cells are built with biases
    with torch.no_grad():
        if isinstance(cell, ConvGRUCell):  # h' = (1 - z) h + z n: a low z keeps h
            bias[hid : 2 * hid].fill_(-MEMORY_BIAS)
        else:  # gates i, f, o, g: a high f keeps c
            bias[hid : 2 * hid].fill_(MEMORY_BIAS)


KEEP_BIAS = 3.0  # the output gate starts at sigmoid(3) = 0.95: the per-frame logits kept


class TemporalRefiner(nn.Module):
    """Gated residual refinement of per-frame logits: ``refined = g * logits + delta``.

    Input per frame: the segmenter's class probabilities and the (normalised) frame, averaged
    over ``refine_stride``-pixel cells. Video mode runs a multi-layer ConvGRU/ConvLSTM over the
    clip; image mode steps one cell ``iterations`` times on each frame, feeding back the refined
    probabilities. The hidden states, upsampled to full resolution, and the probabilities go
    through a 3x3 convolution to the corrections ``delta`` and a gate ``g`` (which may drop the
    per-frame logits of a frame that shows nothing). At the start ``delta = 0`` and ``g = 0.95``:
    training starts from the segmenter's own output.
    """

    def __init__(self, num_classes: int, m: SegModelConfig) -> None:
        super().__init__()
        self.mode, self.iterations = m.mode, m.iterations
        self.num_classes, self.stride = num_classes, m.refine_stride
        in_ch = num_classes + 3
        if m.mode == "video":
            layer = ConvGRU if m.refine == "convgru" else ConvLSTM
            self.rnn = layer(
                in_ch,
                m.hidden_channels,
                num_layers=m.num_layers,
                kernel_size=m.kernel_size,
                bidirectional=m.bidirectional,
            )
            out_ch = self.rnn.out_channels
            cells = list(cast("Iterable[ConvGRUCell | ConvLSTMCell]", self.rnn.cells))
        else:
            cell = ConvGRUCell if m.refine == "convgru" else ConvLSTMCell
            self.cell = cell(in_ch, m.hidden_channels, m.kernel_size)
            out_ch = m.hidden_channels
            cells = [self.cell]
        for c in cells:
            _remember(c)
        self.head = nn.Conv2d(out_ch + num_classes, num_classes + 1, 3, padding=1)
        head_bias = self.head.bias
        assert head_bias is not None  # a Conv2d with bias
        nn.init.zeros_(self.head.weight)
        nn.init.zeros_(head_bias)
        with torch.no_grad():
            head_bias[num_classes] = KEEP_BIAS

    def forward(self, frames: Tensor, logits: Tensor, state: State = None) -> tuple[Tensor, State]:
        """``frames B,T,3,H,W`` and ``logits B,T,K,H,W`` -> refined logits and the final state
        (video mode; pass it back to continue a longer video)."""
        if self.mode == "image":
            return self._iterate(frames.flatten(0, 1), logits.flatten(0, 1)).view_as(logits), None
        b, t = logits.shape[:2]
        flat = logits.flatten(0, 1)
        probs = flat.softmax(1)
        x = self._down(torch.cat([probs, frames.flatten(0, 1)], 1))
        hidden, state = self.rnn(x.unflatten(0, (b, t)), state)
        return self._combine(hidden.flatten(0, 1), flat, probs).view_as(logits), state

    @property
    def stream_blocker(self) -> str | None:
        """Why this refinement cannot run frame by frame, or None when it can."""
        if self.mode == "video" and self.rnn.bidirectional:
            return (
                "its refinement is bidirectional (model.bidirectional=true, the default: each "
                "frame is refined with later frames too); train with --set model.bidirectional=false"
            )
        return None

    def initial_state(self, frame: Tensor) -> State:
        """The explicit state before the first frame (``frame B,3,H,W``): the ConvGRU/ConvLSTM
        layers' initial states at the refinement's resolution (video mode), else ``[]``."""
        if self.mode == "image":
            return []
        b, _, h, w = frame.shape
        small = self._down(frame.new_zeros(b, self.num_classes + 3, h, w))
        return self.rnn.initial_state(small)

    def step(self, frame: Tensor, logits: Tensor, state: State = None) -> tuple[Tensor, State]:
        """Refined logits ``B,K,H,W`` of one new frame (normalised ``frame B,3,H,W`` and its
        per-frame ``logits B,K,H,W``) and the next state; unidirectional video mode, or image
        mode (no state carried: ``[]``)."""
        if self.mode == "image":
            return self._iterate(frame, logits), []
        probs = logits.softmax(1)
        x = self._down(torch.cat([probs, frame], 1))
        hidden, state = self.rnn.step(x, state or None)
        return self._combine(hidden, logits, probs), state

    def _iterate(self, frames: Tensor, logits: Tensor) -> Tensor:
        state, refined = None, logits
        small = self._down(frames)
        for _ in range(self.iterations):
            probs = refined.softmax(1)
            state = self.cell(torch.cat([self._down(probs), small], 1), state)
            hidden = state if isinstance(state, Tensor) else state[0]
            refined = self._combine(hidden, logits, probs)
        return refined

    def _combine(self, hidden: Tensor, logits: Tensor, probs: Tensor) -> Tensor:
        """``g * logits + delta`` from hidden states ``N,C,h,w`` and ``N,K,H,W`` logits."""
        up = upsample_logits(hidden, (logits.shape[-2], logits.shape[-1]))
        out = self.head(torch.cat([up, probs], 1))
        delta, gate = out.split((self.num_classes, 1), 1)
        return torch.sigmoid(gate) * logits + delta

    def _down(self, x: Tensor) -> Tensor:
        """``N,C,H,W`` averaged over ``stride x stride`` cells (the refinement's resolution)."""
        if self.stride == 1:
            return x
        return F.avg_pool2d(x, self.stride, ceil_mode=True)


class SegLoss(nn.Module):
    """``CE + dice_weight * Dice`` on ``B,T,K,H,W`` logits against ``B,T,H,W`` class ids."""

    class_weights: Tensor | None  # a buffer: one weight per class, or None

    def __init__(
        self,
        dice_weight: float,
        ignore_index: int | None,
        class_weights: Sequence[float] | None = None,
    ) -> None:
        super().__init__()
        from segmentation_models_pytorch.losses import DiceLoss

        self.dice_weight = dice_weight
        self.ignore_index = -100 if ignore_index is None else ignore_index
        self.dice = DiceLoss("multiclass", from_logits=True, ignore_index=ignore_index)
        weights = None if class_weights is None else torch.tensor(class_weights, dtype=torch.float)
        self.register_buffer("class_weights", weights, persistent=False)

    def forward(self, logits: Tensor, masks: Tensor) -> Tensor:
        logits, masks = logits.flatten(0, 1).float(), masks.flatten(0, 1)
        loss = F.cross_entropy(
            logits, masks, weight=self.class_weights, ignore_index=self.ignore_index
        )
        if self.dice_weight:
            loss = loss + self.dice_weight * self.dice(logits, masks)
        return loss


def _mean_of_probabilities(a: Tensor, b: Tensor) -> Tensor:
    """Log of the mean of two logit tensors' class probabilities (dim -3): logits again."""
    return torch.logaddexp(a.log_softmax(-3), b.log_softmax(-3)) - math.log(2.0)


class SegRefiner(nn.Module):
    """Normalise frames, segment each one, refine across time or iterations.

    ``forward(frames B,T,3,H,W in [0,1])`` returns ``(refined, per_frame)`` logits
    ``B,T,K,H,W``; they are the same tensor without refinement. :meth:`loss` is the training
    loss of those outputs. With ``tta="hflip"``, outside training (eval, predict) both are the
    mean class probabilities (as log-probabilities) of the frames and their mirror images.

    Per-step API (``rnnkit stream``, ONNX export; unidirectional refinement, see
    :attr:`stream_blocker`): ``encode_frame(frames B,3,H,W) -> features B,K+3,H,W`` (the
    segmenter's logits, then the normalised frame), ``initial_state(features) -> state``, and
    ``step(features, state) -> (refined B,K,H,W, state)``; frame by frame, ``step`` gives
    ``forward``'s refined logits.
    """

    mean: Tensor  # buffers: 1,3,1,1
    std: Tensor

    def __init__(
        self,
        segmenter: nn.Module,
        refiner: TemporalRefiner | None,
        mean: Sequence[float],
        std: Sequence[float],
        freeze_segmenter: bool = False,
        criterion: SegLoss | None = None,
        aux_weight: float = 0.0,
        tta: str = "none",
    ) -> None:
        super().__init__()
        self.segmenter, self.refiner = segmenter, refiner
        self.tta = tta  # "hflip": outside training, average with the mirrored frames' output
        self.freeze_segmenter = freeze_segmenter
        self.criterion = criterion if criterion is not None else SegLoss(1.0, None)
        # the auxiliary per-frame term only where the segmenter trains and is refined
        self.aux_weight = 0.0 if refiner is None or freeze_segmenter else aux_weight
        self.register_buffer("mean", torch.tensor(list(mean)).view(1, 3, 1, 1))
        self.register_buffer("std", torch.tensor(list(std)).view(1, 3, 1, 1))
        if freeze_segmenter:
            self.segmenter.requires_grad_(False)

    def train(self, mode: bool = True) -> SegRefiner:
        super().train(mode)
        if self.freeze_segmenter:  # frozen: batch-norm statistics stay those of its training
            self.segmenter.eval()
        return self

    def segment(self, frames: Tensor) -> tuple[Tensor, Tensor]:
        """Normalised frames ``B,T,3,H,W`` and the segmenter's logits ``B,T,K,H,W``."""
        b, t = frames.shape[:2]
        x = (frames.flatten(0, 1) - self.mean) / self.std
        with torch.set_grad_enabled(torch.is_grad_enabled() and not self.freeze_segmenter):
            logits = self.segmenter(x)
        return x.unflatten(0, (b, t)), logits.unflatten(0, (b, t))

    def forward(self, frames: Tensor) -> tuple[Tensor, Tensor]:
        if self.tta == "hflip" and not self.training:
            plain, mirrored = self._forward(frames), self._forward(frames.flip(-1))
            refined, per_frame = (
                _mean_of_probabilities(a, b.flip(-1)) for a, b in zip(plain, mirrored, strict=True)
            )
            return refined, per_frame
        return self._forward(frames)

    def _forward(self, frames: Tensor) -> tuple[Tensor, Tensor]:
        x, logits = self.segment(frames)
        if self.refiner is None:
            return logits, logits
        refined, _ = self.refiner(x, logits)
        return refined, logits

    def loss(self, refined: Tensor, per_frame: Tensor, masks: Tensor) -> Tensor:
        """``criterion(refined) + aux_weight * criterion(per_frame)`` against ``masks B,T,H,W``."""
        loss = self.criterion(refined, masks)
        if self.aux_weight:
            loss = loss + self.aux_weight * self.criterion(per_frame, masks)
        return loss

    # ------------------------------------------------------------------ per-step API
    # encode_frame(frames B,3,H,W in [0,1]) -> features B,K+3,H,W: the segmenter's logits (the
    #   first K channels) and the normalised frame (the last 3), one segmenter call per frame;
    # step(features, state) -> (refined logits B,K,H,W, state): one refinement step, carrying
    #   the ConvGRU/ConvLSTM state (a tensor, or an (h, c) tuple, per layer; [] when nothing
    #   is carried: refine=none or mode=image); state None (or initial_state) to start.
    # Frame by frame this equals forward()'s refined logits when stream_blocker is None.

    @property
    def stream_blocker(self) -> str | None:
        """Why this model cannot stream frame by frame, or None when it can."""
        return None if self.refiner is None else self.refiner.stream_blocker

    def encode_frame(self, frames: Tensor) -> Tensor:
        """Features ``B,K+3,H,W`` of new frames ``B,3,H,W`` in [0, 1]: the segmenter's logits,
        then the normalised frame."""
        x, logits = self.segment(frames.unsqueeze(1))
        return torch.cat([logits[:, 0], x[:, 0]], 1)

    def initial_state(self, features: Tensor) -> State:
        """The explicit state before the first frame (see :meth:`TemporalRefiner.initial_state`);
        ``[]`` when nothing is carried."""
        if self.refiner is None:
            return []
        return self.refiner.initial_state(features[:, -3:])

    def step(self, features: Tensor, state: State = None) -> tuple[Tensor, State]:
        """Refined logits ``B,K,H,W`` of one frame's ``features`` (:meth:`encode_frame`) and
        the state to carry to the next frame."""
        if self.stream_blocker is not None:
            raise ValueError(f"this model cannot stream: {self.stream_blocker}")
        logits, frame = features[:, :-3], features[:, -3:]
        if self.refiner is None:
            return logits, []
        return self.refiner.step(frame, logits, state)

    def stream(self, frames: Tensor, state: State = None) -> tuple[Tensor, State]:
        """Refined logits of the next frames of a long video and the state to continue with
        (one direction only; a bidirectional refiner sees each chunk on its own)."""
        x, logits = self.segment(frames)
        if self.refiner is None:
            return logits, None
        if self.refiner.mode == "video" and self.refiner.rnn.bidirectional:
            state = None
        return self.refiner(x, logits, state)


def upsample_logits(logits: Tensor, size: tuple[int, int]) -> Tensor:
    """``N,K,h,w`` logits resized (bilinear) to ``size = (H, W)``."""
    if tuple(logits.shape[-2:]) == tuple(size):
        return logits
    return F.interpolate(logits, size=size, mode="bilinear", align_corners=False)
