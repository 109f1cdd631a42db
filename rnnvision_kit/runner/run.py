"""Runs: build a task's config, data and model, then fit, evaluate or predict; own the run folder.

A run folder ``runs/<task>/<timestamp>/`` holds ``config.yaml``, ``metrics.jsonl``, ``last.pt``,
``best.pt``, ``summary.json`` and plots. Only rank 0 writes files.
"""

from __future__ import annotations

import contextlib
import datetime as _dt
import inspect
import platform
import random
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from rnnvision_kit.config import RunConfig, apply_mapping, load_yaml, save_yaml, validate
from rnnvision_kit.errors import CheckpointError, RnnkitError, RunInterrupted, TaskError
from rnnvision_kit.plugins import PluginHost
from rnnvision_kit.runner.checkpoint import load_checkpoint
from rnnvision_kit.runner.device import Precision, select_device
from rnnvision_kit.runner.distributed import DistInfo, init_distributed, shutdown_distributed
from rnnvision_kit.runner.loop import Trainer, evaluate_model
from rnnvision_kit.runner.plots import plot_curves
from rnnvision_kit.runner.records import MetricsLog, to_jsonable, write_json
from rnnvision_kit.task import DataBundle, DataSpec, Task


@dataclass
class Run:
    """What runner-event hooks receive: the config, the run folder and the task."""

    config: RunConfig
    dir: Path | None
    task: Task
    dist: DistInfo


def seed_everything(seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)


def versions() -> dict[str, str]:
    import rnnvision_kit

    return {
        "rnnvision_kit": rnnvision_kit.__version__,
        "torch": str(torch.__version__),
        "python": platform.python_version(),
    }


def config_from_dict(task: Task, values: dict[str, Any]) -> RunConfig:
    """A task's defaults with a saved or user mapping applied on top."""
    config = task.default_config()
    apply_mapping(config, {k: v for k, v in values.items() if k != "task"})
    return config


def new_run_dir(config: RunConfig, task_name: str) -> Path:
    stamp = _dt.datetime.now().strftime("%Y-%m-%dT%H-%M-%S")
    base = Path(config.out_dir).expanduser() / task_name / stamp
    run_dir, n = base, 1
    while run_dir.exists():
        n += 1
        run_dir = base.with_name(f"{stamp}-{n}")
    run_dir.mkdir(parents=True)
    return run_dir


def count_parameters(model: torch.nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())


@contextlib.contextmanager
def blame(host: PluginHost, task: Task, stage: str) -> Iterator[None]:
    """Turn a plain exception raised by task code into a one-line error naming task and plugin
    (``--debug`` still shows the original traceback as the cause)."""
    try:
        yield
    except (RnnkitError, KeyboardInterrupt):
        raise
    except Exception as error:
        name = task.registry_name or task.name
        plugin = host.registries.tasks.get(name).plugin if name in host.registries.tasks else "?"
        detail = str(error).strip().splitlines()[0] if str(error).strip() else ""
        raise TaskError(
            f"task {name!r} (plugin {plugin!r}) failed in {stage}: {type(error).__name__}: {detail}"
        ) from error


def _build(
    host: PluginHost, task: Task, config: RunConfig, dist_info: DistInfo = DistInfo()
) -> tuple[DataBundle, torch.nn.Module]:
    validate(config)
    if config.train.threads:
        torch.set_num_threads(config.train.threads)
    seed_everything(config.seed)
    # Rank 0 builds first so that generated data sets are written into the cache only once.
    if dist_info.enabled and not dist_info.is_main:
        torch.distributed.barrier()
    with blame(host, task, "build_data"):
        data = task.build_data(config, host.registries)
    if dist_info.enabled and dist_info.is_main:
        torch.distributed.barrier()
    with blame(host, task, "build_model"):
        model = task.build_model(config, data.spec, host.registries)
    return data, model


def train(
    host: PluginHost,
    config: RunConfig,
    *,
    resume_dir: Path | None = None,
    quiet: bool = False,
    echo: Any = print,
) -> dict[str, Any]:
    """Fit, keep the best checkpoint, evaluate it on the test split and write the summary."""
    task = host.task(config.task)
    checkpoint = None
    if resume_dir is not None:
        checkpoint = load_checkpoint(resume_dir / "last.pt")  # before anything is written
    dist_info = init_distributed(config.train.device)
    try:
        return _train(host, task, config, dist_info, resume_dir, checkpoint, quiet, echo)
    finally:
        shutdown_distributed()


