"""Metrics of video-action: clip-level accuracy and per-video prediction records.

Registered for the ``video`` kind (``plugin.py``): ``clip_acc``, ``clip_top5`` and
``predictions``. The task feeds ``clip_*`` each clip's logits and the video-level metrics (the
core's ``acc``, ``top5``, ...) the average of a video's clips; added to another video task with
``eval.metrics``, they get that task's ``StepOutput.preds``/``targets``.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import torch
from torchmetrics import Metric
from torchmetrics.classification import MulticlassAccuracy

from rnnvision_kit import DataSpec


class VideoPredictions(Metric):
    """Rows ``[index, label, k classes, k probabilities]`` per video, gathered across processes.

    ``indices`` are the videos' indices in their data set (the third item of an evaluation
    sample); without them (a source whose items carry none, or an ``eval.metrics`` addition) a
    row's index is -1: unknown.
    """

    full_state_update = False
    rows: list[torch.Tensor]  # the state: row blocks; one tensor once synchronised (DDP)

    def __init__(self, k: int, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.k = k
        self.add_state("rows", default=[], dist_reduce_fx="cat")

    def update(
        self, logits: torch.Tensor, targets: torch.Tensor, indices: torch.Tensor | None = None
    ) -> None:
        if indices is None:
            indices = torch.full_like(targets, -1)
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

    def labelled(self, rows: Any, class_names: Sequence[str]) -> list[dict[str, Any]]:
        """The computed rows as JSON records, by data set index: ``{"index", "label",
        "predicted", "top": [{"label", "score"}, ...]}`` (``index`` -1: the source gave none)."""
        return prediction_rows(rows, class_names)


def prediction_rows(rows: Any, class_names: Sequence[str]) -> list[dict[str, Any]]:
    """Records of ``predictions`` rows ``[index, label, k classes, k probabilities]`` (a list
    of lists or a tensor), sorted by index; already labelled records pass through."""
    rows = rows.tolist() if hasattr(rows, "tolist") else list(rows)
    if rows and isinstance(rows[0], dict):
        return rows
    k = (len(rows[0]) - 2) // 2 if rows else 0
    records = []
    for row in sorted(rows, key=lambda r: r[0]):
        top = [
            {"label": class_names[int(c)], "score": round(float(s), 6)}
            for c, s in zip(row[2 : 2 + k], row[2 + k :], strict=True)
        ]
        label = class_names[int(row[1])]
        records.append({"index": int(row[0]), "label": label, "predicted": top[0]["label"]})
        records[-1]["top"] = top
    return records


def create_metric(name: str, spec: DataSpec, **options: Any) -> Metric:
    """The registered metric ``name`` (``clip_acc``, ``clip_top5``, ``predictions``) for
    ``spec``; ``options`` go to the metric (``k`` for ``predictions``: labels per row)."""
    k = min(5, spec.num_classes)
    if name == "clip_acc":
        return MulticlassAccuracy(spec.num_classes, **{"average": "micro", **options})
    if name == "clip_top5":
        return MulticlassAccuracy(spec.num_classes, **{"average": "micro", "top_k": k, **options})
    if name == "predictions":
        return VideoPredictions(**{"k": k, **options})
    raise KeyError(f"unknown video-action metric {name!r}")
