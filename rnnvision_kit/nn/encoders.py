"""Frame encoders: ``B,C,H,W`` images in, ``B,F`` feature vectors out (``out_features`` = F).

``small-cnn`` is a few conv-bn-relu-pool blocks that keep a coarse spatial grid (position matters
for motion), fast on a CPU. ``resnet18`` and ``mobilenet_v3_small`` are torchvision's, random,
from a local state dict file (``weights=PATH``) or pretrained by name (``pretrained=DEFAULT``).
Every torchvision and timm model is an encoder too (``rnnvision_kit.nn.families``: ``tv:NAME``,
``timm:NAME``); the torchvision models both load come from :func:`torchvision_model` (random or
with weights by name) here, so that the families build on this module and not the reverse.

Besides ``forward``, the encoders here offer what fine-tuning and image-classify use:
``stages()`` (the trunk's blocks from the input on), ``trunk`` (the part that pretrained weights
fill; a ``feature_dim`` projection is not part of it), ``feature_map(images)`` (the ``B,C',H',W'``
map before global pooling) and ``weights_info`` (normalisation and input size of pretrained
weights, or None).
"""

from __future__ import annotations

import difflib
import functools
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

import torch
from torch import nn

from rnnvision_kit.errors import CheckpointError, ConfigError, reason
from rnnvision_kit.nn.pretrained import WeightsInfo, cached_url, first_mismatch, shape_problem
from rnnvision_kit.safe_load import load_torch_file

__all__ = [
    "ENCODERS",
    "FrameEncoder",
    "SmallCNN",
    "build_encoder",
    "load_weights",
    "mobilenet_v3_small",
    "read_state_dict",
    "resnet18",
    "small_cnn",
    "torchvision_model",
    "torchvision_names",
    "torchvision_stages",
    "torchvision_weights",
]

_POOLS = (nn.AdaptiveAvgPool2d, nn.AdaptiveMaxPool2d)


class SmallCNN(nn.Module):
    """Conv-BN-ReLU-MaxPool blocks, an adaptive average pool to a ``grid x grid`` map, a linear layer.

    Flattening the grid (instead of global pooling) keeps where things are in the frame.
    """

    weights_info: WeightsInfo | None = None

    def __init__(
        self,
        in_channels: int = 3,
        feature_dim: int = 128,
        widths: Sequence[int] = (8, 16, 32),
        grid: int = 4,
    ) -> None:
        super().__init__()
        layers: list[nn.Module] = []
        channels = in_channels
        for width in widths:
            layers += [
                nn.Conv2d(channels, width, 3, padding=1, bias=False),
                nn.BatchNorm2d(width),
                nn.ReLU(inplace=True),
                nn.MaxPool2d(2),
            ]
            channels = width
        layers.append(nn.AdaptiveAvgPool2d(grid))
        self.features = nn.Sequential(*layers)
        self.project = nn.Sequential(
            nn.Flatten(), nn.Linear(channels * grid * grid, feature_dim), nn.ReLU(inplace=True)
        )
        self.out_features = feature_dim
        self.feature_channels = channels
        self._blocks = len(widths)

    @property
    def trunk(self) -> nn.Module:
        """The conv blocks (the projection to ``feature_dim`` is not part of it)."""
        return self.features

    def stages(self) -> list[list[nn.Module]]:
        """One stage per conv block."""
        return [list(self.features[4 * i : 4 * i + 4]) for i in range(self._blocks)]

    def feature_map(self, images: torch.Tensor) -> torch.Tensor:
        """The last block's ``B,C,H/8,W/8`` map (before the pool to the grid)."""
        return self.features[:-1](images)

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        return self.project(self.features(images))


class _Tap(Exception):
    """Raised by a hook to stop the forward pass once the feature map is taken."""

    def __init__(self, value: torch.Tensor) -> None:
        super().__init__()
        self.value = value


