"""A run's settings from the command line's parts: the task's defaults < ``--config`` YAML <
``--data`` < shortcuts (``--epochs``, ``--device`` ...) < ``--set``, validated, with the chosen
sequence layer's settings checked. Torch-free for a task that declares its defaults
(``config=``): a bad setting is one line before any heavy import. ``rnnkit run``, ``eval`` and
``sweep`` share it."""

from __future__ import annotations

import copy
import dataclasses
from collections.abc import Iterable, Mapping
from typing import Any

from rnnvision_kit.registry import Registries


def configured(
    registries: Registries,
    task_name: str,
    options: Mapping[str, Any],
    notes: list[str] | None = None,
) -> tuple[Any, Any]:
    """The validated run config of ``task_name`` with ``options`` (``config_file``, ``data``,
    ``overrides``, and the shortcuts ``epochs``, ``device``, ``precision``, ``seed``, ``out``),
    and the opened task (a ``TaskHandle``) when it had to be opened for its defaults, else
    None. The chosen layer's ``train_scale`` applies to the training settings the user left at
    the task's defaults (``notes``, when given, gets a line for each)."""
    from rnnvision_kit.config import layered, user_keys, validate
    from rnnvision_kit.layers import check_head, scale_training
    from rnnvision_kit.task import declared_defaults

    task = None
    defaults = declared_defaults(registries.tasks.get(task_name), task_name)
    if defaults is None:
        from rnnvision_kit.runner.pipeline import open_task

        task = open_task(registries, task_name)
        defaults = task.default_config()
    pristine = copy.deepcopy(defaults)
    shortcuts = {
        "train.epochs": options.get("epochs"),
        "train.device": options.get("device"),
        "train.precision": options.get("precision"),
        "seed": options.get("seed"),
        "out_dir": options.get("out"),
    }
    parts: dict[str, Any] = {
        "config_file": options.get("config_file"),
        "settings": shortcuts,
        "overrides": options.get("overrides") or (),
    }
    config = layered(defaults, data=options.get("data"), sources=registries.datasets, **parts)
    validate(config)
    check_head(registries, config.model)
    scaled = scale_training(registries, config, user_keys(**parts))
    if scaled:
        validate(config)
    if notes is not None:
        notes.extend(scaled)
    warn_unread(registries, config, pristine, parts)
    return config, task


def unread_settings(registries: Registries, config: Any) -> tuple[str, list[str]] | None:
    """The data source of ``config`` (as ``data.source`` names it) and the ``data.*`` settings of the
    task's config that it does not read: those beyond ``DataConfig``'s own that the source
    does not declare with ``reads=``. None when the source is not registered."""
    from rnnvision_kit.config import DataConfig
    from rnnvision_kit.errors import RnnkitError

    data = config.data
    try:
        entry = registries.datasets.get(str(data.source))
    except RnnkitError:
        return None
    if not dataclasses.is_dataclass(data):
        return None
    base = {f.name for f in dataclasses.fields(DataConfig)}
    reads = set(entry.meta.get("reads", ()))
    unread = [
        f.name for f in dataclasses.fields(data) if f.name not in base and f.name not in reads
    ]
    return str(config.data.source), unread


def warn_unread(
    registries: Registries, config: Any, defaults: Any, parts: Mapping[str, Any]
) -> None:
    """One warning line for each ``data.*`` setting the user set (``--set``, or a ``--config``
    file's value other than the task's default) that the chosen data source does not read."""
    from rnnvision_kit.config import load_yaml, parse_override
    from rnnvision_kit.errors import warn

    found = unread_settings(registries, config)
    if found is None or not found[1]:
        return
    source, unread = found
    overrides: Iterable[str] = parts.get("overrides") or ()
    chosen = {parse_override(text)[0] for text in overrides}
    file_values = load_yaml(parts["config_file"]).get("data") if parts.get("config_file") else None
    for name in unread:
        if f"data.{name}" in chosen:
            how = f"--set data.{name}"
        elif isinstance(file_values, Mapping) and name in file_values:
            if getattr(config.data, name) == getattr(defaults.data, name, None):
                continue
            how = f"data.{name} in {parts['config_file']}"
        else:
            continue
        warn(f"{how}: data source {source} does not read data.{name}; it has no effect")
