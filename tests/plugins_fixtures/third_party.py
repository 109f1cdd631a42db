"""A third party's plugin that adds no task: an ``image`` source and a ``video`` source that the
built-in tasks read, a metric any classification task can add (``eval.metrics``), and sources
that break the contract (normalised items, a setting no task has)."""

from typing import Any

from rnnvision_kit import (
    DataBundle,
    ImageSpec,
    RegisterDataSource,
    RegisterMetric,
    RunConfig,
    VideoSpec,
    hookimpl,
)

CLASSES = ("left", "right")


def _images(config: RunConfig) -> DataBundle:
    """Bars: a bright column in the left or the right half of a 12x12 image."""
    import torch
    from torch.utils.data import TensorDataset

    generator = torch.Generator().manual_seed(0)

    def split(n: int) -> TensorDataset:
        labels = torch.arange(n) % 2
        images = torch.rand(n, 1, 12, 12, generator=generator) * 0.2
        columns = torch.randint(0, 6, (n,), generator=generator) + 6 * labels
        images[torch.arange(n), 0, :, columns] = 1.0
        return TensorDataset(images, labels)

    spec = ImageSpec(CLASSES, 1, 12, 12, (0.15,), (0.25,))
    return DataBundle(split(96), split(32), split(32), spec)


def _clips(config: RunConfig) -> DataBundle:
    """A dot that moves left or right over ``data.num_frames`` RGB frames of 16x16."""
    import torch
    from torch.utils.data import TensorDataset

    frames = config.data.num_frames
    generator = torch.Generator().manual_seed(1)

    def split(n: int) -> TensorDataset:
        labels = torch.arange(n) % 2
        clips = torch.zeros(n, frames, 3, 16, 16)
        rows = torch.randint(2, 14, (n,), generator=generator)
        for i in range(n):
            for t in range(frames):
                column = 3 + 2 * t if labels[i] == 1 else 12 - 2 * t
                clips[i, t, :, rows[i], column] = 1.0
        return TensorDataset(clips, labels)

    spec = VideoSpec(CLASSES, 3, 16, 16, (0.5,) * 3, (0.25,) * 3, num_frames=frames)
    return DataBundle(split(64), split(16), split(16), spec)


def _normalised(config: RunConfig) -> DataBundle:
    """Breaks the contract: items normalised by the source (mean 0, std 1)."""
    bundle = _images(config)
    images, labels = bundle.train.tensors
    from torch.utils.data import TensorDataset

    shifted = TensorDataset((images - 0.15) / 0.25, labels)
    return DataBundle(shifted, shifted, shifted, bundle.spec)


def _broken(config: RunConfig) -> DataBundle:
    raise OSError("share not mounted")


def _explodes(spec: Any, **options: Any) -> Any:
    from torchmetrics import MeanMetric

    class Explodes(MeanMetric):
        def update(self, *args: Any) -> None:  # type: ignore[override]
            raise ValueError("bad shapes")

    return Explodes()


def _brier(spec: Any, **options: Any) -> Any:
    import torch
    from torchmetrics import MeanMetric

    class Brier(MeanMetric):
        """Mean squared error of the class probabilities against the one-hot targets."""

        def update(self, logits: torch.Tensor, targets: torch.Tensor) -> None:  # type: ignore[override]
            probabilities = torch.softmax(logits.float(), dim=-1)
            one_hot = torch.nn.functional.one_hot(targets, probabilities.shape[-1]).float()
            super().update(((probabilities - one_hot) ** 2).sum(-1))

    return Brier()


@hookimpl
def rnnkit_register_datasets(register: RegisterDataSource) -> None:
    register("bars", _images, kind="image", description="bars left or right")
    register("dots", _clips, kind="video", description="a dot moving", reads=("num_frames",))
    register("normalised-bars", _normalised, kind="image", description="breaks the contract")
    register("patches", _images, kind="image", description="needs a setting", reads=("patch_size",))
    register("broken", _broken, kind="image", description="its factory raises")


@hookimpl
def rnnkit_register_metrics(register: RegisterMetric) -> None:
    register("brier", _brier, kinds=("image", "video"), description="Brier score")
    register("seg-only", _brier, kinds=("segmentation",), description="wrong kind for classifiers")
    register("explodes", _explodes, kinds=("image",), description="raises in update")
