"""A plugin that registers a task, then raises in another register hook: the task is rolled back."""

from typing import Any

from rnnvision_kit import hookimpl


@hookimpl
def rnnkit_register_tasks(register: Any) -> None:
    register(
        "half-registered", lambda: None, kind="image", description="must not survive the rollback"
    )


@hookimpl
def rnnkit_register_datasets(register: Any) -> None:
    raise RuntimeError("data registry offline")