def _train(
    host: PluginHost,
    task: Task,
    config: RunConfig,
    dist_info: DistInfo,
    resume_dir: Path | None,
    checkpoint: dict[str, Any] | None,
    quiet: bool,
    echo: Any,
) -> dict[str, Any]:
    device = select_device(config.train.device, dist_info.local_rank)
    data, model = _build(host, task, config, dist_info)
    run_dir = resume_dir
    if run_dir is None and dist_info.is_main:
        run_dir = new_run_dir(config, task.registry_name or config.task)
        save_yaml(config, run_dir / "config.yaml")
    if not dist_info.is_main:
        run_dir = None
    run = Run(config, run_dir, task, dist_info)
    log = (
        MetricsLog(run_dir / "metrics.jsonl", checkpoint["epoch"] if checkpoint else None)
        if run_dir
        else None
    )

    def on_epoch_end(row: dict[str, Any]) -> None:
        if not dist_info.is_main:
            return
        log.append(row)
        if not quiet:
            shown = {k: v for k, v in row.items() if k.startswith(("train/loss", "val/"))}
            echo(
                f"epoch {row['epoch'] + 1}/{config.train.epochs}  "
                + "  ".join(f"{k}={v:.4f}" for k, v in shown.items() if k != "val/samples")
            )
        host.notify("rnnkit_on_epoch_end", run=run, epoch=row["epoch"], metrics=row)

    trainer = Trainer(
        task,
        config,
        model,
        data,
        device,
        dist_info,
        run_dir,
        quiet=quiet,
        on_epoch_end=on_epoch_end,
    )
    if checkpoint is not None:
        trainer.load_state_dict(checkpoint)
    extra = {"config": config.to_dict(), "spec": _spec_dict(data.spec), "versions": versions()}
    if dist_info.is_main:
        if not quiet:
            echo(
                f"task {config.task}: {len(data.train)} train / {len(data.val)} val / "
                f"{len(data.test)} test samples, {len(data.spec.class_names)} classes, "
                f"{count_parameters(model):,} parameters, device {device}, "
                f"precision {config.train.precision}, {dist_info.world_size} process(es)"
            )
            if data.skipped:
                echo(f"skipped {len(data.skipped)} unreadable file(s); see summary.json")
        host.notify("rnnkit_on_run_start", run=run)
    started = time.perf_counter()
    try:
        with blame(host, task, "training"):
            state = trainer.fit(extra)
    except BaseException as error:
        if dist_info.is_main:
            host.notify("rnnkit_on_exception", run=run, error=error)
        if isinstance(error, RunInterrupted) and run_dir is not None:
            raise RunInterrupted(
                f"interrupted; resume with: rnnkit run --resume {run_dir}"
            ) from None
        raise
    finally:
        if log is not None:
            log.close()
    seconds = time.perf_counter() - started

    best_path = (resume_dir or run_dir or Path()) / "best.pt"
    if dist_info.enabled:
        torch.distributed.barrier()
        best_path = _best_path_from_rank0(best_path)
    if best_path.is_file():
        model.load_state_dict(load_checkpoint(best_path)["model"])
    precision = Precision(config.train.precision, device)
    test_scalars, test_other = evaluate_model(
        task, config, model, data.test, data.spec, device, dist_info, precision, "test"
    )
    summary = {
        "task": config.task,
        "run_dir": str(run_dir) if run_dir else None,
        "epochs": state.epoch,
        "best_epoch": state.best_epoch + 1,
        "monitor": config.train.monitor,
        "best": state.best,
        "stopped_early": state.stopped_early,
        "test": test_scalars,
        "test_details": test_other,
        "last_val": {
            k: v
            for k, v in (state.history[-1] if state.history else {}).items()
            if k.startswith("val/")
        },
        "skipped_files": len(data.skipped),
        "skipped": [{"file": f, "reason": r} for f, r in data.skipped],
        "parameters": count_parameters(model),
        "device": str(device),
        "precision": config.train.precision,
        "world_size": dist_info.world_size,
        "train_seconds": round(seconds, 2),
        "versions": versions(),
    }
    if run_dir is not None:
        write_json(run_dir / "summary.json", summary)
        plot_curves(state.history, run_dir / "curves.png")
        with blame(host, task, "report"):
            call_report(
                task,
                run_dir,
                "test",
                {**test_scalars, **test_other},
                data.spec,
                model=model,
                config=config,
            )
        host.notify("rnnkit_on_run_end", run=run, summary=to_jsonable(summary))
    return summary


