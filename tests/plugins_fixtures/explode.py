"""A plugin with a tiny task whose training step raises: the run stops with that exception."""

from typing import Any

from rnnvision_kit import (
    DataBundle,
    DataConfig,
    ImageSpec,
    RunConfig,
    Task,
    TrainConfig,
    hookimpl,
)


class Explode(Task):
    def default_config(self) -> RunConfig:
        train = TrainConfig(epochs=1, monitor="val/mean", mode="min", device="cpu")
        return RunConfig(task="", data=DataConfig(source="inline", batch_size=4), train=train)

    def build_data(self, ctx: Any) -> DataBundle:
        import torch
        from torch.utils.data import TensorDataset

        data = TensorDataset(torch.zeros(8, 1, 1, 2), torch.zeros(8, dtype=torch.long))
        return DataBundle(data, data, data, ImageSpec(("a", "b"), 1, 1, 2, (0.0,), (1.0,)))

    def build_model(self, ctx: Any) -> Any:
        import torch

        return torch.nn.Linear(2, 2)

    def step(self, ctx: Any, model: Any, batch: Any) -> Any:
        raise RuntimeError("exploded in step")

    def metrics(self, ctx: Any) -> Any:
        from torchmetrics import MeanMetric, MetricCollection

        return MetricCollection({"mean": MeanMetric()})


@hookimpl
def rnnkit_register_tasks(register: Any) -> None:
    register("explode", Explode, kind="image", description="a task whose training step raises")
