"""Settings of video-predict: ``data.*`` (context, horizon, frame size and channels, the
generated Moving MNIST sets) and ``model.*`` (the predictor). No torch import.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar, Literal

from rnnvision_kit import DataConfig, HeadConfig, Rule, RunConfig, TrainConfig, setting

MODELS = ("copy-last", "convlstm", "convgru", "predrnn", "mingru", "encoder-rnn")


@dataclass
class PredictDataConfig(DataConfig):
    """``data.*`` of video-predict."""

    source: str = setting("moving-mnist", nonempty=True)  # a registered source of kind frames
    batch_size: int = setting(16, ge=1)
    context: int = setting(10, ge=1)  # frames in
    horizon: int = setting(10, ge=1)  # frames out in training
    # frames out at evaluation (val/test sequences hold context + eval_horizon); None: horizon.
    # Past the trained horizon the model rolls out on its own predictions.
    eval_horizon: int | None = setting(None, ge=1)
    # frames of a training sequence (the protocol's 20); context + horizon must fit in it
    sequence_length: int = setting(20, ge=2)
    size: int = setting(64, ge=16, le=1024)  # frames are size x size
    channels: Literal[1, 3] = 1  # 1 grey, 3 RGB (Moving MNIST's grey repeated)
    digits: int = setting(2, ge=1, le=8)  # moving-mnist: digits per sequence (the protocol's 2)
    # moving-mnist: training sequences per epoch; new ones every epoch (the protocol) unless
    # fixed_train
    train_sequences: int = setting(1000, ge=1)
    fixed_train: bool = False
    val_sequences: int = setting(200, ge=1)  # generated once, fixed seed
    test_sequences: int = setting(1000, ge=1)  # the protocol: 10000 (generated once, fixed seed)
    # videoframes: share of the videos carved off for validation and test (without split folders)
    val_fraction: float = setting(0.1, ge=0, lt=1)
    test_fraction: float = setting(0.2, gt=0, lt=1)

    rules: ClassVar[tuple[Rule, ...]] = (
        Rule(
            "context",
            lambda d: (
                f"{d.context} + data.horizon {d.horizon} = {d.context + d.horizon} frames exceed "
                f"the {d.sequence_length}-frame training clips (data.sequence_length)"
            ),
            lambda d: d.context + d.horizon <= d.sequence_length,
        ),
    )

    @property
    def test_horizon(self) -> int:
        """Frames predicted at evaluation: ``eval_horizon``, else ``horizon``."""
        return self.eval_horizon or self.horizon


@dataclass
class PredictModelConfig(HeadConfig):
    """``model.*`` of video-predict. The head settings (``model.head``, ``model.hidden_size``,
    ``model.num_layers``, ``model.layer.*``, ... from ``HeadConfig``), ``model.backbone`` and
    ``model.feature_dim`` are encoder-rnn's, named and defaulted as video-action's."""

    name: Literal["copy-last", "convlstm", "convgru", "predrnn", "mingru", "encoder-rnn"] = "mingru"
    patch: int = setting(4, ge=1)  # space-to-depth patch size (OpenSTL: 4 at 64x64)
    layers: int = setting(2, ge=1, le=16)  # recurrent layers
    hidden: int = setting(32, ge=1)  # channels of each layer
    kernel: int = setting(3, ge=1, odd=True)  # convolution kernel size
    # mingru: kernel of each layer's output convolution (1: a pointwise mix, the cheaper
    # layer); None: model.kernel
    out_kernel: int | None = setting(None, ge=1, odd=True)
    # mingru: how many layers, from the bottom, whose gates also read the difference of
    # consecutive inputs (x_t - x_{t-1}: motion); 0: the plain minGRU. None: 1 (runs recorded
    # before this setting: 0)
    shift: int | None = setting(None, ge=0, before=0)
    out_channels: int | None = setting(None, ge=1)  # predicted channels (1 or 3); None: data's
    # training inputs of the horizon frames: rollout (the model's own predictions, as at
    # evaluation) or teacher (the true frames: every step in parallel for mingru)
    # or reverse-ss (PredRNN-V2's reverse scheduled sampling: true and predicted frames mixed
    # in both the context and the horizon, with a schedule over model.reverse_ss_steps training
    # steps that ends as rollout; convlstm, convgru, predrnn)
    feed: Literal["rollout", "teacher", "reverse-ss"] = "rollout"
    reverse_ss_steps: int = setting(2000, ge=1)  # training steps of reverse-ss's schedule
    # encoder-rnn: a registered frame encoder (as video-action's model.backbone) and its
    # output size; frames are read as RGB (grey repeated)
    backbone: str = setting("small-cnn", nonempty=True)
    feature_dim: int | None = setting(128, ge=1)

    rules: ClassVar[tuple[Rule, ...]] = (
        Rule(
            "out_channels",
            lambda m: f"must be 1 (grey) or 3 (RGB), got {m.out_channels}",
            lambda m: m.out_channels in (None, 1, 3),
        ),
        Rule(
            "feed",
            lambda m: (
                f"reverse-ss needs a model that reads frame by frame (convlstm, convgru, "
                f"predrnn), not {m.name}"
            ),
            lambda m: m.feed != "reverse-ss" or m.name in ("convlstm", "convgru", "predrnn"),
        ),
        Rule(
            "out_kernel",
            lambda m: f"only mingru has output convolutions, not {m.name}",
            lambda m: m.out_kernel is None or m.name == "mingru",
        ),
        Rule(
            "shift",
            lambda m: (
                f"only mingru reads the difference of consecutive inputs, not {m.name}"
                if m.name != "mingru"
                else f"{m.shift} exceeds the {m.layers} layer(s) (model.layers)"
            ),
            lambda m: m.shift is None or (m.name == "mingru" and m.shift <= m.layers),
        ),
    )

    @property
    def mingru_shift(self) -> int:
        """mingru's shifted layers: ``shift``, else 1 (``layers`` is at least 1)."""
        return 1 if self.shift is None else self.shift


PredictConfig = RunConfig[PredictModelConfig, PredictDataConfig]


def defaults() -> PredictConfig:
    """video-predict's defaults (registered as ``config=``: no torch import)."""
    return RunConfig(
        task="video-predict",
        data=PredictDataConfig(),
        model=PredictModelConfig(),
        train=TrainConfig(
            epochs=3,
            optimizer="adam",
            lr=2e-3,
            schedule="cosine",
            monitor="val/mse",
            mode="min",
            # one thread: these small convolutions gain nothing from two on a busy 2-core machine
            threads=1,
        ),
    )