def call_report(
    task: Task, run_dir: Path, split: str, results: dict[str, Any], spec: DataSpec, **optional: Any
) -> None:
    """Call ``task.report``, passing only the optional keywords (model, config) it accepts."""
    parameters = inspect.signature(task.report).parameters
    takes_all = any(p.kind is p.VAR_KEYWORD for p in parameters.values())
    task.report(
        run_dir,
        split,
        results,
        spec,
        **{k: v for k, v in optional.items() if takes_all or k in parameters},
    )


def _best_path_from_rank0(path: Path) -> Path:
    """Under DDP every rank reads rank 0's best.pt (same machine or shared file system)."""
    paths = [str(path)]
    torch.distributed.broadcast_object_list(paths, src=0)
    return Path(paths[0])


def _spec_dict(spec: DataSpec) -> dict[str, Any]:
    return {"class_names": list(spec.class_names), "info": to_jsonable(spec.info)}


def load_run(
    host: PluginHost, run_dir: Path, checkpoint_name: str = "best.pt"
) -> tuple[Task, RunConfig, DataSpec, dict[str, Any]]:
    """Task, config, data spec and checkpoint of a finished (or interrupted) run folder."""
    run_dir = Path(run_dir).expanduser()
    if not (run_dir / "config.yaml").is_file():
        raise RnnkitError(f"{run_dir}: not a run folder (no config.yaml)")
    path = run_dir / checkpoint_name
    if not path.is_file() and checkpoint_name == "best.pt":
        path = run_dir / "last.pt"
    checkpoint = load_checkpoint(path)
    saved = load_yaml(run_dir / "config.yaml")
    task_name = saved.get("task")
    if not isinstance(task_name, str):
        raise CheckpointError(f"{run_dir / 'config.yaml'}: no task recorded")
    task = host.task(task_name)
    config = config_from_dict(task, saved)
    spec_values = checkpoint["spec"]
    spec = DataSpec(list(spec_values["class_names"]), dict(spec_values["info"]))
    return task, config, spec, checkpoint


def evaluate_run(
    host: PluginHost,
    run_dir: Path,
    *,
    overrides: dict[str, Any] | None = None,
    split: str = "test",
    checkpoint_name: str = "best.pt",
) -> dict[str, Any]:
    """Re-evaluate a run's checkpoint on a split of its data (or of other data)."""
    task, config, _, checkpoint = load_run(host, run_dir, checkpoint_name)
    if overrides:
        apply_mapping(config, overrides)
    device = select_device(config.train.device)
    data, model = _build(host, task, config)
    try:
        model.load_state_dict(checkpoint["model"])
    except RuntimeError:
        raise CheckpointError(
            f"{run_dir}: checkpoint weights do not fit the model built from this data "
            "(different number of classes or input size?)"
        ) from None
    dataset = {"train": data.train, "val": data.val, "test": data.test}[split]
    scalars, others = evaluate_model(
        task,
        config,
        model.to(device),
        dataset,
        data.spec,
        device,
        DistInfo(),
        Precision(config.train.precision, device),
        split,
    )
    result = {
        "run_dir": str(run_dir),
        "split": split,
        "metrics": scalars,
        "details": others,
        "skipped_files": len(data.skipped),
    }
    write_json(Path(run_dir) / f"eval-{split}.json", result)
    return result


def predict_files(
    host: PluginHost,
    run_dir: Path,
    files: Sequence[str],
    *,
    top_k: int = 5,
    out_dir: Path | None = None,
) -> list[dict[str, Any]]:
    """Predictions of a run's best checkpoint for user files, through the task's ``predict``;
    files a task writes (plots) go to ``out_dir``, by default ``<run_dir>/predict``."""
    task, config, spec, checkpoint = load_run(host, run_dir)
    out_dir = out_dir if out_dir is not None else Path(run_dir) / "predict"
    device = select_device(config.train.device)
    seed_everything(config.seed)
    model = task.build_model(config, spec, host.registries)
    model.load_state_dict(checkpoint["model"])
    model.to(device).eval()
    with torch.inference_mode():
        return task.predict(model, files, config, spec, top_k=top_k, out_dir=out_dir)
