"""Metrics of video-action: video-level (averaged clips) and clip-level accuracy, per-video records."""

from __future__ import annotations

from typing import Any

import torch
from torchmetrics import Metric, MetricCollection
from torchmetrics.classification import MulticlassAccuracy

from rnnvision_kit.classification import classification_metrics


class VideoPredictions(Metric):
    """Rows ``[index, label, k classes, k probabilities]`` per video, gathered across processes."""

    full_state_update = False

    def __init__(self, k: int, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.k = k
        self.add_state("rows", default=[], dist_reduce_fx="cat")

    def update(self, logits: torch.Tensor, targets: torch.Tensor, indices: torch.Tensor) -> None:
        scores, classes = torch.softmax(logits.float(), dim=-1).topk(self.k, dim=-1)
        columns = [indices[:, None], targets[:, None], classes, scores]
        # Flat float32 blocks: a process without a batch syncs torchmetrics' empty 1-D float32
        # tensor, and the gather pads uneven 1-D blocks of one dtype (not 2-D or float64 ones).
        # float32 holds data set indices exactly up to 2**24.
        self.rows.append(torch.cat([c.float() for c in columns], dim=1).flatten())

    def compute(self) -> torch.Tensor:
        # A list of row blocks here; one tensor once synchronised across processes (DDP).
        blocks = self.rows if isinstance(self.rows, list) else [self.rows]
        width = 2 + 2 * self.k
        blocks = [b.reshape(-1, width) for b in blocks if b.numel()]
        if not blocks:
            return torch.zeros((0, width))
        return torch.cat(blocks)


def video_metrics(num_classes: int) -> MetricCollection:
    """``acc``, ``top5``, ``mean_class_acc``, ``per_class_acc``, ``confmat`` on videos (averaged
    clip logits); ``clip_acc`` and ``clip_top5`` on single clips; ``predictions`` per video."""
    metrics: dict[str, Metric] = dict(classification_metrics(num_classes).items(keep_base=True))
    metrics["clip_acc"] = MulticlassAccuracy(num_classes, average="micro")
    if num_classes >= 5:
        metrics["clip_top5"] = MulticlassAccuracy(num_classes, top_k=5, average="micro")
    metrics["predictions"] = VideoPredictions(min(5, num_classes))
    return MetricCollection(metrics, compute_groups=False)
