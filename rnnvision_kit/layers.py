"""Sequence layers as settings: the ``model.*`` settings of a head, each layer's own
``model.layer.*`` settings, and the head a task builds from the registries.

``model.head`` names a registered sequence layer (``gru``, ``mingru``, ``mamba``, a plugin's...),
stacked ``model.num_layers`` times with a pooling and a classifier (``rnnvision_kit.nn``'s
``SequenceHead``), or a registered whole head (``mean``, a plugin's). A layer declares its own
settings as a dataclass (``settings=`` at registration); ``model.layer.NAME=VALUE`` sets them, and
they are checked like every other setting, before torch is imported. Importing this module does
not import torch.
"""

from __future__ import annotations

import dataclasses
import difflib
import math
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, ClassVar, Literal

from rnnvision_kit.config import ModelConfig, Rule, set_value, setting, validate
from rnnvision_kit.errors import ConfigError, RegistryError

if TYPE_CHECKING:
    from torch import nn

    from rnnvision_kit.registry import Entry, Registries

BLOCKS = ("plain", "residual", "glu", "own")


@dataclass
class LayerSettings:
    """Base of a layer's own settings (``model.layer.*``): a dataclass whose fields, declared
    with :func:`~rnnvision_kit.setting`, are the keyword arguments of the layer's factory."""

    rules: ClassVar[tuple[Rule, ...]] = ()

    def problem_with(self, head: HeadConfig) -> tuple[str, str] | None:
        """A conflict with the head's settings, as ``(setting, message)``; None when fine."""
        return None


@dataclass
class HeadConfig(ModelConfig):
    """The ``model.*`` settings of a sequence head; a task's model settings subclass it."""

    # a registered sequence layer (rnnkit layers: gru, lstm, rnn, mingru, minlstm, lru, s5,
    # mamba, mlstm, transformer, tcn) or a whole head (mean: the order-less baseline)
    head: str = setting("gru", nonempty=True)
    hidden_size: int = setting(128, ge=1)
    num_layers: int = setting(1, ge=1)
    bidirectional: bool = False
    pooling: Literal["last", "mean", "attention"] = "last"
    dropout: float = setting(0.0, ge=0, lt=1)
    # the layer's own settings (rnnkit layers lists them), e.g. model.layer.state_size=16
    layer: dict[str, Any] = field(default_factory=dict)


# ----------------------------------------------------------------- the core's layers' settings


@dataclass
class MinSettings(LayerSettings):
    expansion: float = setting(1.0, gt=0)  # state channels = round(hidden_size * expansion)


@dataclass
class LRUSettings(LayerSettings):
    state_size: int | None = setting(None, ge=1)  # complex modes; None: hidden_size
    r_min: float = setting(0.4, ge=0, lt=1)  # |lambda| at init, uniform on the ring [r_min, r_max]
    r_max: float = setting(0.99, gt=0, lt=1)  # long memory: 0.999 (the paper's long-range tasks)
    max_phase: float = setting(2 * math.pi, gt=0, le=2 * math.pi)  # phase at init in [0, this]

    rules: ClassVar[tuple[Rule, ...]] = (
        Rule("r_min", "must be below model.layer.r_max", lambda s: s.r_min < s.r_max),
    )


@dataclass
class S5Settings(LayerSettings):
    state_size: int | None = setting(None, ge=2)  # real state size P (even); None: hidden_size
    dt_min: float = setting(0.001, gt=0)  # time steps at init, log-uniform in [dt_min, dt_max]
    dt_max: float = setting(0.1, gt=0)
    init: Literal["hippo", "lin"] = "hippo"  # HiPPO-LegS eigenvalues (the paper's) or S4D-Lin

    rules: ClassVar[tuple[Rule, ...]] = (
        Rule("dt_min", "must be at most model.layer.dt_max", lambda s: s.dt_min <= s.dt_max),
        Rule(
            "state_size",
            "must be even (conjugate pairs of complex modes)",
            lambda s: s.state_size is None or s.state_size % 2 == 0,
        ),
    )


@dataclass
class MambaSettings(LayerSettings):
    state_size: int = setting(16, ge=1)  # SSM state per inner channel (N)
    expand: float = setting(2.0, gt=0)  # inner channels = round(expand * hidden_size)
    conv_size: int = setting(4, ge=1)  # kernel of the short causal convolution (1: none)
    dt_rank: int | None = setting(None, ge=1)  # rank of the step projection; none: hidden / 16
    dt_min: float = setting(0.001, gt=0)  # step sizes at init, log-uniform in [dt_min, dt_max]
    dt_max: float = setting(0.1, gt=0)

    rules: ClassVar[tuple[Rule, ...]] = (
        Rule("dt_min", "must be at most model.layer.dt_max", lambda s: s.dt_min <= s.dt_max),
    )


