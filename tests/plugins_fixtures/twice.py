"""A plugin that registers one name twice itself: an error at once, the plugin is rolled back."""

from typing import Any

from rnnvision_kit import hookimpl


@hookimpl
def rnnkit_register_tasks(register: Any) -> None:
    register("twice-task", lambda: None, kind="image")


@hookimpl
def rnnkit_register_heads(register: Any) -> None:
    register("twin", lambda *args, **kwargs: None)
    register("twin", lambda *args, **kwargs: None)
