"""A plugin whose hook name is misspelt (``task`` for ``tasks``): reported, not ignored."""

from typing import Any

from rnnvision_kit import hookimpl


@hookimpl
def rnnkit_register_task(register: Any) -> None:
    register("never-registered", lambda: None)
