"""The ``rnnkit`` command line (click). Heavy modules (torch, PyAV, smp) are imported lazily, inside
commands, so that ``rnnkit --help``, ``rnnkit tasks`` and ``rnnkit plugins`` stay fast."""

from __future__ import annotations

import json
import os
import sys
import traceback
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click

from rnnvision_kit.errors import RnnkitError, RunInterrupted
from rnnvision_kit.plugins import PluginHost, build_host
from rnnvision_kit.runconfig import configured
from rnnvision_kit.sweep import sweep_command
from rnnvision_kit.texttable import format_table

if TYPE_CHECKING:
    from rnnvision_kit.runner.rundir import Checkpoint

CONTEXT = {"help_option_names": ["-h", "--help"], "max_content_width": 100}


def _host(ctx: click.Context) -> PluginHost:
    return ctx.find_root().obj


def _fmt(value: Any) -> str:
    return f"{value:.4f}" if isinstance(value, float) else str(value)


@click.group(context_settings=CONTEXT)
@click.option(
    "--plugin",
    "plugins",
    multiple=True,
    metavar="MODULE|FILE.py",
    help="Load a local plugin (repeatable; also RNNKIT_PLUGINS=a,b).",
)
@click.option("--debug", is_flag=True, help="Show tracebacks for errors.")
@click.version_option(package_name="rnnvision-kit", prog_name="rnnkit")
def cli(plugins: tuple[str, ...], debug: bool) -> None:
    """Recurrent neural networks for vision: train, evaluate and predict from one CLI.

    \b
    Examples:
      rnnkit tasks
      rnnkit run --task video-action
      rnnkit run --task image-classify --data mnist:~/data --set model.head=lstm
      rnnkit eval runs/video-action/2026-11-23T10-00-00
      rnnkit predict runs/video-action/2026-11-23T10-00-00 clip.mp4 --json
    """


@cli.command(context_settings=CONTEXT)
@click.pass_context
def tasks(ctx: click.Context) -> None:
    """List the tasks that installed plugins provide.

    \b
    Example:
      rnnkit tasks
    """
    registry = _host(ctx).registries.tasks
    rows = []
    for name in registry.names():
        entry = registry.get(name)
        supports = ", ".join(entry.capabilities) or "-"
        rows.append((name, entry.plugin, entry.meta["kind"], supports, entry.description))
    click.echo(format_table(["task", "plugin", "kind", "supports", "description"], rows))


@cli.command(context_settings=CONTEXT)
@click.option(
    "--check", is_flag=True, help="Build, train one step and evaluate every task on tiny data."
)
@click.pass_context
def plugins(ctx: click.Context, check: bool) -> None:
    """List plugins: name, version, source, what each registered, and broken ones.

    \b
    Examples:
      rnnkit plugins
      RNNKIT_DISABLE_PLUGINS=video rnnkit plugins
      rnnkit --plugin my_plugin.py plugins --check
    """
    host = _host(ctx)
    if check:
        from rnnvision_kit.errors import PluginError
        from rnnvision_kit.testing import check_plugin

        results = check_plugin(host)
        rows: list[tuple[str, ...]] = [(r.task, r.plugin, r.status, r.error or "") for r in results]
        click.echo(format_table(["task", "plugin", "status", "error"], rows))
        failed = sum(not r.ok for r in results)
        click.echo(f"{len(results) - failed} passed, {failed} failed")
        if failed:
            raise PluginError(f"{failed} of {len(results)} plugin checks failed")
        return
    rows = []
    for record in host.records.values():
        registered = "; ".join(
            f"{kind}: {', '.join(names)}" for kind, names in record.registered.items()
        )
        if record.commands:
            registered += ("; " if registered else "") + f"commands: {', '.join(record.commands)}"
        status = f"BROKEN: {record.error}" if record.broken else "ok"
        source = record.source
        if source not in ("core", "object"):
            source += f" {record.target}" + (
                f" [{record.distribution}]" if record.distribution else ""
            )
        rows.append((record.name, record.version or "-", source, registered or "-", status))
    click.echo(format_table(["plugin", "version", "source", "registered", "status"], rows))
    if host.disabled:
        click.echo(f"disabled by RNNKIT_DISABLE_PLUGINS: {', '.join(sorted(host.disabled))}")


def _entries(ctx: click.Context, kind: str, data_kind: str | None) -> list[Any]:
    registry = _host(ctx).registries[kind]
    entries = [registry.get(name) for name in registry.names()]
    if data_kind:
        key = "kind" if kind == "datasets" else "kinds"
        entries = [e for e in entries if data_kind in (e.meta.get(key) or ())]
    return entries


def _shown_name(entry: Any, registry_names: set[str]) -> str:
    return entry.name if entry.name in registry_names else entry.qualified_name


