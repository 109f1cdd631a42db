"""Runs: train, evaluate, predict and check data for any task; own the run folder.

A run folder ``runs/<task>/<timestamp>/`` holds ``config.yaml``, ``metrics.jsonl``, ``last.pt``,
``best.pt``, ``summary.json`` and plots. Only rank 0 writes files. Each function reads top to
bottom: open the task, configure, build (``runner.pipeline``), then fit / evaluate / predict.
"""

from __future__ import annotations

import dataclasses
import datetime as _dt
import platform
import signal
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import torch

from rnnvision_kit.atomicfile import unwritable, writable_folder
from rnnvision_kit.config import RunConfig, apply_mapping, save_yaml
from rnnvision_kit.errors import DataError, RunInterrupted
from rnnvision_kit.registry import Registries
from rnnvision_kit.runner.checkpoint import load_checkpoint
from rnnvision_kit.runner.device import Precision, select_device
from rnnvision_kit.runner.distributed import (
    DistInfo,
    init_distributed,
    launched_rank,
    shutdown_distributed,
)
from rnnvision_kit.runner.events import NO_EVENTS, Run, RunEvents
from rnnvision_kit.runner.loop import Trainer, evaluate_model
from rnnvision_kit.runner.pipeline import (
    Built,
    build,
    files_of,
    load_for_inference,
    load_run,
    load_weights,
    open_task,
    seed_everything,
)
from rnnvision_kit.runner.plots import plot_curves
from rnnvision_kit.runner.records import MetricsLog, to_jsonable, write_json
from rnnvision_kit.runner.splits import (
    check_class_names,
    check_resume,
    data_name,
    eval_data,
    record_splits,
    split_record,
)
from rnnvision_kit.runner.unreadable import UnreadableLedger
from rnnvision_kit.task import DataCheck, PredictContext, ReportContext

__all__ = ["Run", "check_data", "evaluate_run", "predict_files", "seed_everything", "train"]


def versions() -> dict[str, str]:
    import rnnvision_kit

    return {
        "rnnvision_kit": rnnvision_kit.__version__,
        "torch": str(torch.__version__),
        "python": platform.python_version(),
    }


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


def train(
    registries: Registries,
    config: RunConfig,
    *,
    events: RunEvents = NO_EVENTS,
    resume_dir: Path | None = None,
    quiet: bool = False,
    echo: Callable[[str], Any] = print,
) -> dict[str, Any]:
    """Fit, keep the best checkpoint, evaluate it on the test split and write the summary."""
    task = open_task(registries, config.task)
    checkpoint = None
    if resume_dir is not None:
        checkpoint = load_checkpoint(resume_dir / "last.pt")  # before anything is written
    if launched_rank() == 0:  # where the run writes, checked before any data is built
        if resume_dir is not None:
            writable_folder(resume_dir)
        else:
            writable_folder(Path(config.out_dir).expanduser(), "out_dir")
    dist_info = init_distributed(config.train.device, config.train.dist_backend)
    try:
        device = select_device(config.train.device, dist_info.local_rank)
        built = build(task, registries, config, "train", dist=dist_info)
        return _fit_and_test(
            built, registries, events, dist_info, device, resume_dir, checkpoint, quiet, echo
        )
    finally:
        shutdown_distributed()


