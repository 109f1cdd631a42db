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

from dataclasses import dataclass
from typing import cast

import torch
import torch.nn.functional as F
from torch import nn
from torchmetrics import Metric, MetricCollection

from rnnkit_videopredict.config import PredictConfig, PredictModelConfig, defaults
from rnnkit_videopredict.metrics import NAMES
from rnnkit_videopredict.models import build_predictor, convert_channels
from rnnvision_kit import (
    ConfigError,
    MeasuredBaseline,
    MetricsContext,
    ModelContext,
    StepContext,
    StepOutput,
    Task,
)

COPY_LAST = "copy_last_"  # prefix of the baseline's metrics


@dataclass
class PredictStepOutput(StepOutput):
    """Predicted and true horizon frames (``B,S,C,H,W``), and copy-last's prediction."""

    copy_last: torch.Tensor | None = None


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
        patch = 1 if m.name == "copy-last" else m.patch
        if spec.height % patch or spec.width % patch:
            raise ConfigError(
                f"model.patch: {patch} does not divide the {spec.height}x{spec.width} frames"
            )
        out = m.out_channels or spec.channels
        return build_predictor(m.name, spec.channels, out, patch, m.hidden, m.layers, m.kernel)

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
