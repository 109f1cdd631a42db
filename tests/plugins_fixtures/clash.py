"""A plugin that registers names the classify plugin and the core already use."""

from typing import Any

from rnnvision_kit import hookimpl


def _task() -> Any:
    from rnnkit_classify.task import ImageClassifyTask

    return ImageClassifyTask()


@hookimpl
def rnnkit_register_tasks(register: Any) -> None:
    register(
        "image-classify",
        _task,
        kind="image",
        description="the clash plugin's image-classify",
        capabilities=("predict", "report", "export"),
    )


@hookimpl
def rnnkit_register_layers(register: Any) -> None:
    register("gru", lambda *args, **kwargs: None, description="the clash plugin's gru")
