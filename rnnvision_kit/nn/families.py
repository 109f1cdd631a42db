"""Backbone families: every torchvision classification model (``tv:NAME``) and every timm model
(``timm:NAME``) as a frame encoder, random or with pretrained weights by name.

Features are taken before the classifier: torchvision's last linear layer (the classifier) is
replaced by ``Identity``; timm models are built with ``num_classes=0`` (pooled features).
Weights by name: torchvision's weight enums (``DEFAULT``, ``IMAGENET1K_V2``, ...) and timm's
pretrained tags (``pretrained`` = the model's default tag, or a tag such as ``a1_in1k``), read
from the libraries' caches or downloaded there once (``rnnvision_kit.nn.pretrained``).
"""

from __future__ import annotations

import fnmatch
from typing import Any

from torch import nn

from rnnvision_kit.errors import ConfigError
from rnnvision_kit.nn.encoders import (
    AUX_CLASSIFIERS,
    DEFAULT_NAMES,
    FrameEncoder,
    closest_hint,
    load_weights,
    torchvision_model,
    torchvision_names,
    torchvision_stages,
    torchvision_weights,
)
from rnnvision_kit.nn.pretrained import (
    WeightsInfo,
    cached_hub_file,
    cached_url,
    first_mismatch,
)

__all__ = [
    "list_timm",
    "list_torchvision",
    "timm_encoder",
    "timm_weights_file",
    "torchvision_encoder",
    "torchvision_model",
    "torchvision_stages",
    "torchvision_weights",
]

# ---------------------------------------------------------------------------- torchvision


def _classifier(model: nn.Module) -> str:
    """The name of the classifier: the last linear layer; squeezenet's ``classifier``."""
    linear = [n for n, m in model.named_modules() if isinstance(m, nn.Linear)]
    if linear:
        return linear[-1]
    return "classifier"


def _replace(model: nn.Module, name: str, new: nn.Module) -> None:
    parent, _, child = name.rpartition(".")
    setattr(model.get_submodule(parent) if parent else model, child, new)


def torchvision_encoder(
    model_name: str,
    feature_dim: int | None = None,
    weights: str | None = None,
    in_channels: int = 3,
    pretrained: str | None = None,
) -> FrameEncoder:
    """``tv:NAME``: torchvision model ``NAME`` before its classifier, random, from a local file
    (``weights``) or pretrained by name (``pretrained``: DEFAULT, IMAGENET1K_V2, ...)."""
    if in_channels != 3:
        raise ConfigError(f"backbone tv:{model_name} takes 3-channel frames (got {in_channels})")
    if weights and pretrained:
        raise ConfigError("set only one of model.weights and model.backbone_weights")
    model, info = torchvision_model(model_name, pretrained)
    head = _classifier(model)
    if weights:
        load_weights(model, weights, f"tv:{model_name}", ignore=(f"{head}.", *AUX_CLASSIFIERS))
    module = model.get_submodule(head)
    if isinstance(module, nn.Linear):
        native = module.in_features
        _replace(model, head, nn.Identity())
    else:  # squeezenet: a 1x1 convolution to the classes, then a pool
        conv = next(m for m in module.modules() if isinstance(m, nn.Conv2d))
        native = conv.in_channels
        _replace(model, head, nn.Sequential(nn.AdaptiveAvgPool2d(1), nn.Flatten()))
    return FrameEncoder(
        model,
        native,
        feature_dim,
        stages=torchvision_stages(model),
        weights_info=info,
        name=f"tv:{model_name}",
    )


def list_torchvision(pattern: str = "*", pretrained: bool = False) -> list[tuple[str, str]]:
    """``(name, weights)`` of the torchvision models matching ``pattern`` (fnmatch); weights:
    the enum's tags, the default marked."""
    from torchvision.models import get_model_weights

    rows = []
    for name in torchvision_names():
        if not fnmatch.fnmatch(name, pattern):
            continue
        enum = get_model_weights(name)
        default = enum.DEFAULT.name
        tags = [t if t != default else f"{t} (DEFAULT)" for t in enum.__members__ if t != "DEFAULT"]
        if tags or not pretrained:
            rows.append((name, ", ".join(tags)))
    return rows


# ----------------------------------------------------------------------------------- timm


def _check_timm_name(name: str) -> str:
    """The architecture of ``name`` (``arch`` or ``arch.tag``), or a one-line error."""
    import timm

    arch = name.partition(".")[0]
    if not timm.is_model(arch):
        raise ConfigError(
            f"unknown backbone 'timm:{name}': timm has no model {arch!r}"
            f"{closest_hint(arch, timm.list_models(), 'timm:')} (list them: rnnkit backbones 'timm:*')"
        )
    return arch


def _timm_tag(name: str, tag: str | None) -> str:
    """``arch.tag`` of the pretrained weights asked for, or a one-line error with the closest."""
    import timm

    arch, _, in_name = name.partition(".")
    wanted = in_name if (tag or "").lower() in DEFAULT_NAMES else tag
    known = [n.partition(".")[2] for n in timm.list_pretrained(f"{arch}.*")]
    if not known:
        raise ConfigError(f"model.weights={tag}: timm:{arch} has no pretrained weights")
    if not wanted:
        cfg = timm.models.get_pretrained_cfg(arch)
        wanted = getattr(cfg, "tag", None) or known[0]
    if wanted not in known:
        raise ConfigError(
            f"model.weights={tag}: timm:{arch} has no weights {wanted!r} (known: "
            f"{', '.join(known)}){closest_hint(wanted, known)}"
        )
    return f"{arch}.{wanted}"