class FrameEncoder(nn.Module):
    """A trunk giving ``B,native`` features, optionally projected to ``feature_dim``.

    ``stages``: module names of the trunk, grouped per stage, from the input on.
    ``map_from``: how :meth:`feature_map` takes the map: ``"timm"`` (``forward_features``) or
    ``"hook"`` (the input of the trunk's last global pool, else the last 4-D output of a
    module; found once by running the trunk).
    """

    def __init__(
        self,
        trunk: nn.Module,
        native: int,
        feature_dim: int | None = None,
        *,
        stages: Sequence[Sequence[str]] = (),
        weights_info: WeightsInfo | None = None,
        name: str = "",
        map_from: str = "hook",
    ) -> None:
        super().__init__()
        self.trunk = trunk
        self.project = nn.Linear(native, feature_dim) if feature_dim else nn.Identity()
        self.out_features = feature_dim or native
        self.native_features = native
        self.stage_names = tuple(tuple(names) for names in stages)
        self.weights_info = weights_info
        self.name = name
        self.map_from = map_from
        self._tap_at: tuple[str, str] | None = None  # (module name, "input" | "output")

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        return self.project(torch.flatten(self.trunk(images), 1))

    def stages(self) -> list[list[nn.Module]]:
        """The trunk's stages (modules grouped per stage, from the input on); one stage, the
        whole trunk, when none were given."""
        if not self.stage_names:
            return [[self.trunk]]
        return [[self.trunk.get_submodule(n) for n in names] for names in self.stage_names]

    def feature_map(self, images: torch.Tensor) -> torch.Tensor:
        """The ``B,C',H',W'`` map the trunk pools into its features."""
        if self.map_from == "timm":
            return self._timm_map(images)
        if self._tap_at is None:
            self._tap_at = self._find_tap(images)
        name, kind = self._tap_at
        module = self.trunk.get_submodule(name)

        def take_input(_module: nn.Module, args: tuple[Any, ...]) -> None:
            raise _Tap(args[0])

        def take_output(_module: nn.Module, _args: Any, output: torch.Tensor) -> None:
            raise _Tap(output)

        if kind == "input":
            handle = module.register_forward_pre_hook(take_input)
        else:
            handle = module.register_forward_hook(take_output)
        try:
            self.trunk(images)
        except _Tap as tap:
            return tap.value
        finally:
            handle.remove()
        raise ConfigError(f"backbone {self.name or 'encoder'}: no feature map found")

    def _timm_map(self, images: torch.Tensor) -> torch.Tensor:
        timm_model: Any = self.trunk  # timm's models have forward_features
        out = timm_model.forward_features(images)
        if out.dim() == 4 and "NHWC" in str(getattr(self.trunk, "output_fmt", "NCHW")):
            out = out.permute(0, 3, 1, 2)
        if out.dim() != 4:
            raise ConfigError(
                f"backbone {self.name}: gives {out.dim()}-D tokens, not a B,C,H,W feature map; "
                "use a convolutional backbone here"
            )
        return out

    def _find_tap(self, images: torch.Tensor) -> tuple[str, str]:
        """Run the trunk on one image with hooks on every module: the input of the last global
        pool, else the last 4-D output; tokens (3-D outputs) after it mean there is no map."""
        events: list[tuple[str, str, int]] = []
        handles = []
        for name, module in self.trunk.named_modules():
            if not name:
                continue
            if isinstance(module, _POOLS):
                handles.append(
                    module.register_forward_pre_hook(
                        lambda _m, args, _n=name: events.append((_n, "input", args[0].dim()))
                    )
                )
            handles.append(
                module.register_forward_hook(
                    lambda _m, _a, out, _n=name: events.append(
                        (_n, "output", out.dim() if isinstance(out, torch.Tensor) else 0)
                    )
                )
            )
        was_training = self.trunk.training
        try:
            self.trunk.eval()
            with torch.no_grad():
                self.trunk(images[:1])
        finally:
            self.trunk.train(was_training)
            for handle in handles:
                handle.remove()
        pools = [i for i, (_, kind, dim) in enumerate(events) if kind == "input" and dim == 4]
        maps = [i for i, (_, kind, dim) in enumerate(events) if kind == "output" and dim == 4]
        at = pools[-1] if pools else (maps[-1] if maps else None)
        if at is None or any(dim == 3 for _, kind, dim in events[at + 1 :] if kind == "output"):
            raise ConfigError(
                f"backbone {self.name or 'encoder'}: gives tokens, not a B,C,H,W feature map; "
                "use a convolutional backbone here"
            )
        return events[at][0], events[at][1]


