"""Tasks whose runs take a second: 4x4 images in memory, a linear model.

- ``tiny``: data from the source ``tiny``; its model normalises with the mean and std that its
  "pretrained weights" ask for (``model.weights=fake``), returned in a ``BuiltModel``; no export.
- ``tiny-module``: the same, its ``build_model`` returning a bare module (tasks written before
  ``BuiltModel``).
- ``tiny-built``: builds its data itself (``build_data`` overridden); ``data.scale`` multiplies
  the images (above 1: outside the image kind's [0, 1]).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from rnnvision_kit import (
    BuiltModel,
    DataBundle,
    DataConfig,
    ImageSpec,
    ModelConfig,
    Normalisation,
    RunConfig,
    StepOutput,
    Task,
    TrainConfig,
    hookimpl,
    setting,
)

WEIGHTS_MEAN, WEIGHTS_STD = (0.25,), (0.5,)


@dataclass
class TinyDataConfig(DataConfig):
    source: str = "tiny"
    batch_size: int = 8
    scale: float = setting(1.0, gt=0)  # tiny-built: images times this


@dataclass
class TinyModelConfig(ModelConfig):
    weights: str | None = None  # "fake": normalise as those weights ask
    mean: list[float] | None = None
    std: list[float] | None = None


def _bundle(scale: float = 1.0) -> DataBundle:
    import torch
    from torch.utils.data import TensorDataset

    g = torch.Generator().manual_seed(0)
    images = torch.rand(32, 1, 4, 4, generator=g) * scale
    labels = torch.randint(0, 2, (32,), generator=g)
    data = TensorDataset(images, labels)
    spec = ImageSpec(("a", "b"), 1, 4, 4, (0.5,), (0.3,))
    return DataBundle(data, data, data, spec)


class Normalised:
    """The model: normalise, flatten, one linear layer."""

    @staticmethod
    def build(mean: tuple[float, ...], std: tuple[float, ...]) -> Any:
        import torch
        from torch import nn

        class Linear(nn.Module):
            def __init__(self) -> None:
                super().__init__()
                self.register_buffer("mean", torch.tensor(mean).view(1, -1, 1, 1))
                self.register_buffer("std", torch.tensor(std).view(1, -1, 1, 1))
                self.linear = nn.Linear(16, 2)

            def forward(self, x: torch.Tensor) -> torch.Tensor:
                return self.linear(((x - self.mean) / self.std).flatten(1))

        return Linear()


class TinyTask(Task):
    def default_config(self) -> RunConfig:
        return RunConfig(
            task="tiny",
            data=TinyDataConfig(),
            model=TinyModelConfig(),
            train=TrainConfig(epochs=1, schedule="none", monitor="val/loss", mode="min"),
        )

    def normalisation(self, ctx: Any) -> Normalisation:
        m = ctx.config.model
        if m.mean is not None and m.std is not None:
            return Normalisation(tuple(m.mean), tuple(m.std), Normalisation.FROM_SETTINGS)
        if m.weights == "fake" and ctx.fresh:  # a rebuilt model reads no weights
            return Normalisation(WEIGHTS_MEAN, WEIGHTS_STD, "fake weights")
        return Normalisation(tuple(ctx.spec.mean), tuple(ctx.spec.std))

    def build_model(self, ctx: Any) -> Any:
        chosen = ctx.normalisation or self.normalisation(ctx)
        return BuiltModel(Normalised.build(chosen.mean, chosen.std), chosen)

    def step(self, ctx: Any, model: Any, batch: Any) -> StepOutput:
        import torch.nn.functional as F

        x, y = batch
        logits = model(x)
        return StepOutput(F.cross_entropy(logits, y), logits.detach(), y)

    def metrics(self, ctx: Any) -> Any:
        from rnnvision_kit.classification import classification_metrics

        return classification_metrics(ctx)


class TinyModuleTask(TinyTask):
    def build_model(self, ctx: Any) -> Any:
        return super().build_model(ctx).model


class TinyBuiltTask(TinyTask):
    def build_data(self, ctx: Any) -> DataBundle:
        return _bundle(ctx.config.data.scale)


@hookimpl
def rnnkit_register_tasks(register: Any) -> None:
    register("tiny", TinyTask, kind="image")
    register("tiny-module", TinyModuleTask, kind="image")
    register("tiny-built", TinyBuiltTask, kind="image")


@hookimpl
def rnnkit_register_datasets(register: Any) -> None:
    register("tiny", lambda config: _bundle(), kind="image", reads=("scale",))
