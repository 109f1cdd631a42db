"""Task seg-refine: an smp segmenter per frame, refined across frames (or iterations) by a
ConvGRU/ConvLSTM; cross-entropy + Dice loss (held by the model); mIoU, Dice, pixel accuracy and
temporal flicker. Stateless: everything comes from the contexts."""

from __future__ import annotations

from collections.abc import Iterator
from typing import TYPE_CHECKING, Any, cast

from torch import nn

from rnnkit_segrefine.config import SegModelConfig, SegRefineConfig, defaults
from rnnvision_kit import (
    BuiltModel,
    ConfigError,
    DataCheck,
    DataContext,
    DataSpec,
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
)

if TYPE_CHECKING:
    from torchmetrics import MetricCollection

    from rnnkit_segrefine.model import SegRefiner


def _unwrapped(model: nn.Module) -> SegRefiner:
    """The SegRefiner itself, also when the runner wraps it (DistributedDataParallel)."""
    return cast("SegRefiner", getattr(model, "module", model))


class SegRefineTask(Task):
    def default_config(self) -> SegRefineConfig:
        """``rnnkit_segrefine.config.defaults()`` (also registered as ``config=``)."""
        return defaults()

    def build_model(self, ctx: ModelContext) -> BuiltModel:
        """smp's segmenter (starting weights for a fresh model), then the refinement across
        frames (``model.refine``); frames are normalised with the data's mean and std."""
        from rnnkit_segrefine.model import (
            SegLoss,
            SegRefiner,
            TemporalRefiner,
            create_segmenter,
            probe_segmenter,
        )
        from rnnkit_segrefine.weights import (
            load_encoder_weights,
            load_segmenter_checkpoint,
            load_segmenter_weights,
        )

        m: SegModelConfig = ctx.config.model
        spec = ctx.spec
        segmenter = create_segmenter(m, spec.num_classes)
        probe_segmenter(segmenter, m, spec.height, spec.width)
        # training crops (data.augment): probed too
        crop = cast(SegRefineConfig, ctx.config).data.crop_size
        if crop is not None:
            probe_segmenter(segmenter, m, crop[0], crop[1], "data.crop_size")
        if ctx.fresh:  # eval and predict: the runner loads the run's checkpoint after
            if m.encoder_weights:  # smp's pretrained encoder (a checkpoint below replaces it)
                load_encoder_weights(segmenter, m)
            if m.segmenter_checkpoint:
                load_segmenter_checkpoint(segmenter, m.segmenter_checkpoint, m, spec.class_names)
            elif m.segmenter_weights:
                load_segmenter_weights(segmenter, m.segmenter_weights)
        refiner = None if m.refine == "none" else TemporalRefiner(spec.num_classes, m)
        chosen = ctx.normalisation or Normalisation(tuple(spec.mean), tuple(spec.std))
        model = SegRefiner(
            segmenter,
            refiner,
            chosen.mean,
            chosen.std,
            m.freeze_segmenter,
            criterion=SegLoss(
                m.dice_weight, getattr(spec, "ignore_index", None), class_weights(m, spec)
            ),
            aux_weight=m.aux_weight,
            tta=m.tta,
        )
        return BuiltModel(model, chosen)

    def step(self, ctx: StepContext, model: nn.Module, batch: Any) -> StepOutput:
        frames, masks = batch[0], batch[1]
        refined, per_frame = model(frames)
        loss = _unwrapped(model).loss(refined, per_frame, masks)
        return StepOutput(loss, refined.detach(), masks)

    def metrics(self, ctx: MetricsContext) -> MetricCollection:
        """``miou``, ``per_class_iou``, ``dice``, ``pixel_acc`` and ``flicker``, built through
        the metrics registry; they take the ``B,T,K,H,W`` logits of ``StepOutput.preds``."""
        from torchmetrics import MetricCollection

        from rnnkit_segrefine.metrics import NAMES

        return MetricCollection({name: ctx.metric(f"{ctx.plugin}:{name}") for name in NAMES})

    def report(self, ctx: ReportContext) -> None:
        """``per_class_iou_<split>.json``; overlays and GIFs of the split's first clips
        (``overlays/`` for the test split, ``overlays_<split>/`` for another)."""
        from rnnkit_segrefine.report import write_overlays, write_per_class_iou

        write_per_class_iou(ctx.run_dir, ctx.split, ctx.results, ctx.spec)
        folder = "overlays" if ctx.split == "test" else f"overlays_{ctx.split}"
        write_overlays(ctx.model, ctx.dataset, ctx.spec, ctx.run_dir / folder)

    def check_data(self, ctx: DataContext) -> DataCheck:
        """Clips and frames per split, pixels per class, and the files a run would skip."""
        from rnnkit_segrefine.check import check_segmentation

        config = cast(SegRefineConfig, ctx.config)  # a seg-refine run's
        return check_segmentation(ctx.source().factory, config, deep=ctx.deep)

    def stream(self, ctx: StreamContext) -> Iterator[dict[str, Any]]:
        """A mask per frame (or every ``ctx.every``), the refinement stepped once per frame
        with its state carried; needs a unidirectional refinement (model.bidirectional=false)."""
        from rnnkit_segrefine.stream import stream

        return stream(ctx)

    def export(self, ctx: ExportContext) -> Exportable:
        """Frames (and the refinement's state, unidirectional) -> refined logits, a dynamic
        time axis (``export.py``)."""
        from rnnkit_segrefine.export import export_model

        return export_model(ctx)

    def predict(self, ctx: PredictContext) -> list[dict[str, Any]]:
        """One mask PNG per frame (video file, frame folder) or image, under ``ctx.out_dir``
        (``predict.py``)."""
        from rnnkit_segrefine.predict import predict

        return predict(ctx)


def class_weights(m: SegModelConfig, spec: DataSpec) -> list[float] | None:
    """``model.class_weights``, one per class of the data (a one-line error otherwise)."""
    if m.class_weights is None:
        return None
    if len(m.class_weights) != spec.num_classes:
        raise ConfigError(
            f"model.class_weights: {len(m.class_weights)} weights for {spec.num_classes} classes "
            f"({', '.join(spec.class_names)})"
        )
    return list(m.class_weights)
