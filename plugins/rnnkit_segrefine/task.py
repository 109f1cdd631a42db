"""Task seg-refine: an smp segmenter per frame, refined across frames (or iterations) by a
ConvGRU/ConvLSTM; cross-entropy + Dice loss; mIoU, Dice, pixel accuracy and temporal flicker."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from rnnkit_segrefine.config import SegDataConfig, SegModelConfig
from rnnkit_segrefine.metrics import segmentation_metrics
from rnnvision_kit import DataBundle, DataSpec, RunConfig, StepOutput, Task, TrainConfig
from rnnvision_kit.task import DataCheck


class SegLoss(nn.Module):
    """``CE + dice_weight * Dice`` on ``B,T,K,H,W`` logits against ``B,T,H,W`` class ids."""

    def __init__(self, dice_weight: float, ignore_index: int | None) -> None:
        super().__init__()
        from segmentation_models_pytorch.losses import DiceLoss

        self.dice_weight = dice_weight
        self.ignore_index = -100 if ignore_index is None else ignore_index
        self.dice = DiceLoss("multiclass", from_logits=True, ignore_index=ignore_index)

    def forward(self, logits: torch.Tensor, masks: torch.Tensor) -> torch.Tensor:
        logits, masks = logits.flatten(0, 1).float(), masks.flatten(0, 1)
        loss = F.cross_entropy(logits, masks, ignore_index=self.ignore_index)
        if self.dice_weight:
            loss = loss + self.dice_weight * self.dice(logits, masks)
        return loss


class SegRefineTask(Task):
    name = "seg-refine"
    description = "segmentation of video frames by an smp model, refined by a ConvGRU across frames"

    def __init__(self) -> None:
        self.test_data: Any = None  # for the report's overlays
        self.loss: SegLoss | None = None
        self.aux_weight = 0.0
        self._data_built = False  # build_model loads starting weights only for fresh training

    def default_config(self) -> RunConfig:
        return RunConfig(
            task=self.name,
            data=SegDataConfig(),
            model=SegModelConfig(),
            train=TrainConfig(
                epochs=3,
                optimizer="adam",
                lr=2e-3,
                schedule="cosine",
                warmup_epochs=0.25,
                monitor="val/miou",
                mode="max",
            ),
        )

    def build_data(self, config: RunConfig, registries: Any) -> DataBundle:
        config.data.validate()
        entry = registries.datasets.get_data_source(config.data.source, "segmentation", self.name)
        data = entry.factory(config)
        self.test_data, self._data_built = data.test, True
        return data

    def build_model(self, config: RunConfig, spec: DataSpec, registries: Any) -> nn.Module:
        from rnnkit_segrefine.model import (
            SegRefiner,
            TemporalRefiner,
            create_segmenter,
            probe_segmenter,
        )
        from rnnkit_segrefine.weights import load_segmenter_checkpoint, load_segmenter_weights

        m: SegModelConfig = config.model
        m.validate()
        info = spec.info
        segmenter = create_segmenter(m, spec.num_classes)
        probe_segmenter(segmenter, m, info["height"], info["width"])
        if self._data_built:  # not for `predict`: the run's own checkpoint is loaded after
            if m.segmenter_checkpoint:
                load_segmenter_checkpoint(segmenter, m.segmenter_checkpoint, m, spec.class_names)
            elif m.segmenter_weights:
                load_segmenter_weights(segmenter, m.segmenter_weights)
        refiner = None if m.refine == "none" else TemporalRefiner(spec.num_classes, m)
        self.loss = SegLoss(m.dice_weight, info.get("ignore_index"))
        self.aux_weight = 0.0 if refiner is None or m.freeze_segmenter else m.aux_weight
        return SegRefiner(segmenter, refiner, info["mean"], info["std"], m.freeze_segmenter)

    def step(self, model: nn.Module, batch: Any) -> StepOutput:
        frames, masks = batch
        refined, per_frame = model(frames)
        assert self.loss is not None, "build_model sets the loss"
        loss = self.loss(refined, masks)
        if self.aux_weight:
            loss = loss + self.aux_weight * self.loss(per_frame, masks)
        return StepOutput(loss, refined.detach(), masks)

    def metrics(self, config: RunConfig, spec: DataSpec) -> Any:
        return segmentation_metrics(spec.num_classes, spec.info.get("ignore_index"))

    def update_metrics(self, metrics: Any, output: StepOutput) -> None:
        """The metrics take label maps: the argmax of the ``B,T,K,H,W`` logits."""
        metrics.update(output.preds.argmax(2), output.targets)

    def report(
        self,
        run_dir: Path,
        split: str,
        results: dict[str, Any],
        spec: DataSpec,
        *,
        model: nn.Module | None = None,
        config: RunConfig | None = None,
    ) -> None:
        """``per_class_iou_<split>.json``; with the model, overlays and GIFs of a few clips."""
        from rnnkit_segrefine.report import write_overlays, write_per_class_iou

        write_per_class_iou(run_dir, split, results, spec)
        if model is not None and self.test_data is not None and split == "test":
            write_overlays(model, self.test_data, spec, run_dir / "overlays")

    def check_data(self, config: RunConfig, registries: Any) -> DataCheck:
        """Clips and frames per split, pixels per class, and the files a run would skip."""
        from rnnkit_segrefine.check import check_segmentation

        config.data.validate()
        entry = registries.datasets.get_data_source(config.data.source, "segmentation", self.name)
        return check_segmentation(entry.factory, config)

    def predict(
        self,
        model: nn.Module,
        files: Sequence[str],
        config: RunConfig,
        spec: DataSpec,
        *,
        top_k: int = 5,
        out_dir: Path | None = None,
    ) -> list[dict[str, Any]]:
        """One mask PNG per frame (video file, frame folder) or image, under ``out_dir``."""
        from rnnkit_segrefine.predict import predict_file

        out = out_dir if out_dir is not None else Path("predict")
        return [predict_file(model, Path(file), config, spec, out) for file in files]