@cli.command(context_settings=CONTEXT)
@click.option("--kind", "data_kind", help="Only sources of this data kind (image, video, ...).")
@click.pass_context
def sources(ctx: click.Context, data_kind: str | None) -> None:
    """List data sources: kind, the data.* settings each reads, description.

    A task reads every source of its kind (see `rnnkit tasks`); its settings must include what
    the source reads.

    \b
    Example:
      rnnkit sources --kind video
    """
    names = set(_host(ctx).registries.datasets.names())
    rows = [
        (
            _shown_name(e, names),
            e.plugin,
            e.meta.get("kind", ""),
            ", ".join(e.meta.get("reads", ())) or "-",
            e.description,
        )
        for e in _entries(ctx, "datasets", data_kind)
    ]
    click.echo(format_table(["source", "plugin", "kind", "reads data.*", "description"], rows))


@cli.command(context_settings=CONTEXT)
@click.pass_context
def layers(ctx: click.Context) -> None:
    """List the sequence layers a head can stack (model.head=NAME), with their own settings
    (model.layer.NAME=VALUE) and whether a model built on them can stream and export step by
    step; whole heads (model.head=mean) are listed after them.

    \b
    Example:
      rnnkit layers
      rnnkit run --task video-action --set model.head=mamba --set model.layer.state_size=8
    """
    from rnnvision_kit.layers import settings_table, train_scale_text

    host = _host(ctx)
    names = set(host.registries.layers.names())
    rows = [
        (
            _shown_name(e, names),
            e.plugin,
            "yes" if e.meta.get("causal", True) else "no",
            e.meta.get("block", "residual"),
            ", ".join(f"{k}={v}" for k, v in settings_table(e)) or "-",
            train_scale_text(e) or "-",
            e.description,
        )
        for e in _entries(ctx, "layers", None)
    ]
    head_names = set(host.registries.heads.names())
    rows += [
        (_shown_name(e, head_names), e.plugin, "no", "head", "-", "-", e.description)
        for e in _entries(ctx, "heads", None)
    ]
    headers = [
        "layer",
        "plugin",
        "streams",
        "block",
        "settings (model.layer.*)",
        "training (x task default)",
        "description",
    ]
    click.echo(format_table(headers, rows))


@cli.command(context_settings=CONTEXT)
@click.option("--kind", "data_kind", help="Only metrics for this data kind.")
@click.pass_context
def metrics(ctx: click.Context, data_kind: str | None) -> None:
    """List registered metrics and the data kinds they serve (add one: --set eval.metrics=[NAME]).

    \b
    Example:
      rnnkit metrics --kind segmentation
    """
    names = set(_host(ctx).registries.metrics.names())
    rows = [
        (_shown_name(e, names), e.plugin, ", ".join(e.meta.get("kinds", ())), e.description)
        for e in _entries(ctx, "metrics", data_kind)
    ]
    click.echo(format_table(["metric", "plugin", "kinds", "description"], rows))


@cli.command(context_settings=CONTEXT)
@click.argument("pattern", required=False)
@click.option("--pretrained", is_flag=True, help="Only models with pretrained weights.")
@click.pass_context
def backbones(ctx: click.Context, pattern: str | None, pretrained: bool) -> None:
    """List frame encoders (model.backbone; image-classify: model.encoder): the registered ones
    and the families tv:MODEL (torchvision) and timm:MODEL, with their weights by name.

    PATTERN is an fnmatch pattern as in timm.list_models('*resnet*'), matched against names
    with and without their family prefix; a pattern without wildcards matches as *PATTERN*.
    Without PATTERN each family is one line.

    \b
    Examples:
      rnnkit backbones
      rnnkit backbones '*resnet*'
      rnnkit backbones 'timm:convnext*' --pretrained
    """
    import fnmatch

    registry = _host(ctx).registries.backbones
    if pattern and not any(c in pattern for c in "*?["):
        pattern = f"*{pattern}*"
    names = set(registry.names())
    rows = []
    for entry in registry:
        shown = _shown_name(entry, names)
        if not entry.is_family:
            if (
                not pattern
                or fnmatch.fnmatch(shown, pattern)
                or fnmatch.fnmatch(entry.name, pattern)
            ):
                rows.append((shown, entry.plugin, "", entry.description))
            continue
        lister = entry.meta.get("models")
        if not pattern or lister is None:
            if not pattern or fnmatch.fnmatch(f"{shown}:MODEL", pattern):
                rows.append((f"{shown}:MODEL", entry.plugin, "", entry.description))
            continue
        prefix, colon, rest = pattern.partition(":")
        if colon and prefix not in (entry.name, shown, "*"):
            continue  # a pattern for another family
        for model, weights in lister(rest if colon else pattern, pretrained):
            rows.append((f"{shown}:{model}", entry.plugin, weights, ""))
    if not rows:
        click.echo(f"no backbone matches {pattern!r}")
        return
    click.echo(format_table(["backbone", "plugin", "weights (model.weights)", "description"], rows))


