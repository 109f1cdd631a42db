"""Run configuration: typed dataclasses, YAML files and ``--set a.b=c`` overrides, validated.

Precedence (:func:`layered`): task defaults < YAML file (``--config``) < ``--data`` < CLI
shortcuts < ``--set`` overrides. Unknown keys and bad values raise a ConfigError whose one-line
message names the key (and the closest key of any section). Importing this module does not
import torch: a command reports a bad setting before the heavy imports.
"""

from __future__ import annotations

import contextlib
import copy
import dataclasses
import difflib
import math
import types
import typing
from collections.abc import Callable, Container, Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Generic, Literal, cast

import yaml
from typing_extensions import TypeVar

from rnnvision_kit.errors import ConfigError, DataError, reason

Precision = Literal["32", "16-mixed", "bf16-mixed"]
Optimizer = Literal["sgd", "adagrad", "rmsprop", "adam", "adamw"]
Schedule = Literal["none", "step", "cosine"]

# What PyYAML raises besides YAMLError: ValueError (an int of more than 4300 digits),
# RecursionError (deeply nested brackets).
_YAML_ERRORS = (yaml.YAMLError, ValueError, RecursionError)


def _shown(value: Any, limit: int = 60) -> str:
    """``repr(value)`` for a one-line message, cut to ``limit`` characters."""
    try:
        text = repr(value)
    except (ValueError, RecursionError):  # an int too long to print, a self-containing list
        text = f"<{type(value).__name__}>"
    return text if len(text) <= limit else f"{text[: limit - 3]}..."


def _number(value: float) -> str:
    """A bound in a message: ``8``, ``0.5``, ``18446744073709551616``."""
    return str(int(value)) if float(value).is_integer() else f"{value:g}"


@dataclass(frozen=True)
class Constraint:
    """Value checks declared on a config field with :func:`setting`; ``None`` values pass."""

    ge: float | None = None
    gt: float | None = None
    le: float | None = None
    lt: float | None = None
    nonempty: bool = False
    odd: bool = False
    length: tuple[int, ...] = ()  # allowed list lengths

    def problem(self, value: Any) -> str | None:
        """What is wrong with ``value``, or None."""
        if value is None:
            return None
        if self.nonempty and not value:
            return "is empty"
        if self.length and isinstance(value, list | tuple) and len(value) not in self.length:
            counts = " or ".join(map(str, self.length))
            return f"needs {counts} value(s)"
        for item in value if isinstance(value, list | tuple) else [value]:
            if isinstance(item, bool) or not isinstance(item, int | float):
                continue
            if isinstance(item, float) and math.isnan(item):
                return "is not a number"
            if isinstance(item, float) and math.isinf(item):
                return "must be finite"
            low = (self.ge, "[") if self.ge is not None else (self.gt, "(")
            high = (self.le, "]") if self.le is not None else (self.lt, ")")
            too_low = (self.ge is not None and item < self.ge) or (
                self.gt is not None and item <= self.gt
            )
            too_high = (self.le is not None and item > self.le) or (
                self.lt is not None and item >= self.lt
            )
            if too_low or too_high:
                if low[0] is not None and high[0] is not None:
                    return f"must be in {low[1]}{_number(low[0])}, {_number(high[0])}{high[1]}"
                if low[0] is not None:
                    return f"must be {'>=' if low[1] == '[' else '>'} {_number(low[0])}"
                assert high[0] is not None  # no lower bound: the upper one was crossed
                return f"must be {'<=' if high[1] == ']' else '<'} {_number(high[0])}"
            if self.odd and isinstance(item, int) and item % 2 == 0:
                return "must be odd"
        return None


