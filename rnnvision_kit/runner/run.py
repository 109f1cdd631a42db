"""Runs: train, evaluate, predict and check data for any task.

:func:`train` reads top to bottom, as torchvision's reference training script does: where the
run writes, the processes and the device, the data and the model (``runner.pipeline``), the run
folder, the evaluator and the trainer, fitting, the test of the best checkpoint, the summary.
Each step is a small function below it. Only rank 0 writes files; ``runner.rundir`` names them.
"""

from __future__ import annotations

import copy
import dataclasses
import platform
import signal
from collections.abc import Callable, Sequence, Sized
from dataclasses import dataclass
from pathlib import Path
from typing import Any, cast

import torch
from torch import nn

from rnnvision_kit.atomicfile import unwritable, writable_folder
from rnnvision_kit.config import RunConfig, apply_mapping
from rnnvision_kit.errors import DataError, RunInterrupted
from rnnvision_kit.registry import Registries
from rnnvision_kit.runner.checkpoint import load_checkpoint
from rnnvision_kit.runner.device import Runtime, select_device
from rnnvision_kit.runner.distributed import (
    DistInfo,
    init_distributed,
    launched_rank,
    shutdown_distributed,
)
from rnnvision_kit.runner.evaluate import Evaluator
from rnnvision_kit.runner.events import NO_EVENTS, Run, RunEvents
from rnnvision_kit.runner.health import start_notices
from rnnvision_kit.runner.loop import LoopState, Trainer
from rnnvision_kit.runner.pipeline import (
    Built,
    SavedRun,
    TaskHandle,
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
from rnnvision_kit.runner.rundir import Checkpoint, RunDir
from rnnvision_kit.runner.splits import (
    check_class_names,
    check_resume,
    data_name,
    eval_data,
    record_splits,
    split_record,
)
from rnnvision_kit.runner.unreadable import UnreadableLedger
from rnnvision_kit.task import (
    DataBundle,
    DataCheck,
    Normalisation,
    PredictContext,
    ReportContext,
    check_horizon,
)

__all__ = ["Run", "check_data", "evaluate_run", "predict_files", "seed_everything", "train"]

Echo = Callable[[str], Any]


def versions() -> dict[str, str]:
    import rnnvision_kit

    return {
        "rnnvision_kit": rnnvision_kit.__version__,
        "torch": str(torch.__version__),
        "python": platform.python_version(),
    }


# A module may list parameters its forward never reaches (e.g. smp keeps ResNet stages beyond
# encoder_depth) in an attribute of this name; they are left out of the counts the run shows.
UNUSED_PARAMETERS = "unused_parameters"


@dataclass(frozen=True)
class ParameterCounts:
    """The parameters a model uses (its forward reaches them), the trainable ones among them
    and those it holds but never uses."""

    used: int
    trainable: int
    unused: int

    def line(self) -> str:
        """``"784,971 parameters (784,971 trainable)"``, plus ``"; 10,493,440 unused left
        out"`` when the model holds parameters it never uses."""
        extra = f"; {self.unused:,} unused left out" if self.unused else ""
        return f"{self.used:,} parameters ({self.trainable:,} trainable{extra})"


def parameter_counts(model: nn.Module) -> ParameterCounts:
    """The :class:`ParameterCounts` of ``model`` (shared parameters counted once); unused are
    those its modules list in ``unused_parameters``."""
    unused_ids = {
        id(p) for module in model.modules() for p in getattr(module, UNUSED_PARAMETERS, ())
    }
    used = trainable = unused = 0
    for p in model.parameters():
        if id(p) in unused_ids:
            unused += p.numel()
            continue
        used += p.numel()
        trainable += p.numel() if p.requires_grad else 0
    return ParameterCounts(used, trainable, unused)


def train(
    registries: Registries,
    config: RunConfig,
    *,
    task: TaskHandle | None = None,
    resume: SavedRun | None = None,
    resume_dir: Path | None = None,
    events: RunEvents = NO_EVENTS,
    quiet: bool = False,
    echo: Echo = print,
) -> dict[str, Any]:
    """Fit, keep the best checkpoint, evaluate it on the test split and write the summary.

    ``task`` is the task the caller opened for ``config`` (the CLI does; else it is opened
    here). ``resume`` continues a run folder read back with its last.pt
    (``load_run(registries, RUN_DIR, "last", "resume")``), whose checkpoint is not read again;
    ``resume_dir`` names the folder instead, to be read here."""
    if resume is None and resume_dir is not None:
        resume = load_run(registries, resume_dir, "last", "resume")  # before anything is written
    if task is None:
        task = resume.task if resume is not None else open_task(registries, config.task)
    check_writable(config, resume)  # before any data is built
    dist_info = init_distributed(config.train.device, config.train.dist_backend)
    try:
        runtime = Runtime.select(config.train, dist_info)
        normalisation = resume.normalisation if resume is not None else None
        built = build(
            task, registries, config, "train", normalisation=normalisation, dist=dist_info
        )
        assert built.data is not None
        recorded = recorded_config(config, built.normalisation)
        record = checkpoint_record(built, recorded)
        run_dir = open_run_dir(built, record, resume, dist_info, registries)
        run = Run(recorded, run_dir.path if run_dir else None, task.name, task.plugin, dist_info)
        evaluator = Evaluator(
            task=task,
            registries=registries,
            config=config,
            spec=built.spec,
            runtime=runtime,
            reference=built.data.train,  # the trivial baseline's majority class
        )
        log = metrics_log(run_dir, resume)
        shown = None if quiet else echo
        trainer = Trainer(
            task=task,
            config=config,
            model=built.model,
            data=built.data,
            runtime=runtime,
            evaluator=evaluator,
            run_dir=run_dir,
            quiet=quiet,
            on_epoch_end=EpochReport(log, run, events, shown) if dist_info.is_main else None,
        )
        if resume is not None:
            trainer.load_state_dict(resume.checkpoint, str(resume.checkpoint_path))
        if dist_info.is_main:
            announce(built, trainer, runtime, shown)
            events.on_run_start(run)
        state = fit(trainer, record, run, events, log)
        model = best_model(trainer.model, run_dir, dist_info)
        test, test_details = evaluator.evaluate(
            model, built.data.test, "test", unreadable=trainer.unreadable
        )
        summary = summarise(config, run_dir, state, test, test_details, trainer, runtime)
        if run_dir is not None:
            write_results(run_dir, summary, state, built, model, {**test, **test_details}, runtime)
            events.on_run_end(run, to_jsonable(summary))
        return summary
    finally:
        shutdown_distributed()


# ------------------------------------------------------------------------- the steps of train


def check_writable(config: RunConfig, resume: SavedRun | None) -> None:
    """Rank 0: where the run writes (the resumed folder, else ``out_dir``) can be written."""
    if launched_rank() != 0:
        return
    if resume is not None:
        writable_folder(resume.dir)
    else:
        writable_folder(Path(config.out_dir).expanduser(), "out_dir")


def recorded_config(config: RunConfig, normalisation: Normalisation | None) -> RunConfig:
    """The config as the run records it (``config.yaml``, checkpoints): a normalisation that
    pretrained weights chose is written into ``model.mean``/``model.std`` when the model
    settings have those fields and leave them unset, so that the file says what was used.
    ``config`` itself is not changed (a copy is, when there is anything to write)."""
    model = config.model
    if normalisation is None or not normalisation.from_weights:
        return config
    names = {f.name for f in dataclasses.fields(model)} if dataclasses.is_dataclass(model) else ()
    if "mean" not in names or "std" not in names or (model.mean, model.std) != (None, None):
        return config
    recorded = copy.deepcopy(config)
    recorded.model.mean, recorded.model.std = list(normalisation.mean), list(normalisation.std)
    return recorded


def open_run_dir(
    built: Built,
    record: dict[str, Any],
    resume: SavedRun | None,
    dist_info: DistInfo,
    registries: Registries | None = None,
) -> RunDir | None:
    """The run folder rank 0 writes to (None on other ranks). Resumed, after checking that the
    data rebuilt now is the data it started with; new, with ``config.yaml`` (the config of the
    checkpoints' ``record``, each ``data.*`` setting the source does not read marked so, given
    ``registries``) and ``splits.json``."""
    assert built.data is not None
    splits = split_record(built.data, built.config)  # splits.json: what each split holds
    if resume is not None:
        check_resume(resume.run_dir, splits)  # before anything is written
    if not dist_info.is_main:
        return None
    if resume is not None:
        return resume.run_dir
    run_dir = RunDir.create(built.config.out_dir, built.task.name)
    run_dir.config.write_text(config_text(record["config"], built.config, registries))
    record_splits(run_dir, splits)
    return run_dir


def config_text(values: dict[str, Any], config: RunConfig, registries: Registries | None) -> str:
    """``config.yaml``'s text: ``values`` as YAML, each ``data.*`` setting the data source does
    not read followed by ``# not read by data source NAME`` (comments: it loads as before)."""
    from rnnvision_kit.config import annotated_yaml
    from rnnvision_kit.runconfig import unread_settings

    found = unread_settings(registries, config) if registries is not None else None
    source, unread = found if found is not None else ("", [])
    notes = {f"data.{name}": f"not read by data source {source}" for name in unread}
    return annotated_yaml(values, notes)


def metrics_log(run_dir: RunDir | None, resume: SavedRun | None) -> MetricsLog | None:
    """``metrics.jsonl`` (rank 0); resumed, without the rows of epochs that will be re-run."""
    if run_dir is None:
        return None
    return MetricsLog(run_dir.metrics, resume.checkpoint["epoch"] if resume else None)


@dataclass(frozen=True)
class EpochReport:
    """Where each epoch's row goes on rank 0: ``metrics.jsonl``, a line (unless quiet) and the
    runner events."""

    log: MetricsLog | None
    run: Run
    events: RunEvents
    echo: Echo | None  # None: quiet

    def __call__(self, row: dict[str, Any]) -> None:
        if self.log is not None:
            self.log.append(row)
        if self.echo is not None:
            shown = {
                k: v
                for k, v in row.items()
                if k.startswith(("train/loss", "val/"))
                and k not in ("val/samples", "val/unreadable")
            }
            line = "  ".join(f"{k}={v:.4f}" for k, v in shown.items())
            if row.get("val/unreadable"):
                line += f"  ({row['val/unreadable']} unreadable val file(s) left out)"
            epochs = self.run.config.train.epochs
            self.echo(f"epoch {row['epoch'] + 1}/{epochs}  {line}")
        self.events.on_epoch_end(self.run, row["epoch"], row)


def announce(built: Built, trainer: Trainer, runtime: Runtime, echo: Echo | None) -> None:
    """The run's opening line: data, classes, parameters, device, precision, processes."""
    if echo is None:
        return
    data, config = built.data, built.config
    assert data is not None

    def count(dataset: object) -> int:  # map-style data sets (torch's Dataset declares no len)
        return len(cast(Sized, dataset))

    classes = f"{data.spec.num_classes} classes, " if data.spec.num_classes else ""
    echo(
        f"task {config.task}: {count(data.train)} train / {count(data.val)} val / "
        f"{count(data.test)} test samples, {classes}"
        f"{parameter_counts(trainer.model).line()}, device {runtime.device}, "
        f"precision {config.train.precision}, {runtime.dist.world_size} process(es)"
    )
    for line in origin_lines(data):
        echo(line)
    for line in start_notices(
        trainer.steps_per_epoch,
        batch_size=config.data.batch_size,
        accumulate=config.train.accumulate,
        train_samples=count(data.train),
        val_samples=count(data.val),
        max_steps=config.train.max_steps_per_epoch,
    ):
        echo(f"rnnkit: notice: {line}")
    if data.skipped:
        from rnnvision_kit.data.readable import skipped_note

        echo(f"{skipped_note(data.skipped)}; see summary.json")
    if trainer.state.epoch == 0:
        from rnnvision_kit.data.bundle import cold_videos

        cold = cold_videos(data.train)
        if cold:
            echo(
                f"decoding {cold} training video(s) into the frame cache (first epoch only; "
                "progress below: a bar on a terminal, else a line every 30 s)"
            )


def origin_lines(data: DataBundle) -> list[str]:
    """``"test (9): carved from clips/train/ (20% per class, split seed 0)"``: where each split
    comes from (``DataBundle.origins``) and its size; none when the source does not say."""
    origins = data.origins or {}
    return [
        f"{split} ({len(cast(Sized, getattr(data, split)))}): {origins[split]}"
        for split in ("train", "val", "test")
        if origins.get(split)
    ]


def checkpoint_record(built: Built, recorded: RunConfig) -> dict[str, Any]:
    """What every checkpoint holds besides the training state: the config as the run records
    it (:func:`recorded_config`; ``config.yaml`` is written from this record), the data spec,
    the input normalisation the task chose and the versions."""
    record = {
        "config": recorded.to_dict(),
        "spec": built.spec.to_dict(),
        "versions": versions(),
    }
    if built.normalisation is not None:
        record["normalisation"] = built.normalisation.to_dict()
    return record


def fit(
    trainer: Trainer,
    checkpoint_extra: dict[str, Any],
    run: Run,
    events: RunEvents,
    log: MetricsLog | None,
) -> LoopState:
    """``trainer.fit``; an error goes to the runner events (rank 0), an interruption comes back
    with the command that resumes the run."""
    try:
        return trainer.fit(checkpoint_extra)
    except BaseException as error:
        if run.dist.is_main:
            events.on_exception(run, error)
        if isinstance(error, RunInterrupted) and run.dir is not None:
            raise _resumable(error, run.dir, run.dist) from None
        raise
    finally:
        if log is not None:
            log.close()


def best_model(model: nn.Module, run_dir: RunDir | None, dist_info: DistInfo) -> nn.Module:
    """``model`` with the weights of ``best.pt`` (read by rank 0, sent to the others: nodes need
    no shared file system); as it is when no epoch was validated."""
    best = None
    if dist_info.is_main and run_dir is not None and run_dir.best.is_file():
        best = load_checkpoint(run_dir.best)["model"]
    if dist_info.enabled:
        best = _from_rank0(best)
    if best is not None:
        model.load_state_dict(best)
    return model


def summarise(
    config: RunConfig,
    run_dir: RunDir | None,
    state: LoopState,
    test: dict[str, float],
    test_details: dict[str, Any],
    trainer: Trainer,
    runtime: Runtime,
) -> dict[str, Any]:
    """The run's ``summary.json`` (and what ``rnnkit run --json`` prints)."""
    assert trainer.data is not None
    skipped = _skipped_files(trainer.data.skipped, trainer.unreadable.listed())
    counts = parameter_counts(trainer.model)
    return {
        "task": config.task,
        "run_dir": str(run_dir) if run_dir else None,
        "epochs": state.epoch,
        "best_epoch": state.best_epoch + 1,
        "monitor": config.train.monitor,
        "best": state.best,
        "stopped_early": state.stopped_early,
        "test": test,
        "test_details": test_details,
        "last_val": {
            k: v
            for k, v in (state.history[-1] if state.history else {}).items()
            if k.startswith("val/")
        },
        "splits": split_summary(trainer.data),
        "skipped_files": len(skipped),
        "skipped": [{"file": f, "reason": r} for f, r in skipped],
        "parameters": counts.used,  # those the model uses
        "parameters_trainable": counts.trainable,
        "parameters_unused": counts.unused,  # held, never used (left out of the two above)
        "device": str(runtime.device),
        "precision": config.train.precision,
        "world_size": runtime.dist.world_size,
        "train_seconds": round(state.train_seconds, 2),  # all resumes together
        "versions": versions(),
    }


def split_summary(data: DataBundle) -> dict[str, dict[str, Any]]:
    """``summary.json``'s ``splits``: per split its size and origin (``DataBundle.origins``);
    the items of each split are in the run folder's ``splits.json``."""
    origins = data.origins or {}
    return {
        split: {
            "count": len(cast(Sized, getattr(data, split))),
            "origin": origins.get(split),
            "items": "splits.json" if (data.items or {}).get(split) is not None else None,
        }
        for split in ("train", "val", "test")
    }


def write_results(
    run_dir: RunDir,
    summary: dict[str, Any],
    state: LoopState,
    built: Built,
    model: nn.Module,
    results: dict[str, Any],
    runtime: Runtime,
) -> None:
    """``summary.json``, ``curves.png`` and the task's report of the test split."""
    assert built.data is not None
    write_json(run_dir.summary, summary)
    plot_curves(state.history, run_dir.curves)
    with torch.inference_mode():
        built.task.report(
            ReportContext(
                run_dir.path,
                "test",
                results,
                built.spec,
                built.config,
                model.eval(),
                built.data.test,
                runtime.device,
            )
        )


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


# ------------------------------------------------------------------ eval, predict, check-data


def evaluate_run(
    registries: Registries,
    run_dir: Path,
    *,
    overrides: dict[str, Any] | None = None,
    split: str = "test",
    checkpoint: Checkpoint = "best",
    show: Callable[[dict[str, Any]], Any] | None = None,
) -> dict[str, Any]:
    """Re-evaluate a run's checkpoint (``best``: best.pt, else last.pt; or ``last``) on a split
    of its data (or of other data); ``show`` receives the result before
    ``RUN_DIR/eval-SPLIT.json`` is written (a folder that cannot be written is one line, after
    the metrics were shown)."""
    saved = load_run(registries, run_dir, checkpoint, "evaluate")
    config = saved.config
    if overrides:
        apply_mapping(config, overrides)
    built = build(saved.task, registries, config, "eval", normalisation=saved.normalisation)
    assert built.data is not None
    # the data's classes must be the run's before its weights are loaded (issue 17)
    check_class_names(saved.spec.class_names, built.spec.class_names, data_name(config))
    load_weights(built.model, saved.checkpoint["model"], str(saved.checkpoint_path))
    runtime = Runtime.select(config.train)
    evaluator = Evaluator(
        task=saved.task,
        registries=registries,
        config=config,
        spec=built.spec,
        runtime=runtime,
        reference=built.data.train,  # the trivial baseline's majority class
    )
    dataset = {"train": built.data.train, "val": built.data.val, "test": built.data.test}[split]
    unreadable = UnreadableLedger()
    scalars, others = evaluator.evaluate(
        built.model.to(runtime.device), dataset, split, unreadable=unreadable
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
    path = saved.run_dir.eval_file(split, checkpoint)
    try:
        write_json(path, result)
    except OSError as error:
        raise unwritable(path.parent, error, path.name) from None
    return result


def predict_files(
    registries: Registries,
    run_dir: Path,
    files: Sequence[str],
    *,
    top_k: int = 5,
    out_dir: Path | None = None,
    on_record: Callable[[dict[str, Any]], Any] | None = None,
    horizon: int | None = None,
) -> list[dict[str, Any]]:
    """Predictions of a run's best checkpoint for user files, through the task's ``predict``,
    called once per file: a file it cannot read (a DataError) is a record ``{"file", "error"}``
    and the other files go on. ``on_record`` receives each record
    as soon as it is made. Files a task writes (plots, masks) go to ``out_dir``, by default
    ``<run_dir>/predict``. ``horizon``: frames to predict (``--horizon``), for a run whose
    spec has a ``horizon`` (a task that predicts frames); a ConfigError for any other."""
    saved, built = load_for_inference(registries, run_dir, "predict")
    check_horizon(horizon, built.spec, saved.task.name)
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
        out_dir if out_dir is not None else saved.run_dir.predict_dir,
        every_file=files_of(files),  # for output names no two inputs share
        horizon=horizon,
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


def check_data(
    registries: Registries,
    config: RunConfig,
    *,
    deep: bool = False,
    task: TaskHandle | None = None,
) -> DataCheck:
    """The task's scan of its configured data (``rnnkit check-data``), without training;
    ``deep`` (``--deep``) asks the task to decode every frame, not just probe. ``task``: the
    task the caller opened for ``config``, else opened here."""
    from rnnvision_kit.config import validate

    task = task if task is not None else open_task(registries, config.task)
    task.require("check-data")
    validate(config)
    return task.check_data(task.data_context(config, registries, "check-data", deep=deep))