@cli.command("new-plugin", context_settings=CONTEXT)
@click.argument("name")
@click.option(
    "--dir", "parent", type=click.Path(), default=".", show_default=True, help="Parent folder."
)
def new_plugin(name: str, parent: str) -> None:
    """Create a plugin package rnnkit-NAME, ready to install and test.

    \b
    Example:
      rnnkit new-plugin stripes --dir ~/src
      cd ~/src/rnnkit-stripes && pip install -e . && pytest && rnnkit run --task stripes
    """
    from rnnvision_kit.scaffold import create_plugin

    root = create_plugin(name, Path(parent).expanduser())
    click.echo(f"created {root}")
    click.echo(f"next: cd {root} && pip install -e . && pytest && rnnkit run --task {name}")


def _configure(host: PluginHost, task_name: str, options: dict[str, Any]) -> Any:
    """The validated run config of ``--task`` with ``--config``, ``--data``, shortcuts and
    ``--set``. A task registered with ``config=`` is configured without importing torch, so a
    bad setting is reported in a fraction of a second; another task is opened for its defaults."""
    return configured(host.registries, task_name, options)[0]


def _open_configured(
    host: PluginHost, task_name: str, options: dict[str, Any], notes: list[str] | None = None
) -> tuple[Any, Any]:
    """:func:`_configure`, then the task opened (a ``TaskHandle``, opened once) for the runner."""
    config, task = configured(host.registries, task_name, options, notes)
    if task is None:
        from rnnvision_kit.runner.pipeline import open_task  # torch: after the settings

        task = open_task(host.registries, task_name)
    return config, task


def _check_eval_settings(host: PluginHost, run_dir: Path, values: dict[str, Any]) -> None:
    """A bad ``eval --set``/``--data`` is one line before torch is imported: the settings on
    the run's ``config.yaml``, validated, when its task declares light defaults (``config=``).
    Anything else about the run folder is left to the checks that read its checkpoint."""
    from rnnvision_kit.config import apply_mapping, apply_recorded, load_yaml, validate
    from rnnvision_kit.errors import RnnkitError
    from rnnvision_kit.task import declared_defaults

    path = run_dir / "config.yaml"  # RunDir.CONFIG: rnnvision_kit.runner imports torch
    if not values or not path.is_file():
        return
    try:
        saved = load_yaml(path)
        name = saved.pop("task", None)
        if not isinstance(name, str) or name not in host.registries.tasks:
            return
        config = declared_defaults(host.registries.tasks.get(name), name)
        if config is None:
            return
        apply_recorded(config, saved)
    except RnnkitError:
        return  # the run folder itself is odd: the full load names what is wrong
    apply_mapping(config, values)
    validate(config)


SHOWN_SKIPPED = 20  # unreadable files listed under the final table (all are in summary.json)


def _print_results(split: str, scalars: dict[str, Any], details: dict[str, Any]) -> None:
    """The metrics table, each beside its trivial baseline (``SPLIT/baseline`` of the details,
    rnnvision_kit.baselines) when the task has one; per-class figures by class name
    (segmentation; classification with at most 10 classes); one warning line when the model
    does not beat its baseline."""
    from rnnvision_kit.baselines import SHOWN_CLASSES, Baseline, collapse_warning
    from rnnvision_kit.errors import warn

    found = details.get(f"{split}/baseline")
    if not isinstance(found, dict):
        rows = [(key, _fmt(value)) for key, value in scalars.items()]
        click.echo(format_table([f"{split} metric", "value"], rows))
        return
    base = Baseline.from_dict(found)

    def trivial(key: str) -> str:
        value = base.metrics.get(key.removeprefix(f"{split}/"))
        return "-" if value is None else _fmt(float(value))

    beside = [(key, _fmt(value), trivial(key)) for key, value in scalars.items()]
    click.echo(format_table([f"{split} metric", "value", "trivial baseline"], beside))
    click.echo(base.what)
    per_class_key, label = (
        (f"{split}/per_class_iou", "IoU")
        if base.kind == "segmentation"
        else (f"{split}/per_class_acc", "accuracy")
    )
    per_class = details.get(per_class_key)
    if isinstance(per_class, dict) and (
        base.kind == "segmentation"
        or (base.kind == "classification" and len(per_class) <= SHOWN_CLASSES)
    ):
        classes = [
            (str(name), _optional(v), _optional(base.per_class.get(name)))
            for name, v in per_class.items()
        ]
        click.echo(format_table(["class", f"{split} {label}", "trivial baseline"], classes))
    line = collapse_warning({**scalars, **details}, split, base)
    if line is not None:
        warn(line)


