"""Hook implementations of the image-classify plugin. Registers names and factories only: torch,
torchvision and scikit-learn are imported inside the factories, when a task runs."""

from __future__ import annotations

from typing import Any

from rnnvision_kit import hookimpl, lazy


def _source(name: str) -> Any:
    return lazy("rnnkit_classify.data:open_source", name)


@hookimpl
def rnnkit_register_tasks(register: Any) -> None:
    register(
        "image-classify",
        lazy("rnnkit_classify.task:ImageClassifyTask"),
        description="image classification, the image read row by row by an RNN/GRU/LSTM",
    )


@hookimpl
def rnnkit_register_datasets(register: Any) -> None:
    kind = "image"
    register(
        "digits",
        _source("digits"),
        kind=kind,
        description="scikit-learn's bundled 8x8 handwritten digits (embedded default)",
    )
    register("mnist", _source("mnist"), kind=kind, description="MNIST from a local path")
    register(
        "fashion-mnist",
        _source("fashion-mnist"),
        kind=kind,
        description="Fashion-MNIST from a local path",
    )
    register("cifar10", _source("cifar10"), kind=kind, description="CIFAR-10 from a local path")
    register(
        "imagefolder",
        _source("imagefolder"),
        kind=kind,
        description="a folder per class of images of any size",
    )