def _timm_file(full: str, tag: str) -> str:
    """The weights file of timm model ``arch.tag``: from the Hugging Face Hub cache (or torch's
    hub cache for weights only published by URL), downloaded there once."""
    import timm

    cfg = timm.models.get_pretrained_cfg(full)
    what = f"model.weights={tag} of timm:{full}"
    if cfg is None:  # _timm_tag checked the tag: not met
        raise ConfigError(f"{what}: timm knows no such weights")
    if cfg.hf_hub_id:
        repo, _, revision = cfg.hf_hub_id.partition("@")
        if cfg.hf_hub_filename:
            return str(cached_hub_file(repo, cfg.hf_hub_filename, what, revision=revision or None))
        return str(
            cached_hub_file(
                repo,
                "model.safetensors",
                what,
                revision=revision or None,
                alternatives=("pytorch_model.bin",),
            )
        )
    if isinstance(cfg.url, str) and cfg.url:
        return str(cached_url(cfg.url, what))
    raise ConfigError(f"{what}: timm names no file for these weights")


def timm_weights_file(model_name: str, tag: str) -> tuple[str, str]:
    """``(arch.tag, file)`` of timm model ``model_name``'s pretrained weights ``tag``
    (``pretrained`` for the default tag or the one in the name), from the caches, downloaded
    there once; one-line errors for unknown names and tags and for missing files offline."""
    _check_timm_name(model_name)
    full = _timm_tag(model_name, tag)
    return full, _timm_file(full, tag)


def _timm_stages(model: nn.Module) -> list[list[str]]:
    """Stages from timm's ``feature_info`` (each feature level ends one); the modules after the
    last level (a head convolution or norm) form a last stage."""
    ends = [str(f["module"]) for f in getattr(model, "feature_info", []) or []]
    units: list[tuple[str, nn.Module]] = []
    for name, child in model.named_children():
        if any(e.startswith(name + ".") for e in ends):
            units += [(f"{name}.{n}", c) for n, c in child.named_children()]
        else:
            units.append((name, child))
    stages: list[list[str]] = []
    current: list[str] = []
    for name, child in units:
        if any(True for _ in child.parameters()):
            current.append(name)
        if any(e == name or e.startswith(name + ".") for e in ends) and current:
            stages.append(current)
            current = []
    if current:
        stages.append(current)
    return stages


def timm_encoder(
    model_name: str,
    feature_dim: int | None = None,
    weights: str | None = None,
    in_channels: int = 3,
    pretrained: str | None = None,
) -> FrameEncoder:
    """``timm:NAME``: timm model ``NAME`` (``arch`` or ``arch.tag``) with ``num_classes=0``,
    random, from a local file (``weights``), or pretrained (``pretrained``: ``pretrained`` for
    the default tag or the tag in NAME, or a tag such as ``a1_in1k``)."""
    import timm

    if weights and pretrained:
        raise ConfigError("set only one of model.weights and model.backbone_weights")
    _check_timm_name(model_name)
    full, file = model_name, None
    options: dict[str, Any] = {"num_classes": 0, "in_chans": in_channels}
    if pretrained:
        full = _timm_tag(model_name, pretrained)
        file = _timm_file(full, pretrained)
        options.update(pretrained=True, pretrained_cfg_overlay={"file": file})
    model: Any  # a timm model: .pretrained_cfg, .num_features
    try:
        model = timm.create_model(full, **options)
    except RuntimeError as error:  # timm's strict load of the cached file
        raise ConfigError(
            f"{file}: weights do not fit timm:{full}: {first_mismatch(error)}"
        ) from None
    except Exception as error:  # a corrupt file, a keyword this model does not take
        reason = " ".join(str(error).split())[:120]
        where = f"{file}: " if file else ""
        raise ConfigError(
            f"{where}timm:{full}: cannot build ({type(error).__name__}: {reason})"
        ) from None
    if weights:
        classifier = model.pretrained_cfg.get("classifier") or ()
        heads = (classifier,) if isinstance(classifier, str) else tuple(classifier)
        load_weights(model, weights, f"timm:{model_name}", ignore=tuple(f"{h}." for h in heads))
    info = None
    if pretrained:
        cfg = model.pretrained_cfg
        size = tuple(cfg.get("input_size") or ())[-2:]
        info = WeightsInfo(
            name=f"timm:{full}",
            mean=tuple(float(v) for v in cfg.get("mean", ())),
            std=tuple(float(v) for v in cfg.get("std", ())),
            input_size=(int(size[0]), int(size[1])) if len(size) == 2 else None,
            min_size=tuple(cfg["min_input_size"][-2:]) if cfg.get("min_input_size") else None,
            fixed_size=bool(cfg.get("fixed_input_size", False)),
            file=str(file),
        )
    native = int(getattr(model, "head_hidden_size", None) or model.num_features)
    return FrameEncoder(
        model,
        native,
        feature_dim,
        stages=_timm_stages(model),
        weights_info=info,
        name=f"timm:{model_name}",
        map_from="timm",
    )


def list_timm(pattern: str = "*", pretrained: bool = False) -> list[tuple[str, str]]:
    """``(name, weights)`` of the timm models matching ``pattern`` (fnmatch); weights: the
    pretrained tags, the default first."""
    import timm

    tags: dict[str, list[str]] = {}
    for full in timm.list_pretrained():
        arch, _, tag = full.partition(".")
        tags.setdefault(arch, []).append(tag)
    rows = []
    for name in timm.list_models(pattern):
        known = tags.get(name, [])
        if known or not pretrained:
            rows.append((name, ", ".join(known)))
    return rows
