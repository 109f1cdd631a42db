"""Task video-action: a frame encoder per frame, then a recurrent (or mean) head over the clip.

Stateless: data, model, metrics and the report all come from the contexts the runner passes.
Capabilities (declared in ``plugin.py``): ``predict`` (``predict.py``), ``check-data``
(``check.py``), ``report`` (``report.py``) and ``stream`` (``stream.py``).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import torch
import torch.nn.functional as F
from torch import nn

from rnnkit_video.config import VideoActionConfig, VideoModelConfig, defaults
from rnnvision_kit import (
    BuiltModel,
    DataBundle,
    DataCheck,
    DataContext,
    Exportable,
    ExportContext,
    MetricsContext,
    ModelContext,
    Normalisation,
    PredictContext,
    ReportContext,
    StepContext,
    StepOutput,
    StreamContext,
    Task,
    build_sequence_head,
)
from rnnvision_kit.classification import classification_metrics

if TYPE_CHECKING:  # torchmetrics is imported where metrics are built (not by predict)
    from torchmetrics import Metric, MetricCollection


@dataclass
class VideoStepOutput(StepOutput):
    """A step's video-level output plus per-clip logits and the videos' data set indices."""

    clip_preds: torch.Tensor | None = None
    clip_targets: torch.Tensor | None = None
    indices: torch.Tensor | None = None


class VideoActionTask(Task):
    """``B,T,3,H,W`` clips -> frame encoder (``model.backbone``) -> head (``model.head``).

    Validation and test average the logits of ``data.test_clips`` clips per video: ``acc`` and
    the other core metrics are per video, ``clip_acc``/``clip_top5`` per clip, and
    ``predictions`` keeps each video's top 5 for ``predictions_<split>.jsonl``.
    """

    def default_config(self) -> VideoActionConfig:
        """``rnnkit_video.config.defaults()`` (also registered as ``config=``)."""
        return defaults()

    def build_data(self, ctx: DataContext) -> DataBundle:
        """The data of ``data.source``. With ``model.data_stats`` (and none of ``model.weights``,
        ``model.backbone_weights``, ``model.mean``/``std`` set), a new run's spec gets the
        per-channel mean and std of up to 64 training clips, spread over the split; otherwise
        the spec keeps ImageNet's (the default; the weights' or the settings' win over both)."""
        bundle = ctx.open_source()
        m: VideoModelConfig = ctx.config.model
        chosen = m.weights or m.backbone_weights or (m.mean is not None and m.std is not None)
        if ctx.purpose != "train" or chosen or not m.data_stats:
            return bundle
        from rnnvision_kit.data import channel_statistics

        found = channel_statistics(bundle.train)
        if found is None:
            return bundle
        mean, std = found
        return dataclasses.replace(
            bundle, spec=dataclasses.replace(bundle.spec, mean=mean, std=std)
        )

    def build_model(self, ctx: ModelContext) -> BuiltModel:
        """The encoder (``model.backbone``: registered, ``tv:NAME`` or ``timm:NAME``; starting
        weights ``model.weights`` or ``model.backbone_weights`` for a fresh model), fine-tuning
        settings applied, then the head. Frames are normalised with ``model.mean``/``std``, else
        the weights', else the data's (a saved run's: those it recorded); the values used are
        returned with the model, for the runner to record."""
        from rnnkit_video.model import ClipClassifier
        from rnnvision_kit.nn import (
            check_input_size,
            freeze_batchnorm,
            freeze_encoder,
            input_normalisation,
        )

        m: VideoModelConfig = ctx.config.model
        # Starting weights only for a fresh model: eval and predict load the run's checkpoint.
        encoder = ctx.registries.backbones.create(
            m.backbone,
            feature_dim=m.feature_dim,
            weights=m.backbone_weights if ctx.fresh else None,
            pretrained=m.weights if ctx.fresh else None,
        )
        check_input_size(encoder, ctx.spec.height, ctx.spec.width)
        chosen = ctx.normalisation or Normalisation(
            *input_normalisation(encoder, ctx.spec.mean, ctx.spec.std, m.mean, m.std)
        )
        if ctx.normalisation is None and chosen.source == Normalisation.FROM_DATA:
            source = Normalisation.FROM_DATA if m.data_stats else Normalisation.IMAGENET
            chosen = dataclasses.replace(chosen, source=source)
        freeze_encoder(encoder, m.freeze)
        if m.freeze_bn:
            freeze_batchnorm(encoder)
        head = build_sequence_head(ctx.registries, m, encoder.out_features, ctx.spec.num_classes)
        model = ClipClassifier(
            encoder, head, chosen.mean, chosen.std, pretrained_lr=m.pretrained_lr
        )
        return BuiltModel(model, chosen)

    def step(self, ctx: StepContext, model: nn.Module, batch: Any) -> StepOutput:
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

    def metrics(self, ctx: MetricsContext) -> MetricCollection:
        """The core's ``acc``, ``top5``, ``mean_class_acc``, ``per_class_acc``, ``confmat`` on
        videos (averaged clip logits); ``clip_acc`` and ``clip_top5`` on single clips;
        ``predictions`` per video."""
        from torchmetrics import MetricCollection

        metrics: dict[str, Metric | MetricCollection] = dict(
            classification_metrics(ctx).items(keep_base=True)
        )
        names = ["clip_acc", "clip_top5", "predictions"]
        if ctx.spec.num_classes < 5:
            names.remove("clip_top5")
        for name in names:
            metrics[name] = ctx.metric(f"{ctx.plugin}:{name}")
        return MetricCollection(metrics, compute_groups=False)

    def update_metrics(self, metrics: MetricCollection, output: StepOutput) -> None:
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
                metric.update(output.preds, output.targets, indices)
            else:
                metric.update(output.preds, output.targets)

    # ---------------------------------------------------------------- capabilities

    def predict(self, ctx: PredictContext) -> list[dict[str, Any]]:
        from rnnkit_video.predict import predict

        return predict(ctx)

    def check_data(self, ctx: DataContext) -> DataCheck:
        from rnnkit_video.check import check_data

        return check_data(ctx)

    def report(self, ctx: ReportContext) -> None:
        """Confusion matrix PNG, per-class accuracy and ``predictions_<split>.jsonl``."""
        from rnnkit_video.report import write_report

        write_report(ctx)

    def stream(self, ctx: StreamContext) -> Iterator[dict[str, Any]]:
        """Top-k labels after each frame the model reads (every ``data.stride``-th), the
        recurrent state carried; then the label timeline."""
        from rnnkit_video.stream import stream

        return stream(ctx)

    def export(self, ctx: ExportContext) -> Exportable:
        """Frames and state -> logits after each frame and the next state (a model that
        streams), else the whole clip -> logits (``export.py``)."""
        from rnnkit_video.export import export_model

        return export_model(ctx)
