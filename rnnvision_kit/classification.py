"""Building blocks shared by classification tasks (public API): the core's registered metrics,
top-k records, confusion plots and per-class reports."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import torch

from rnnvision_kit.dataspec import DataSpec
from rnnvision_kit.runner.plots import plot_confusion
from rnnvision_kit.runner.records import write_json
from rnnvision_kit.task import MetricsContext

if TYPE_CHECKING:  # torchmetrics costs seconds to import: predict and stream never need it
    from torchmetrics import Metric, MetricCollection

# name -> MulticlassAccuracy / MulticlassConfusionMatrix keywords (registered by the core)
METRIC_OPTIONS: dict[str, dict[str, Any]] = {
    "acc": {"average": "micro"},
    "top5": {"average": "micro", "top_k": 5},
    "mean_class_acc": {"average": "macro"},
    "per_class_acc": {"average": "none"},
    "confmat": {},
}


def create_metric(name: str, spec: DataSpec, **options: Any) -> Metric:
    """The core's classification metric ``name`` (a key of ``METRIC_OPTIONS``) for ``spec``."""
    from torchmetrics.classification import MulticlassAccuracy, MulticlassConfusionMatrix

    keywords = {**METRIC_OPTIONS[name], **options}
    if name == "confmat":
        return MulticlassConfusionMatrix(spec.num_classes, **keywords)
    if "top_k" in keywords:
        keywords["top_k"] = min(keywords["top_k"], spec.num_classes)
    return MulticlassAccuracy(spec.num_classes, **keywords)


def classification_metrics(ctx: MetricsContext) -> MetricCollection:
    """``acc``, ``top5`` (with at least 5 classes), ``mean_class_acc``, ``per_class_acc`` and
    ``confmat``, built through the metrics registry (``core:<name>``); DDP-synchronised."""
    from torchmetrics import MetricCollection

    names = ["acc", "mean_class_acc", "per_class_acc", "confmat"]
    if ctx.spec.num_classes >= 5:
        names.insert(1, "top5")
    return MetricCollection({n: ctx.metric(f"core:{n}") for n in names}, compute_groups=False)


def top_k(logits: torch.Tensor, class_names: Sequence[str], k: int = 5) -> list[dict[str, Any]]:
    """``[{"label": name, "score": probability}, ...]`` for one sample's logits, best first."""
    probabilities = torch.softmax(logits.float(), dim=-1)
    scores, indices = probabilities.topk(min(k, probabilities.numel()))
    return [
        {"label": class_names[i], "score": round(float(s), 6)}
        for s, i in zip(scores.tolist(), indices.tolist(), strict=True)
    ]


def write_classification_report(
    run_dir: Path, split: str, results: dict[str, Any], class_names: Sequence[str]
) -> None:
    """``confusion_<split>.png`` and ``per_class_<split>.json`` from evaluated metrics."""
    matrix = results.get(f"{split}/confmat")
    if matrix is not None:
        plot_confusion(matrix, class_names, run_dir / f"confusion_{split}.png")
    per_class = results.get(f"{split}/per_class_acc")
    if per_class is not None:  # by class name (the evaluator's form), or one value per class
        if not isinstance(per_class, dict):
            per_class = dict(zip(class_names, per_class, strict=True))
        write_json(run_dir / f"per_class_{split}.json", per_class)