@dataclass
class MLSTMSettings(LayerSettings):
    heads: int = setting(4, ge=1)  # memory heads; must divide round(expand * hidden_size)
    expand: float = setting(1.0, gt=0)  # value and output-gate width = expand * hidden_size
    qk_size: int | None = setting(None, ge=1)  # query/key size per head; none: the value size
    conv_size: int = setting(4, ge=1)  # causal convolution before queries, keys, gates (1: none)

    def problem_with(self, head: HeadConfig) -> tuple[str, str] | None:
        width = max(1, round(self.expand * head.hidden_size))
        if width % self.heads:
            return "heads", f"must divide the value width {width} (expand * model.hidden_size)"
        return None


@dataclass
class TransformerSettings(LayerSettings):
    heads: int = setting(4, ge=1)  # attention heads; hidden_size / heads must be even (RoPE)
    window: int = setting(64, ge=1)  # each step attends to the last `window` steps (its cache)
    mlp_ratio: float = setting(2.0, gt=0)  # MLP width = mlp_ratio * hidden_size
    dropout: float = setting(0.0, ge=0, lt=1)  # on the attention and MLP outputs (training)
    rope_base: float = setting(10000.0, gt=1)  # rotary position frequency base

    def problem_with(self, head: HeadConfig) -> tuple[str, str] | None:
        size, rest = divmod(head.hidden_size, self.heads)
        if rest or size % 2:
            return "heads", (
                f"must split model.hidden_size={head.hidden_size} into heads of an even size "
                f"(got {self.heads})"
            )
        return None


@dataclass
class TCNSettings(LayerSettings):
    levels: int = setting(4, ge=1)  # residual blocks, block i dilated 2**i
    kernel_size: int = setting(3, ge=2)  # receptive field 1 + 2 (k - 1) (2**levels - 1)
    dropout: float = setting(0.0, ge=0, lt=1)  # after each ReLU (training)
    weight_norm: bool = False  # the paper's weight normalisation of the convolutions


# name -> (description with its paper, settings, block, causal)
CORE_LAYERS: dict[str, tuple[str, type[LayerSettings], str, bool]] = {
    "gru": ("GRU, the fused nn.GRU kernel (Cho et al. 2014)", LayerSettings, "plain", True),
    "lstm": (
        "LSTM, the fused nn.LSTM kernel (Hochreiter & Schmidhuber 1997)",
        LayerSettings,
        "plain",
        True,
    ),
    "rnn": ("Elman RNN (tanh), the fused nn.RNN kernel", LayerSettings, "plain", True),
    "mingru": ("minGRU, parallel scan (Feng et al. 2024)", MinSettings, "residual", True),
    "minlstm": ("minLSTM, parallel scan (Feng et al. 2024)", MinSettings, "residual", True),
    "lru": ("LRU, complex diagonal (Orvieto et al. 2023)", LRUSettings, "glu", True),
    "s5": ("S5 diagonal state-space model (Smith et al. 2023)", S5Settings, "glu", True),
    "mamba": (
        "Mamba's selective scan S6 with a short causal convolution (Gu & Dao 2023)",
        MambaSettings,
        "residual",
        True,
    ),
    "mlstm": ("xLSTM's matrix-memory LSTM (Beck et al. 2024)", MLSTMSettings, "residual", True),
    "transformer": (
        "causal self-attention, RoPE, sliding-window KV cache (Vaswani et al. 2017)",
        TransformerSettings,
        "own",
        True,
    ),
    "tcn": ("causal dilated temporal convolution (Bai et al. 2018)", TCNSettings, "own", True),
}


# name -> the training a layer needs, relative to a task's defaults: multipliers of train.lr
# and train.epochs, applied when the user sets neither (measured on moving-digits, 2 seeds each:
# at the shared defaults these three stay at the 90% plateau; scaled, they reach 98.5-100%)
CORE_TRAIN_SCALE: dict[str, dict[str, float]] = {
    "s5": {"epochs": 2.0},
    "transformer": {"lr": 1 / 3, "epochs": 2.0},
    "tcn": {"lr": 1 / 3},
}
TRAIN_SCALE_KEYS = ("lr", "epochs")  # what a layer's train_scale may scale


# ----------------------------------------------------------------- resolution and checks


def layer_entry(registries: Registries, name: str) -> Entry | None:
    """The registered layer ``name``, None when ``name`` is a whole head; an unknown name is a
    one-line ConfigError listing the layers and heads and the closest name, and a name that
    both a layer and a head have asks for ``plugin:name``."""
    found: dict[str, Entry] = {}
    problems: list[str] = []
    for kind in ("layers", "heads"):
        try:
            found[kind] = registries[kind].get(name)
        except RegistryError as error:
            if not str(error).startswith("unknown "):
                problems.append(str(error))  # ambiguous within one registry
    if len(found) == 2:
        both = ", ".join(entry.qualified_name for entry in found.values())
        raise ConfigError(f"model.head: {name!r} is a layer and a head; use one of: {both}")
    if found:
        return found.get("layers")
    if problems:
        raise ConfigError(f"model.head: {problems[0]}")
    known = [*registries.layers.names(), *registries.heads.names()]
    close = difflib.get_close_matches(name, known, n=2)
    hint = f"; did you mean {' or '.join(repr(c) for c in close)}?" if close else ""
    raise ConfigError(
        f"model.head: unknown layer or head {name!r} (layers: "
        f"{', '.join(registries.layers.names()) or 'none'}; heads: "
        f"{', '.join(registries.heads.names()) or 'none'}){hint}"
    )


