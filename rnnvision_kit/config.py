"""Run configuration: typed dataclasses, YAML files and ``--set a.b=c`` overrides, validated.

Precedence: task defaults < YAML file (``--config``) < ``--set`` overrides. Unknown keys and bad
values raise a ConfigError whose one-line message names the key.
"""

from __future__ import annotations

import dataclasses
import difflib
import types
import typing
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import yaml

from rnnvision_kit.errors import ConfigError, DataError

Precision = Literal["32", "16-mixed", "bf16-mixed"]
Optimizer = Literal["sgd", "adagrad", "rmsprop", "adam", "adamw"]
Schedule = Literal["none", "step", "cosine"]


@dataclass
class DataConfig:
    """Where the data comes from and how it is batched; tasks subclass it to add options."""

    source: str = ""  # a registered data source, e.g. "digits", "mnist", "videofolder"
    path: str | None = None  # local path for sources that read user data
    batch_size: int = 64
    eval_batch_size: int | None = None  # None: same as batch_size
    num_workers: int = 0

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

    epochs: int = 10
    optimizer: Optimizer = "adam"
    lr: float = 1e-3
    momentum: float = 0.9  # sgd and rmsprop
    weight_decay: float = 0.0
    schedule: Schedule = "cosine"
    warmup_epochs: float = 0.0
    step_size: int = 10  # epochs between decays for schedule=step
    gamma: float = 0.1  # decay factor for schedule=step
    grad_clip: float | None = 1.0  # max gradient norm; None or 0 disables (RNNs explode)
    precision: Precision = "32"
    device: str = "auto"  # auto, cpu, cuda, cuda:N
    monitor: str = "val/acc"  # metric for best.pt and early stopping
    mode: Literal["max", "min"] = "max"
    patience: int | None = None  # epochs without improvement before stopping; None: never
    max_steps_per_epoch: int | None = None  # cap for quick checks
    threads: int | None = None  # CPU threads for torch; None: torch's default


@dataclass
class RunConfig:
    """One run: the task, its data and model settings, and the runner's settings."""

    task: str
    seed: int = 0
    out_dir: str = "runs"
    data: DataConfig = field(default_factory=DataConfig)
    model: Any = None  # a task-defined dataclass
    train: TrainConfig = field(default_factory=TrainConfig)

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


# --------------------------------------------------------------------------- coercion


def _coerce(value: Any, annotation: Any, key: str) -> Any:
    """Convert ``value`` to ``annotation`` (a type hint) or raise ConfigError naming ``key``."""
    origin = typing.get_origin(annotation)
    args = typing.get_args(annotation)
    if annotation is Any:
        return value
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
        raise ConfigError(errors[0] if errors else f"{key}: bad value {value!r}")
    if origin is Literal:
        for choice in args:
            if value == choice or str(value) == str(choice):
                return choice
        choices = ", ".join(str(c) for c in args)
        raise ConfigError(f"{key}: {value!r} is not one of: {choices}")
    if origin in (list, tuple):
        if isinstance(value, str):
            value = yaml.safe_load(value) if value.strip().startswith("[") else value.split(",")
        if not isinstance(value, list | tuple):
            value = [value]
        item_type = args[0] if args else Any
        items = [_coerce(v, item_type, key) for v in value]
        if origin is tuple and args and args[-1] is not Ellipsis and len(items) != len(args):
            raise ConfigError(f"{key}: expected {len(args)} values, got {len(items)}")
        return tuple(items) if origin is tuple else items
    if origin is dict or annotation is dict:
        if not isinstance(value, dict):
            raise ConfigError(f"{key}: expected a mapping, got {value!r}")
        return dict(value)
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
        raise ConfigError(f"{key}: expected true or false, got {value!r}")
    if annotation is int:
        if isinstance(value, bool):
            raise ConfigError(f"{key}: expected an integer, got {value!r}")
        try:
            number = float(value)
        except (TypeError, ValueError):
            raise ConfigError(f"{key}: expected an integer, got {value!r}") from None
        if not number.is_integer():
            raise ConfigError(f"{key}: expected an integer, got {value!r}")
        return int(number)
    if annotation is float:
        if isinstance(value, bool):
            raise ConfigError(f"{key}: expected a number, got {value!r}")
        try:
            return float(value)
        except (TypeError, ValueError):
            raise ConfigError(f"{key}: expected a number, got {value!r}") from None
    if annotation is str:
        if isinstance(value, dict | list):
            raise ConfigError(f"{key}: expected a string, got {value!r}")
        return str(value)
    return value


def _fields(obj: Any) -> dict[str, dataclasses.Field]:
    return {f.name: f for f in dataclasses.fields(obj)}


