"""Hook implementations of the image-classify plugin. Registers names and factories only: torch,
torchvision and scikit-learn are imported inside the factories, when a task runs."""

from __future__ import annotations

from rnnvision_kit import RegisterDataSource, RegisterTask, hookimpl, lazy

# The one table of this plugin's data sources: name -> (its factory in rnnkit_classify.data,
# description, the data.* settings it reads)
SOURCES: dict[str, tuple[str, str, tuple[str, ...]]] = {
    "digits": (
        "digits",
        "scikit-learn's bundled 8x8 handwritten digits (embedded default)",
        ("image_size", "val_fraction", "test_fraction"),
    ),
    "mnist": ("mnist", "MNIST from a local path", ()),
    "fashion-mnist": ("fashion_mnist", "Fashion-MNIST from a local path", ()),
    "cifar10": ("cifar10", "CIFAR-10 from a local path", ()),
    "imagefolder": (
        "imagefolder",
        "a folder per class of images of any size",
        ("image_size", "channels", "val_fraction", "test_fraction"),
    ),
}


@hookimpl
def rnnkit_register_tasks(register: RegisterTask) -> None:
    register(
        "image-classify",
        lazy("rnnkit_classify.task:ImageClassifyTask"),
        config=lazy("rnnkit_classify.config:defaults"),  # settings checked before torch
        kind="image",
        description="image classification, the image read row by row by an RNN/GRU/LSTM",
        capabilities=("predict", "report", "export"),
    )


@hookimpl
def rnnkit_register_datasets(register: RegisterDataSource) -> None:
    for name, (factory, description, reads) in SOURCES.items():
        register(
            name,
            lazy(f"rnnkit_classify.data:{factory}"),  # config -> DataBundle
            kind="image",
            description=description,
            reads=reads,
        )
