"""Settings of seg-refine: ``data.*`` (sources, clips, size, bad files) and ``model.*`` (segmenter,
refinement, loss, frozen-segmenter refinement)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, ClassVar, Literal

from rnnvision_kit import (
    DataConfig,
    ModelConfig,
    Rule,
    RunConfig,
    TrainConfig,
    setting,
    split_fractions_rule,
)


@dataclass
class SegDataConfig(DataConfig):
    # synthetic-seg, maskfolder, videomasks, camvid (or a plugin's of kind segmentation)
    source: str = setting("synthetic-seg", nonempty=True)
    batch_size: int = setting(4, ge=1)  # clips per batch
    clip_len: int = setting(8, ge=1)  # frames per clip (synthetic-seg: frames per video)
    # videomasks: a clip starts every N frames; None: clip_len
    clip_stride: int | None = setting(None, ge=1)
    size: list[int] | None = setting(None, length=(2,), ge=1, le=8192)  # [H, W]; None: stored
    # None: largest class id + 1, at most 1024 (camvid: 12)
    num_classes: int | None = setting(None, ge=2, le=65536)
    ignore_index: int | None = None  # mask value left out of loss and metrics (camvid: 11)
    class_names: list[str] | None = None  # names for the class ids (default: class0, class1, ...)
    on_error: Literal["error", "skip"] = "error"  # bad files: stop, or skip and count them
    val_fraction: float = setting(0.1, ge=0, lt=1)  # held out of train where a source has no val
    test_fraction: float = setting(0.2, ge=0, lt=1)  # held out where a source has no test split
    videos: int | None = setting(None, ge=1)  # synthetic-seg: train videos (val, test: 1/6 each)
    # --- masks: stored value -> class id, e.g. {0: 0, 255: 1}; None: as stored, except that masks
    # storing exactly 0 and 255 are read as 0/1 (announced). A value not in it is a bad file.
    mask_values: dict[int, int] | None = None
    binary: bool = False  # every mask value but 0 (and ignore_index) is class 1 (foreground)
    resolution: str = setting("480p", nonempty=True)  # davis: JPEGImages/<resolution> (1080p, ...)
    # --- augmentation of training clips (one draw for all frames of a clip and their masks)
    augment: bool = False
    crop_scale: list[float] = setting(default_factory=lambda: [0.5, 1.0], length=(2,), gt=0, le=1)
    # [H, W] of the training crops (resized from a crop_scale area fraction of the frame);
    # evaluation stays on whole frames. None: frames' size. E.g. 176x240 crops of 360x480
    # frames with crop_scale [0.12, 0.5] train near native resolution at a quarter of the cost
    crop_size: list[int] | None = setting(None, length=(2,), ge=1, le=8192)
    hflip: bool = False  # horizontal flip with probability 0.5
    jitter: float = setting(0.2, ge=0)  # colour jitter strength (brightness, contrast, saturation)

    rules: ClassVar[tuple[Rule, ...]] = (
        Rule(
            "binary",
            "data.mask_values is set too; set only one of them",
            lambda d: not (d.binary and d.mask_values is not None),
        ),
        Rule(
            "mask_values",
            "stored values must be in 0..2147483647 and class ids in 0..65535",
            lambda d: all(
                0 <= k < 2**31 and 0 <= v < 2**16 for k, v in (d.mask_values or {}).items()
            ),
        ),
        Rule(
            "crop_scale",
            "needs [min, max] with min <= max",
            lambda d: d.crop_scale[0] <= d.crop_scale[1],
        ),
        Rule(
            "crop_size",
            "crops are augmentation: set data.augment=true too",
            lambda d: d.crop_size is None or d.augment,
        ),
        split_fractions_rule("videos or images", skip=("synthetic-seg", "camvid")),
    )


@dataclass
class SegModelConfig(ModelConfig):
    # --- the per-frame segmenter: smp.create_model(arch, encoder_name=encoder, ...)
    arch: str = "Unet"  # any smp architecture: Unet, FPN, DeepLabV3Plus, Linknet, ...
    encoder: str = "resnet18"  # any smp encoder name
    # smp's pretrained encoder weights by name (imagenet, ssl, ...; tu-* encoders: imagenet or
    # pretrained); read from the HF cache, downloaded there when online. None: random
    encoder_weights: str | None = None
    encoder_depth: int | None = setting(3, ge=1, le=5)  # encoder stages; None: the arch's (5)
    decoder_channels: list[int] | None = None  # None: for Unet-like archs a light [..., 16, 8]
    segmenter_options: dict = field(default_factory=dict)  # more smp.create_model keywords
    segmenter_weights: str | None = None  # local state dict of the smp model (or its encoder)
    # --- refinement across time (video) or iterations (image)
    refine: Literal["convgru", "convlstm", "none"] = "convgru"  # none: per-frame baseline
    mode: Literal["video", "image"] = "video"  # video: over a clip's frames; image: iterations
    iterations: int = setting(3, ge=1)  # image mode: refinement steps per image
    hidden_channels: int = setting(16, ge=1)
    num_layers: int = setting(1, ge=1)
    kernel_size: int = setting(3, ge=1, odd=True)
    refine_stride: int = setting(2, ge=1)  # refine at 1/N resolution; corrections upsampled
    bidirectional: bool = True  # video mode: use later frames too (offline refinement)
    # --- training
    dice_weight: float = setting(1.0, ge=0)  # loss = CE + dice_weight * Dice
    aux_weight: float = setting(0.5, ge=0)  # weight of the same loss on the per-frame logits
    # cross-entropy weight of each class (e.g. median-frequency balancing for rare classes, as
    # SegNet trains CamVid); None: all 1
    class_weights: list[float] | None = setting(None, ge=0)
    # test-time augmentation in eval and predict (not training, stream or export): hflip
    # averages the class probabilities of the frames and their mirror images (2x the cost)
    tta: Literal["none", "hflip"] = "none"
    freeze_segmenter: bool = False  # train only the refinement on a trained segmenter
    segmenter_checkpoint: str | None = None  # RUN_DIR or .pt of a seg-refine run to start from

    rules: ClassVar[tuple[Rule, ...]] = (
        Rule(
            "freeze_segmenter",
            "needs model.segmenter_checkpoint=RUN_DIR (or model.segmenter_weights=PATH) to "
            "refine a trained segmenter",
            lambda m: not m.freeze_segmenter or bool(m.segmenter_checkpoint or m.segmenter_weights),
        ),
        Rule(
            "freeze_segmenter",
            "nothing to train with model.refine=none",
            lambda m: not (m.freeze_segmenter and m.refine == "none"),
        ),
        Rule(
            "segmenter_checkpoint",
            "model.segmenter_weights is set too; set only one of them",
            lambda m: not (m.segmenter_checkpoint and m.segmenter_weights),
        ),
    )

    def smp_kwargs(self) -> dict[str, Any]:
        """Keyword arguments for ``smp.create_model`` besides arch, classes and channels."""
        kwargs: dict[str, Any] = {"encoder_name": self.encoder, "encoder_weights": None}
        if self.encoder_depth is not None:
            kwargs["encoder_depth"] = self.encoder_depth
        if self.decoder_channels is not None:
            kwargs["decoder_channels"] = list(self.decoder_channels)
        elif self.arch.lower() in LIST_DECODERS:
            depth = self.encoder_depth or 5
            kwargs["decoder_channels"] = list(LIGHT_DECODER[-depth:])
        kwargs.update(self.segmenter_options)
        return kwargs


# Architectures whose decoder_channels is one width per stage; the CPU default makes them light.
LIST_DECODERS = ("unet", "unetplusplus", "manet")
LIGHT_DECODER = (128, 64, 32, 16, 8)


# seg-refine's run config: its defaults, and what the contexts of a seg-refine run hold
SegRefineConfig = RunConfig[SegModelConfig, SegDataConfig]


def defaults() -> SegRefineConfig:
    """seg-refine's defaults (registered as ``config=``: no torch import)."""
    return RunConfig(
        task="seg-refine",
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
