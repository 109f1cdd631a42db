"""Hook implementations of the video-predict plugin. Registers names and factories only (torch is
imported when a task runs); importing ``spec`` defines the data kind ``frames``."""

from __future__ import annotations

from rnnkit_videopredict.spec import KIND
from rnnvision_kit import RegisterDataSource, RegisterMetric, RegisterTask, hookimpl, lazy

READS = (
    "context",
    "horizon",
    "eval_horizon",
    "sequence_length",
    "size",
    "channels",
    "digits",
    "train_sequences",
    "fixed_train",
    "val_sequences",
    "test_sequences",
)
METRICS = {
    "mse": "per-frame squared error summed over pixels in [0, 1] (OpenSTL's MSE), horizon mean",
    "mae": "per-frame absolute error summed over pixels in [0, 1], horizon mean",
    "ssim": "SSIM per frame (Gaussian window 11), horizon mean",
    "psnr": "PSNR per frame in dB (capped at 100), horizon mean",
}


@hookimpl
def rnnkit_register_tasks(register: RegisterTask) -> None:
    register(
        "video-predict",
        lazy("rnnkit_videopredict.task:VideoPredictTask"),
        config=lazy("rnnkit_videopredict.config:defaults"),
        kind=KIND,
        description="next-frame prediction: context frames in, a rollout of future frames out",
        capabilities=("predict", "check-data", "report", "stream", "export"),
    )


@hookimpl
def rnnkit_register_datasets(register: RegisterDataSource) -> None:
    register(
        "moving-mnist",
        lazy("rnnkit_videopredict.data:open_moving_mnist"),
        kind=KIND,
        description="Moving MNIST by the published protocol, generated offline (default)",
        reads=READS,
    )
    register(
        "videoframes",
        lazy("rnnkit_videopredict.videoframes:open_videoframes"),
        kind=KIND,
        description="PATH: any videos or frame folders (or PATH/train|val|test), unlabelled",
        reads=(
            "context",
            "horizon",
            "eval_horizon",
            "size",
            "channels",
            "val_fraction",
            "test_fraction",
        ),
    )


@hookimpl
def rnnkit_register_metrics(register: RegisterMetric) -> None:
    for name, description in METRICS.items():
        for suffix, what in (("", description), ("_steps", f"{name} per horizon step (a list)")):
            register(
                f"{name}{suffix}",
                lazy("rnnkit_videopredict.metrics:create_metric", f"{name}{suffix}"),
                kinds=(KIND,),
                description=what,
            )