def _optional(value: Any) -> str:
    return "-" if value is None else _fmt(float(value))


def _print_summary(summary: dict[str, Any]) -> None:
    _print_results("test", summary["test"], summary.get("test_details") or {})
    best = summary.get("best")
    click.echo(
        f"best {summary['monitor']} = {_fmt(best)} at epoch {summary['best_epoch']}; "
        f"trained {summary['epochs']} epoch(s) in {summary['train_seconds']:.1f} s"
        + (" (stopped early)" if summary.get("stopped_early") else "")
    )
    skipped = summary.get("skipped") or []
    if skipped:
        shown = [(item["file"], item["reason"]) for item in skipped[:SHOWN_SKIPPED]]
        more = len(skipped) - len(shown)
        click.echo(f"skipped {len(skipped)} unreadable file(s), left out of the metrics:")
        click.echo(format_table(["file", "reason"], shown))
        if more:
            click.echo(f"... and {more} more in summary.json")
    if summary.get("run_dir"):
        click.echo(f"run folder: {summary['run_dir']}")


@cli.command(context_settings=CONTEXT)
@click.option("--task", "task_name", help="Task name (see `rnnkit tasks`).")
@click.option("--data", help="Data source, NAME or NAME:PATH, e.g. digits, mnist:~/data.")
@click.option("--config", "config_file", type=click.Path(), help="YAML file of settings.")
@click.option(
    "--set",
    "overrides",
    multiple=True,
    metavar="KEY=VALUE",
    help="Override a setting, e.g. --set train.lr=0.01 (repeatable).",
)
@click.option("--epochs", type=int, help="Shortcut for --set train.epochs=N.")
@click.option("--device", help="auto (default), cpu, cuda or cuda:N.")
@click.option("--precision", type=click.Choice(["32", "16-mixed", "bf16-mixed"]))
@click.option("--seed", type=int)
@click.option("--out", type=click.Path(), help="Parent folder of run folders (default: runs).")
@click.option(
    "--resume", "resume_dir", type=click.Path(), help="Continue an interrupted run folder."
)
@click.option("--quiet", is_flag=True, help="No progress bars or per-epoch lines.")
@click.option("--json", "as_json", is_flag=True, help="Print the summary as JSON.")
@click.pass_context
def run(
    ctx: click.Context,
    task_name: str | None,
    resume_dir: str | None,
    quiet: bool,
    as_json: bool,
    **options: Any,
) -> None:
    """Train a task's model, keep the best checkpoint and evaluate it on the test split; the
    final table shows each metric beside its trivial baseline (the majority class).

    \b
    Examples:
      rnnkit run --task video-action
      rnnkit run --task video-action --data videofolder:~/videos --set model.head=lstm
      rnnkit run --task image-classify --data mnist:~/data --set model.head=lstm --epochs 5
      rnnkit run --resume runs/image-classify/2026-11-23T10-00-00
      torchrun --nproc-per-node 2 -m rnnvision_kit run --task image-classify --device cpu
    """
    host = _host(ctx)
    last = None
    if resume_dir:
        from rnnvision_kit.runner.pipeline import load_run
        from rnnvision_kit.runner.resume import finished, resume_config

        last = load_run(host.registries, Path(resume_dir), "last", "resume")  # read once
        wanted = _requested_on_resume(host, last.config, task_name, options)
        config, notes = resume_config(last.config, wanted)
        for note in notes:
            click.echo(f"rnnkit: {note}", err=True)
        done = finished(last.checkpoint, config, last.run_dir)
        if done is not None:  # nothing changes (--epochs above those trained continues it)
            if int(os.environ.get("RANK", "0")) == 0:
                click.echo(f"rnnkit: {done}", err=True)
                if as_json:
                    click.echo(last.run_dir.summary.read_text().rstrip())
            return
        task = last.task
    else:
        if not task_name:
            raise click.UsageError("--task is required (see `rnnkit tasks`), or --resume RUN_DIR")
        scaled: list[str] = []
        config, task = _open_configured(host, task_name, options, scaled)  # before torch
        if scaled and not quiet and int(os.environ.get("RANK", "0")) == 0:
            click.echo(f"rnnkit: {'; '.join(scaled)} (set them to override)", err=True)
    from rnnvision_kit.runner.run import train

    summary = train(
        host.registries,
        config,
        task=task,
        resume=last,
        events=host.events,
        quiet=quiet or as_json,
        echo=lambda text: click.echo(text, err=as_json),
    )
    if int(os.environ.get("RANK", "0")) != 0:
        return
    if summary.get("run_dir") and not quiet:
        from rnnvision_kit.runner.health import run_notices

        for line in run_notices(summary["run_dir"], config):  # training-health notices
            click.echo(f"rnnkit: notice: {line}", err=True)
    if as_json:
        from rnnvision_kit.runner.records import to_jsonable

        click.echo(json.dumps(to_jsonable(summary), indent=2))
    else:
        _print_summary(summary)


