"""The training and evaluation loops. Reads top to bottom: build, fit epochs, evaluate, save."""

from __future__ import annotations

import contextlib
import math
import signal
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from torch import nn
from torch.utils.data import DataLoader, Dataset, DistributedSampler

from rnnvision_kit.config import RunConfig
from rnnvision_kit.dataspec import DataSpec
from rnnvision_kit.errors import ConfigError, RunInterrupted, rethrown
from rnnvision_kit.registry import Registries
from rnnvision_kit.runner.checkpoint import capture_rng, restore_rng, save_checkpoint
from rnnvision_kit.runner.device import Precision, move_to
from rnnvision_kit.runner.distributed import DistInfo, ShardSampler, SkipSampler, all_reduce_sum
from rnnvision_kit.runner.optim import build_optimizer, build_scheduler
from rnnvision_kit.runner.pipeline import TaskHandle, build_metrics, metric_names
from rnnvision_kit.task import DataBundle, StepContext


@dataclass
class LoopState:
    """What a checkpoint must remember besides the weights to continue a run exactly."""

    epoch: int = 0  # completed epochs
    batch_in_epoch: int = 0  # optimizer steps done in the current, unfinished epoch
    step: int = 0  # optimizer steps in total
    loss_sum: float = 0.0  # train loss accumulated in the unfinished epoch
    best: float | None = None
    best_epoch: int = -1
    bad_epochs: int = 0  # epochs since the monitored metric last improved
    stopped_early: bool = False
    history: list[dict[str, Any]] = field(default_factory=list)


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


class _StopFlag:
    """First Ctrl-C asks the loop to stop at the next step boundary; a second one aborts."""

    def __init__(self) -> None:
        self.requested = False

    @contextlib.contextmanager
    def installed(self, enabled: bool) -> Iterator[None]:
        import threading

        if not enabled or threading.current_thread() is not threading.main_thread():
            yield
            return
        previous = signal.getsignal(signal.SIGINT)

        def handler(signum: int, frame: Any) -> None:
            if self.requested:
                raise KeyboardInterrupt
            self.requested = True
            print("\nrnnkit: stopping after this step (Ctrl-C again to abort)", file=sys.stderr)

        signal.signal(signal.SIGINT, handler)
        try:
            yield
        finally:
            signal.signal(signal.SIGINT, previous)


