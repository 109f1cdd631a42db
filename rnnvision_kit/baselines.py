"""Trivial baselines: what a model that predicts one class for everything scores, so that every
result stands beside the number a collapsed model reaches.

- classification (kinds ``image`` and ``video``): always the majority class, its accuracy and
  mean class accuracy on the evaluated split;
- segmentation: the majority class at every pixel, its pixel accuracy, mIoU (as ``miou``
  averages: over the classes seen in targets or predictions), Dice and per-class IoU; a constant
  prediction never flickers, so its ``flicker`` is 0;
- any task: a baseline it measures itself, declared as its ``measured_baseline``
  (:class:`MeasuredBaseline`; video-predict's copy-last), whose metrics it reports under a
  prefix (``copy_last_mse``): the evaluator moves them into the baseline (kind ``measured``).

The majority class is the training split's when its labels are known without decoding
(:func:`label_counts`), else the evaluated split's own (the best constant prediction there).
Pure Python on class counts: the evaluator counts the targets it sees.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

CLASSIFICATION = ("image", "video")
SEGMENTATION = ("segmentation",)
MARGIN = 0.01  # a result within this of its baseline does not beat it
SHOWN_CLASSES = 10  # classification shows per-class accuracy up to this many classes
MEASURED = "measured"  # the kind of a baseline the task measured (MeasuredBaseline)
# the metrics compared with the baseline, per kind, in order (the first present is the headline)
HEADLINE = {"classification": ("acc", "mean_class_acc"), "segmentation": ("miou", "pixel_acc")}


@dataclass(frozen=True)
class Baseline:
    """The trivial baseline of one evaluated split."""

    kind: str  # classification or segmentation
    majority: str  # the class predicted for everything (its name)
    majority_of: str  # the split whose label counts chose it: train, or the evaluated split
    metrics: dict[str, float]  # metric name (without the split) -> the baseline's value
    per_class: dict[str, float | None] = field(default_factory=dict)  # class -> acc or IoU
    # a measured baseline: what it does, the metrics compared (in order), those lower is better
    description: str = ""
    headline: tuple[str, ...] = ()
    lower: tuple[str, ...] = ()

    def to_dict(self) -> dict[str, Any]:
        record = {
            "kind": self.kind,
            "predicts": self.majority,
            "majority_of": self.majority_of,
            "metrics": dict(self.metrics),
            "per_class": dict(self.per_class),
        }
        if self.kind == MEASURED:
            record |= {
                "description": self.description,
                "headline": list(self.headline),
                "lower": list(self.lower),
            }
        return record

    @classmethod
    def from_dict(cls, values: dict[str, Any]) -> Baseline:
        """The baseline ``to_dict`` recorded (``SPLIT/baseline`` in summary.json)."""
        return cls(
            str(values["kind"]),
            str(values["predicts"]),
            str(values.get("majority_of", "train")),
            {str(k): float(v) for k, v in dict(values["metrics"]).items()},
            dict(values.get("per_class") or {}),
            str(values.get("description", "")),
            tuple(values.get("headline") or ()),
            tuple(values.get("lower") or ()),
        )

    @property
    def what(self) -> str:
        """The line under the final table that says what the baseline is."""
        if self.kind == MEASURED:
            return f"trivial baseline: {self.majority} ({self.description})"
        where = "train" if self.majority_of == "train" else f"the {self.majority_of} split"
        return f"trivial baseline: predicts class {self.majority!r} (the majority of {where})"


@dataclass(frozen=True)
class MeasuredBaseline:
    """A trivial baseline a task measures on the evaluated data itself, declared as the task's
    ``measured_baseline``: its metrics ``metrics`` computes under ``prefix`` (``copy_last_mse``
    beside ``mse``); the evaluator moves them out of the scalar results into the split's
    baseline, shown beside the model's in the final table."""

    name: str  # e.g. copy-last
    prefix: str  # e.g. copy_last_
    description: str  # e.g. "repeats the last context frame"
    headline: tuple[str, ...]  # the metrics compared with the model's, the first present decides
    lower: tuple[str, ...] = ()  # those of them where lower is better (errors)

    def take(self, scalars: dict[str, Any], split: str) -> Baseline | None:
        """Remove the baseline's scalar metrics (``SPLIT/PREFIX<name>``) from ``scalars`` and
        return them as the split's baseline; None when the task reported none."""
        start = f"{split}/{self.prefix}"
        keys = [k for k, v in scalars.items() if k.startswith(start) and _number(v)]
        if not keys:
            return None
        metrics = {k.removeprefix(start): float(scalars.pop(k)) for k in keys}
        return Baseline(
            MEASURED, self.name, split, metrics, {}, self.description, self.headline, self.lower
        )