def _requested_on_resume(
    host: PluginHost, saved: Any, task_name: str | None, options: dict[str, Any]
) -> list[Any]:
    """The settings that ``run --resume`` options ask for, each with the option as typed."""
    from rnnvision_kit.config import load_yaml, parse_override
    from rnnvision_kit.runner.pipeline import data_source
    from rnnvision_kit.runner.resume import Requested, flat_settings

    wanted: list[Requested] = []
    if task_name:
        wanted.append(Requested("task", task_name, f"--task {task_name}"))
    if options.get("config_file"):
        values = load_yaml(options["config_file"])
        for key, value in flat_settings(saved, values).items():
            wanted.append(Requested(key, value, f"--config {options['config_file']} ({key})"))
    if options.get("data"):
        source, path = data_source(options["data"], host.registries)
        wanted.append(Requested("data.source", source, f"--data {options['data']}"))
        wanted.append(Requested("data.path", path, f"--data {options['data']}"))
    shortcuts = {"epochs": "train.epochs", "device": "train.device"}
    shortcuts |= {"precision": "train.precision", "seed": "seed", "out": "out_dir"}
    for option, key in shortcuts.items():
        if options.get(option) is not None:
            wanted.append(Requested(key, options[option], f"--{option} {options[option]}"))
    for text in options.get("overrides") or ():
        key, value = parse_override(text)
        wanted.append(Requested(key, value, f"--set {text}"))
    return wanted


@cli.command("eval", context_settings=CONTEXT)
@click.argument("run_dir", type=click.Path())
@click.option("--data", help="Evaluate on another data source, NAME or NAME:PATH.")
@click.option(
    "--split", type=click.Choice(["train", "val", "test"]), default="test", show_default=True
)
@click.option(
    "--checkpoint", type=click.Choice(["best", "last"]), default="best", show_default=True
)
@click.option("--set", "overrides", multiple=True, metavar="KEY=VALUE", help="Override a setting.")
@click.option("--json", "as_json", is_flag=True, help="Print the result as JSON.")
@click.pass_context
def eval_command(
    ctx: click.Context,
    run_dir: str,
    data: str | None,
    split: str,
    checkpoint: Checkpoint,
    overrides: tuple[str, ...],
    as_json: bool,
) -> None:
    """Re-evaluate a run's checkpoint: print the metrics beside the trivial baseline, then
    write RUN_DIR/eval-SPLIT.json (eval-SPLIT-last.json for --checkpoint last; a run folder that
    cannot be written is one error line after the metrics, exit code 2).

    \b
    Example:
      rnnkit eval runs/image-classify/2026-11-23T10-00-00 --data imagefolder:~/digits-test
    """
    from rnnvision_kit.config import parse_data_source, parse_override

    values: dict[str, Any] = {}
    if data:
        source, path = parse_data_source(data, _host(ctx).registries.datasets)
        values["data"] = {"source": source, "path": path}
    for text in overrides:
        key, value = parse_override(text)
        values[key] = value
    _check_eval_settings(_host(ctx), Path(run_dir).expanduser(), values)
    from rnnvision_kit.runner.run import evaluate_run  # torch: after the settings are checked

    def show(result: dict[str, Any]) -> None:  # before anything is written
        if as_json:
            from rnnvision_kit.runner.records import to_jsonable

            click.echo(json.dumps(to_jsonable(result), indent=2))
            return
        _print_results(split, result["metrics"], result.get("details") or {})

    evaluate_run(
        _host(ctx).registries,
        Path(run_dir).expanduser(),
        overrides=values,
        split=split,
        checkpoint=checkpoint,
        show=show,
    )


