"""The training loop: epochs of optimizer steps, validation, checkpoints, early stopping, Ctrl-C.

The :class:`Trainer` receives everything it uses, as keyword arguments: the task, the config,
the model, the data, the :class:`~rnnvision_kit.runner.device.Runtime` (device, processes,
precision), the :class:`~rnnvision_kit.runner.evaluate.Evaluator` it validates with and the
:class:`~rnnvision_kit.runner.rundir.RunDir` it writes checkpoints to.
"""

from __future__ import annotations

import contextlib
import math
import signal
import sys
import threading
import time
from collections.abc import Callable, Iterator, Sized
from dataclasses import dataclass, field
from typing import Any, cast

import torch
from torch import nn
from torch.utils.data import DataLoader, DistributedSampler

from rnnvision_kit.config import RunConfig
from rnnvision_kit.data.readable import SkipUnreadable, collate_readable
from rnnvision_kit.errors import (
    CheckpointError,
    RnnkitError,
    RunInterrupted,
    one_line,
    reason,
    warn,
)
from rnnvision_kit.progress import track
from rnnvision_kit.runner.checkpoint import capture_rng, restore_rng, save_checkpoint
from rnnvision_kit.runner.device import (
    Runtime,
    compiled,
    loader_options,
    move_to,
    prepare_model,
    stop_announced,
)
from rnnvision_kit.runner.distributed import SkipSampler, all_reduce_max, all_reduce_sum
from rnnvision_kit.runner.evaluate import Evaluator
from rnnvision_kit.runner.optim import build_optimizer, build_scheduler
from rnnvision_kit.runner.pipeline import TaskHandle, load_weights
from rnnvision_kit.runner.rundir import Checkpoint, RunDir, position
from rnnvision_kit.runner.unreadable import UnreadableLedger
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
    grad_norms: list[Any] = field(default_factory=list)  # this epoch's, before clipping
    nonfinite: int = 0  # optimizer steps of the unfinished epoch skipped (train.on_nan=skip)
    nonfinite_batches: int = 0  # the batches of those steps (left out of train/loss)
    train_seconds: float = 0.0  # training time of the run so far, all resumes together


# Signals that stop a run at the next optimizer step with a checkpoint, as Ctrl-C does: SLURM,
# `docker stop` and Kubernetes send SIGTERM and kill a few (or 30) seconds later; torchrun
# forwards it to every worker (and kills them after its --shutdown_timeout, 30 s).
STOP_SIGNALS = {signal.SIGINT: "Ctrl-C", signal.SIGTERM: "SIGTERM"}


class _StopFlag:
    """The first SIGINT or SIGTERM asks the loop to stop at the next optimizer step boundary
    and save; a second one aborts (KeyboardInterrupt)."""

    def __init__(self) -> None:
        self.signal = 0  # the signal number received, 0 for none

    @property
    def requested(self) -> bool:
        return self.signal != 0

    @contextlib.contextmanager
    def installed(self, announce: bool = True) -> Iterator[None]:
        if threading.current_thread() is not threading.main_thread():
            yield
            return
        previous = {sig: signal.getsignal(sig) for sig in STOP_SIGNALS}
        announced = stop_announced()
        announced[0] = 0

        def handler(signum: int, frame: Any) -> None:
            if self.requested:
                raise KeyboardInterrupt
            self.signal = signum
            announced[0] = 1  # DataLoader workers that got it too leave the stop to us
            if announce:
                name = STOP_SIGNALS[signal.Signals(signum)]
                print(
                    f"\nrnnkit: {name}: saving and stopping after this step ({name} again to "
                    "abort)",
                    file=sys.stderr,
                    flush=True,
                )

        for sig in STOP_SIGNALS:
            signal.signal(sig, handler)
        try:
            yield
        finally:
            for sig, old in previous.items():
                signal.signal(sig, old)


