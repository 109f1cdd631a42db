"""A run's settings from the command line's parts: the task's defaults < ``--config`` YAML <
``--data`` < shortcuts (``--epochs``, ``--device`` ...) < ``--set``, validated, with the chosen
sequence layer's settings checked. Torch-free for a task that declares its defaults
(``config=``): a bad setting is one line before any heavy import. ``rnnkit run``, ``eval`` and
``sweep`` share it."""

from __future__ import annotations

from collections.abc import Mapping
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
    return config, task