@cli.command(context_settings=CONTEXT)
@click.argument("run_dir", type=click.Path())
@click.argument("files", nargs=-1, required=True, type=click.Path())
@click.option("--top-k", default=5, show_default=True, help="Number of labels per file.")
@click.option(
    "--out", "out_dir", type=click.Path(), help="Folder for files a task writes (plots, masks)."
)
@click.option(
    "--horizon",
    type=click.IntRange(min=1),
    help="Frames to predict (video-predict; default: the run's data.eval_horizon).",
)
@click.option("--json", "as_json", is_flag=True, help="Print predictions as JSON.")
@click.pass_context
def predict(
    ctx: click.Context,
    run_dir: str,
    files: tuple[str, ...],
    top_k: int,
    out_dir: str | None,
    horizon: int | None,
    as_json: bool,
) -> None:
    """Predict labels for files with a run's best checkpoint.

    Records with a timeline (video-action, on a video longer than a clip) get a line per
    window, and the plot's path (in --out DIR, else RUN_DIR/predict; a plot that cannot be
    written is a warning line).
    Each file's result is printed as it comes; a file that cannot be read is a line
    `rnnkit: error: FILE: reason` on stderr, the others go on, and the exit code is 1. With --json, the array
    holds one record per result, `{"file": ..., "error": ...}` for a file that failed.

    \b
    Examples:
      rnnkit predict runs/video-action/2026-11-23T10-00-00 clip.mp4 --out predictions
      rnnkit predict runs/image-classify/2026-11-23T10-00-00 digit.png --top-k 3 --json
      rnnkit predict runs/video-predict/2026-11-23T10-00-00 clip.mp4 --horizon 20
    """
    from rnnvision_kit.runner.run import predict_files

    def show(record: dict[str, Any]) -> None:
        if "error" in record:
            click.echo(f"rnnkit: error: {record['file']}: {record['error']}", err=True)
        elif not as_json:
            click.echo(_prediction_lines(record))

    records = predict_files(
        _host(ctx).registries,
        Path(run_dir).expanduser(),
        list(files),
        top_k=top_k,
        out_dir=Path(out_dir).expanduser() if out_dir else None,
        on_record=show,
        horizon=horizon,
    )
    if as_json:
        from rnnvision_kit.runner.records import to_jsonable

        click.echo(json.dumps(to_jsonable(records), indent=2, default=str))
    ctx.exit(1 if any("error" in record for record in records) else 0)


@cli.command(context_settings=CONTEXT)
@click.argument("run_dir", type=click.Path())
@click.argument("source")
@click.option(
    "--every",
    default=1,
    show_default=True,
    type=click.IntRange(min=1),
    help="A record every N frames the model reads (it still steps on every one).",
)
@click.option(
    "--out",
    type=click.Path(),
    help="FILE.jsonl for the records, FILE.mp4 for an overlay video (seg-refine, video-predict), "
    "or a folder "
    "(DIR/stream.jsonl and the files a task writes). Default: records on stdout, files in "
    "RUN_DIR/stream/NAME.",
)
@click.option(
    "--timeout",
    default=10.0,
    show_default=True,
    type=click.FloatRange(min=0),
    help="Seconds to wait for the next frame (and for the source to open); 0: forever.",
)
@click.option("--max-frames", type=click.IntRange(min=1), help="Stop after reading N frames.")
@click.option("--top-k", default=5, show_default=True, help="Labels per record (video-action).")
@click.option(
    "--realtime",
    is_flag=True,
    help="Pace frames at the source's frame rate (a file plays as a camera would) and drop, "
    "counting them, those that come while the model is busy (no growing lag).",
)
@click.option(
    "--allow-protocols",
    metavar="A,B",
    default="",
    help="FFmpeg protocols the source may use besides its own (a URL's family: http -> "
    "http,tcp; https -> https,tls,tcp; rtsp -> rtsp,rtp,udp,tcp; a local file -> file). "
    "Also lets a local playlist (.m3u8, ffconcat) play, opening what it lists with them.",
)
@click.pass_context
def stream(
    ctx: click.Context,
    run_dir: str,
    source: str,
    every: int,
    out: str | None,
    timeout: float,
    max_frames: int | None,
    top_k: int,
    realtime: bool,
    allow_protocols: str,
) -> None:
    """Run a recurrent model on a video stream frame by frame, carrying its state.

    SOURCE is a video file, a folder of frames, a camera (/dev/video0, through v4l2) or a URL
    PyAV opens (rtsp://, http://). Each new frame costs one encoder call and one recurrent
    step. Records are JSON lines (video-action: top labels per frame, then a label timeline;
    seg-refine: a mask per frame); a closing line on stderr gives the frames read and those the
    model processed (video-action reads every data.stride-th frame, as it trained), processed
    frames per second and the real-time factor (seconds of video per second; >= 1 keeps up). It ends at
    the end of the stream, after --max-frames, on Ctrl-C, or, with exit code 1, when no frame
    comes for --timeout seconds or a read error breaks it. Models that need the whole clip (bidirectional, mean or attention
    pooling) are refused: train with --set model.bidirectional=false (and model.pooling=last).
    FFmpeg may use only the source's own protocols: an HLS playlist at an http:// URL cannot
    make it read file:// or another scheme; --allow-protocols widens that.

    \b
    Examples:
      rnnkit stream runs/video-action/2026-11-23T10-00-00 long.mp4 --every 5 --out long.jsonl
      rnnkit stream runs/video-action/2026-11-23T10-00-00 /dev/video0 --top-k 3
      rnnkit stream runs/seg-refine/2026-11-23T10-00-00 rtsp://camera/live --out masks.mp4
    """
    from rnnvision_kit.runner.stream import stream_run

    summary = stream_run(
        _host(ctx).registries,
        Path(run_dir).expanduser(),
        source,
        every=every,
        out=Path(out).expanduser() if out else None,
        timeout=timeout,
        max_frames=max_frames,
        top_k=top_k,
        realtime=realtime,
        allow_protocols=tuple(p.strip() for p in allow_protocols.split(",") if p.strip()),
    )
    click.echo(summary.line(), err=True)
    ctx.exit(1 if summary.failed else 0)


