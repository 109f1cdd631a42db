"""Settings of seg-refine: ``data.*`` (sources, clips, size, bad files) and ``model.*`` (segmenter,
refinement, loss, frozen-segmenter refinement)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Literal

from rnnvision_kit import DataConfig
from rnnvision_kit.errors import ConfigError


@dataclass
class SegDataConfig(DataConfig):
    source: str = "synthetic-seg"  # synthetic-seg, maskfolder, videomasks, camvid (or a plugin's)
    batch_size: int = 4  # clips per batch
    clip_len: int = 8  # frames per clip (videomasks; synthetic-seg: frames per video)
    clip_stride: int | None = None  # videomasks: a clip starts every N frames; None: clip_len
    size: list[int] | None = None  # [H, W] to resize frames and masks to; None: as stored
    num_classes: int | None = None  # None: the largest class id found + 1 (camvid: 12)
    ignore_index: int | None = None  # mask value left out of loss and metrics (camvid: 11)
    class_names: list[str] | None = None  # names for the class ids (default: class0, class1, ...)
    on_error: Literal["error", "skip"] = "error"  # bad files: stop, or skip and count them
    val_fraction: float = 0.1  # held out of train where a source has no val split
    test_fraction: float = 0.2  # held out where a source has no test split
    videos: int | None = None  # synthetic-seg: train videos (val, test: 1/6 each); None: 240/40/40

    def validate(self) -> None:
        if self.clip_len < 1:
            raise ConfigError(f"data.clip_len: must be >= 1 (got {self.clip_len})")
        if self.clip_stride is not None and self.clip_stride < 1:
            raise ConfigError(f"data.clip_stride: must be >= 1 (got {self.clip_stride})")
        if self.size is not None and (len(self.size) != 2 or min(self.size) < 1):
            raise ConfigError(f"data.size: expected [H, W] of positive ints (got {self.size})")
        if self.num_classes is not None and self.num_classes < 2:
            raise ConfigError(f"data.num_classes: must be >= 2 (got {self.num_classes})")
        for key in ("val_fraction", "test_fraction"):
            if not 0.0 <= getattr(self, key) < 1.0:
                raise ConfigError(f"data.{key}: must be in [0, 1) (got {getattr(self, key)})")
        if self.videos is not None and self.videos < 1:
            raise ConfigError(f"data.videos: must be >= 1 (got {self.videos})")


@dataclass
class SegModelConfig:
    # --- the per-frame segmenter: smp.create_model(arch, encoder_name=encoder, ...)
    arch: str = "Unet"  # any smp architecture: Unet, FPN, DeepLabV3Plus, Linknet, ...
    encoder: str = "resnet18"  # any smp encoder name (random init; no downloads)
    encoder_depth: int | None = 3  # encoder stages used; None: the architecture's default (5)
    decoder_channels: list[int] | None = None  # None: for Unet-like archs a light [..., 16, 8]
    segmenter_options: dict = field(default_factory=dict)  # more smp.create_model keywords
    segmenter_weights: str | None = None  # local state dict of the smp model (or its encoder)
    # --- refinement across time (video) or iterations (image)
    refine: Literal["convgru", "convlstm", "none"] = "convgru"  # none: per-frame baseline
    mode: Literal["video", "image"] = "video"  # video: over a clip's frames; image: iterations
    iterations: int = 3  # image mode: refinement steps per image
    hidden_channels: int = 16
    num_layers: int = 1
    kernel_size: int = 3
    refine_stride: int = 2  # refine at 1/N resolution (cheaper); corrections upsampled (bilinear)
    bidirectional: bool = True  # video mode: use later frames too (offline refinement)
    # --- training
    dice_weight: float = 1.0  # loss = CE + dice_weight * Dice
    aux_weight: float = 0.5  # weight of the same loss on the unrefined per-frame logits
    freeze_segmenter: bool = False  # train only the refinement on a trained segmenter
    segmenter_checkpoint: str | None = None  # RUN_DIR or .pt of a seg-refine run to start from

    def validate(self) -> None:
        for key in ("iterations", "hidden_channels", "num_layers", "refine_stride"):
            if getattr(self, key) < 1:
                raise ConfigError(f"model.{key}: must be >= 1 (got {getattr(self, key)})")
        if self.kernel_size < 1 or self.kernel_size % 2 == 0:
            raise ConfigError(f"model.kernel_size: must be odd and >= 1 (got {self.kernel_size})")
        if self.encoder_depth is not None and not 1 <= self.encoder_depth <= 5:
            raise ConfigError(f"model.encoder_depth: must be in 1..5 (got {self.encoder_depth})")
        for key in ("dice_weight", "aux_weight"):
            if getattr(self, key) < 0:
                raise ConfigError(f"model.{key}: must be >= 0 (got {getattr(self, key)})")
        if self.freeze_segmenter and not (self.segmenter_checkpoint or self.segmenter_weights):
            raise ConfigError(
                "model.freeze_segmenter: needs model.segmenter_checkpoint=RUN_DIR "
                "(or model.segmenter_weights=PATH) to refine a trained segmenter"
            )
        if self.freeze_segmenter and self.refine == "none":
            raise ConfigError("model.freeze_segmenter: nothing to train with model.refine=none")
        if self.segmenter_checkpoint and self.segmenter_weights:
            raise ConfigError(
                "model.segmenter_checkpoint and model.segmenter_weights: set only one of them"
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