def _hints(obj: Any) -> dict[str, Any]:
    return typing.get_type_hints(type(obj))


def _unknown(key: str, part: str, known: Iterable[str]) -> ConfigError:
    known = sorted(known)
    close = difflib.get_close_matches(part, known, n=1)
    hint = f"; did you mean {close[0]!r}?" if close else ""
    return ConfigError(f"unknown config key {key!r} (known here: {', '.join(known)}){hint}")


def set_value(config: Any, dotted_key: str, raw: Any) -> None:
    """Set ``a.b.c`` on nested dataclasses, coercing ``raw`` to the field's declared type."""
    parts = dotted_key.split(".")
    target = config
    for depth, part in enumerate(parts):
        if not dataclasses.is_dataclass(target):
            raise ConfigError(f"unknown config key {dotted_key!r}")
        fields = _fields(target)
        if part not in fields:
            raise _unknown(dotted_key, part, fields)
        if depth == len(parts) - 1:
            current = getattr(target, part)
            if dataclasses.is_dataclass(current):
                if not isinstance(raw, Mapping):
                    raise ConfigError(f"{dotted_key}: expected a mapping of settings, got {raw!r}")
                for sub, value in raw.items():
                    set_value(config, f"{dotted_key}.{sub}", value)
                return
            setattr(target, part, _coerce(raw, _hints(target)[part], dotted_key))
        else:
            target = getattr(target, part)


def apply_mapping(config: Any, values: Mapping[str, Any], prefix: str = "") -> None:
    """Apply a nested mapping (as read from YAML) onto ``config``."""
    for key, value in values.items():
        set_value(config, f"{prefix}{key}", value)


def parse_override(text: str) -> tuple[str, Any]:
    """``"train.lr=0.01"`` -> ``("train.lr", 0.01)``; the value is read as YAML."""
    key, sep, raw = text.partition("=")
    if not sep or not key.strip():
        raise ConfigError(f"--set {text!r}: expected KEY=VALUE, e.g. train.lr=0.01")
    try:
        value = yaml.safe_load(raw) if raw.strip() else ""
    except yaml.YAMLError:
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
        data = yaml.safe_load(path.read_text()) or {}
    except yaml.YAMLError as error:
        mark = getattr(error, "problem_mark", None)
        where = f" at line {mark.line + 1}" if mark else ""
        raise ConfigError(f"{path}: invalid YAML{where}") from None
    if not isinstance(data, dict):
        raise ConfigError(f"{path}: expected a mapping of settings at the top level")
    return data


def save_yaml(config: RunConfig, path: str | Path) -> None:
    Path(path).write_text(yaml.safe_dump(config.to_dict(), sort_keys=False))


def parse_data_source(text: str) -> tuple[str, str | None]:
    """``"mnist:~/data"`` -> ``("mnist", "~/data")``; ``"digits"`` -> ``("digits", None)``.

    A qualified source ``plugin:name:PATH`` keeps ``plugin:name``: the caller resolves it.
    """
    name, sep, path = text.partition(":")
    if sep and path and ":" in path and not path.startswith(("/", "~", ".")):
        second, _, rest = path.partition(":")
        return f"{name}:{second}", rest or None
    return name, (path or None)


def validate(config: RunConfig) -> None:
    """Range checks the type hints cannot express."""
    t, d = config.train, config.data
    checks = [
        (t.epochs >= 1, "train.epochs", "must be >= 1"),
        (t.lr > 0, "train.lr", "must be > 0"),
        (t.weight_decay >= 0, "train.weight_decay", "must be >= 0"),
        (t.warmup_epochs >= 0, "train.warmup_epochs", "must be >= 0"),
        (t.step_size >= 1, "train.step_size", "must be >= 1"),
        (t.grad_clip is None or t.grad_clip >= 0, "train.grad_clip", "must be >= 0"),
        (t.patience is None or t.patience >= 1, "train.patience", "must be >= 1"),
        (t.threads is None or t.threads >= 1, "train.threads", "must be >= 1"),
        (d.batch_size >= 1, "data.batch_size", "must be >= 1"),
        (
            d.eval_batch_size is None or d.eval_batch_size >= 1,
            "data.eval_batch_size",
            "must be >= 1",
        ),
        (d.num_workers >= 0, "data.num_workers", "must be >= 0"),
        (bool(d.source), "data.source", "is empty"),
    ]
    for ok, key, problem in checks:
        if not ok:
            raise ConfigError(f"{key}: {problem} (got {_get(config, key)!r})")
    check = getattr(config.model, "validate", None)
    if callable(check):
        check()


def _get(config: Any, dotted_key: str) -> Any:
    for part in dotted_key.split("."):
        config = getattr(config, part)
    return config
