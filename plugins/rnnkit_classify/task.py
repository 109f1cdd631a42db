"""Task image-classify: an image is a sequence of rows (or columns) read by a recurrent head."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, cast

import torch
import torch.nn.functional as F
from torch import nn

from rnnkit_classify.config import ClassifyConfig, ClassifyModelConfig, defaults
from rnnkit_classify.model import RowSequenceClassifier, random_shift
from rnnvision_kit import (
    BuiltModel,
    ConfigError,
    Exportable,
    ExportContext,
    MetricsContext,
    ModelContext,
    Normalisation,
    PredictContext,
    ReportContext,
    StepContext,
    StepOutput,
    Task,
    build_sequence_head,
)
from rnnvision_kit.classification import classification_metrics, write_classification_report
from rnnvision_kit.nn import (
    check_input_size,
    freeze_batchnorm,
    freeze_encoder,
    freeze_unused,
    input_normalisation,
)

if TYPE_CHECKING:
    from torchmetrics import MetricCollection


class ImageClassifyTask(Task):
    """Rows and/or columns of an image (or its pixels one by one, ``data.sequence=pixels``,
    optionally permuted) read by sequence heads built from ``model.head``, logits summed."""

    def default_config(self) -> ClassifyConfig:
        """``rnnkit_classify.config.defaults()`` (also registered as ``config=``)."""
        return defaults()

    def build_model(self, ctx: ModelContext) -> BuiltModel:
        """Heads over the pixel rows/columns, or (``model.encoder``) over a backbone's feature
        map, with the fine-tuning settings applied to the encoder; returned with the input
        normalisation used (the data's, or for an encoder ``model.mean``/``std``, else the
        weights', else the data's; a saved run's: those it recorded)."""
        m: ClassifyModelConfig = ctx.config.model
        spec = ctx.spec
        encoder, chosen = None, Normalisation(tuple(spec.mean), tuple(spec.std))
        channels, height, width = spec.channels, spec.height, spec.width
        if m.encoder != "none":
            encoder, chosen = self._encoder(ctx)
            with torch.no_grad():
                channels, height, width = (
                    encoder.eval().feature_map(torch.zeros(1, 3, spec.height, spec.width)).shape[1:]
                )
            encoder.train()
        d = cast(ClassifyConfig, ctx.config).data  # an image-classify run's
        pixels = d.sequence == "pixels"
        if pixels and encoder is not None:
            raise ConfigError(
                f"data.sequence=pixels reads the image's pixels; it cannot read model.encoder="
                f"{m.encoder}'s feature map (set model.encoder=none or data.sequence=rows)"
            )
        lengths = {"rows": channels * width, "columns": channels * height}
        if pixels:  # one pixel per step
            lengths = {"rows": channels, "columns": channels}
        heads = {
            scan: build_sequence_head(ctx.registries, m, size, spec.num_classes)
            for scan, size in lengths.items()
            if m.scan in (scan, "both")
        }
        order = None
        if d.permute:
            generator = torch.Generator().manual_seed(d.permute_seed)
            order = torch.randperm(spec.height * spec.width, generator=generator)
        model = RowSequenceClassifier(
            heads,
            chosen.mean,
            chosen.std,
            encoder,
            gray=spec.channels == 1,
            pretrained_lr=m.pretrained_lr,
            pixels=pixels,
            order=order,
        )
        if encoder is not None:  # layers after the feature map: no gradients, frozen (for DDP)
            freeze_unused(
                model, lambda: model(torch.zeros(1, spec.channels, spec.height, spec.width))
            )
        return BuiltModel(model, chosen)

    @staticmethod
    def _encoder(ctx: ModelContext) -> tuple[Any, Normalisation]:
        """The backbone ``model.encoder`` (one with ``feature_map()``) and the normalisation."""
        m: ClassifyModelConfig = ctx.config.model
        encoder = ctx.registries.backbones.create(
            m.encoder,
            feature_dim=None,
            weights=m.backbone_weights if ctx.fresh else None,
            pretrained=m.weights if ctx.fresh else None,
        )
        if not callable(getattr(encoder, "feature_map", None)):
            raise ConfigError(
                f"model.encoder={m.encoder}: this backbone has no feature_map() (B,C,H,W); "
                "use small-cnn, resnet18, tv:NAME or timm:NAME"
            )
        check_input_size(encoder, ctx.spec.height, ctx.spec.width, "data.image_size")
        data_mean, data_std = ctx.spec.mean, ctx.spec.std
        if ctx.spec.channels == 1:  # gray images are repeated to RGB for the encoder
            data_mean, data_std = tuple(data_mean) * 3, tuple(data_std) * 3
        chosen = ctx.normalisation or Normalisation(
            *input_normalisation(encoder, data_mean, data_std, m.mean, m.std)
        )
        freeze_encoder(encoder, m.freeze)
        if m.freeze_bn:
            freeze_batchnorm(encoder)
        return encoder, chosen

    def step(self, ctx: StepContext, model: nn.Module, batch: Any) -> StepOutput:
        images, labels = batch
        if ctx.training and getattr(ctx.config.data, "augment", False):
            images = random_shift(images, max(1, ctx.spec.width // 8))
        logits = model(images)
        return StepOutput(F.cross_entropy(logits.float(), labels), logits.detach(), labels)

    def metrics(self, ctx: MetricsContext) -> MetricCollection:
        return classification_metrics(ctx)

    def report(self, ctx: ReportContext) -> None:
        """``confusion_<split>.png`` and ``per_class_<split>.json``."""
        write_classification_report(ctx.run_dir, ctx.split, ctx.results, ctx.spec.class_names)

    def predict(self, ctx: PredictContext) -> list[dict[str, Any]]:
        from rnnkit_classify.predict import predict_images

        return predict_images(ctx)

    def export(self, ctx: ExportContext) -> Exportable:
        """The whole image -> logits, batch axis dynamic (``export.py``)."""
        from rnnkit_classify.export import export_model

        return export_model(ctx)