def _number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def recorded_collapse(summary: dict[str, Any], split: str = "test") -> str | None:
    """The collapse warning of a finished run from its ``summary.json`` (its ``split`` results
    and the baseline recorded beside them); None when it beat the baseline or none was
    recorded."""
    details = summary.get(f"{split}_details") or {}
    recorded = details.get(f"{split}/baseline")
    if not isinstance(recorded, dict):
        return None
    try:
        base = Baseline.from_dict(recorded)
    except (KeyError, TypeError, ValueError):
        return None
    results = {**(summary.get(split) or {}), **details}
    return collapse_warning(results, split, base)


def family(kind: str) -> str | None:
    """``classification`` or ``segmentation`` for a data kind with a trivial baseline, else None."""
    if kind in CLASSIFICATION:
        return "classification"
    if kind in SEGMENTATION:
        return "segmentation"
    return None


def label_counts(dataset: object, num_classes: int) -> list[int] | None:
    """Items per class of a classification data set, read from its labels without decoding an
    item: ``samples`` ((path, label) pairs, video sources and torchvision folders), ``labels``
    or ``targets``, through ``Subset`` wrappers; None when it exposes none of them."""
    indices: list[int] | None = None
    while True:
        labels = _labels(dataset)
        if labels is not None:
            break
        inner = getattr(dataset, "dataset", None)
        wrapped = getattr(dataset, "indices", None)
        if inner is None:
            return None
        if wrapped is not None:
            here = [int(i) for i in wrapped]
            indices = here if indices is None else [here[i] for i in indices]
        dataset = inner
    chosen = labels if indices is None else [labels[i] for i in indices]
    counts = [0] * num_classes
    for label in chosen:
        if 0 <= label < num_classes:
            counts[label] += 1
    return counts


def _labels(dataset: object) -> list[int] | None:
    samples = getattr(dataset, "samples", None)
    if isinstance(samples, Sequence) and samples and isinstance(samples[0], Sequence):
        try:
            return [int(sample[1]) for sample in samples]
        except (TypeError, ValueError, IndexError):
            return None
    for name in ("labels", "targets"):
        values = getattr(dataset, name, None)
        if values is None:
            continue
        values = values.tolist() if hasattr(values, "tolist") else values
        if isinstance(values, Sequence) and all(isinstance(v, int) for v in values[:10]):
            return [int(v) for v in values]
    return None


def majority(counts: Sequence[int]) -> int:
    """The class with the most items (the lowest id on a tie)."""
    return max(range(len(counts)), key=lambda k: (counts[k], -k))


