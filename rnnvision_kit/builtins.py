"""The core's own hook implementations, loaded first as plugin ``core``: the shared sequence layers
and heads, the frame encoders of ``rnnvision_kit.nn`` (with the backbone families ``tv:MODEL`` and
``timm:MODEL``) and the classification metrics, so that every task plugin (and a third party's)
can use them without registering them again."""

from __future__ import annotations

from rnnvision_kit.hookspecs import (
    RegisterBackbone,
    RegisterHead,
    RegisterLayer,
    RegisterMetric,
    hookimpl,
)
from rnnvision_kit.layers import CORE_LAYERS, CORE_TRAIN_SCALE
from rnnvision_kit.registry import lazy

HEADS = {"mean": "order-less baseline: mean of the frame features"}
ENCODERS = {
    "small-cnn": "conv-bn-relu-pool blocks keeping a 4x4 grid (fast on a CPU)",
    "resnet18": "torchvision ResNet-18 (random, a local state dict file, or weights by name)",
    "mobilenet_v3_small": "torchvision MobileNetV3-Small (random, a local file, or weights by name)",
}
# backbone families (registry: FAMILY:MODEL): factory(model_name, **options), models(pattern)
FAMILIES = {
    "tv": (
        "any torchvision classification model, e.g. tv:resnet50 (model.weights=DEFAULT, ...)",
        "torchvision_encoder",
        "list_torchvision",
    ),
    "timm": (
        "any timm model, e.g. timm:convnext_nano (model.weights=pretrained or a tag)",
        "timm_encoder",
        "list_timm",
    ),
}
# the metrics of rnnvision_kit.classification (METRIC_OPTIONS), for image and video tasks
METRICS = {
    "acc": "top-1 accuracy",
    "top5": "top-5 accuracy",
    "mean_class_acc": "accuracy averaged over classes",
    "per_class_acc": "accuracy of each class (a list)",
    "confmat": "confusion matrix (rows: true class)",
}


@hookimpl
def rnnkit_register_heads(register: RegisterHead) -> None:
    for name, description in HEADS.items():
        register(name, lazy("rnnvision_kit.nn.heads:build_head", name), description=description)


@hookimpl
def rnnkit_register_layers(register: RegisterLayer) -> None:
    for name, (description, settings, block, causal) in CORE_LAYERS.items():
        register(
            name,
            lazy("rnnvision_kit.nn.heads:create_layer", name),
            description=description,
            settings=settings,
            block=block,
            causal=causal,
            train_scale=CORE_TRAIN_SCALE.get(name, {}),
        )


@hookimpl
def rnnkit_register_backbones(register: RegisterBackbone) -> None:
    for name, description in ENCODERS.items():
        register(
            name, lazy("rnnvision_kit.nn.encoders:build_encoder", name), description=description
        )
    for name, (description, factory, models) in FAMILIES.items():
        register(
            name,
            lazy(f"rnnvision_kit.nn.families:{factory}"),
            description=description,
            family=True,
            models=lazy(f"rnnvision_kit.nn.families:{models}"),
        )


@hookimpl
def rnnkit_register_metrics(register: RegisterMetric) -> None:
    for name, description in METRICS.items():
        register(
            name,
            lazy("rnnvision_kit.classification:create_metric", name),
            kinds=("image", "video"),
            description=description,
        )
