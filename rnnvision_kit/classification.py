"""Building blocks shared by classification tasks: metrics, top-k records, confusion plots."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import torch
from torchmetrics import MetricCollection
from torchmetrics.classification import MulticlassAccuracy, MulticlassConfusionMatrix

from rnnvision_kit.runner.plots import plot_confusion
from rnnvision_kit.runner.records import write_json


def classification_metrics(num_classes: int) -> MetricCollection:
    """``acc`` (top-1), ``top5`` (with at least 5 classes), ``mean_class_acc``,
    ``per_class_acc`` and ``confmat``; all synchronised across DDP processes."""
    metrics: dict[str, Any] = {
        "acc": MulticlassAccuracy(num_classes, average="micro"),
        "mean_class_acc": MulticlassAccuracy(num_classes, average="macro"),
        "per_class_acc": MulticlassAccuracy(num_classes, average="none"),
        "confmat": MulticlassConfusionMatrix(num_classes),
    }
    if num_classes >= 5:
        metrics["top5"] = MulticlassAccuracy(num_classes, top_k=5, average="micro")
    return MetricCollection(metrics, compute_groups=False)


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
    if per_class is not None:
        write_json(
            run_dir / f"per_class_{split}.json",
            dict(zip(class_names, per_class, strict=True)),
        )