def setting(
    default: Any = dataclasses.MISSING,
    *,
    default_factory: Any = dataclasses.MISSING,
    ge: float | None = None,
    gt: float | None = None,
    le: float | None = None,
    lt: float | None = None,
    nonempty: bool = False,
    odd: bool = False,
    length: tuple[int, ...] = (),
    before: Any = dataclasses.MISSING,
) -> Any:
    """A config field with declared value checks, e.g. ``hidden_size: int = setting(128, ge=1)``
    or ``dropout: float = setting(0.1, ge=0, lt=1)``. :func:`validate` checks every declared
    field of a run config in one place (each item of a list); ``None`` always passes.

    ``before``: for a setting added after runs were recorded without it, the value those runs
    had (the behaviour before the setting existed); :func:`apply_recorded` gives it to a saved
    run whose ``config.yaml`` lacks the key, while new runs get ``default``."""
    constraint = Constraint(ge, gt, le, lt, nonempty, odd, length)
    metadata: dict[str, Any] = {"check": constraint}
    if before is not dataclasses.MISSING:
        metadata["before"] = before
    return field(default=default, default_factory=default_factory, metadata=metadata)


@dataclass(frozen=True)
class Rule:
    """A check across fields of one settings class: ``rules: ClassVar = (Rule(...),)``.

    ``ok(settings)`` is True when the rule holds; otherwise :func:`validate` raises
    ``ConfigError(f"{prefix}.{key}: {message}")``, ``message`` called with the settings when it
    is callable (to name the values)."""

    key: str  # the field the message names, relative to the settings class (e.g. "size")
    message: Any  # what is wrong, e.g. "needs model.weights=PATH"; or Callable[[settings], str]
    ok: Any  # Callable[[settings], bool]: True when the rule holds

    def text(self, settings: Any) -> str:
        """The message for ``settings``."""
        return str(self.message(settings) if callable(self.message) else self.message)


def split_fractions_rule(items: str, skip: Iterable[str] = ()) -> Rule:
    """A :class:`Rule` for data settings with ``val_fraction`` and ``test_fraction``: the two
    must leave something to train on. ``skip``: sources (bare names) that do not carve both."""
    skipped = frozenset(skip)

    def ok(d: Any) -> bool:
        if str(d.source).rpartition(":")[2] in skipped:
            return True
        return not d.val_fraction + d.test_fraction >= 1  # NaN: the field's own check

    def message(d: Any) -> str:
        total = d.val_fraction + d.test_fraction
        return (
            f"{d.val_fraction:g} + {d.test_fraction:g} = {total:g} leaves no training {items} "
            "(must be < 1)"
        )

    return Rule("val_fraction + data.test_fraction", message, ok)


@dataclass
class DataConfig:
    """Where the data comes from and how it is batched; tasks subclass it to add the settings
    their data sources read (each source declares them with ``reads=``)."""

    source: str = setting("", nonempty=True)  # a registered data source, e.g. "digits"
    path: str | None = None  # local path for sources that read user data
    batch_size: int = setting(64, ge=1)  # training samples per step (per process)
    eval_batch_size: int | None = setting(None, ge=1)  # None: same as batch_size
    num_workers: int = setting(0, ge=0, le=1024)  # DataLoader worker processes
    prefetch_factor: int | None = setting(None, ge=1)  # batches each worker reads ahead (None: 2)

    def require_path(self, example: str) -> Path:
        """``path`` expanded, for sources that read user data; a DataError when it is not set
        (naming ``--data SOURCE:EXAMPLE``) or does not exist."""
        if not self.path:
            raise DataError(
                f"data source {self.source!r} needs a local path, e.g. --data {self.source}:{example}"
            )
        path = Path(self.path).expanduser()
        if not path.exists():
            raise DataError(f"{path}: data path does not exist")
        return path