def interrupted(signum: int, message: str = "") -> RunInterrupted:
    """RunInterrupted whose exit code is the shell's for the signal: 130 (SIGINT), 143 (SIGTERM)."""
    error = RunInterrupted(message)
    error.exit_code = 128 + (signum or signal.SIGINT)
    return error


class NonFiniteLoss(RnnkitError):
    """Training met a non-finite loss (``train.on_nan=stop``, or every step of an epoch with
    ``skip``); the message names where, the advice, and the checkpoint that is kept."""


class _LossCheck:
    """Whether an optimizer step's loss is finite, read before that step updates the weights.
    On the CPU reading it costs nothing. On CUDA with ``train.on_nan=stop`` (``deferred``) the
    value goes to pinned host memory without waiting and is read one step later, or before any
    checkpoint is written: no step waits for the GPU, the run stops one step late and saves
    nothing. ``skip`` must know before the optimizer step: one device sync per optimizer step."""

    def __init__(self, device: torch.device, deferred: bool) -> None:
        self.deferred = deferred
        self.cuda = device.type == "cuda"
        self.pending: tuple[torch.Tensor, Any, str] | None = None

    def bad(self, loss: torch.Tensor, where: str) -> tuple[float, str] | None:
        """(loss, where) of the first non-finite loss known now, this step's or, deferred, the
        previous step's; None when all known ones are finite."""
        if not self.deferred:
            value = float(loss)
            return None if math.isfinite(value) else (value, where)
        found = self.flush()
        host = torch.empty((), dtype=loss.dtype, pin_memory=self.cuda)
        host.copy_(loss, non_blocking=self.cuda)
        event = torch.cuda.Event() if self.cuda else None
        if event is not None:
            event.record()
        self.pending = (host, event, where)
        return found

    def flush(self) -> tuple[float, str] | None:
        """Read the deferred value, if any (before a checkpoint is written)."""
        if self.pending is None:
            return None
        host, event, where = self.pending
        self.pending = None
        if event is not None:
            event.synchronize()
        value = float(host)
        return None if math.isfinite(value) else (value, where)