class Trainer:
    """Fits a task's model with the shared machinery; the task only supplies ``step``."""

    def __init__(
        self,
        task: TaskHandle,
        registries: Registries,
        config: RunConfig,
        model: nn.Module,
        data: DataBundle,
        device: torch.device,
        dist_info: DistInfo,
        run_dir: Path | None,
        *,
        quiet: bool = False,
        on_epoch_end: Any = None,
    ) -> None:
        self.task, self.config, self.data, self.device = task, config, data, device
        self.registries = registries
        self.dist, self.run_dir, self.quiet = dist_info, run_dir, quiet
        self.on_epoch_end = on_epoch_end
        self.cfg = config.train
        self.precision = Precision(self.cfg.precision, device)
        self.model = model.to(device)
        self.train_model: nn.Module = self.model
        if dist_info.enabled:
            ids = [device.index] if device.type == "cuda" else None
            self.train_model = nn.parallel.DistributedDataParallel(self.model, device_ids=ids)
        self.steps_per_epoch = self._steps_per_epoch()
        self.optimizer = build_optimizer(self.model, self.cfg)  # honours model.param_groups()
        self.scheduler = build_scheduler(self.optimizer, self.cfg, self.steps_per_epoch)
        self.state = LoopState()
        self.stop = _StopFlag()
        self.step_context = StepContext(config, data.spec, training=True)
        self.metric_names = self._metric_names()
        if self.cfg.monitor not in self.metric_names:
            raise ConfigError(
                f"train.monitor: metric {self.cfg.monitor!r} does not exist "
                f"(available: {', '.join(self.metric_names)})"
            )

    # ------------------------------------------------------------------ set-up
    def _metric_names(self) -> list[str]:
        own, extra = build_metrics(self.task, self.registries, self.config, self.data.spec)
        return metric_names(own, extra, "val")

    def _train_sampler(self, epoch: int, skip: int = 0) -> SkipSampler:
        # DistributedSampler also serves one process: its order depends only on (seed, epoch).
        base = DistributedSampler(
            self.data.train,
            num_replicas=self.dist.world_size,
            rank=self.dist.rank,
            shuffle=True,
            seed=self.config.seed,
        )
        base.set_epoch(epoch)
        return SkipSampler(base, skip)

    def _steps_per_epoch(self) -> int:
        per_rank = math.ceil(len(self.data.train) / self.dist.world_size)
        steps = math.ceil(per_rank / self.config.data.batch_size)
        if self.cfg.max_steps_per_epoch:
            steps = min(steps, self.cfg.max_steps_per_epoch)
        return max(1, steps)

    def _loader(
        self, dataset: Dataset, sampler: Any, batch_size: int, epoch: int = 0
    ) -> DataLoader:
        workers = self.config.data.num_workers
        return DataLoader(
            dataset,
            batch_size=batch_size,
            sampler=sampler,
            num_workers=workers,
            pin_memory=self.device.type == "cuda",
            persistent_workers=False,
            # Worker seeds come from this generator, not the global RNG: resume stays exact.
            generator=torch.Generator().manual_seed(self.config.seed * 100_003 + epoch),
        )

    def _progress(self, iterable: Any, total: int, description: str) -> Any:
        if self.quiet or not self.dist.is_main or not sys.stderr.isatty():
            return iterable
        from tqdm import tqdm

        return tqdm(iterable, total=total, desc=description, leave=False, dynamic_ncols=True)

    # ------------------------------------------------------------ checkpoints
    def state_dict(self) -> dict[str, Any]:
        s = self.state
        return {
            "model": self.model.state_dict(),
            "optimizer": self.optimizer.state_dict(),
            "scheduler": self.scheduler.state_dict(),
            "scaler": self.precision.scaler.state_dict(),
            "epoch": s.epoch,
            "batch_in_epoch": s.batch_in_epoch,
            "step": s.step,
            "loss_sum": s.loss_sum,
            "early_stopping": {
                "best": s.best,
                "best_epoch": s.best_epoch,
                "bad_epochs": s.bad_epochs,
                "stopped": s.stopped_early,
            },
            "history": s.history,
            "rng": capture_rng(),
        }

    def load_state_dict(self, checkpoint: dict[str, Any]) -> None:
        self.model.load_state_dict(checkpoint["model"])
        self.optimizer.load_state_dict(checkpoint["optimizer"])
        self.scheduler.load_state_dict(checkpoint["scheduler"])
        if checkpoint.get("scaler"):
            self.precision.scaler.load_state_dict(checkpoint["scaler"])
        stopping = checkpoint["early_stopping"]
        self.state = LoopState(
            epoch=checkpoint["epoch"],
            batch_in_epoch=checkpoint["batch_in_epoch"],
            step=checkpoint["step"],
            loss_sum=checkpoint["loss_sum"],
            best=stopping["best"],
            best_epoch=stopping["best_epoch"],
            bad_epochs=stopping["bad_epochs"],
            stopped_early=stopping["stopped"],
            history=list(checkpoint["history"]),
        )
        restore_rng(checkpoint["rng"])

    def save(self, name: str, extra: dict[str, Any]) -> None:
        if self.run_dir is not None and self.dist.is_main:
            save_checkpoint({**self.state_dict(), **extra}, self.run_dir / name)

    # -------------------------------------------------------------------- fit
    def fit(self, checkpoint_extra: dict[str, Any]) -> LoopState:
        """Train until ``train.epochs``, early stopping or Ctrl-C (checkpoint, then RunInterrupted)."""
        s = self.state
        with self.stop.installed(enabled=not self.dist.enabled):
            while s.epoch < self.cfg.epochs and not s.stopped_early:
                started = time.perf_counter()
                train_loss = self._train_epoch(checkpoint_extra)
                scalars, _ = self.evaluate(self.data.val, "val")
                row = {"epoch": s.epoch, "step": s.step, "train/loss": train_loss, **scalars}
                row["lr"] = self.optimizer.param_groups[0]["lr"]
                row["seconds"] = round(time.perf_counter() - started, 3)
                improved = self._track(scalars[self.cfg.monitor])
                s.history.append(row)
                s.epoch += 1
                s.batch_in_epoch, s.loss_sum = 0, 0.0
                self.save("last.pt", checkpoint_extra)
                if improved:
                    self.save("best.pt", checkpoint_extra)
                if self.on_epoch_end is not None:
                    self.on_epoch_end(row)
                if self._stop_requested_everywhere():
                    raise RunInterrupted
        return s

    def _train_epoch(self, checkpoint_extra: dict[str, Any]) -> float:
        s = self.state
        sampler = self._train_sampler(s.epoch, skip=s.batch_in_epoch * self.config.data.batch_size)
        set_epoch = getattr(self.data.train, "set_epoch", None)
        if callable(set_epoch):  # data sets with per-epoch random choices (e.g. video clips)
            set_epoch(s.epoch)
        loader = self._loader(self.data.train, sampler, self.config.data.batch_size, s.epoch)
        self.train_model.train()
        remaining = self.steps_per_epoch - s.batch_in_epoch
        loss_sum = torch.zeros((), device=self.device)
        description = f"epoch {s.epoch + 1}/{self.cfg.epochs}"
        for index, batch in enumerate(self._progress(loader, remaining, description)):
            if index >= remaining:
                break
            loss_sum += self._train_step(move_to(batch, self.device))
            s.batch_in_epoch += 1
            s.step += 1
            if self.stop.requested and not self.dist.enabled:
                s.loss_sum += float(loss_sum)
                self.save("last.pt", checkpoint_extra)
                raise RunInterrupted
        s.loss_sum += float(loss_sum)
        total = all_reduce_sum(torch.tensor([s.loss_sum, s.batch_in_epoch], dtype=torch.float64))
        return float(total[0] / max(1.0, float(total[1])))

    def _train_step(self, batch: Any) -> torch.Tensor:
        with self.precision.autocast():
            output = self.task.step(self.step_context, self.train_model, batch)
        loss = output.loss
        scaler = self.precision.scaler
        scaler.scale(loss).backward()
        if self.cfg.grad_clip:
            scaler.unscale_(self.optimizer)  # clip the true gradients, not the scaled ones
            nn.utils.clip_grad_norm_(self.model.parameters(), self.cfg.grad_clip)
        scaler.step(self.optimizer)
        scaler.update()
        self.optimizer.zero_grad(set_to_none=True)
        self.scheduler.step()
        return loss.detach()

    def _track(self, value: float) -> bool:
        s = self.state
        better = s.best is None or (value > s.best if self.cfg.mode == "max" else value < s.best)
        if better:
            s.best, s.best_epoch, s.bad_epochs = value, s.epoch, 0
        else:
            s.bad_epochs += 1
            if self.cfg.patience is not None and s.bad_epochs >= self.cfg.patience:
                s.stopped_early = True
        return better

    def _stop_requested_everywhere(self) -> bool:
        flag = torch.tensor([1.0 if self.stop.requested else 0.0])
        return bool(all_reduce_sum(flag).item() > 0)

    # --------------------------------------------------------------- evaluate
    @torch.inference_mode()
    def evaluate(self, dataset: Dataset, split: str) -> tuple[dict[str, float], dict[str, Any]]:
        """Loss and metrics on a data set; each sample counted once across DDP processes."""
        return evaluate_model(
            self.task,
            self.registries,
            self.config,
            self.model,
            dataset,
            self.data.spec,
            self.device,
            self.dist,
            self.precision,
            split,
            progress=self._progress,
        )