@dataclass
class TrainConfig:
    """Settings the shared runner owns."""

    epochs: int = setting(10, ge=1)
    optimizer: Optimizer = "adam"
    lr: float = setting(1e-3, gt=0)
    momentum: float = setting(0.9, ge=0)  # sgd and rmsprop
    weight_decay: float = setting(0.0, ge=0)
    schedule: Schedule = "cosine"
    warmup_epochs: float = setting(0.0, ge=0)
    step_size: int = setting(10, ge=1)  # epochs between decays for schedule=step
    gamma: float = setting(0.1, gt=0)  # decay factor for schedule=step
    grad_clip: float | None = setting(1.0, ge=0)  # max gradient norm; None or 0: off (RNNs explode)
    precision: Precision = "32"
    device: str = "auto"  # auto, cpu, cuda, cuda:N
    monitor: str = "val/acc"  # metric for best.pt and early stopping
    mode: Literal["max", "min"] = "max"
    # validations without improvement before stopping (an epoch each when val_every is 1)
    patience: int | None = setting(None, ge=1)
    # validate (and pick best.pt) after every N-th epoch and the last; large val splits cost less
    val_every: int = setting(1, ge=1)
    max_steps_per_epoch: int | None = setting(None, ge=1)  # cap for quick checks
    # also write last.pt every N optimizer steps inside an epoch (long epochs: a crash or kill
    # loses at most N steps); None: at the end of each epoch (and on Ctrl-C) only
    checkpoint_every: int | None = setting(None, ge=1)
    accumulate: int = setting(1, ge=1)  # batches per optimizer step (gradient accumulation)
    compile: bool = False  # torch.compile the model for training (falls back, with one line)
    sync_bn: bool = False  # SyncBatchNorm across DDP processes (CUDA)
    channels_last: bool = False  # channels-last weights: faster convolutions on recent GPUs
    cudnn_benchmark: bool = True  # let cuDNN pick the fastest kernels for fixed input sizes
    # DDP process group: auto (NCCL on CUDA, gloo on the CPU), nccl, gloo (also on CUDA)
    dist_backend: Literal["auto", "nccl", "gloo"] = "auto"
    threads: int | None = setting(None, ge=1, le=1024)  # CPU threads for torch; None: its default
    # a non-finite loss: stop (one line; the last good checkpoint is kept) or skip that step
    on_nan: Literal["stop", "skip"] = "stop"


@dataclass
class EvalConfig:
    """Settings of evaluation."""

    metrics: list[str] = field(default_factory=list)  # registered metrics to add, e.g. [ece]


@dataclass
class ModelConfig:
    """Settings every task's model may have; tasks subclass it for their ``model.*`` settings."""

    # start training from another run's checkpoint (RUN_DIR: its best.pt, else last.pt) or a
    # weights file: parameters whose names and shapes match are copied, the rest listed
    init_from: str | None = None


# The settings types a RunConfig holds: ``RunConfig[VideoModelConfig, VideoActionDataConfig]``;
# a bare ``RunConfig`` is ``RunConfig[Any, DataConfig]``. Covariant: a config of a task's own
# settings is a ``RunConfig`` to code that reads only the base settings.
ModelT = TypeVar("ModelT", default=Any, covariant=True)
DataT = TypeVar("DataT", bound=DataConfig, default=DataConfig, covariant=True)


@dataclass
class RunConfig(Generic[ModelT, DataT]):
    """One run: the task, its data and model settings, and the runner's settings. Generic in
    the model settings (``model``) and the data settings (``data``): a task's defaults are a
    ``RunConfig[VideoModelConfig, VideoActionDataConfig]``, and code that reads
    ``config.model.head`` declares the types it needs."""

    task: str
    seed: int = setting(0, ge=0, lt=2**64)  # torch seeds are 64-bit
    out_dir: str = "runs"
    # the defaults are those of a bare RunConfig; a task's defaults set both
    data: DataT = field(default_factory=cast("Callable[[], DataT]", DataConfig))
    model: ModelT = cast(Any, None)  # a task-defined dataclass (a ModelConfig subclass)
    train: TrainConfig = field(default_factory=TrainConfig)
    eval: EvalConfig = field(default_factory=EvalConfig)

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


# --------------------------------------------------------------------------- coercion


