"""Settings given in Python, as the CLI's: ``model__head="lstm"`` keywords and a ``settings``
mapping (nested, ``{"model": {"head": "lstm"}}``, or dotted, ``{"model.head": "lstm"}``) become
``--set`` overrides, so that a run configured from Python is configured exactly as
``rnnkit run`` configures it (the same layering, checks and ``train_scale`` notes)."""

from __future__ import annotations

import json
import math
import os
from collections.abc import Mapping
from typing import Any

from rnnvision_kit.errors import ConfigError

SEPARATOR = "__"  # model__head="lstm" is model.head=lstm


def keyword_settings(keywords: Mapping[str, Any], call: str) -> dict[str, Any]:
    """``{"model__head": "lstm"}`` -> ``{"model.head": "lstm"}``; a keyword without ``__`` is
    one line naming the forms that work."""
    dotted: dict[str, Any] = {}
    for name, value in keywords.items():
        if SEPARATOR not in name.strip("_"):
            raise ConfigError(
                f"{call}({name}=...): unknown keyword; settings are SECTION__NAME keywords "
                f"(train__lr=0.01, model__head='lstm') or settings={{'train.lr': 0.01}}"
            )
        dotted[name.replace(SEPARATOR, ".")] = value
    return dotted


def flat_settings(settings: Mapping[str, Any] | None, prefix: str = "") -> dict[str, Any]:
    """A nested or dotted mapping of settings as ``{dotted key: value}``; a mapping value is
    walked into (``model.layer.state_size``), an empty one is kept as a value."""
    flat: dict[str, Any] = {}
    for key, value in (settings or {}).items():
        if not isinstance(key, str) or not key:
            raise ConfigError(f"settings: keys are setting names, got {key!r}")
        if isinstance(value, Mapping) and value:
            flat.update(flat_settings(value, f"{prefix}{key}."))
        else:
            flat[f"{prefix}{key}"] = value
    return flat


def _plain(value: Any) -> Any:
    """A value JSON can write: paths as strings, NumPy and torch scalars as numbers."""
    if isinstance(value, os.PathLike):
        return os.fspath(value)
    if hasattr(value, "item") and callable(value.item):
        return value.item()
    raise ConfigError(f"settings: cannot use a {type(value).__name__} as a setting ({value!r})")


def as_yaml(value: Any) -> str:
    """``value`` as the YAML text ``--set KEY=TEXT`` reads back as the same value."""
    if isinstance(value, float) and not math.isfinite(value):
        return ".nan" if math.isnan(value) else (".inf" if value > 0 else "-.inf")
    return json.dumps(value, default=_plain)  # JSON is YAML: strings stay strings


def as_overrides(settings: Mapping[str, Any]) -> list[str]:
    """Dotted settings as ``--set`` overrides, in order."""
    return [f"{key}={as_yaml(value)}" for key, value in settings.items()]


def merged(settings: Mapping[str, Any] | None, keywords: Mapping[str, Any], call: str) -> dict:
    """``settings`` (nested or dotted), then the ``SECTION__NAME`` keywords, as dotted keys;
    a keyword wins over the mapping."""
    return {**flat_settings(settings), **keyword_settings(keywords, call)}
