"""Run-folder outputs of seg-refine: per-class IoU JSON, overlay PNGs and animated GIFs."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import torch
from PIL import Image
from torch import nn

from rnnvision_kit import DataSpec
from rnnvision_kit.runner import write_json

OVERLAY_CLIPS = 3  # test clips drawn
ALPHA = 0.5  # mask opacity over the frame
MIN_SIDE = 128  # small frames are enlarged (nearest) to at least this many pixels


def palette(num_classes: int) -> np.ndarray:
    """``K,3`` uint8 colours, the PASCAL VOC ones (as in the index PNGs ``predict`` writes)."""
    colours = np.zeros((max(num_classes, 1), 3), dtype=np.uint8)
    for i in range(len(colours)):
        c, rgb = i, [0, 0, 0]
        for j in range(8):
            for channel in range(3):
                rgb[channel] |= ((c >> channel) & 1) << (7 - j)
            c >>= 3
        colours[i] = rgb
    return colours


def overlay(frame: np.ndarray, labels: np.ndarray, colours: np.ndarray) -> np.ndarray:
    """``H,W,3`` uint8 frame blended with the colours of ``H,W`` class ids (class 0 left clear)."""
    tint = colours[np.clip(labels, 0, len(colours) - 1)].astype(np.float32)
    alpha = np.where(labels[..., None] > 0, ALPHA, 0.0).astype(np.float32)
    return (frame * (1 - alpha) + tint * alpha + 0.5).astype(np.uint8)


def write_per_class_iou(run_dir: Path, split: str, results: dict[str, Any], spec: DataSpec) -> None:
    """``per_class_iou_<split>.json``: class name -> IoU (null where a class never occurs)."""
    values = results.get(f"{split}/per_class_iou")
    if values is None:
        return
    if not isinstance(values, dict):  # the evaluator names them by class; a bare list here
        values = values if isinstance(values, list) else [values]
        values = dict(zip(spec.class_names, values, strict=True))
    write_json(run_dir / f"per_class_iou_{split}.json", values)


@torch.inference_mode()
def predict_labels(model: nn.Module, frames: torch.Tensor) -> torch.Tensor:
    """Class ids ``T,H,W`` of one clip ``T,3,H,W`` in [0,1]."""
    device = next(model.parameters()).device
    refined, _ = model(frames[None].to(device, torch.float32))
    return refined[0].argmax(1).cpu()


def _enlarge(image: np.ndarray, scale: int) -> Image.Image:
    pil = Image.fromarray(image)
    return pil.resize((pil.width * scale, pil.height * scale), Image.Resampling.NEAREST)


def write_overlays(
    model: nn.Module, dataset: Any, spec: DataSpec, folder: Path, clips: int = OVERLAY_CLIPS
) -> list[Path]:
    """For the first ``clips`` items of ``dataset``: ``clip<i>.png`` (rows: frames, ground
    truth, prediction; a column per frame) and ``clip<i>.gif`` (frame | truth | prediction)."""
    folder.mkdir(parents=True, exist_ok=True)
    colours = palette(spec.num_classes)
    was_training = model.training
    model.eval()
    written: list[Path] = []
    try:
        for index in range(min(clips, len(dataset))):
            frames, masks = dataset[index]
            predicted = predict_labels(model, frames).numpy()
            images = (frames.permute(0, 2, 3, 1).numpy() * 255 + 0.5).astype(np.uint8)
            scale = max(1, -(-MIN_SIDE // min(images.shape[1:3])))
            truth = [overlay(f, m, colours) for f, m in zip(images, masks.numpy(), strict=True)]
            guess = [overlay(f, p, colours) for f, p in zip(images, predicted, strict=True)]
            grid = np.concatenate(
                [np.concatenate(list(row), axis=1) for row in (images, truth, guess)], axis=0
            )
            png = folder / f"clip{index}.png"
            _enlarge(grid, scale).save(png)
            gif = folder / f"clip{index}.gif"
            panels = [
                _enlarge(np.concatenate(parts, axis=1), scale)
                for parts in zip(images, truth, guess, strict=True)
            ]
            panels[0].save(
                gif, save_all=True, append_images=panels[1:], duration=250, loop=0, disposal=1
            )
            written += [png, gif]
    finally:
        model.train(was_training)
    return written
