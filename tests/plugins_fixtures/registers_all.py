"""A plugin that registers one of each kind: task, data source, backbone, head, metric."""

from dataclasses import dataclass
from typing import Any

from rnnvision_kit import LayerSettings, hookimpl, lazy, setting


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


@dataclass
class ScaleSettings(LayerSettings):
    scale: float = setting(1.0, gt=0)  # the layer multiplies its running sum by this


def _layer(input_size: int, hidden_size: int, *, scale: float = 1.0) -> Any:
    """A cumulative-sum layer on the sequence-layer contract (causal, state ``total``)."""
    import torch

    from rnnvision_kit.nn import SequenceLayer, StateSpec

    class CumSum(SequenceLayer):
        def __init__(self) -> None:
            super().__init__()
            self.input_size, self.hidden_size = input_size, hidden_size
            self.proj = torch.nn.Linear(input_size, hidden_size)

        def state_spec(self) -> tuple:
            return (StateSpec("total", (hidden_size,)),)

        def forward(self, x: Any) -> Any:
            return self.scan(x)[0]

        def scan(self, chunk: Any, state: Any = None) -> Any:
            state = self.initial_state(chunk.shape[0]) if state is None else state
            y = state[0].unsqueeze(1) + torch.cumsum(self.proj(chunk), 1) * scale
            return y, (y[:, -1],)

    return CumSum()


@hookimpl
def rnnkit_register_layers(register: Any) -> None:
    register("all-layer", _layer, settings=ScaleSettings, description="a running sum")


@hookimpl
def rnnkit_register_metrics(register: Any) -> None:
    register("all-acc", _metric, kinds=("image", "video"), description="accuracy")
