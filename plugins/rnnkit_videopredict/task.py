"""Task video-predict: ``data.context`` frames in, the next frames out, on a recurrent predictor.

Training reads the context, then rolls out ``data.horizon`` frames on the model's own predictions
(``model.feed=teacher``: on the true frames), and minimises the MSE of every next-frame
prediction (the context's too, as OpenSTL does). Validation and test roll out over the whole
evaluation horizon (``data.eval_horizon``, which may pass the trained one); their loss and
metrics cover the predicted horizon only, and ``copy_last_*`` give the copy-last baseline's
figures on the same sequences: the task's ``measured_baseline``, shown beside the model's in the
final table (and ``SPLIT/baseline`` in the results), with a warning when the model does not beat
its MSE.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any, cast

import torch
import torch.nn.functional as F
from torch import nn
from torchmetrics import Metric, MetricCollection

from rnnkit_videopredict.config import PredictConfig, PredictModelConfig, defaults
from rnnkit_videopredict.metrics import NAMES
from rnnkit_videopredict.models import EncoderRNNPredictor, build_predictor, convert_channels
from rnnvision_kit import (
    ConfigError,
    DataCheck,
    DataContext,
    Exportable,
    ExportContext,
    MeasuredBaseline,
    MetricsContext,
    ModelContext,
    PredictContext,
    ReportContext,
    StepContext,
    StepOutput,
    StreamContext,
    Task,
    build_sequence_head,
)

COPY_LAST = "copy_last_"  # prefix of the baseline's metrics
ENCODER_RNN_DECODER_DIM = 128  # encoder-rnn: the head's outputs, the decoder's input


@dataclass
class PredictStepOutput(StepOutput):
    """Predicted and true horizon frames (``B,S,C,H,W``), and copy-last's prediction."""

    copy_last: torch.Tensor | None = None


def build_encoder_rnn(ctx: ModelContext) -> nn.Module:
    """encoder-rnn: video-action's frame encoder (``model.backbone``, ``model.feature_dim``)
    and sequence head (``model.head`` ...), built by the same registries, and a frame decoder."""
    m: PredictModelConfig = ctx.config.model
    spec = ctx.spec
    encoder = ctx.registries.backbones.create(m.backbone, feature_dim=m.feature_dim)
    head = build_sequence_head(ctx.registries, m, encoder.out_features, ENCODER_RNN_DECODER_DIM)
    blocker = getattr(head, "stream_blocker", "it has no per-step API")
    if blocker is not None:
        raise ConfigError(f"model.head: encoder-rnn steps frame by frame, and {blocker}")
    out = m.out_channels or spec.channels
    size = (spec.height, spec.width)
    return EncoderRNNPredictor(encoder, head, spec.channels, out, size, ENCODER_RNN_DECODER_DIM)


class VideoPredictTask(Task):
    """``B,T,C,H,W`` sequences -> a frame predictor (``model.name``) -> the next frames."""

    measured_baseline = MeasuredBaseline(
        "copy-last",
        COPY_LAST,
        "the last context frame repeated over the horizon, on the same sequences",
        headline=("mse", "mae"),
        lower=("mse", "mae"),
    )

    def default_config(self) -> PredictConfig:
        return defaults()

    def build_model(self, ctx: ModelContext) -> nn.Module:
        m: PredictModelConfig = ctx.config.model
        spec = ctx.spec
        if m.name == "encoder-rnn":
            return build_encoder_rnn(ctx)
        patch = 1 if m.name == "copy-last" else m.patch
        if spec.height % patch or spec.width % patch:
            raise ConfigError(
                f"model.patch: {patch} does not divide the {spec.height}x{spec.width} frames"
            )
        out = m.out_channels or spec.channels
        steps = m.reverse_ss_steps if m.feed == "reverse-ss" else 0
        return build_predictor(
            m.name, spec.channels, out, patch, m.hidden, m.layers, m.kernel, steps, m.out_kernel,
            m.mingru_shift,
        )  # fmt: skip

    def step(self, ctx: StepContext, model: nn.Module, batch: object) -> StepOutput:
        assert isinstance(batch, list | tuple)
        frames: torch.Tensor = batch[0]
        config = cast(PredictConfig, ctx.config)
        d, m = config.data, config.model
        context = d.context
        horizon = d.horizon if ctx.training else frames.shape[1] - context
        if horizon < 1:
            raise ConfigError(
                f"data.context: {context} frames leave none to predict in "
                f"{frames.shape[1]}-frame sequences"
            )
        frames = frames[:, : context + horizon]
        out_channels = m.out_channels or frames.shape[2]
        teacher = ctx.training and m.feed == "teacher"
        preds = model(frames, context, horizon, teacher)  # frames 1 .. T-1
        truth = convert_channels(frames[:, 1:], out_channels)
        if ctx.training:
            loss = F.mse_loss(preds.float(), truth.float())
        else:
            loss = F.mse_loss(preds[:, context - 1 :].float(), truth[:, context - 1 :].float())
        last = convert_channels(frames[:, context - 1 : context], out_channels)
        return PredictStepOutput(
            loss,
            preds[:, context - 1 :].detach(),
            truth[:, context - 1 :],
            copy_last=last.expand(-1, horizon, -1, -1, -1),
        )

    def metrics(self, ctx: MetricsContext) -> MetricCollection:
        """``mse``, ``mae``, ``ssim``, ``psnr`` (each over the horizon, and per step as
        ``<name>_steps``), and copy-last's ``copy_last_<name>`` (and ``copy_last_mse_steps``)."""
        names = [*NAMES, *(f"{n}_steps" for n in NAMES)]
        metrics: dict[str, Metric | MetricCollection] = {
            name: ctx.metric(f"{ctx.plugin}:{name}") for name in names
        }
        for name in [*NAMES, "mse_steps"]:
            metrics[COPY_LAST + name] = ctx.metric(f"{ctx.plugin}:{name}")
        return MetricCollection(metrics, compute_groups=False)

    def update_metrics(self, metrics: MetricCollection, output: StepOutput) -> None:
        copy = getattr(output, "copy_last", None)
        for name, metric in metrics.items(keep_base=True, copy_state=False):
            if name.startswith(COPY_LAST):
                if copy is not None:
                    metric.update(copy, output.targets)
            else:
                metric.update(output.preds, output.targets)

    # ---------------------------------------------------------------- capabilities

    def predict(self, ctx: PredictContext) -> list[dict[str, Any]]:
        """The frames after a video's last ``data.context`` ones: mp4, GIF and a PNG strip."""
        from rnnkit_videopredict.predict import predict

        return predict(ctx)

    def stream(self, ctx: StreamContext) -> Iterator[dict[str, Any]]:
        """The next frame after each frame, the state carried; the MSE of each prediction."""
        from rnnkit_videopredict.stream import stream

        return stream(ctx)

    def export(self, ctx: ExportContext) -> Exportable:
        """The step model: a frame and the state in, the next frame and the state out."""
        from rnnkit_videopredict.export import export_model

        return export_model(ctx)

    def report(self, ctx: ReportContext) -> None:
        """PNG grids and GIFs of a few test sequences, and the error against horizon step."""
        from rnnkit_videopredict.report import write_report

        write_report(ctx)

    def check_data(self, ctx: DataContext) -> DataCheck:
        """Split sizes, and the videos too short for a clip."""
        from rnnkit_videopredict.check import check_data

        return check_data(ctx)
