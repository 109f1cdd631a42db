"""Metrics of seg-refine as torchmetrics Metrics (sum states, so DDP-synchronised): mIoU,
per-class IoU, Dice, pixel accuracy from one confusion matrix, and temporal flicker.

All take ``target`` class ids ``B,T,H,W`` and ``preds`` as class ids of the same shape or as
logits ``B,T,K,H,W`` (their argmax over the class dimension is taken), so that the runner's
default ``metrics.update(preds, targets)`` and ``--set eval.metrics=[...]`` work with them.
Pixels whose target is ``ignore_index`` are left out. Registered (``plugin.METRICS``) for data of
kind ``segmentation``; :func:`create_metric` builds one for a ``SegmentationSpec``.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import torch
from torchmetrics import Metric

from rnnvision_kit import DataSpec


def labels_of(preds: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """Class ids from ``preds``: the argmax over the class dimension (third from last) of logits
    with one dimension more than ``target``, else ``preds`` as they are."""
    if preds.dim() == target.dim() + 1:
        return preds.argmax(dim=-3)
    if preds.shape != target.shape:
        raise ValueError(
            f"preds of shape {tuple(preds.shape)} fit neither target {tuple(target.shape)} "
            "(class ids) nor logits with a class dimension"
        )
    return preds.long()


class _Confusion(Metric):
    """A ``K x K`` confusion matrix (rows: true class, columns: predicted) over valid pixels."""

    full_state_update = False
    higher_is_better = True
    confmat: torch.Tensor  # the state, K x K

    def __init__(self, num_classes: int, ignore_index: int | None = None, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.num_classes, self.ignore_index = num_classes, ignore_index
        zeros = torch.zeros(num_classes, num_classes, dtype=torch.long)
        self.add_state("confmat", default=zeros, dist_reduce_fx="sum")

    def update(self, preds: torch.Tensor, target: torch.Tensor) -> None:
        preds = labels_of(preds, target)
        k = self.num_classes
        valid = (target >= 0) & (target < k)
        if self.ignore_index is not None:
            valid &= target != self.ignore_index
        index = target[valid] * k + preds[valid].clamp(0, k - 1)
        self.confmat += torch.bincount(index, minlength=k * k).view(k, k)

    def _classes(self) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
        """Per class: true positives, true pixel count, predicted pixel count, and whether the
        class counts in averages (seen in target or prediction, and not ignored)."""
        cm = self.confmat.double()
        tp, true, pred = cm.diagonal(), cm.sum(1), cm.sum(0)
        used = (true + pred) > 0
        if self.ignore_index is not None and 0 <= self.ignore_index < self.num_classes:
            used[self.ignore_index] = False
        return tp, true, pred, used

    def per_class_iou(self) -> torch.Tensor:
        tp, true, pred, used = self._classes()
        iou = tp / (true + pred - tp).clamp(min=1)
        return torch.where(used, iou, torch.full_like(iou, float("nan")))

    def compute(self) -> torch.Tensor:
        raise NotImplementedError


def _mean(values: torch.Tensor) -> torch.Tensor:
    values = values[~values.isnan()]
    return values.mean().float() if values.numel() else torch.tensor(0.0)


class MeanIoU(_Confusion):
    """Mean over classes of ``TP / (TP + FP + FN)``; classes absent from targets and predictions
    (and ``ignore_index``) are left out of the mean."""

    def compute(self) -> torch.Tensor:
        return _mean(self.per_class_iou())


class PerClassIoU(_Confusion):
    """IoU of each class (NaN where a class is absent from targets and predictions)."""

    def compute(self) -> torch.Tensor:
        return self.per_class_iou().float()


class MeanDice(_Confusion):
    """Mean over classes of ``2 TP / (2 TP + FP + FN)`` (the F1 score of each class's pixels)."""

    def compute(self) -> torch.Tensor:
        tp, true, pred, used = self._classes()
        dice = 2 * tp / (true + pred).clamp(min=1)
        return _mean(torch.where(used, dice, torch.full_like(dice, float("nan"))))


class PixelAccuracy(_Confusion):
    """Fraction of valid pixels whose predicted class is right."""

    def compute(self) -> torch.Tensor:
        cm = self.confmat.double()
        return (cm.diagonal().sum() / cm.sum().clamp(min=1)).float()


class TemporalFlicker(Metric):
    """Fraction of pixels whose predicted label changes between consecutive frames where the true
    label does not (lower is better; 0 for single frames)."""

    full_state_update = False
    higher_is_better = False
    changed: torch.Tensor  # the states: pixel counts
    stable: torch.Tensor

    def __init__(self, ignore_index: int | None = None, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.ignore_index = ignore_index
        self.add_state("changed", default=torch.zeros((), dtype=torch.long), dist_reduce_fx="sum")
        self.add_state("stable", default=torch.zeros((), dtype=torch.long), dist_reduce_fx="sum")

    def update(self, preds: torch.Tensor, target: torch.Tensor) -> None:
        preds = labels_of(preds, target)
        if preds.dim() != 4 or preds.shape[1] < 2:
            return
        stable = target[:, 1:] == target[:, :-1]
        if self.ignore_index is not None:
            stable &= target[:, 1:] != self.ignore_index
        changed = stable & (preds[:, 1:] != preds[:, :-1])
        self.stable += stable.sum()
        self.changed += changed.sum()

    def compute(self) -> torch.Tensor:
        return (self.changed.double() / self.stable.clamp(min=1)).float()


METRICS: dict[str, Callable[..., Metric]] = {
    "miou": MeanIoU,
    "per_class_iou": PerClassIoU,
    "dice": MeanDice,
    "pixel_acc": PixelAccuracy,
    "flicker": TemporalFlicker,
}
NAMES = tuple(METRICS)  # the task's own metrics, in this order


def create_metric(name: str, spec: DataSpec, **options: Any) -> Metric:
    """Metric ``name`` (a key of ``METRICS``) for ``spec``: its classes and ``ignore_index``
    (``options`` may override ``ignore_index`` and pass torchmetrics keywords)."""
    options.setdefault("ignore_index", getattr(spec, "ignore_index", None))
    if name == "flicker":
        return TemporalFlicker(**options)
    return METRICS[name](spec.num_classes, **options)