def _coerce(value: Any, annotation: Any, key: str) -> Any:
    """Convert ``value`` to ``annotation`` (a type hint) or raise ConfigError naming ``key``."""
    origin = typing.get_origin(annotation)
    args = typing.get_args(annotation)
    if isinstance(annotation, typing.TypeVar):  # RunConfig's model and data: their bound
        annotation = annotation.__bound__ or Any
    if annotation is Any:
        return _tree(value, key)
    if origin in (typing.Union, types.UnionType):
        is_none = value is None or (isinstance(value, str) and value.lower() in ("none", "null"))
        if is_none and type(None) in args:
            return None
        errors = []
        for arg in args:
            if arg is type(None):
                continue
            try:
                return _coerce(value, arg, key)
            except ConfigError as error:
                errors.append(str(error))
        raise ConfigError(errors[0] if errors else f"{key}: bad value {_shown(value)}")
    if origin is Literal:
        for choice in args:
            if value == choice or str(value) == str(choice):
                return choice
        choices = ", ".join(str(c) for c in args)
        raise ConfigError(f"{key}: {_shown(value)} is not one of: {choices}")
    if origin in (list, tuple):
        if isinstance(value, str) and value.strip().startswith("["):
            try:
                value = yaml.safe_load(value)
            except _YAML_ERRORS:
                raise ConfigError(f"{key}: {_shown(value)} is not a list like [a, b]") from None
        elif isinstance(value, str):
            value = value.split(",")
        if not isinstance(value, list | tuple):
            value = [value]
        item_type = args[0] if args else Any
        items = [_coerce(v, item_type, key) for v in value]
        if origin is tuple and args and args[-1] is not Ellipsis and len(items) != len(args):
            raise ConfigError(f"{key}: expected {len(args)} values, got {len(items)}")
        return tuple(items) if origin is tuple else items
    if origin is dict or annotation is dict:
        if isinstance(value, str) and value.strip().startswith("{"):
            try:
                value = yaml.safe_load(value)
            except _YAML_ERRORS:
                raise ConfigError(
                    f"{key}: {_shown(value)} is not a mapping like {{a: b}}"
                ) from None
        if not isinstance(value, dict):
            raise ConfigError(f"{key}: expected a mapping, got {_shown(value)}")
        if not args:
            return dict(_tree(value, key))
        try:
            return {_coerce(k, args[0], key): _coerce(v, args[1], key) for k, v in value.items()}
        except ConfigError:
            if any(v is None for v in value.values()):  # YAML reads "{0:0}" as a key "0:0"
                raise ConfigError(
                    f"{key}: {_shown(value)}: write a mapping as {{a: b}}, a space after each ':'"
                ) from None
            raise
    if annotation is bool:
        if isinstance(value, bool):
            return value
        if isinstance(value, str) and value.lower() in (
            "true",
            "yes",
            "on",
            "1",
            "false",
            "no",
            "off",
            "0",
        ):
            return value.lower() in ("true", "yes", "on", "1")
        if value in (0, 1):
            return bool(value)
        raise ConfigError(f"{key}: expected true or false, got {_shown(value)}")
    if annotation is int:
        if isinstance(value, int) and not isinstance(value, bool):
            return value  # as it is: float() would overflow for huge ones
        if isinstance(value, str):
            with contextlib.suppress(ValueError):
                return int(value)
        problem = f"{key}: expected an integer, got {_shown(value)}"
        if isinstance(value, bool):
            raise ConfigError(problem)
        try:
            number = float(value)
        except (TypeError, ValueError, OverflowError):
            raise ConfigError(problem) from None
        if not number.is_integer():
            raise ConfigError(problem)
        return int(number)
    if annotation is float:
        if isinstance(value, bool):
            raise ConfigError(f"{key}: expected a number, got {_shown(value)}")
        try:
            return float(value)
        except (TypeError, ValueError, OverflowError):
            raise ConfigError(f"{key}: expected a number, got {_shown(value)}") from None
    if annotation is str:
        if isinstance(value, dict | list):
            raise ConfigError(f"{key}: expected a string, got {_shown(value)}")
        return str(value)
    return value


def _tree(value: Any, key: str) -> Any:
    """``value`` if it is a tree of at most 50 levels; a YAML alias inside its own anchor
    (``&a {b: *a}``) would make the run's config.yaml unwritable."""
    done: set[int] = set()  # shared by aliases: walked once

    def walk(node: Any, parents: tuple[int, ...]) -> None:
        if not isinstance(node, dict | list | tuple) or id(node) in done:
            return
        if id(node) in parents or len(parents) > 50:
            raise ConfigError(f"{key}: a value that contains itself or nests too deep")
        for child in node.values() if isinstance(node, dict) else node:
            walk(child, (*parents, id(node)))
        done.add(id(node))

    walk(value, ())
    return value