@cli.command("export", context_settings=CONTEXT)
@click.argument("run_dir", type=click.Path())
@click.option(
    "--format",
    "fmt",
    type=click.Choice(["onnx", "exported-program"]),
    default="onnx",
    show_default=True,
    help="onnx (needs the export extra) or exported-program (torch.export, .pt2).",
)
@click.option(
    "--out",
    type=click.Path(),
    help="The model file (default RUN_DIR/export/model.onnx or model.pt2); the JSON sidecar "
    "is written beside it as FILE.json.",
)
@click.option(
    "--checkpoint", type=click.Choice(["best", "last"]), default="best", show_default=True
)
@click.pass_context
def export_command(
    ctx: click.Context, run_dir: str, fmt: str, out: str | None, checkpoint: Checkpoint
) -> None:
    """Export a run's model for deployment, its recurrent state as explicit inputs and outputs.

    A model that streams (video-action with a unidirectional head and last pooling, seg-refine
    with a unidirectional refinement) takes new frames and the state, and returns the logits
    and the next state; any other takes a whole clip. The time axis is dynamic (an exported
    program: one frame per call, or the training clip's length). Before the file is written,
    onnxruntime (or the reloaded program) is checked against PyTorch on inputs of several
    lengths; the export fails above a difference of 1e-4. The JSON sidecar lists inputs,
    outputs, states, preprocessing (frame size, mean/std) and class names: onnxruntime and
    PyAV are all a user needs (docs/deploy.md).

    \b
    Examples:
      rnnkit export runs/video-action/2026-11-23T10-00-00
      rnnkit export runs/seg-refine/2026-11-23T10-00-00 --out seg.onnx
      rnnkit export runs/image-classify/2026-11-23T10-00-00 --format exported-program
    """
    from rnnvision_kit.runner.export import export_run

    result = export_run(
        _host(ctx).registries,
        Path(run_dir).expanduser(),
        fmt=fmt,
        out=Path(out).expanduser() if out else None,
        checkpoint=checkpoint,
    )
    sizes = ", ".join(f"{result.vary}={n}: {d:.1e}" for n, d in result.differences.items())
    click.echo(f"exported {result.task} ({result.mode}) to {result.path}")
    click.echo(
        f"checked with {result.checked_with} against PyTorch: {sizes}; largest difference "
        f"{result.largest:.1e} (tolerance {result.tolerance:.0e})"
    )
    click.echo(f"sidecar: {result.sidecar}")


def _labels(top: list[dict[str, Any]]) -> str:
    return ", ".join(f"{p['label']} {p['score']:.3f}" for p in top)


def _prediction_lines(record: dict[str, Any]) -> str:
    """``file: top labels``, then a line per ``timeline`` window and the ``timeline_png``;
    predicted frames (video-predict) as where they went; another record without ``top`` as
    JSON."""
    if "strip_png" in record:
        first, last = record["context_frames"]
        return (
            f"{record['file']}: {record['horizon']} frames predicted after frames {first}-{last}"
            f"\n  video: {record['video']}\n  gif: {record['gif']}\n  strip: {record['strip_png']}"
        )
    if not record.get("top"):
        return json.dumps(record)
    lines = [f"{record['file']}: {_labels(record['top'])}"]
    for window in record.get("timeline", []):
        span = f"{window['start_s']:.2f}-{window['end_s']:.2f} s"
        lines.append(f"  {span}: {_labels(window['top'])}")
    if "timeline_png" in record:
        lines.append(f"  timeline plot: {record['timeline_png']}")
    return "\n".join(lines)


