"""Evaluation: a model's loss and metrics on a data set, each sample counted once across DDP
processes. An :class:`Evaluator` builds the task's metrics once; training validates with it
every epoch and the run tests with it at the end (``rnnkit eval`` makes its own)."""

from __future__ import annotations

import contextlib
from collections.abc import Sequence, Sized
from typing import Any, cast

import torch
from torch import nn
from torch.utils.data import DataLoader, Dataset

from rnnvision_kit.baselines import baseline, family, label_counts
from rnnvision_kit.config import RunConfig
from rnnvision_kit.data.readable import ReadableBatch, collate_readable
from rnnvision_kit.dataspec import DataSpec
from rnnvision_kit.errors import ConfigError, rethrown
from rnnvision_kit.progress import track
from rnnvision_kit.registry import Registries
from rnnvision_kit.runner.device import Runtime, loader_options, move_to
from rnnvision_kit.runner.distributed import ShardSampler, all_reduce_sum
from rnnvision_kit.runner.pipeline import TaskHandle, build_metrics
from rnnvision_kit.runner.unreadable import UnreadableLedger
from rnnvision_kit.task import StepContext


def split_metrics(computed: dict[str, Any], prefix: str) -> tuple[dict[str, float], dict[str, Any]]:
    """Scalar metrics (logged every epoch) and the rest (per-class, confusion; saved at the end)."""
    scalars: dict[str, float] = {}
    others: dict[str, Any] = {}
    for name, value in computed.items():
        if isinstance(value, torch.Tensor) and value.numel() == 1 or isinstance(value, int | float):
            scalars[f"{prefix}/{name}"] = float(value)
        else:
            others[f"{prefix}/{name}"] = value.tolist() if hasattr(value, "tolist") else value
    return scalars, others


def added_metrics(config: RunConfig) -> contextlib.AbstractContextManager[None]:
    """Errors of the metrics ``eval.metrics`` adds become one line naming the setting."""
    names = ", ".join(config.eval.metrics)
    return rethrown(
        lambda problem: ConfigError(f"eval.metrics: a metric of [{names}] failed: {problem}")
    )


