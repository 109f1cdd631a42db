"""The report of pixel-generate: ``samples.png``, a grid of digits sampled from the evaluated
(best) model."""

from __future__ import annotations

from pathlib import Path

import torch

from rnnvision_kit import ReportContext

SAMPLES_FILE = "samples.png"


def write_samples(ctx: ReportContext) -> Path:
    """Sample ``model.samples`` images from ``ctx.model`` (seeded by ``seed``) into
    ``RUN_DIR/samples.png``; returns the file."""
    generator = torch.Generator().manual_seed(ctx.config.seed)
    images = ctx.model.sample(ctx.config.model.samples, generator).cpu()
    path = ctx.run_dir / SAMPLES_FILE
    save_grid(images, ctx.spec.levels, path)
    return path


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
