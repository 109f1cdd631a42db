"""Starting weights of the segmenter: a local state dict (``model.segmenter_weights``) or the
segmenter part of an earlier seg-refine run (``model.segmenter_checkpoint``). Nothing is
downloaded; every file is read with ``torch.load(weights_only=True)``."""

from __future__ import annotations

import difflib
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import torch
from torch import nn

from rnnkit_segrefine.config import SegModelConfig
from rnnvision_kit import CheckpointError, ConfigError
from rnnvision_kit.runner import checkpoint_source, load_checkpoint, load_torch_file

PREFIX = "segmenter."


def _tensors(state: Any) -> dict[str, torch.Tensor] | None:
    if (
        isinstance(state, Mapping)
        and state
        and all(isinstance(v, torch.Tensor) for v in state.values())
    ):
        return dict(state)
    return None


def _fit(module: nn.Module, state: dict[str, torch.Tensor], path: Path, what: str) -> None:
    """Load ``state`` strictly into ``module`` or raise one line naming the file."""
    own = module.state_dict()
    missing = sorted(set(own) - set(state))
    unexpected = sorted(set(state) - set(own))
    wrong = sorted(k for k in set(own) & set(state) if own[k].shape != state[k].shape)
    if missing or unexpected or wrong:
        problems = []
        if wrong:
            problems.append(f"{len(wrong)} shape mismatches (first: {wrong[0]})")
        if missing:
            problems.append(f"{len(missing)} missing (first: {missing[0]})")
        if unexpected:
            problems.append(f"{len(unexpected)} unexpected (first: {unexpected[0]})")
        raise CheckpointError(f"{path}: weights do not fit the {what}: {'; '.join(problems)}")
    module.load_state_dict(state)


def load_segmenter_weights(segmenter: nn.Module, file: str) -> None:
    """Load a state dict of the whole smp model, or of its encoder (``fc.*`` keys of a
    classification network are dropped), from ``file``; a ``state_dict``/``model`` entry of a
    training checkpoint is accepted too."""
    path = Path(file).expanduser()
    if not path.is_file():
        raise CheckpointError(f"{path}: model.segmenter_weights file not found")
    raw = load_torch_file(path, "weights file (model.segmenter_weights)")
    state = _tensors(raw)
    for key in ("state_dict", "model"):
        if state is None and isinstance(raw, Mapping):
            state = _tensors(raw.get(key))
    if state is None:
        raise CheckpointError(f"{path}: no state dict (a mapping of names to tensors) found")
    if any(k.startswith(PREFIX) for k in state):  # a seg-refine model: its segmenter part
        state = {k.removeprefix(PREFIX): v for k, v in state.items() if k.startswith(PREFIX)}
    if any(k.startswith(("encoder.", "decoder.", "segmentation_head.")) for k in state):
        _fit(segmenter, state, path, "segmenter")
        return
    encoder = getattr(segmenter, "encoder", None)
    if encoder is None:
        raise CheckpointError(f"{path}: weights do not fit the segmenter")
    state = {k: v for k, v in state.items() if not k.startswith("fc.")}
    _fit(encoder, state, path, "segmenter's encoder")


def checkpoint_path(source: str) -> Path:
    """``RUN_DIR`` (its best checkpoint, else its last) or a ``.pt`` file."""
    return checkpoint_source(source, "model.segmenter_checkpoint", "a .pt file")


def load_segmenter_checkpoint(
    segmenter: nn.Module, source: str, m: SegModelConfig, class_names: Sequence[str]
) -> Path:
    """Copy the segmenter of a seg-refine run's checkpoint into ``segmenter``; return its path."""
    path = checkpoint_path(source)
    checkpoint = load_checkpoint(path)
    saved = checkpoint["config"].get("model") or {}
    for key in ("arch", "encoder", "encoder_depth", "decoder_channels", "segmenter_options"):
        if key in saved and saved[key] != getattr(m, key):
            raise CheckpointError(
                f"{path}: its segmenter has model.{key}={saved[key]!r} but this run sets "
                f"{getattr(m, key)!r}; use the same segmenter settings"
            )
    saved_classes = list(checkpoint["spec"].get("class_names", []))
    if saved_classes and saved_classes != list(class_names):
        raise CheckpointError(
            f"{path}: its segmenter was trained on classes {saved_classes}, this data has "
            f"{list(class_names)}"
        )
    state = {
        k.removeprefix(PREFIX): v for k, v in checkpoint["model"].items() if k.startswith(PREFIX)
    }
    if not state:
        raise CheckpointError(f"{path}: no segmenter weights (not a seg-refine checkpoint?)")
    _fit(segmenter, state, path, "segmenter")
    return path


def load_encoder_weights(segmenter: nn.Module, m: SegModelConfig) -> str:
    """smp's pretrained weights ``m.encoder_weights`` for the segmenter's encoder, read from the
    Hugging Face cache (or torch's, for weights smp publishes by URL), downloaded there when
    online; return the file. ``tu-`` (timm) encoders take timm's weights (``imagenet`` or
    ``pretrained``: the default tag, or the tag in the encoder name)."""
    import segmentation_models_pytorch as smp

    from rnnvision_kit.nn import (
        cached_hub_file,
        cached_url,
        first_mismatch,
        read_state_dict,
        timm_weights_file,
    )

    name, tag = m.encoder, str(m.encoder_weights)
    what = f"model.encoder_weights={tag} of encoder {name}"
    encoder: Any = segmenter.encoder  # smp's encoder; a tu- one holds timm's model as .model
    if name.startswith("tu-"):
        _, file = timm_weights_file(name[3:], "pretrained" if tag == "imagenet" else tag)
        target = encoder.model
        state = read_state_dict(file, "model.encoder_weights")
        own = target.state_dict()
        state = {k: v for k, v in state.items() if k in own}
        missing = [k for k in own if k not in state]
        if missing:
            raise ConfigError(
                f"{file}: weights do not fit the segmenter's encoder: {len(missing)} missing "
                f"(first: {missing[0]})"
            )
        _fit(target, state, Path(file), "segmenter's encoder")
        return file
    options = smp.encoders.encoders.get(name, {}).get("pretrained_settings", {})
    if tag not in options:
        close = difflib.get_close_matches(tag, list(options), n=1)
        known = ", ".join(options) or "none"
        known += f"; closest: {close[0]}" if close else ""
        raise ConfigError(
            f"model.encoder_weights={tag}: smp has no such weights for encoder {name} (known: {known})"
        )
    settings = options[tag]
    if "repo_id" in settings:
        path = cached_hub_file(
            settings["repo_id"], "model.safetensors", what, revision=settings.get("revision")
        )
    else:  # older smp: weights by URL
        path = cached_url(settings["url"], what)
    state = read_state_dict(path, "model.encoder_weights")
    try:
        encoder.load_state_dict(state)
    except RuntimeError as error:
        raise CheckpointError(
            f"{path}: weights do not fit the segmenter's encoder: {first_mismatch(error)}"
        ) from None
    return str(path)