def read_state_dict(path: str | Path, setting: str = "model.backbone_weights") -> dict[str, Any]:
    """A state dict of tensors from a local file (``torch.load(weights_only=True)``): plain, or
    under ``"state_dict"``/``"model"``, ``module.`` prefixes dropped; one-line ConfigErrors."""
    file = Path(path).expanduser()
    if not file.is_file():
        raise ConfigError(f"{file}: backbone weights file not found ({setting})")
    try:
        if file.suffix == ".safetensors":
            from safetensors.torch import load_file

            state: Any = load_file(str(file), device="cpu")
        else:
            state = load_torch_file(file, f"PyTorch weights file ({setting})")
    except CheckpointError:
        raise
    except Exception as error:  # safetensors header and format errors
        raise CheckpointError(f"{file}: not a readable weights file ({reason(error)})") from None
    for key in ("state_dict", "model"):
        if isinstance(state, Mapping) and isinstance(state.get(key), Mapping):
            state = state[key]
    if not isinstance(state, Mapping) or not all(
        isinstance(v, torch.Tensor) for v in state.values()
    ):
        raise ConfigError(f"{file}: not a state dict of tensors ({setting})")
    return {k.removeprefix("module."): v for k, v in state.items()}


def load_weights(
    module: nn.Module, path: str | Path, name: str, ignore: Sequence[str] = ()
) -> None:
    """Load a local state dict (``torch.load(weights_only=True)``) into ``module``.

    Accepts a plain state dict or one under ``"state_dict"``/``"model"``, with or without a
    ``module.`` prefix. Keys starting with one of ``ignore`` (a classifier the encoder drops) may
    be present or absent; any other mismatch raises a ConfigError naming the file (and, for
    shapes, the first parameter that does not fit).
    """
    file = Path(path).expanduser()
    state = read_state_dict(file)
    state = {k: v for k, v in state.items() if not k.startswith(tuple(ignore))}
    own = {k: v for k, v in module.state_dict().items() if not k.startswith(tuple(ignore))}
    missing, unexpected = sorted(set(own) - set(state)), sorted(set(state) - set(own))
    if missing or unexpected:
        detail = ", ".join(
            f"{len(keys)} {what} key(s), e.g. {keys[0]!r}"
            for what, keys in (("missing", missing), ("unexpected", unexpected))
            if keys
        )
        raise ConfigError(f"{file}: not {name} weights ({detail})")
    problem = shape_problem(own, state)
    if problem:
        raise ConfigError(f"{file}: {name} weights of other shapes: {problem}")
    module.load_state_dict(state, strict=False)


def small_cnn(
    feature_dim: int | None = 128,
    weights: str | None = None,
    in_channels: int = 3,
    pretrained: str | None = None,
) -> SmallCNN:
    """The CPU default: three conv blocks, a 4x4 grid, a linear layer to ``feature_dim``."""
    if pretrained:
        raise ConfigError(
            f"model.weights={pretrained}: small-cnn has no pretrained weights (use "
            "model.backbone_weights=PATH, or a backbone such as tv:resnet18)"
        )
    encoder = SmallCNN(in_channels, feature_dim or 128)
    if weights:
        load_weights(encoder, weights, "small-cnn")
    return encoder


# ---------------------------------------------------------------------------- torchvision models
# (the named encoders here and the tv:NAME family of rnnvision_kit.nn.families load them)