class Evaluator:
    """Evaluates models of one task on data of one spec: the metrics are built once, here (with
    the check that ``train.monitor`` names one of them), and reset before each evaluation.
    ``reference``: the training split, whose majority class is the trivial baseline's."""

    def __init__(
        self,
        *,
        task: TaskHandle,
        registries: Registries,
        config: RunConfig,
        spec: DataSpec,
        runtime: Runtime,
        reference: Dataset | None = None,
    ) -> None:
        self.task, self.config, self.spec, self.runtime = task, config, spec, runtime
        own, extra = build_metrics(task, registries, config, spec)
        self.own, self.extra = own.to(runtime.device), extra.to(runtime.device)
        self.step_context = StepContext(config, spec, training=False)
        # targets per class of the evaluated split, for its trivial baseline (rnnvision_kit.baselines)
        self.counts_targets = family(spec.kind) is not None
        self.reference_counts: list[int] | None = None  # the training split's, see use_reference
        if reference is not None:
            self.use_reference(reference)
        names = self.metric_names("val")
        if config.train.monitor not in names:
            raise ConfigError(
                f"train.monitor: metric {config.train.monitor!r} does not exist "
                f"(available: {', '.join(names)})"
            )

    def use_reference(self, dataset: Dataset) -> None:
        """Take the trivial baseline's majority class from ``dataset`` (the training split) when
        its labels can be read without decoding (classification); else the evaluated split's."""
        if family(self.spec.kind) == "classification":
            self.reference_counts = label_counts(dataset, self.spec.num_classes)

    def metric_names(self, split: str) -> list[str]:
        """``SPLIT/loss`` and ``SPLIT/NAME`` of each metric (what ``train.monitor`` names)."""
        return [f"{split}/loss", *(f"{split}/{name}" for name in [*self.own, *self.extra])]

    @torch.inference_mode()
    def evaluate(
        self,
        model: nn.Module,
        dataset: Dataset,
        split: str,
        *,
        progress: bool = False,
        unreadable: UnreadableLedger | None = None,
    ) -> tuple[dict[str, float], dict[str, Any]]:
        """Evaluate ``model`` (not its DDP wrapper) on ``dataset``; returns (scalars, other
        metrics), with a progress bar when ``progress``. Items that cannot be read are left out,
        not replaced: the metrics cover the readable ones and ``<split>/unreadable`` counts the
        files that were not (``unreadable`` keeps them across calls)."""
        task, config, runtime = self.task, self.config, self.runtime
        device, dist = runtime.device, runtime.dist
        own, extra = self.own, self.extra
        own.reset()
        extra.reset()
        ledger = unreadable if unreadable is not None else UnreadableLedger()
        d = config.data
        loader = DataLoader(
            ledger.guard(split, dataset, replace=False),
            batch_size=d.eval_batch_size or d.batch_size,
            sampler=ShardSampler(len(cast(Sized, dataset)), dist.rank, dist.world_size),
            collate_fn=collate_readable,
            **loader_options(d.num_workers, d.prefetch_factor, device, persistent=False),
        )
        model.eval()
        totals = torch.zeros(2, dtype=torch.float64, device=device)  # loss sum, sample count
        counts = torch.zeros(self.spec.num_classes, dtype=torch.long, device=device)
        # progress: a bar on a terminal, else a line every 30 s (rnnvision_kit.progress)
        iterable = track(loader, len(loader), split, "batch") if progress else loader
        readable: ReadableBatch
        for readable in iterable:
            ledger.record(split, readable.failures)
            if readable.batch is None:  # nothing readable in this batch
                continue
            batch = move_to(readable.batch, device)
            with runtime.precision.autocast():
                output = task.step(self.step_context, model, batch)
            count = output.targets.shape[0]
            totals[0] += output.loss.detach().double() * count
            totals[1] += count
            task.update_metrics(own, output)
            if self.counts_targets:
                counts += target_counts(output.targets, self.spec)
            if extra:
                with added_metrics(config):
                    extra.update(output.preds, output.targets)
        all_reduce_sum(totals)
        if self.counts_targets:
            all_reduce_sum(counts)
        with task.blame("metrics (compute)"):
            computed = own.compute()
        if extra:
            with added_metrics(config):
                computed.update(extra.compute())
        scalars, others = split_metrics(computed, split)
        others = labelled(
            others,
            self.spec.class_names,
            [
                *own.items(keep_base=True, copy_state=False),
                *extra.items(keep_base=True, copy_state=False),
            ],
            split,
        )
        measured = getattr(self.task.task, "measured_baseline", None)
        taken = measured.take(scalars, split) if measured is not None else None
        if taken is not None:  # the task's own baseline, measured on the same data
            others[f"{split}/baseline"] = taken.to_dict()
        elif self.counts_targets:
            found = baseline(
                self.spec.kind,
                counts.tolist(),
                self.spec.class_names,
                reference=self.reference_counts,
                split=split,
            )
            if found is not None:
                others[f"{split}/baseline"] = found.to_dict()
        scalars[f"{split}/loss"] = float(totals[0] / totals[1].clamp(min=1))
        scalars[f"{split}/samples"] = int(totals[1])  # each sample counted once, all ranks
        ledger.merge_ranks(split)
        scalars[f"{split}/unreadable"] = ledger.count(split)  # files left out of these metrics
        return scalars, others


def target_counts(targets: torch.Tensor, spec: DataSpec) -> torch.Tensor:
    """Targets per class of one batch (class ids; ``ignore_index`` and ids out of range left
    out): items for classification, pixels for segmentation."""
    k = spec.num_classes
    values = targets.flatten().long()
    valid = (values >= 0) & (values < k)
    ignore = getattr(spec, "ignore_index", None)
    if ignore is not None:
        valid &= values != ignore
    return torch.bincount(values[valid], minlength=k)


def labelled(
    others: dict[str, Any],
    class_names: Sequence[str],
    metrics: Sequence[tuple[str, Any]],
    split: str,
) -> dict[str, Any]:
    """``others`` with figures named by class: a metric with a ``labelled(value, class_names)``
    method gives its own form (video-action's ``predictions``: records with class names); a
    ``per_class*`` list of one value per class becomes ``{class name: value}`` (NaN: null)."""
    own = {f"{split}/{name}": metric for name, metric in metrics}
    named: dict[str, Any] = {}
    for key, value in others.items():
        metric = own.get(key)
        if metric is not None and callable(getattr(metric, "labelled", None)):
            named[key] = metric.labelled(value, class_names)
        elif (
            key.rsplit("/", 1)[-1].startswith("per_class")
            and isinstance(value, list)
            and len(value) == len(class_names)
            and all(isinstance(v, int | float) for v in value)
        ):
            named[key] = {n: None if v != v else v for n, v in zip(class_names, value, strict=True)}
        else:
            named[key] = value
    return named