def added_metrics(config: RunConfig) -> contextlib.AbstractContextManager[None]:
    """Errors of the metrics ``eval.metrics`` adds become one line naming the setting."""
    names = ", ".join(config.eval.metrics)
    return rethrown(
        lambda problem: ConfigError(f"eval.metrics: a metric of [{names}] failed: {problem}")
    )


@torch.inference_mode()
def evaluate_model(
    task: TaskHandle,
    registries: Registries,
    config: RunConfig,
    model: nn.Module,
    dataset: Dataset,
    spec: DataSpec,
    device: torch.device,
    dist_info: DistInfo,
    precision: Precision,
    split: str,
    progress: Any = None,
) -> tuple[dict[str, float], dict[str, Any]]:
    """Evaluate ``model`` (not its DDP wrapper) on ``dataset``; returns (scalars, other metrics)."""
    own, extra = build_metrics(task, registries, config, spec)
    own, extra = own.to(device), extra.to(device)
    ctx = StepContext(config, spec, training=False)
    sampler = ShardSampler(len(dataset), dist_info.rank, dist_info.world_size)
    batch_size = config.data.eval_batch_size or config.data.batch_size
    loader = DataLoader(
        dataset,
        batch_size=batch_size,
        sampler=sampler,
        num_workers=config.data.num_workers,
        pin_memory=device.type == "cuda",
    )
    model.eval()
    totals = torch.zeros(2, dtype=torch.float64, device=device)  # loss sum, sample count
    iterable = progress(loader, len(loader), split) if progress else loader
    for batch in iterable:
        batch = move_to(batch, device)
        with precision.autocast():
            output = task.step(ctx, model, batch)
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
    return scalars, others