def _fit_and_test(
    built: Built,
    registries: Registries,
    events: RunEvents,
    dist_info: DistInfo,
    device: torch.device,
    resume_dir: Path | None,
    checkpoint: dict[str, Any] | None,
    quiet: bool,
    echo: Callable[[str], Any],
) -> dict[str, Any]:
    task, config, model = built.task, built.config, built.model
    data = built.data
    assert data is not None
    run_dir = resume_dir
    splits = split_record(data, config)  # splits.json: what each split holds
    if resume_dir is not None:
        check_resume(resume_dir, splits)  # before anything is written: the data must not change
    if run_dir is None and dist_info.is_main:
        run_dir = new_run_dir(config, task.name)
        save_yaml(config, run_dir / "config.yaml")
        record_splits(run_dir, splits)
    if not dist_info.is_main:
        run_dir = None
    run = Run(config, run_dir, task.name, task.plugin, dist_info)
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
            shown = {
                k: v
                for k, v in row.items()
                if k.startswith(("train/loss", "val/"))
                and k not in ("val/samples", "val/unreadable")
            }
            line = "  ".join(f"{k}={v:.4f}" for k, v in shown.items())
            if row.get("val/unreadable"):
                line += f"  ({row['val/unreadable']} unreadable val file(s) left out)"
            echo(f"epoch {row['epoch'] + 1}/{config.train.epochs}  {line}")
        events.on_epoch_end(run, row["epoch"], row)

    trainer = Trainer(
        task,
        registries,
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
        trainer.load_state_dict(checkpoint, str((resume_dir or Path()) / "last.pt"))
    extra = {"config": config.to_dict(), "spec": data.spec.to_dict(), "versions": versions()}
    if dist_info.is_main:
        if not quiet:
            echo(
                f"task {config.task}: {len(data.train)} train / {len(data.val)} val / "
                f"{len(data.test)} test samples, {data.spec.num_classes} classes, "
                f"{count_parameters(model):,} parameters, device {device}, "
                f"precision {config.train.precision}, {dist_info.world_size} process(es)"
            )
            if data.skipped:
                from rnnvision_kit.data.readable import skipped_note

                echo(f"{skipped_note(data.skipped)}; see summary.json")
        events.on_run_start(run)
    try:
        state = trainer.fit(extra)
    except BaseException as error:
        if dist_info.is_main:
            events.on_exception(run, error)
        if isinstance(error, RunInterrupted) and run_dir is not None:
            raise _resumable(error, run_dir, dist_info) from None
        raise
    finally:
        if log is not None:
            log.close()

    best_path = (resume_dir or run_dir or Path()) / "best.pt"
    best = (
        load_checkpoint(best_path)["model"] if dist_info.is_main and best_path.is_file() else None
    )
    if dist_info.enabled:  # rank 0 sends its best weights: nodes need no shared file system
        best = _from_rank0(best)
    if best is not None:
        model.load_state_dict(best)
    precision = Precision(config.train.precision, device)
    test_scalars, test_other = evaluate_model(
        task,
        registries,
        config,
        model,
        data.test,
        data.spec,
        device,
        dist_info,
        precision,
        "test",
        unreadable=trainer.unreadable,
    )
    skipped = _skipped_files(data.skipped, trainer.unreadable.listed())
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
        "skipped_files": len(skipped),
        "skipped": [{"file": f, "reason": r} for f, r in skipped],
        "parameters": count_parameters(model),
        "device": str(device),
        "precision": config.train.precision,
        "world_size": dist_info.world_size,
        "train_seconds": round(state.train_seconds, 2),  # all resumes together
        "versions": versions(),
    }
    if run_dir is not None:
        write_json(run_dir / "summary.json", summary)
        plot_curves(state.history, run_dir / "curves.png")
        results = {**test_scalars, **test_other}
        with torch.inference_mode():
            task.report(
                ReportContext(
                    run_dir, "test", results, data.spec, config, model.eval(), data.test, device
                )
            )
        events.on_run_end(run, to_jsonable(summary))
    return summary


def _resumable(error: RunInterrupted, run_dir: Path, dist_info: DistInfo) -> RunInterrupted:
    """``error`` (its exit code kept: 130 for SIGINT, 143 for SIGTERM) with the resume command."""
    name = signal.Signals(error.exit_code - 128).name
    command = "torchrun ... -m rnnvision_kit run" if dist_info.enabled else "rnnkit run"
    resumable = RunInterrupted(f"interrupted ({name}); resume with: {command} --resume {run_dir}")
    resumable.exit_code = error.exit_code
    return resumable


def _skipped_files(*lists: list[tuple[str, str]]) -> list[tuple[str, str]]:
    """Files left out (found unreadable when listed, or while read), each once."""
    seen: dict[str, str] = {}
    for files in lists:
        for path, problem in files:
            seen.setdefault(path, problem)
    return list(seen.items())


