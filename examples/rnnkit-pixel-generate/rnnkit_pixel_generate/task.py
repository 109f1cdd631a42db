"""Task pixel-generate: model the distribution of small images with a Row LSTM, report bits per
dimension on held-out images and save a grid of sampled images."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn
from torchmetrics import MetricCollection

from rnnkit_pixel_generate.metrics import BitsPerDim
from rnnkit_pixel_generate.model import RowLSTM
from rnnvision_kit import (
    ConfigError,
    DataBundle,
    DataConfig,
    DataSpec,
    RunConfig,
    StepOutput,
    Task,
    TrainConfig,
)

SAMPLES_FILE = "samples.png"


@dataclass
class PixelDataConfig(DataConfig):
    source: str = "digit-levels"
    batch_size: int = 32
    levels: int = 4  # intensity levels the 0..16 pixel values are quantised to; 2 binarises
    val_fraction: float = 0.1
    test_fraction: float = 0.2


@dataclass
class PixelModelConfig:
    hidden_size: int = 128  # LSTM state over rows
    channels: int = 32  # features per pixel
    num_layers: int = 1
    samples: int = 64  # images sampled into samples.png after training (a square grid)

    def validate(self) -> None:
        for key in ("hidden_size", "channels", "num_layers", "samples"):
            if getattr(self, key) < 1:
                raise ConfigError(f"model.{key}: must be >= 1 (got {getattr(self, key)})")


class PixelGenerateTask(Task):
    name = "pixel-generate"
    description = "image generation: a Row LSTM predicts each row of pixels from the rows above"

    def __init__(self) -> None:
        self.model: RowLSTM | None = None  # kept for report(): the runner loads best.pt into it
        self.samples = PixelModelConfig.samples
        self.seed = 0

    def default_config(self) -> RunConfig:
        return RunConfig(
            task=self.name,
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

    def build_data(self, config: RunConfig, registries: Any) -> DataBundle:
        return registries.datasets.get_data_source(config.data.source, "levels", self.name).factory(
            config
        )

    def build_model(self, config: RunConfig, spec: DataSpec, registries: Any) -> nn.Module:
        m: PixelModelConfig = config.model
        info = spec.info
        self.model = RowLSTM(
            info["height"],
            info["width"],
            info["levels"],
            hidden_size=m.hidden_size,
            channels=m.channels,
            num_layers=m.num_layers,
        )
        self.samples, self.seed = m.samples, config.seed
        return self.model

    def step(self, model: nn.Module, batch: torch.Tensor) -> StepOutput:
        logits = model(batch)  # B,L,H,W
        nll = F.cross_entropy(logits.float(), batch, reduction="none")  # nats per pixel, B,H,W
        return StepOutput(nll.mean(), nll.detach(), batch)

    def metrics(self, config: RunConfig, spec: DataSpec) -> MetricCollection:
        return MetricCollection({"bpd": BitsPerDim()})

    def report(self, run_dir: Path, split: str, results: dict[str, Any], spec: DataSpec) -> None:
        """``samples.png``: a grid of images sampled from the (best) model."""
        if self.model is None or split != "test":
            return
        generator = torch.Generator().manual_seed(self.seed)
        was_training = self.model.training
        self.model.eval()
        images = self.model.sample(self.samples, generator).cpu()
        self.model.train(was_training)
        save_grid(images, spec.info["levels"], run_dir / SAMPLES_FILE)


def save_grid(images: torch.Tensor, levels: int, path: Path, scale: int = 6) -> None:
    """Save ``N,H,W`` level images as a PNG grid, dark ink on white, each pixel ``scale`` wide."""
    from PIL import Image

    n, h, w = images.shape
    columns = max(1, round(n**0.5))
    rows = -(-n // columns)
    pad = 1
    grid = torch.full((rows * (h + pad) + pad, columns * (w + pad) + pad), 255, dtype=torch.uint8)
    gray = (255 - images.float() * 255 / (levels - 1)).round().to(torch.uint8)
    for i in range(n):
        top, left = pad + (i // columns) * (h + pad), pad + (i % columns) * (w + pad)
        grid[top : top + h, left : left + w] = gray[i]
    big = grid.repeat_interleave(scale, 0).repeat_interleave(scale, 1)
    Image.fromarray(big.numpy(), mode="L").save(path)