class Trainer:
    """Fits a task's model with the shared machinery; the task only supplies ``step``."""

    def __init__(
        self,
        *,
        task: TaskHandle,
        config: RunConfig,
        model: nn.Module,
        data: DataBundle,
        runtime: Runtime,
        evaluator: Evaluator,
        run_dir: RunDir | None = None,
        quiet: bool = False,
        on_epoch_end: Callable[[dict[str, Any]], None] | None = None,
    ) -> None:
        """``run_dir`` None writes no checkpoint (ranks other than 0, the conformance check);
        ``on_epoch_end`` receives each epoch's row after its checkpoint is written."""
        self.task, self.config, self.data = task, config, data
        self.runtime, self.evaluator = runtime, evaluator
        self.device, self.dist, self.precision = runtime.device, runtime.dist, runtime.precision
        self.run_dir, self.quiet, self.on_epoch_end = run_dir, quiet, on_epoch_end
        self.cfg = config.train
        if self.device.type == "cuda":
            torch.backends.cudnn.benchmark = self.cfg.cudnn_benchmark
        self.model = prepare_model(model, self.cfg, self.device, self.dist)
        self.train_model: nn.Module = self.model
        if self.dist.enabled:
            ids = [self.device.index] if self.device.type == "cuda" else None
            self.train_model = nn.parallel.DistributedDataParallel(self.model, device_ids=ids)
        self.compiled = False
        if self.cfg.compile:
            self.train_model, self.compiled = compiled(self.train_model)
        self.batches_per_epoch = self._batches_per_epoch()
        self.accumulate = min(self.cfg.accumulate, self.batches_per_epoch)
        self.steps_per_epoch = math.ceil(self.batches_per_epoch / self.accumulate)
        self.optimizer = build_optimizer(self.model, self.cfg)  # honours model.param_groups()
        self.scheduler = build_scheduler(self.optimizer, self.cfg, self.steps_per_epoch)
        self._persistent_loader: DataLoader | None = None
        self.state = LoopState()
        self.unreadable = UnreadableLedger()
        self.stop = _StopFlag()
        deferred = self.device.type == "cuda" and self.cfg.on_nan == "stop"
        self.loss_check = _LossCheck(self.device, deferred)
        self.last_saved: str | None = None  # where last.pt stands, for the non-finite message
        self._clock: float | None = None  # perf_counter when this process started training
        self._seconds_before = 0.0  # train_seconds of the run before this process
        self.step_context = StepContext(config, data.spec, training=True)
        # training progress (rnnvision_kit.progress): off a terminal, a line every 30 s
        self.reports_progress = not quiet and self.dist.is_main

    # ------------------------------------------------------------------ set-up
    def _batches_per_epoch(self) -> int:
        per_rank = math.ceil(len(cast(Sized, self.data.train)) / self.dist.world_size)
        batches = math.ceil(per_rank / self.config.data.batch_size)
        if self.cfg.max_steps_per_epoch:  # optimizer steps: accumulate batches each
            batches = min(batches, self.cfg.max_steps_per_epoch * self.cfg.accumulate)
        return max(1, batches)

    def _train_loader(self, epoch: int, skip: int) -> DataLoader:
        """The training loader, made once (workers persist across epochs when there are any);
        each epoch reshuffles it: the order depends only on (seed, epoch), as does a resumed run,
        which skips the samples its epoch already used."""
        if self._persistent_loader is None:
            # DistributedSampler also serves one process: its order depends only on (seed, epoch)
            base: DistributedSampler = DistributedSampler(
                self.data.train,
                num_replicas=self.dist.world_size,
                rank=self.dist.rank,
                shuffle=True,
                seed=self.config.seed,
            )
            d = self.config.data
            self._persistent_loader = DataLoader(
                self.unreadable.guard("train", self.data.train, replace=True),
                batch_size=d.batch_size,
                sampler=SkipSampler(base),
                collate_fn=collate_readable,
                **loader_options(d.num_workers, d.prefetch_factor, self.device, persistent=True),
                # Worker seeds come from this generator, not the global RNG: resume stays exact.
                generator=torch.Generator().manual_seed(self.config.seed * 100_003),
            )
        sampler = self._persistent_loader.sampler
        assert isinstance(sampler, SkipSampler) and isinstance(sampler.base, DistributedSampler)
        sampler.base.set_epoch(epoch)
        sampler.skip = skip
        return self._persistent_loader

    def _progress(self, iterable: Any, total: int, description: str) -> Any:
        """The epoch's batches, counted on rank 0 (unless quiet): a bar on a terminal, else a
        line every 30 s (so a first epoch that decodes into the frame cache is never silent)."""
        if not self.reports_progress:
            return iterable
        return track(iterable, total, description, "batch")

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
            "grad_norms": [float(n) for n in s.grad_norms],
            "nonfinite": [s.nonfinite, s.nonfinite_batches],
            "train_seconds": self.train_seconds(),
            "unreadable": self.unreadable.state(),
            "rng": capture_rng(),
        }

    def load_state_dict(self, checkpoint: dict[str, Any], source: str = "checkpoint") -> None:
        """Continue from a checkpoint of this run; one line naming ``source`` and the first
        mismatch when it belongs to another model or optimizer."""
        load_weights(self.model, checkpoint["model"], source)
        try:
            self.optimizer.load_state_dict(checkpoint["optimizer"])
            self.scheduler.load_state_dict(checkpoint["scheduler"])
        except (ValueError, KeyError, RuntimeError) as error:
            raise CheckpointError(
                f"{source}: optimizer state does not fit this run ({reason(error)}); "
                "train.optimizer or the model changed?"
            ) from None
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
            grad_norms=list(checkpoint.get("grad_norms", [])),
            nonfinite=checkpoint.get("nonfinite", [0, 0])[0],
            nonfinite_batches=checkpoint.get("nonfinite", [0, 0])[1],
            train_seconds=float(checkpoint.get("train_seconds", 0.0)),
        )
        self._seconds_before = self.state.train_seconds
        self.last_saved = position(self.state.epoch, self.state.batch_in_epoch)
        self.unreadable = UnreadableLedger(checkpoint.get("unreadable", ()))
        restore_rng(checkpoint["rng"])

    def save(self, which: Checkpoint, extra: dict[str, Any]) -> None:
        """Write checkpoint ``which`` (rank 0), never after a non-finite loss (train.on_nan=stop)."""
        if self.loss_check.deferred:
            self._raise_if_nonfinite(self._agree(self.loss_check.flush(), "a step"))
        if self.run_dir is not None and self.dist.is_main:
            save_checkpoint({**self.state_dict(), **extra}, self.run_dir.checkpoint(which))
            if which == "last":
                self.last_saved = position(self.state.epoch, self.state.batch_in_epoch)

    def train_seconds(self) -> float:
        """Seconds spent training this run, across resumes."""
        since = 0.0 if self._clock is None else time.perf_counter() - self._clock
        return round(self._seconds_before + since, 3)

    # -------------------------------------------------------------------- fit
    def fit(self, checkpoint_extra: dict[str, Any]) -> LoopState:
        """Train until ``train.epochs``, early stopping or Ctrl-C (checkpoint, then RunInterrupted)."""
        s = self.state
        self._clock = time.perf_counter()
        with self.stop.installed(announce=self.dist.is_main):
            while s.epoch < self.cfg.epochs and not s.stopped_early:
                started = time.perf_counter()
                train_loss = self._train_epoch(checkpoint_extra)
                nonfinite = self._nonfinite_summary()
                validate = self._validates(s.epoch)
                scalars = self._validate() if validate else {}
                row = {"epoch": s.epoch, "step": s.step, "train/loss": train_loss}
                row |= gradient_summary(s.grad_norms, self.cfg.grad_clip) | nonfinite | scalars
                row["lr"] = self.optimizer.param_groups[0]["lr"]
                row["seconds"] = round(time.perf_counter() - started, 3)
                improved = validate and self._track(scalars[self.cfg.monitor])
                s.history.append(row)
                s.epoch += 1
                s.batch_in_epoch, s.loss_sum, s.grad_norms = 0, 0.0, []
                s.nonfinite = s.nonfinite_batches = 0
                self.save("last", checkpoint_extra)
                if improved:
                    self.save("best", checkpoint_extra)
                if self.on_epoch_end is not None:
                    self.on_epoch_end(row)
                signum = int(all_reduce_max(torch.tensor([self.stop.signal]))[0])
                if signum:
                    raise interrupted(signum)
        s.train_seconds = self.train_seconds()
        return s

    def _train_epoch(self, checkpoint_extra: dict[str, Any]) -> float:
        s = self.state
        loader = self._train_loader(s.epoch, skip=s.batch_in_epoch * self.config.data.batch_size)
        # data sets with per-epoch random choices (e.g. video clips): here and in the workers
        assert isinstance(loader.dataset, SkipUnreadable)
        loader.dataset.set_epoch(s.epoch)
        self.train_model.train()
        remaining = self.batches_per_epoch - s.batch_in_epoch
        loss_sum = torch.zeros((), device=self.device)  # of the finite optimizer steps
        step_loss = torch.zeros((), device=self.device)  # of this optimizer step's batches
        step_batches = 0
        description = f"epoch {s.epoch + 1}/{self.cfg.epochs}"
        for index, readable in enumerate(self._progress(loader, remaining, description)):
            if index >= remaining:
                break
            self.unreadable.record("train", readable.failures)
            s.batch_in_epoch += 1
            boundary = (
                s.batch_in_epoch % self.accumulate == 0
                or s.batch_in_epoch == self.batches_per_epoch
            )
            step_loss += self._backward(move_to(readable.batch, self.device), boundary)
            step_batches += 1
            if not boundary:  # checkpoints and stops wait for the optimizer step
                continue
            if self._step_or_skip(step_loss, step_batches):
                loss_sum += step_loss
            step_loss.zero_()
            step_batches = 0
            s.step += 1
            every = self.cfg.checkpoint_every
            # (the epoch's last step is saved at the epoch's end, with its val metrics)
            if every and s.step % every == 0 and s.batch_in_epoch < self.batches_per_epoch:
                s.loss_sum += float(loss_sum)  # the state a resumed run continues from
                loss_sum.zero_()
                self.save("last", checkpoint_extra)
            if self.stop.requested:  # (under DDP, _step_or_skip made every rank agree)
                s.loss_sum += float(loss_sum)
                self.save("last", checkpoint_extra)
                raise interrupted(self.stop.signal)
        s.loss_sum += float(loss_sum)
        self.unreadable.merge_ranks("train")
        batches = s.batch_in_epoch - s.nonfinite_batches
        total = all_reduce_sum(torch.tensor([s.loss_sum, batches], dtype=torch.float64))
        return float(total[0] / max(1.0, float(total[1])))

    def _backward(self, batch: Any, boundary: bool) -> torch.Tensor:
        """Forward and backward one batch (gradients synchronised across DDP processes only on
        an accumulation ``boundary``); returns the detached loss."""
        syncing = self.dist.enabled and not boundary
        with self.train_model.no_sync() if syncing else contextlib.nullcontext():  # type: ignore[operator]
            loss = self._forward(batch)
            self.precision.scaler.scale(loss / self.accumulate).backward()
        return loss.detach()

    def _step_or_skip(self, step_loss: torch.Tensor, batches: int) -> bool:
        """At an optimizer step boundary: check the loss and agree, across DDP processes, on a
        stop signal and a non-finite loss (one all-reduce of two numbers, next to the gradients'
        own); then step the optimizer, or skip the step (train.on_nan=skip). True if it stepped.
        A non-finite loss with train.on_nan=stop raises NonFiniteLoss before the weights change
        (deferred on CUDA: one step later, see _LossCheck)."""
        s = self.state
        in_epoch = math.ceil(s.batch_in_epoch / self.accumulate)
        where = f"epoch {s.epoch + 1}, step {in_epoch} of {self.steps_per_epoch}"
        bad = self._agree(self.loss_check.bad(step_loss, where), where)
        if bad is not None and self.cfg.on_nan == "stop":
            self._raise_if_nonfinite(bad)
        if bad is None:
            self._optimizer_step()
            return True
        self.optimizer.zero_grad(set_to_none=True)  # no update from this step's gradients
        self.scheduler.step()  # the schedule keeps counting steps, as for an overflowed one
        s.nonfinite += 1
        s.nonfinite_batches += batches
        return False

    def _agree(self, bad: tuple[float, str] | None, where: str) -> tuple[float, str] | None:
        """Under DDP, every process learns whether any received a stop signal or met a
        non-finite loss (one all-reduce of two numbers), so that all stop or skip together."""
        if not self.dist.enabled:
            return bad
        agreed = all_reduce_max(torch.tensor([self.stop.signal, 0 if bad is None else 1]))
        self.stop.signal = int(agreed[0])
        if bad is None and agreed[1]:
            return (math.nan, f"{where} (on another process)")
        return bad

    def _raise_if_nonfinite(self, bad: tuple[float, str] | None) -> None:
        if bad is None:
            return
        value, where = bad
        raise NonFiniteLoss(f"non-finite loss ({value}) at {where}; {self._divergence_advice()}")

    def _divergence_advice(self) -> str:
        lr = self.optimizer.param_groups[0]["lr"]
        clip = self.cfg.grad_clip or "off"
        kept = (
            f"{self.run_dir.last} ({self.last_saved}) is kept"
            if self.run_dir is not None and self.last_saved is not None
            else "no checkpoint was written"
        )
        return (
            f"training diverged: lower train.lr (now {lr:g}) or set train.grad_clip (now {clip}), "
            f"or train.on_nan=skip to skip such steps; {kept}"
        )

    def _nonfinite_summary(self) -> dict[str, float]:
        """``train/nonfinite`` (steps skipped this epoch) and a warning line when there were
        any, with train.on_nan=skip; NonFiniteLoss when the epoch skipped every step."""
        s = self.state
        if self.cfg.on_nan != "skip":
            return {}
        steps = math.ceil(s.batch_in_epoch / self.accumulate)
        if s.nonfinite and s.nonfinite >= steps:
            raise NonFiniteLoss(
                f"every optimizer step of epoch {s.epoch + 1} ({steps}) had a non-finite loss "
                f"(train.on_nan=skip); {self._divergence_advice()}"
            )
        if s.nonfinite and self.dist.is_main:
            warn(
                f"epoch {s.epoch + 1}: {s.nonfinite} of {steps} optimizer steps had a non-finite "
                "loss and were skipped (train.on_nan=skip); lower train.lr or set train.grad_clip"
            )
        return {"train/nonfinite": float(s.nonfinite)}

    def _forward(self, batch: Any) -> torch.Tensor:
        try:
            with self.precision.autocast():
                return self.task.step(self.step_context, self.train_model, batch).loss
        except Exception as error:
            if not self.compiled:
                raise
            # torch.compile fails lazily, at the first call: fall back to the eager model
            cause = error.__cause__ or error  # the task handle wraps what the compiler raised
            warn(f"train.compile: torch.compile failed ({one_line(cause)}); training without it")
            self.train_model = getattr(self.train_model, "_orig_mod", self.train_model)
            self.compiled = False
            return self._forward(batch)

    def _optimizer_step(self) -> None:
        scaler = self.precision.scaler
        scaler.unscale_(self.optimizer)  # measure and clip the true gradients, not scaled ones
        limit = self.cfg.grad_clip or math.inf
        norm = nn.utils.clip_grad_norm_(self.model.parameters(), limit)
        self.state.grad_norms.append(norm.detach())  # read at the epoch's end: no sync here
        scaler.step(self.optimizer)  # skipped by the scaler when the gradients overflowed
        scaler.update()
        self.optimizer.zero_grad(set_to_none=True)
        self.scheduler.step()

    def _validates(self, epoch: int) -> bool:
        """Whether epoch ``epoch`` (0-based) ends with validation: every ``train.val_every``-th
        epoch and the last one."""
        return (epoch + 1) % self.cfg.val_every == 0 or epoch + 1 == self.cfg.epochs

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

    def _validate(self) -> dict[str, float]:
        """The epoch's validation scalars (the model itself, not its DDP or compiled wrapper)."""
        return self.evaluator.evaluate(
            self.model,
            self.data.val,
            "val",
            progress=self.reports_progress,
            unreadable=self.unreadable,
        )[0]


def gradient_summary(norms: list[Any], clip: float | None) -> dict[str, float]:
    """``train/grad_norm`` (mean over the epoch's optimizer steps, before clipping; steps whose
    gradients overflowed left out), ``train/grad_norm_max`` and ``train/clipped`` (the fraction of
    steps clipped: many mean the gradients explode, the classic RNN failure)."""
    values = [float(n) for n in norms]
    finite = [v for v in values if math.isfinite(v)]
    if not finite:
        return {}
    summary = {"train/grad_norm": sum(finite) / len(finite), "train/grad_norm_max": max(finite)}
    summary["train/clipped"] = sum(v > clip for v in finite) / len(finite) if clip else 0.0
    if len(finite) < len(values):
        summary["train/overflow_steps"] = float(len(values) - len(finite))
    return summary