def layer_settings(registries: Registries, model: HeadConfig) -> LayerSettings | None:
    """The chosen layer's settings: its defaults with ``model.layer`` applied and checked (a
    ConfigError naming ``model.layer.KEY`` and the layer); None for a whole head."""
    entry = layer_entry(registries, model.head)
    values = dict(model.layer or {})
    if entry is None:
        if values:
            raise ConfigError(
                f"model.layer.{next(iter(values))}: model.head={model.head} is a whole head, "
                "with no layer settings"
            )
        return None
    settings = entry.meta.get("settings") or LayerSettings
    instance = settings()
    known = [f.name for f in dataclasses.fields(instance)]
    for key in values:
        if key not in known:
            close = difflib.get_close_matches(str(key), known, n=1)
            hint = f"; did you mean model.layer.{close[0]}?" if close else ""
            has = f"its settings: {', '.join(known)}" if known else "it has no settings"
            raise ConfigError(
                f"model.layer.{key}: layer {model.head!r} has no setting {key!r} ({has}){hint}"
            )
    try:
        for key, value in values.items():
            set_value(instance, key, value)
        validate(instance)
    except ConfigError as error:
        raise ConfigError(f"model.layer.{error}") from None
    conflict = instance.problem_with(model)
    if conflict is not None:
        raise ConfigError(f"model.layer.{conflict[0]}: {conflict[1]}")
    return instance


def check_head(registries: Registries, model: Any) -> None:
    """Check ``model.head`` and ``model.layer`` of a task whose model settings are a
    :class:`HeadConfig` (others are left alone)."""
    if isinstance(model, HeadConfig):
        layer_settings(registries, model)


def build_sequence_head(
    registries: Registries, model: HeadConfig, input_size: int, num_classes: int
) -> nn.Module:
    """The head ``model.head`` over ``B,T,input_size`` sequences, ``B,num_classes`` logits out:
    a registered layer stacked ``model.num_layers`` times (``rnnvision_kit.nn.SequenceHead``),
    or a registered whole head called with the five head settings."""
    from rnnvision_kit.nn.heads import SequenceHead

    options: dict[str, Any] = {
        "hidden_size": model.hidden_size,
        "num_layers": model.num_layers,
        "bidirectional": model.bidirectional,
        "pooling": model.pooling,
        "dropout": model.dropout,
    }
    settings = layer_settings(registries, model)
    if settings is None:
        return registries.heads.create(model.head, input_size, num_classes, **options)
    entry = layer_entry(registries, model.head)
    assert entry is not None
    kwargs = dataclasses.asdict(settings)

    def make_layer(width: int, hidden: int) -> nn.Module:
        return entry.create(width, hidden, **kwargs)

    return SequenceHead(
        make_layer,
        input_size,
        num_classes,
        block=entry.meta.get("block", "residual"),
        name=model.head,
        **options,
    )


def settings_table(entry: Entry) -> list[tuple[str, str]]:
    """``(name, default)`` of a layer entry's settings, for ``rnnkit layers``."""
    settings = entry.meta.get("settings") or LayerSettings
    defaults = settings()

    def shown(value: Any) -> str:
        if value is None:
            return "none"
        return f"{value:.4g}" if isinstance(value, float) else str(value)

    return [(f.name, shown(getattr(defaults, f.name))) for f in dataclasses.fields(settings)]


def scale_training(registries: Registries, config: Any, user_set: set[str]) -> list[str]:
    """Apply the chosen layer's ``train_scale`` (its registration's multipliers of
    ``train.lr`` and ``train.epochs``) to the settings in ``config`` that the user did not set
    (``user_set``: dotted keys), in place; the notes say what changed. A task whose model
    settings are no :class:`HeadConfig`, or a whole head, is left alone."""
    model = getattr(config, "model", None)
    if not isinstance(model, HeadConfig):
        return []
    entry = layer_entry(registries, model.head)
    scale = dict(entry.meta.get("train_scale") or {}) if entry is not None else {}
    notes = []
    train = config.train
    if "lr" in scale and "train.lr" not in user_set:
        before, train.lr = train.lr, train.lr * float(scale["lr"])
        notes.append(f"train.lr={train.lr:.4g} ({model.head}: x{scale['lr']:.3g} of {before:g})")
    if "epochs" in scale and "train.epochs" not in user_set:
        before, train.epochs = train.epochs, max(1, round(train.epochs * float(scale["epochs"])))
        notes.append(
            f"train.epochs={train.epochs} ({model.head}: x{scale['epochs']:.3g} of {before})"
        )
    return notes


def train_scale_text(entry: Entry) -> str:
    """A layer's ``train_scale`` as ``rnnkit layers`` shows it (``lr x0.333, epochs x2``)."""
    scale = entry.meta.get("train_scale") or {}
    return ", ".join(f"{key} x{float(scale[key]):.3g}" for key in TRAIN_SCALE_KEYS if key in scale)
