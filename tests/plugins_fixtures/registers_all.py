"""A plugin that registers one of each kind: task, data source, backbone, head, metric."""

from typing import Any

from rnnvision_kit import hookimpl, lazy


def _backbone(**options: Any) -> Any:
    from torch import nn

    return nn.Conv2d(options.get("channels", 1), 4, kernel_size=3, padding=1)


def _head(input_size: int, num_classes: int, **options: Any) -> Any:
    from torch import nn

    class LastStep(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.linear = nn.Linear(input_size, num_classes)

        def forward(self, sequence: Any) -> Any:
            return self.linear(sequence[:, -1])

    return LastStep()


def _metric(spec: Any, **options: Any) -> Any:
    from torchmetrics.classification import MulticlassAccuracy

    return MulticlassAccuracy(spec.num_classes, average="micro")


def _source(config: Any) -> Any:
    raise NotImplementedError


@hookimpl
def rnnkit_register_tasks(register: Any) -> None:
    register(
        "all-task",
        lazy("rnnkit_classify.task:ImageClassifyTask"),
        kind="image",
        description="image-classify under another name",
        capabilities=("predict", "report"),
    )


@hookimpl
def rnnkit_register_datasets(register: Any) -> None:
    register("all-data", _source, kind="image", description="a data source")


@hookimpl
def rnnkit_register_backbones(register: Any) -> None:
    register("all-conv", _backbone)


@hookimpl
def rnnkit_register_heads(register: Any) -> None:
    register("all-head", _head)


@hookimpl
def rnnkit_register_metrics(register: Any) -> None:
    register("all-acc", _metric, kinds=("image", "video"), description="accuracy")