def _fields(obj: Any) -> dict[str, dataclasses.Field]:
    return {f.name: f for f in dataclasses.fields(obj)}


def _hints(obj: Any) -> dict[str, Any]:
    return typing.get_type_hints(type(obj))


def dotted_keys(config: Any, prefix: str = "") -> list[str]:
    """Every dotted key of a run config: settings and their groups (``data``, ``data.path``)."""
    keys: list[str] = []
    for f in dataclasses.fields(config):
        keys.append(f"{prefix}{f.name}")
        value = getattr(config, f.name)
        if dataclasses.is_dataclass(value):
            keys += dotted_keys(value, f"{prefix}{f.name}.")
    return keys


def _closest_key(key: str, keys: Iterable[str]) -> str | None:
    """The key of any section that ``key`` most likely meant: the same setting in another
    section (``train.batch_size`` -> ``data.batch_size``), else the closest setting name, the
    closest section breaking ties; None when nothing is close."""
    section, _, leaf = key.rpartition(".")
    scored = []
    for known in keys:
        other_section, _, other_leaf = known.rpartition(".")
        leaf_score = difflib.SequenceMatcher(None, leaf, other_leaf).ratio()
        section_score = difflib.SequenceMatcher(None, section, other_section).ratio()
        scored.append((round(leaf_score, 2), section_score, known))
    best = max(scored, default=None)
    return best[2] if best is not None and best[0] >= 0.6 else None


def _unknown(config: Any, key: str, depth: int, known: Iterable[str]) -> ConfigError:
    """The error of ``key`` whose part ``depth`` is unknown: the names known there, and the
    closest key of the whole ``config`` (a misspelt section: the key in the closest section)."""
    known = sorted(known)
    parts = key.split(".")
    close: str | None
    if depth < len(parts) - 1:  # a section: "modle.head" -> "model.head", else "model"
        section = difflib.get_close_matches(parts[depth], known, n=1)
        fixed = ".".join([*parts[:depth], *section, *parts[depth + 1 :]])
        everything = dotted_keys(config)
        close = fixed if fixed in everything else ".".join([*parts[:depth], *section])
        close = close if section else None
    else:
        close = _closest_key(key, dotted_keys(config))
    hint = f"; did you mean {close!r}?" if close else ""
    return ConfigError(f"unknown config key {_shown(key)} (known here: {', '.join(known)}){hint}")


def set_value(config: Any, dotted_key: str, raw: Any) -> None:
    """Set ``a.b.c`` on nested dataclasses, coercing ``raw`` to the field's declared type."""
    parts = dotted_key.split(".")
    target = config
    for depth, part in enumerate(parts):
        if not dataclasses.is_dataclass(target):
            raise ConfigError(f"unknown config key {_shown(dotted_key)}")
        fields = _fields(target)
        if part not in fields:
            raise _unknown(config, dotted_key, depth, fields)
        if depth == len(parts) - 1:
            current = getattr(target, part)
            if dataclasses.is_dataclass(current):
                if not isinstance(raw, Mapping):
                    raise ConfigError(
                        f"{dotted_key}: expected a mapping of settings, got {_shown(raw)}"
                    )
                for sub, value in raw.items():
                    set_value(config, f"{dotted_key}.{sub}", value)
                return
            setattr(target, part, _coerce(raw, _hints(target)[part], dotted_key))
        elif isinstance(getattr(target, part), dict):  # a free mapping: model.layer.state_size
            mapping = getattr(target, part)
            *inner, leaf = parts[depth + 1 :]
            for key in inner:
                mapping = mapping.setdefault(key, {})
                if not isinstance(mapping, dict):
                    raise ConfigError(f"{dotted_key}: {key} is not a mapping")
            mapping[leaf] = _tree(raw, dotted_key)
            return
        else:
            target = getattr(target, part)