def baseline(
    kind: str,
    counts: Sequence[int],
    class_names: Sequence[str],
    *,
    reference: Sequence[int] | None = None,
    split: str = "test",
) -> Baseline | None:
    """The trivial baseline on a split whose targets number ``counts`` per class (items for
    classification, pixels for segmentation); the majority class is ``reference``'s (the
    training split's counts) when given, else ``counts``'. None for a kind without a baseline
    or a split without targets."""
    group = family(kind)
    total = sum(counts)
    if group is None or total == 0:
        return None
    chooser = reference if reference is not None and sum(reference) > 0 else counts
    m = majority(chooser)
    of = "train" if chooser is reference else split
    share = counts[m] / total
    present = [k for k, n in enumerate(counts) if n > 0]
    if group == "classification":
        per_class: dict[str, float | None] = {
            class_names[k]: (1.0 if k == m else 0.0) if counts[k] else None
            for k in range(len(counts))
        }
        metrics = {"acc": share, "mean_class_acc": (1.0 if counts[m] else 0.0) / len(present)}
        return Baseline(group, class_names[m], of, metrics, per_class)
    used = sorted({*present, m})  # classes in targets or predictions, as miou averages them
    iou = {k: (share if k == m else 0.0) for k in used}
    dice = {k: (2 * counts[m] / (counts[m] + total) if k == m else 0.0) for k in used}
    metrics = {
        "miou": sum(iou.values()) / len(used),
        "pixel_acc": share,
        "dice": sum(dice.values()) / len(used),
        "flicker": 0.0,
    }
    per_iou = {class_names[k]: iou.get(k) for k in range(len(counts))}
    return Baseline(group, class_names[m], of, metrics, per_iou)


def compared(
    results: dict[str, Any], split: str, base: Baseline
) -> tuple[str, float, float] | None:
    """The headline metric (name, the model's value, the baseline's) the model does NOT beat
    by ``MARGIN`` (relative, for a measured baseline's metrics); None when it beats the
    baseline (or no headline metric was measured)."""
    for name in base.headline or HEADLINE.get(base.kind, ()):
        value = results.get(f"{split}/{name}")
        if isinstance(value, int | float) and name in base.metrics:
            trivial = base.metrics[name]
            margin = MARGIN * abs(trivial) if base.kind == MEASURED else MARGIN
            worse = value >= trivial - margin if name in base.lower else value <= trivial + margin
            return (name, float(value), trivial) if worse else None
    return None


LABELS = {"acc": "accuracy", "mean_class_acc": "mean class accuracy", "miou": "mIoU"}
LABELS |= {"pixel_acc": "pixel accuracy"}


def collapse_warning(results: dict[str, Any], split: str, base: Baseline) -> str | None:
    """One line when the model does not beat its trivial baseline, e.g. ``the model predicts
    background everywhere: mIoU 0.464 = the all-background baseline``; None when it does."""
    found = compared(results, split, base)
    if found is None:
        return None
    name, value, trivial = found
    what = LABELS.get(name, name)
    if base.kind == MEASURED:
        return (
            f"the model does no better than the {base.majority} baseline ({base.description}): "
            f"{what} {_beside(value, trivial, base.majority)}"
        )
    if base.kind == "segmentation":
        constant = _only_majority(results.get(f"{split}/per_class_iou"), base.majority)
        doing = "predicts" if constant else "does no better than predicting"
        line = (
            f"the model {doing} {base.majority} everywhere: "
            f"{what} {_beside(value, trivial, f'all-{base.majority}')}"
        )
        flicker = results.get(f"{split}/flicker")
        if constant and isinstance(flicker, int | float):  # a constant prediction never flickers
            line += f" (its flicker {flicker:.4f} is low because its prediction hardly changes)"
        return line
    return (
        f"the model does no better than always predicting class {base.majority!r}: {what} "
        f"{_beside(value, trivial, 'majority-class')}"
    )


def _only_majority(per_class: Any, majority: str) -> bool:
    """Whether every class but ``majority`` has an IoU near 0 (per-class IoU by class name)."""
    if not isinstance(per_class, dict):
        return False
    others = [v for k, v in per_class.items() if k != majority and isinstance(v, int | float)]
    return all(v < 0.05 for v in others)


def _beside(value: float, trivial: float, name: str) -> str:
    """``0.464 = the NAME baseline`` or ``0.452 (the NAME baseline: 0.464)``."""
    if f"{value:.3f}" == f"{trivial:.3f}":
        return f"{value:.3f} = the {name} baseline"
    return f"{value:.3f} (the {name} baseline: {trivial:.3f})"
