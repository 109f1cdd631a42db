"""Task pixel-generate: model the distribution of small images with a Row LSTM, report bits per
dimension on held-out images and save a grid of sampled images.

The task is stateless: everything a method needs comes in its context record.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn
from torchmetrics import MetricCollection

from rnnkit_pixel_generate.config import PixelDataConfig, PixelModelConfig
from rnnkit_pixel_generate.data import LevelSpec  # importing it registers the kind "levels"
from rnnkit_pixel_generate.model import RowLSTM
from rnnkit_pixel_generate.report import write_samples
from rnnvision_kit import (
    DataError,
    MetricsContext,
    ModelContext,
    ReportContext,
    RunConfig,
    StepContext,
    StepOutput,
    Task,
    TrainConfig,
)


class PixelGenerateTask(Task):
    def default_config(self) -> RunConfig:
        return RunConfig(
            task="pixel-generate",
            data=PixelDataConfig(),
            model=PixelModelConfig(),
            train=TrainConfig(
                epochs=20,
                optimizer="adam",
                lr=3e-3,
                schedule="cosine",
                grad_clip=1.0,
                monitor="val/bpd",
                mode="min",
            ),
        )

    # build_data: the default, ctx.open_source() (a source of kind "levels", spec a LevelSpec)

    def build_model(self, ctx: ModelContext) -> nn.Module:
        spec, m = ctx.spec, ctx.config.model
        if not isinstance(spec, LevelSpec):
            raise DataError(f"task {ctx.task} needs levels data, got a {type(spec).__name__}")
        return RowLSTM(
            spec.height,
            spec.width,
            spec.levels,
            hidden_size=m.hidden_size,
            channels=m.channels,
            num_layers=m.num_layers,
        )

    def step(self, ctx: StepContext, model: nn.Module, batch: torch.Tensor) -> StepOutput:
        logits = model(batch)  # B,L,H,W from B,H,W level indices
        loss = F.cross_entropy(logits.float(), batch)  # nats per pixel
        return StepOutput(loss, logits.detach(), batch)

    def metrics(self, ctx: MetricsContext) -> MetricCollection:
        return MetricCollection({"bpd": ctx.metric(f"{ctx.plugin}:bpd")})

    def report(self, ctx: ReportContext) -> None:
        """``samples.png``: a grid of images sampled from the evaluated (best) model."""
        if ctx.split == "test":
            write_samples(ctx)
