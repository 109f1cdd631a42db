"""Hook implementations of the video-action plugin. Registers names and factories only: torch,
torchvision and PyAV are imported inside the factories, when a task runs. The frame encoders
(small-cnn, resnet18, mobilenet_v3_small) and sequence heads it builds on are the core's."""

from __future__ import annotations

from rnnvision_kit import RegisterDataSource, RegisterMetric, RegisterTask, hookimpl, lazy

# data.* settings every source reads to cut and sample clips (rnnkit_video.data.clip_datasets)
CLIP_SETTINGS = (
    "num_frames",
    "stride",
    "size",
    "sampling",
    "test_clips",
    "short_policy",
    "frame_cache",
    "frame_cache_gb",
    "augment",
    "crop_scale",
    "hflip",
    "jitter",
)
# name -> (description, the data.* settings it reads besides CLIP_SETTINGS)
SOURCES: dict[str, tuple[str, tuple[str, ...]]] = {
    "moving-digits": (
        "digits moving over a texture; 10 classes in time-reversed pairs (embedded default)",
        ("videos_per_class",),
    ),
    "videofolder": (
        "PATH/<class>/<video> (or PATH/train|val|test/<class>/<video>)",
        ("val_fraction", "test_fraction"),
    ),
    "ucf101": (
        "UCF101/HMDB51 layout: classInd.txt, trainlist0N/testlist0N.txt (data.fold)",
        ("fold", "val_fraction"),
    ),
    "framefolder": (
        "PATH/<class>/<video>/<frame>.jpg|png (or split folders)",
        ("val_fraction", "test_fraction"),
    ),
}
METRICS = {
    "clip_acc": "top-1 accuracy of single clips (video-level acc averages a video's clips)",
    "clip_top5": "top-5 accuracy of single clips",
    "predictions": "per-video rows [index, label, top-k classes, top-k probabilities]",
}


@hookimpl
def rnnkit_register_tasks(register: RegisterTask) -> None:
    register(
        "video-action",
        lazy("rnnkit_video.task:VideoActionTask"),
        config=lazy("rnnkit_video.config:defaults"),  # settings checked before torch is imported
        kind="video",
        description="video action recognition: a frame encoder, then a GRU/LSTM over the clip",
        capabilities=("predict", "check-data", "report", "stream", "export"),
    )


@hookimpl
def rnnkit_register_datasets(register: RegisterDataSource) -> None:
    for name, (description, reads) in SOURCES.items():
        register(
            name,
            lazy("rnnkit_video.data:open_source", name),
            kind="video",
            description=description,
            reads=(*CLIP_SETTINGS, *reads),
            list_samples=lazy("rnnkit_video.data:list_source", name),
        )


@hookimpl
def rnnkit_register_metrics(register: RegisterMetric) -> None:
    for name, description in METRICS.items():
        register(
            name,
            lazy("rnnkit_video.metrics:create_metric", name),
            kinds=("video",),
            description=description,
        )