def apply_mapping(config: Any, values: Mapping[str, Any], prefix: str = "") -> None:
    """Apply a nested mapping (as read from YAML) onto ``config``."""
    for key, value in values.items():
        set_value(config, f"{prefix}{key}", value)


def apply_recorded(config: Any, values: Mapping[str, Any]) -> None:
    """Apply a saved run's settings (its ``config.yaml``, without ``task``) onto ``config``
    (the task's defaults): as :func:`apply_mapping`, and each setting declared with
    ``setting(before=...)`` that ``values`` lacks takes that value, so that a run recorded
    before the setting existed is rebuilt as it was trained."""
    apply_mapping(config, values)
    _fill_before(config, values)


def _fill_before(config: Any, values: Mapping[str, Any]) -> None:
    for f in dataclasses.fields(config):
        current = getattr(config, f.name)
        if dataclasses.is_dataclass(current) and not isinstance(current, type):
            inner = values.get(f.name)
            _fill_before(current, inner if isinstance(inner, Mapping) else {})
        elif "before" in f.metadata and f.name not in values:
            setattr(config, f.name, copy.deepcopy(f.metadata["before"]))


def parse_override(text: str) -> tuple[str, Any]:
    """``"train.lr=0.01"`` -> ``("train.lr", 0.01)``; the value is read as YAML."""
    key, sep, raw = text.partition("=")
    if not sep or not key.strip():
        raise ConfigError(f"--set {_shown(text)}: expected KEY=VALUE, e.g. train.lr=0.01")
    if key.strip() == "task":
        raise ConfigError(f"--set {_shown(text)}: the task is not a setting; choose it with --task")
    try:
        value = yaml.safe_load(raw) if raw.strip() else ""
    except _YAML_ERRORS:
        value = raw
    return key.strip(), value


def apply_overrides(config: Any, overrides: Iterable[str]) -> None:
    """Apply ``--set a.b=c`` overrides in order."""
    for text in overrides:
        key, value = parse_override(text)
        set_value(config, key, value)


def load_yaml(path: str | Path) -> dict[str, Any]:
    """Read a YAML config file into a mapping, with one-line errors naming the file."""
    path = Path(path).expanduser()
    if not path.is_file():
        raise ConfigError(f"{path}: config file not found")
    try:
        text = path.read_bytes()  # PyYAML reads UTF-8/16 by their BOM, whatever the locale
    except OSError as error:
        raise ConfigError(f"{path}: cannot read config file ({reason(error)})") from None
    try:
        data = yaml.safe_load(text) or {}
    except yaml.YAMLError as error:
        mark = getattr(error, "problem_mark", None)
        where = f" at line {mark.line + 1}" if mark else ""
        raise ConfigError(f"{path}: invalid YAML{where}") from None
    except (ValueError, RecursionError):
        raise ConfigError(f"{path}: invalid YAML (a number too long or nesting too deep)") from None
    if not isinstance(data, dict):
        raise ConfigError(f"{path}: expected a mapping of settings at the top level")
    return data


def save_yaml(config: RunConfig, path: str | Path) -> None:
    Path(path).write_text(yaml.safe_dump(config.to_dict(), sort_keys=False))


def annotated_yaml(values: Mapping[str, Any], notes: Mapping[str, str]) -> str:
    """``values`` (a config as ``RunConfig.to_dict`` gives it) as YAML, with ``# NOTE`` after
    the line of each top-level section's key in ``notes`` (``{"data.fold": "not read by data
    source videofolder"}``). Comments only: the text loads back to ``values``, or the notes are
    left out."""
    text = yaml.safe_dump(dict(values), sort_keys=False)
    if not notes:
        return text
    lines, section = text.splitlines(), None
    for i, line in enumerate(lines):
        if line and not line.startswith(" "):
            section = line.partition(":")[0]
        elif section and line.startswith("  ") and not line.startswith("   "):
            key = line[2:].partition(":")[0]
            note = notes.get(f"{section}.{key}")
            following = lines[i + 1] if i + 1 < len(lines) else ""
            one_line = not following.startswith("   ")  # no folded value continues below
            if note and one_line and not key.startswith(("-", "'", '"')):
                lines[i] = f"{line}  # {note}"
    annotated = "\n".join(lines) + "\n"
    try:
        same = yaml.safe_load(annotated) == yaml.safe_load(text)
    except yaml.YAMLError:
        same = False
    return annotated if same else text