DEFAULT_NAMES = ("default", "pretrained", "true")  # model.weights values meaning "the default"
AUX_CLASSIFIERS = ("AuxLogits", "aux1", "aux2")  # googlenet / inception_v3 auxiliary classifiers
_EXPAND = ("features", "layers", "trunk_output", "blocks", "stages")  # their children are stages


def closest_hint(word: str, known: Sequence[str], prefix: str = "") -> str:
    """``"; closest: A, B"`` (up to 3 names of ``known`` near ``word``), or ``""``."""
    close = difflib.get_close_matches(word, list(known), n=3, cutoff=0.5)
    return f"; closest: {', '.join(prefix + c for c in close)}" if close else ""


@functools.cache
def torchvision_names() -> tuple[str, ...]:
    """The classification models of ``torchvision.models``."""
    import torchvision

    return tuple(torchvision.models.list_models(module=torchvision.models))


def _check_tv_name(name: str) -> None:
    known = torchvision_names()
    if name not in known:
        raise ConfigError(
            f"unknown backbone 'tv:{name}': torchvision has no model {name!r}"
            f"{closest_hint(name, known, 'tv:')} (list them: rnnkit backbones 'tv:*')"
        )


def torchvision_weights(name: str, tag: str) -> Any:
    """The weights enum member of model ``name`` for ``tag``: ``DEFAULT``, a member name such as
    ``IMAGENET1K_V2``, or ``ResNet50_Weights.IMAGENET1K_V2``; a one-line error with the closest
    tags otherwise."""
    from torchvision.models import get_model_weights

    _check_tv_name(name)
    enum = get_model_weights(name)
    wanted = tag.rpartition(".")[2] if tag.startswith(enum.__name__ + ".") else tag
    if wanted.lower() in DEFAULT_NAMES:
        wanted = "DEFAULT"
    members = list(enum.__members__)
    if wanted not in members:
        raise ConfigError(
            f"model.weights={tag}: tv:{name} has no such weights (known: {', '.join(members)})"
            f"{closest_hint(wanted, members)}"
        )
    return enum[wanted]


def torchvision_model(name: str, tag: str | None = None) -> tuple[nn.Module, WeightsInfo | None]:
    """torchvision model ``name``, random (``tag`` None) or with the weights ``tag`` from torch's
    hub cache (downloaded there once), auxiliary classifiers off, and what the weights say about
    their input. The architecture is the same with and without weights: inception_v3 and
    googlenet keep ``transform_input`` off (their weights then take mean = std = 0.5)."""
    import warnings

    from torchvision.models import get_model

    _check_tv_name(name)
    info = None
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", FutureWarning)  # googlenet/inception init notices
        warnings.simplefilter("ignore", UserWarning)
        if not tag:
            model = get_model(name, weights=None)
        else:
            weights = torchvision_weights(name, tag)
            file = cached_url(weights.url, f"model.weights={tag} of tv:{name}")
            try:
                model = get_model(name, weights=weights)
            except RuntimeError as error:
                raise ConfigError(
                    f"{file}: weights do not fit tv:{name}: {first_mismatch(error)}"
                ) from None
            except Exception as error:  # a truncated or foreign file in the cache
                reason = " ".join(str(error).split())[:100]
                raise ConfigError(f"{file}: not a PyTorch weights file ({reason})") from None
            info = _tv_info(name, weights, model, str(file))
    if getattr(model, "aux_logits", False):
        model.aux_logits = False
        for attr in AUX_CLASSIFIERS:
            if getattr(model, attr, None) is not None:
                setattr(model, attr, None)
    if getattr(model, "transform_input", False):
        model.transform_input = False
    return model, info


def _tv_info(name: str, weights: Any, model: nn.Module, file: str) -> WeightsInfo:
    transforms = weights.transforms()
    mean, std = tuple(transforms.mean), tuple(transforms.std)
    if name in ("inception_v3", "googlenet"):  # transform_input is off: what it computed
        mean = std = (0.5, 0.5, 0.5)
    crop = list(getattr(transforms, "crop_size", []) or [])
    size = (int(crop[0]), int(crop[-1])) if crop else None
    min_size = weights.meta.get("min_size")
    return WeightsInfo(
        name=f"tv:{name} {weights.name}",
        mean=tuple(float(v) for v in mean),
        std=tuple(float(v) for v in std),
        input_size=size,
        min_size=tuple(min_size) if min_size else None,
        fixed_size=name.startswith(("vit_", "maxvit")),
        file=file,
    )


