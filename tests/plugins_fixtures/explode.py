"""A plugin with a tiny task whose training step raises: the run stops with that exception."""

from typing import Any

from rnnvision_kit import DataBundle, DataConfig, DataSpec, RunConfig, Task, TrainConfig, hookimpl


class Explode(Task):
    name = "explode"
    description = "a task whose training step raises"

    def default_config(self) -> RunConfig:
        train = TrainConfig(epochs=1, monitor="val/mean", mode="min", device="cpu")
        return RunConfig(
            task=self.name, data=DataConfig(source="inline", batch_size=4), train=train
        )

    def build_data(self, config: RunConfig, registries: Any) -> DataBundle:
        import torch
        from torch.utils.data import TensorDataset

        data = TensorDataset(torch.zeros(8, 2), torch.zeros(8, dtype=torch.long))
        return DataBundle(data, data, data, DataSpec(["a", "b"]))

    def build_model(self, config: RunConfig, spec: DataSpec, registries: Any) -> Any:
        import torch

        return torch.nn.Linear(2, 2)

    def step(self, model: Any, batch: Any) -> Any:
        raise RuntimeError("exploded in step")

    def metrics(self, config: RunConfig, spec: DataSpec) -> Any:
        from torchmetrics import MeanMetric, MetricCollection

        return MetricCollection({"mean": MeanMetric()})


@hookimpl
def rnnkit_register_tasks(register: Any) -> None:
    register("explode", Explode, description=Explode.description)
