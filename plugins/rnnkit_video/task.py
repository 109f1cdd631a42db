"""Task video-action: a frame encoder per frame, then a recurrent (or mean) head over the clip."""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from rnnkit_video.config import VideoDataConfig, VideoModelConfig
from rnnkit_video.metrics import video_metrics
from rnnvision_kit import DataBundle, DataSpec, RunConfig, StepOutput, Task, TrainConfig
from rnnvision_kit.classification import write_classification_report
from rnnvision_kit.errors import DataError
from rnnvision_kit.task import DataCheck


@dataclass
class VideoStepOutput(StepOutput):
    """A step's video-level output plus per-clip logits and the videos' data set indices."""

    clip_preds: torch.Tensor | None = None
    clip_targets: torch.Tensor | None = None
    indices: torch.Tensor | None = None


def _video_entry(registries: Any, source: str) -> Any:
    return registries.datasets.get_data_source(source, "video", VideoActionTask.name)


class VideoActionTask(Task):
    name = "video-action"
    description = "video action recognition: a frame encoder, then a GRU/LSTM over the clip"

    def __init__(self) -> None:
        self.files: dict[str, list[str]] = {}  # split -> file of each data set index

    def default_config(self) -> RunConfig:
        return RunConfig(
            task=self.name,
            data=VideoDataConfig(),
            model=VideoModelConfig(),
            train=TrainConfig(
                epochs=12,
                optimizer="adam",
                lr=3e-3,
                weight_decay=0.0,
                schedule="cosine",
                warmup_epochs=1,
                monitor="val/acc",
                mode="max",
                # One thread: this small model's ops are too short to share out, and on a busy
                # 2-core machine two threads ran 17x slower per step; null: torch's default.
                threads=1,
            ),
        )

    def build_data(self, config: RunConfig, registries: Any) -> DataBundle:
        config.data.validate()
        bundle = _video_entry(registries, config.data.source).factory(config)
        self.files = {
            split: [s.path for s in getattr(getattr(bundle, split), "samples", [])]
            for split in ("train", "val", "test")
        }
        return bundle

    def build_model(self, config: RunConfig, spec: DataSpec, registries: Any) -> nn.Module:
        from rnnkit_video.model import ClipClassifier

        m: VideoModelConfig = config.model
        encoder = registries.backbones.create(
            m.backbone, feature_dim=m.feature_dim, weights=m.backbone_weights
        )
        head = registries.heads.create(
            m.head,
            encoder.out_features,
            spec.num_classes,
            hidden_size=m.hidden_size,
            num_layers=m.num_layers,
            bidirectional=m.bidirectional,
            pooling=m.pooling,
            dropout=m.dropout,
        )
        return ClipClassifier(encoder, head, spec.info["mean"], spec.info["std"])

    def step(self, model: nn.Module, batch: Any) -> StepOutput:
        clips, labels = batch[0], batch[1]
        indices = batch[2] if len(batch) > 2 else None
        if clips.dim() == 6:  # B,N,T,C,H,W: N uniform clips per video, logits averaged
            b, n = clips.shape[:2]
            clip_logits = model(clips.flatten(0, 1)).view(b, n, -1)
            logits = clip_logits.mean(dim=1)
            clip_preds, clip_targets = clip_logits.flatten(0, 1), labels.repeat_interleave(n)
        else:
            logits = model(clips)
            clip_preds, clip_targets = logits, labels
        return VideoStepOutput(
            F.cross_entropy(logits.float(), labels),
            logits.detach(),
            labels,
            clip_preds=clip_preds.detach(),
            clip_targets=clip_targets,
            indices=indices,
        )

    def metrics(self, config: RunConfig, spec: DataSpec) -> Any:
        return video_metrics(spec.num_classes)

    def update_metrics(self, metrics: Any, output: StepOutput) -> None:
        """Video-level metrics get the averaged logits, ``clip_*`` ones each clip's logits."""
        clip_preds = getattr(output, "clip_preds", None)
        clip_targets = getattr(output, "clip_targets", None)
        indices = getattr(output, "indices", None)
        for name, metric in metrics.items(keep_base=True, copy_state=False):
            if name.startswith("clip_"):
                metric.update(
                    output.preds if clip_preds is None else clip_preds,
                    output.targets if clip_targets is None else clip_targets,
                )
            elif name == "predictions":
                if indices is not None:
                    metric.update(output.preds, output.targets, indices)
            else:
                metric.update(output.preds, output.targets)

    def report(self, run_dir: Path, split: str, results: dict[str, Any], spec: DataSpec) -> None:
        """Confusion matrix PNG, per-class accuracy and ``predictions_<split>.jsonl``."""
        write_classification_report(run_dir, split, results, spec.class_names)
        rows = results.get(f"{split}/predictions")
        files = self.files.get(split)
        if rows is None or not files:
            return
        names = spec.class_names
        k = (len(rows[0]) - 2) // 2 if len(rows) else 0
        lines = []
        for row in sorted(rows, key=lambda r: r[0]):
            index, label = int(row[0]), int(row[1])
            top = [
                {"label": names[int(c)], "score": round(float(s), 6)}
                for c, s in zip(row[2 : 2 + k], row[2 + k :], strict=True)
            ]
            record = {"file": files[index], "label": names[label], "predicted": top[0]["label"]}
            lines.append(json.dumps({**record, "top5": top}))
        (run_dir / f"predictions_{split}.jsonl").write_text("".join(f"{x}\n" for x in lines))

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
        from rnnkit_video.predict import predict_video

        return [
            predict_video(model, Path(file), config, spec, top_k=top_k, out_dir=out_dir)
            for file in files
        ]

    def check_data(self, config: RunConfig, registries: Any) -> DataCheck:
        from rnnkit_video.check import check_listing

        config.data.validate()
        entry = _video_entry(registries, config.data.source)
        lister = entry.meta.get("list_samples")
        if lister is None:
            raise DataError(f"data source {config.data.source!r} cannot be scanned (no listing)")
        return check_listing(lister(config), config)
