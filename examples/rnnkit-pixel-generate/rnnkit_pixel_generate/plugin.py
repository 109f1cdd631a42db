"""Hook implementations of rnnkit-pixel-generate. Only names and factories are registered here:
torch, torchmetrics and scikit-learn are imported inside the factories, when the task runs, so
that ``rnnkit tasks`` stays fast."""

from __future__ import annotations

from typing import Any

from rnnvision_kit import hookimpl, lazy


@hookimpl
def rnnkit_register_tasks(register: Any) -> None:
    register(
        "pixel-generate",
        lazy("rnnkit_pixel_generate.task:PixelGenerateTask"),
        description="image generation: a Row LSTM predicts each row of pixels from the rows above",
    )


@hookimpl
def rnnkit_register_datasets(register: Any) -> None:
    register(
        "digit-levels",
        lazy("rnnkit_pixel_generate.data:digit_levels"),
        kind="levels",
        description="scikit-learn's 8x8 digits quantised to data.levels intensity levels",
    )