def parse_data_source(text: str, known: Container[str] = ()) -> tuple[str, str | None]:
    """``"mnist:~/data"`` -> ``("mnist", "~/data")``; ``"digits"`` -> ``("digits", None)``.

    A qualified source ``plugin:name:PATH`` keeps ``plugin:name``: the caller resolves it. With
    ``known`` (the registered source names), ``plugin:name`` without a path is read as a
    qualified source when ``plugin`` is not itself a source.
    """
    name, sep, path = text.partition(":")
    if sep and path and ":" in path and not path.startswith(("/", "~", ".")):
        second, _, rest = path.partition(":")
        return f"{name}:{second}", rest or None
    if path and name not in known and f"{name}:{path}" in known:
        return f"{name}:{path}", None
    return name, (path or None)


def layered(
    config: RunConfig,
    *,
    config_file: str | None = None,
    data: str | None = None,
    settings: Mapping[str, Any] | None = None,
    overrides: Iterable[str] = (),
    sources: Container[str] = (),
) -> RunConfig:
    """``config`` (a task's defaults) < a YAML file < ``--data NAME[:PATH]`` (``sources``: the
    registered source names) < ``settings`` (CLI shortcuts by dotted key; None values left out)
    < ``--set`` overrides, applied in place; not validated."""
    if config_file:
        values = load_yaml(config_file)
        values.pop("task", None)
        apply_mapping(config, values)
    if data:
        config.data.source, config.data.path = parse_data_source(data, sources)
    apply_mapping(config, {k: v for k, v in (settings or {}).items() if v is not None})
    apply_overrides(config, overrides)
    return config


def user_keys(
    config_file: str | None = None,
    settings: Mapping[str, Any] | None = None,
    overrides: Iterable[str] = (),
) -> set[str]:
    """The dotted keys a user set on top of a task's defaults (what :func:`layered` applies:
    the YAML file's, the shortcuts that are not None, the ``--set`` overrides')."""

    def flat(values: Mapping[str, Any], prefix: str = "") -> set[str]:
        keys: set[str] = set()
        for key, value in values.items():
            keys.add(f"{prefix}{key}")
            if isinstance(value, Mapping):
                keys |= flat(value, f"{prefix}{key}.")
        return keys

    keys = flat(load_yaml(config_file)) if config_file else set()
    keys |= {key for key, value in (settings or {}).items() if value is not None}
    keys |= {parse_override(text)[0] for text in overrides}
    return keys


def _constraint(cls: type, f: dataclasses.Field) -> Constraint | None:
    """The checks declared on field ``f``, or on the same field of a base class: a subclass that
    re-declares ``batch_size: int = 8`` keeps ``DataConfig``'s ``ge=1``."""
    if "check" in f.metadata:
        return f.metadata["check"]
    for base in cls.__mro__[1:]:
        inherited = getattr(base, "__dataclass_fields__", {}).get(f.name)
        if inherited is not None and "check" in inherited.metadata:
            return inherited.metadata["check"]
    return None


def validate(config: Any, prefix: str = "") -> None:
    """Check every field declared with :func:`setting` and every :class:`Rule` of the run config
    and its nested settings (data, model, train, eval, a task's own); the first problem raises a
    ConfigError naming the key."""
    if not dataclasses.is_dataclass(config):
        return
    for f in dataclasses.fields(config):
        value = getattr(config, f.name)
        key = f"{prefix}{f.name}"
        constraint = _constraint(type(config), f)
        problem = constraint.problem(value) if constraint else None
        if problem:
            raise ConfigError(f"{key}: {problem} (got {_shown(value)})")
        if dataclasses.is_dataclass(value):
            validate(value, f"{key}.")
    for rule in getattr(type(config), "rules", ()):
        if not rule.ok(config):
            raise ConfigError(f"{prefix}{rule.key}: {rule.text(config)}")