def torchvision_stages(model: nn.Module) -> list[list[str]]:
    """Stages of a torchvision model, from the input on: each child of ``features`` / ``layers``
    / ``trunk_output`` / ``blocks`` / ``stages``, each other child with parameters, consecutive
    single layers up to an activation or pool (a stem's conv and norm) grouped; ResNet-18: stem,
    layer1 .. layer4; VGG: each convolution."""
    units: list[tuple[str, nn.Module]] = []
    for name, child in model.named_children():
        if name in _EXPAND and isinstance(child, nn.Sequential | nn.ModuleList):
            units += [(f"{name}.{n}", c) for n, c in child.named_children()]
        else:
            units.append((name, child))
    stages: list[list[str]] = []
    singles: list[str] = []
    for name, child in units:
        if not any(True for _ in child.parameters()):  # an activation or pool ends a group
            if singles:
                stages.append(singles)
                singles = []
            continue
        if not any(True for _ in child.children()):
            singles.append(name)
            continue
        if singles:
            stages.append(singles)
            singles = []
        stages.append([name])
    if singles:
        stages.append(singles)
    return stages


def resnet18(
    feature_dim: int | None = None,
    weights: str | None = None,
    in_channels: int = 3,
    pretrained: str | None = None,
) -> FrameEncoder:
    """torchvision's ResNet-18 without its classifier (512 features): random, a local file
    (``weights``) or torchvision weights by name (``pretrained``: DEFAULT, IMAGENET1K_V1)."""
    _check_rgb(in_channels, "resnet18")
    trunk: Any  # a torchvision ResNet: .fc
    trunk, info = torchvision_model("resnet18", pretrained)
    if weights:
        load_weights(trunk, weights, "resnet18", ignore=("fc.",))
    native = trunk.fc.in_features
    trunk.fc = nn.Identity()
    return FrameEncoder(
        trunk,
        native,
        feature_dim,
        stages=torchvision_stages(trunk),
        weights_info=info,
        name="resnet18",
    )


def mobilenet_v3_small(
    feature_dim: int | None = None,
    weights: str | None = None,
    in_channels: int = 3,
    pretrained: str | None = None,
) -> FrameEncoder:
    """torchvision's MobileNetV3-Small features and pooling (576 features), no classifier."""
    _check_rgb(in_channels, "mobilenet_v3_small")
    full: Any  # a torchvision MobileNetV3: .features, .avgpool, .classifier
    full, info = torchvision_model("mobilenet_v3_small", pretrained)
    if weights:
        load_weights(full, weights, "mobilenet_v3_small", ignore=("classifier.",))
    native = full.classifier[0].in_features
    trunk = nn.Sequential(full.features, full.avgpool)
    stages = [[f"0.{i}"] for i in range(len(full.features))]
    return FrameEncoder(
        trunk, native, feature_dim, stages=stages, weights_info=info, name="mobilenet_v3_small"
    )


def _check_rgb(in_channels: int, name: str) -> None:
    if in_channels != 3:
        raise ConfigError(f"backbone {name} takes 3-channel frames (got {in_channels})")


ENCODERS: dict[str, Callable[..., nn.Module]] = {
    "small-cnn": small_cnn,
    "resnet18": resnet18,
    "mobilenet_v3_small": mobilenet_v3_small,
}


def build_encoder(name: str, **options: Any) -> nn.Module:
    """Build a frame encoder of :data:`ENCODERS` by name."""
    if name not in ENCODERS:
        raise ConfigError(f"unknown frame encoder {name!r} (known: {', '.join(ENCODERS)})")
    return ENCODERS[name](**options)