def _from_rank0(value: Any) -> Any:
    """Rank 0's ``value`` on every rank (pickled through the process group)."""
    box = [value]
    torch.distributed.broadcast_object_list(box, src=0)
    return box[0]


def evaluate_run(
    registries: Registries,
    run_dir: Path,
    *,
    overrides: dict[str, Any] | None = None,
    split: str = "test",
    checkpoint_name: str = "best.pt",
    show: Callable[[dict[str, Any]], Any] | None = None,
) -> dict[str, Any]:
    """Re-evaluate a run's checkpoint on a split of its data (or of other data); ``show``
    receives the result before ``RUN_DIR/eval-SPLIT.json`` is written (a folder that cannot be
    written is one line, after the metrics were shown)."""
    saved = load_run(registries, run_dir, checkpoint_name, "evaluate")
    config = saved.config
    if overrides:
        apply_mapping(config, overrides)
    built = build(saved.task, registries, config, "eval")
    assert built.data is not None
    # the data's classes must be the run's before its weights are loaded (issue 17)
    check_class_names(saved.spec.class_names, built.spec.class_names, data_name(config))
    load_weights(built.model, saved.checkpoint["model"], str(saved.checkpoint_path))
    device = select_device(config.train.device)
    dataset = {"train": built.data.train, "val": built.data.val, "test": built.data.test}[split]
    unreadable = UnreadableLedger()
    scalars, others = evaluate_model(
        saved.task,
        registries,
        config,
        built.model.to(device),
        dataset,
        built.spec,
        device,
        DistInfo(),
        Precision(config.train.precision, device),
        split,
        unreadable=unreadable,
    )
    skipped = _skipped_files(built.data.skipped, unreadable.listed())
    result = {
        "run_dir": str(run_dir),
        "split": split,
        "checkpoint": saved.checkpoint_path.name,
        "metrics": scalars,
        "details": others,
        "skipped_files": len(skipped),
        "skipped": [{"file": f, "reason": r} for f, r in skipped],
        "data": eval_data(built.data, split, config),  # what was measured
    }
    if show is not None:
        show(result)
    name = f"eval-{split}.json"
    try:
        write_json(Path(run_dir) / name, result)
    except OSError as error:
        raise unwritable(Path(run_dir), error, name) from None
    return result


def predict_files(
    registries: Registries,
    run_dir: Path,
    files: Sequence[str],
    *,
    top_k: int = 5,
    out_dir: Path | None = None,
    on_record: Callable[[dict[str, Any]], Any] | None = None,
) -> list[dict[str, Any]]:
    """Predictions of a run's best checkpoint for user files, through the task's ``predict``,
    called once per file: a file it cannot read (a DataError) is a record ``{"file", "error"}``
    and the other files go on. ``on_record`` receives each record
    as soon as it is made. Files a task writes (plots, masks) go to ``out_dir``, by default
    ``<run_dir>/predict``."""
    saved, built = load_for_inference(registries, run_dir, "predict")
    config = saved.config
    device = select_device(config.train.device)
    model = built.model.to(device).eval()
    ctx = PredictContext(
        model,
        files_of(files),
        config,
        built.spec,
        device,
        top_k,
        out_dir if out_dir is not None else Path(run_dir) / "predict",
    )
    records: list[dict[str, Any]] = []
    with torch.inference_mode():
        for file in ctx.files:
            try:
                made = saved.task.predict(dataclasses.replace(ctx, files=(file,)))
            except DataError as error:
                made = [{"file": str(file), "error": _without_prefix(str(error), f"{file}: ")}]
            for record in made:
                records.append(record)
                if on_record is not None:
                    on_record(record)
    return records


def _without_prefix(text: str, prefix: str) -> str:
    return text[len(prefix) :] if text.startswith(prefix) else text


def check_data(registries: Registries, config: RunConfig, *, deep: bool = False) -> DataCheck:
    """The task's scan of its configured data (``rnnkit check-data``), without training;
    ``deep`` (``--deep``) asks the task to decode every frame, not just probe."""
    from rnnvision_kit.config import validate

    task = open_task(registries, config.task)
    task.require("check-data")
    validate(config)
    return task.check_data(task.data_context(config, registries, "check-data", deep=deep))
