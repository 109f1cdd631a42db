"""Evaluation: a model's loss and metrics on a data set, each sample counted once across DDP
processes. An :class:`Evaluator` builds the task's metrics once; training validates with it
every epoch and the run tests with it at the end (``rnnkit eval`` makes its own)."""

from __future__ import annotations

import contextlib
from collections.abc import Sized
from typing import Any, cast

import torch
from torch import nn
from torch.utils.data import DataLoader, Dataset

from rnnvision_kit.config import RunConfig
from rnnvision_kit.data.readable import ReadableBatch, collate_readable
from rnnvision_kit.dataspec import DataSpec
from rnnvision_kit.errors import ConfigError, rethrown
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
    the check that ``train.monitor`` names one of them), and reset before each evaluation."""

    def __init__(
        self,
        *,
        task: TaskHandle,
        registries: Registries,
        config: RunConfig,
        spec: DataSpec,
        runtime: Runtime,
    ) -> None:
        self.task, self.config, self.spec, self.runtime = task, config, spec, runtime
        own, extra = build_metrics(task, registries, config, spec)
        self.own, self.extra = own.to(runtime.device), extra.to(runtime.device)
        self.step_context = StepContext(config, spec, training=False)
        names = self.metric_names("val")
        if config.train.monitor not in names:
            raise ConfigError(
                f"train.monitor: metric {config.train.monitor!r} does not exist "
                f"(available: {', '.join(names)})"
            )

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
        iterable = _bar(loader, len(loader), split) if progress else loader
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
            if extra:
                with added_metrics(config):
                    extra.update(output.preds, output.targets)
        all_reduce_sum(totals)
        with task.blame("metrics (compute)"):
            computed = own.compute()
        if extra:
            with added_metrics(config):
                computed.update(extra.compute())
        scalars, others = split_metrics(computed, split)
        scalars[f"{split}/loss"] = float(totals[0] / totals[1].clamp(min=1))
        scalars[f"{split}/samples"] = int(totals[1])  # each sample counted once, all ranks
        ledger.merge_ranks(split)
        scalars[f"{split}/unreadable"] = ledger.count(split)  # files left out of these metrics
        return scalars, others


def _bar(iterable: Any, total: int, description: str) -> Any:
    from tqdm import tqdm

    return tqdm(iterable, total=total, desc=description, leave=False, dynamic_ncols=True)