@cli.command("check-data", context_settings=CONTEXT)
@click.option("--task", "task_name", required=True, help="Task name (see `rnnkit tasks`).")
@click.option("--data", help="Data source, NAME or NAME:PATH, e.g. videofolder:~/videos.")
@click.option("--config", "config_file", type=click.Path(), help="YAML file of settings.")
@click.option("--set", "overrides", multiple=True, metavar="KEY=VALUE", help="Override a setting.")
@click.option(
    "--deep",
    is_flag=True,
    help="Decode every frame of every file (in parallel), not just probe: finds mid-file "
    "corruption and measures the decode rate.",
)
@click.pass_context
def check_data(ctx: click.Context, task_name: str, deep: bool, **options: Any) -> None:
    """Scan a task's data once, without training: unreadable or suspicious files, class counts.

    A scan probes each file (opens it and decodes its first frame); --deep decodes every
    frame of every file, with a progress bar on a terminal, and lists files that fail part-way
    with the frame and time where decoding fails, and the whole-file decode rate. Exits
    non-zero only when nothing is readable. Notices about the data set (such as 0/255 masks
    read as 0/1), shown by other commands once per data set, are shown here every time.

    \b
    Examples:
      rnnkit check-data --task video-action --data videofolder:~/videos
      rnnkit check-data --task video-action --data videofolder:~/videos --deep
    """
    host = _host(ctx)
    config, task = _open_configured(host, task_name, options)  # settings before torch
    from rnnvision_kit.data.cache import every_notice
    from rnnvision_kit.runner.run import check_data as scan

    with every_notice():  # data-set notices every time here, not once per data set
        result = scan(host.registries, config, deep=deep, task=task)
    click.echo(format_table(result.headers, result.rows))
    for note in result.notes:
        click.echo(note)
    ctx.exit(0 if result.usable else 1)


def _local_plugins(argv: list[str]) -> tuple[list[str], list[str]]:
    """Take ``--plugin X`` / ``--plugin=X`` out of argv wherever it is: plugins must be loaded
    before click parses, because they may add commands."""
    found, rest, args = [], [], iter(argv)
    for arg in args:
        if arg == "--plugin":
            value = next(args, None)
            if value is None:
                raise click.UsageError("--plugin needs a module name or a .py file")
            found.append(value)
        elif arg.startswith("--plugin="):
            found.append(arg.split("=", 1)[1])
        else:
            rest.append(arg)
    return found, rest


cli.add_command(sweep_command)


def main(argv: Sequence[str] | None = None) -> None:
    """Entry point of ``rnnkit`` and ``python -m rnnvision_kit``."""
    try:
        _main(argv)
    except SystemExit as done:
        _leave_process_group(done.code)
        raise
    except BaseException:  # an error --debug re-raises, or a bug: the traceback, exit 1
        if _joined_process_group():
            traceback.print_exc()
            _leave_process_group(1)
        raise
    _leave_process_group(None)


def exit_status(code: object) -> int:
    """The process exit status ``sys.exit(code)`` gives (a message: printed, and 1)."""
    if code is None:
        return 0
    if isinstance(code, int):
        return code
    click.echo(str(code), err=True)
    return 1


def _leave_process_group(code: object) -> None:
    """A DDP rank (it joined a process group) ends here, without the interpreter's finalization:
    see :func:`rnnvision_kit.runner.distributed.exit_without_finalizing`. torch is not imported
    for this: a process that never imported the module never joined a group."""
    if _joined_process_group():
        sys.modules["rnnvision_kit.runner.distributed"].exit_without_finalizing(exit_status(code))


def _joined_process_group() -> bool:
    distributed = sys.modules.get("rnnvision_kit.runner.distributed")
    return distributed is not None and distributed.joined_process_group()


def _main(argv: Sequence[str] | None) -> None:
    args = list(sys.argv[1:] if argv is None else argv)
    debug = "--debug" in args
    try:
        local, args = _local_plugins(args)
        host = build_host(local)
        host.add_commands(cli)
        code = cli.main(args=args, obj=host, prog_name="rnnkit", standalone_mode=False)
        if isinstance(code, int) and code:
            sys.exit(code)  # ctx.exit(n) returns n when click runs outside standalone mode
    except click.exceptions.Abort:
        click.echo("aborted", err=True)
        sys.exit(130)
    except click.ClickException as error:
        error.show()
        sys.exit(error.exit_code)
    except click.exceptions.Exit as done:
        sys.exit(done.exit_code)
    except RunInterrupted as error:  # 130 after SIGINT, 143 after SIGTERM
        if str(error):  # (DDP ranks other than 0 stop silently)
            click.echo(f"rnnkit: {error}", err=True)
        sys.exit(error.exit_code)
    except RnnkitError as error:
        if debug:
            raise
        click.echo(f"rnnkit: error: {error}", err=True)
        sys.exit(2)
    except KeyboardInterrupt:
        click.echo("rnnkit: aborted", err=True)
        sys.exit(130)
