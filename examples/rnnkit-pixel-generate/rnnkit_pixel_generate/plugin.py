"""Hook implementations of rnnkit-pixel-generate. Only names, descriptions and lazy factories are
registered here: torch, torchmetrics and scikit-learn are imported by the factories, when the task
runs, so that ``rnnkit tasks`` stays fast."""

from __future__ import annotations

from rnnvision_kit import RegisterDataSource, RegisterMetric, RegisterTask, hookimpl, lazy


@hookimpl
def rnnkit_register_tasks(register: RegisterTask) -> None:
    register(
        "pixel-generate",
        lazy("rnnkit_pixel_generate.task:PixelGenerateTask"),
        kind="levels",
        description="image generation: a Row LSTM predicts each row of pixels from the rows above",
        capabilities=("report",),
    )


@hookimpl
def rnnkit_register_datasets(register: RegisterDataSource) -> None:
    register(
        "digit-levels",
        lazy("rnnkit_pixel_generate.data:digit_levels"),
        kind="levels",
        description="scikit-learn's 8x8 digits quantised to data.levels intensity levels",
        reads=("levels", "val_fraction", "test_fraction"),
    )


@hookimpl
def rnnkit_register_metrics(register: RegisterMetric) -> None:
    register(
        "bpd",
        lazy("rnnkit_pixel_generate.metrics:create_metric", "bpd"),
        kinds=("levels",),
        description="bits per dimension: mean negative log2-likelihood per pixel (lower is better)",
    )
