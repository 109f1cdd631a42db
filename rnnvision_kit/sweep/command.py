"""The ``rnnkit sweep`` command: settings checked, runs launched, results written and printed."""

from __future__ import annotations

import dataclasses
import json
import os
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import click

from rnnvision_kit.errors import warn
from rnnvision_kit.sweep.cost import cached_stream_cost
from rnnvision_kit.sweep.folder import ERROR_FILE, LOG_FILE, Slot, flat, record_settings, slots
from rnnvision_kit.sweep.grid import Point, grid_points, parse_grid, parse_seeds
from rnnvision_kit.sweep.launch import Launcher, Outcome, _error_line, _tail
from rnnvision_kit.sweep.report import (
    RunResult,
    build_rows,
    collapse_lines,
    csv_text,
    main_metric,
    markdown,
    plot,
    scalar_metrics,
    table,
)


def _validated(
    host: Any, task: str, options: dict[str, Any], sets: Sequence[str], seed: int
) -> Any:
    """The run config of these settings, checked as ``rnnkit run`` checks it (one line naming
    the key; torch not imported for a task that declares its defaults)."""
    from rnnvision_kit.runconfig import configured

    return configured(host.registries, task, {**options, "overrides": tuple(sets), "seed": seed})[0]


def _local_plugins(host: Any) -> list[str]:
    """``--plugin X`` arguments for the runs: the local plugins the sweep itself loaded."""
    args = []
    for record in host.records.values():
        if record.source == "--plugin" and not record.broken:
            args += ["--plugin", record.target]
    return args


@dataclasses.dataclass(frozen=True)
class Commands:
    """The ``python -m rnnvision_kit run`` command lines of a sweep's runs."""

    python: list[str]  # interpreter, module and --plugin arguments
    task: str
    options: dict[str, Any]  # data, config_file, epochs, device
    sets: list[str]  # --set of every run, the threads last

    def __call__(self, slot: Slot) -> list[str]:
        """A fresh run of ``slot`` (``--out`` its folder), or ``--resume`` of its interrupted
        run folder."""
        opts = self.options
        device = ["--device", opts["device"]] if opts.get("device") else []
        resume = slot.resumable()
        if resume is not None:
            threads = ["--set", self.sets[-1]]
            return [*self.python, "run", "--resume", str(resume), *threads, *device, "--quiet"]
        args = [*self.python, "run", "--task", self.task]
        if opts.get("data"):
            args += ["--data", opts["data"]]
        if opts.get("config_file"):
            args += ["--config", opts["config_file"]]
        for text in [*self.sets[:-1], *slot.point.sets, self.sets[-1]]:
            args += ["--set", text]
        if opts.get("epochs") is not None:
            args += ["--epochs", str(opts["epochs"])]
        return [*args, *device, "--seed", str(slot.seed), "--out", str(slot.folder), "--quiet"]


def _done_line(outcome: Outcome, offset: int) -> str:
    """The end of a run's progress line; a failed run's output tail goes to its error file."""
    slot = outcome.slot
    if outcome.run_dir is None:
        tail = _tail(slot.folder / LOG_FILE, offset)
        error_file = slot.folder / ERROR_FILE
        error_file.write_text(f"{slot.label}: exit code {outcome.code}\n{tail}\n")
        return f"FAILED in {outcome.seconds:.1f} s: {_error_line(tail)} (see {error_file})"
    from rnnvision_kit.runner.rundir import RunDir

    summary = json.loads(RunDir(outcome.run_dir).summary.read_text())
    metrics = scalar_metrics(summary)
    name = main_metric([summary], list(metrics))
    shown = f" ({name.replace('/', ' ')} {metrics[name]:.3f})" if name else ""
    return f"done in {outcome.seconds:.1f} s{shown}"


def _thread_share(threads: int | None, jobs: int, task_threads: int | None) -> int:
    """Threads per run: ``--threads`` (default: the CPU count) split between the jobs; without
    ``--threads``, at most the task's own ``train.threads`` (a small model can be faster on
    fewer)."""
    share = max(1, (threads or os.cpu_count() or 1) // jobs)
    return min(share, task_threads) if threads is None and task_threads else share


CONTEXT = {"help_option_names": ["-h", "--help"], "max_content_width": 100}


@click.command("sweep", context_settings=CONTEXT)
@click.option("--task", "task_name", required=True, help="Task name (see `rnnkit tasks`).")
@click.option("--data", help="Data source, NAME or NAME:PATH, e.g. digits, mnist:~/data.")
@click.option("--config", "config_file", type=click.Path(), help="YAML file of settings.")
@click.option(
    "--grid",
    "grids",
    multiple=True,
    metavar="KEY=V1,V2",
    help="Values of a setting to compare (repeatable: the cartesian product is run).",
)
@click.option(
    "--seeds", default="0", show_default=True, help="Seeds of every configuration: 0,1,2 or 0-2."
)
@click.option(
    "--set",
    "overrides",
    multiple=True,
    metavar="KEY=VALUE",
    help="A setting of every run, e.g. --set train.lr=0.01 (repeatable).",
)
@click.option("--epochs", type=int, help="Shortcut for --set train.epochs=N.")
@click.option("--device", help="auto (default), cpu, cuda or cuda:N.")
@click.option(
    "--jobs", default=1, show_default=True, type=click.IntRange(min=1), help="Runs at a time."
)
@click.option(
    "--threads",
    type=click.IntRange(min=1, max=1024),
    help="CPU threads of all runs together, split between --jobs [default: the CPU count, at "
    "most the task's train.threads per run].",
)
@click.option(
    "--out", type=click.Path(), help="The sweep folder (default: sweeps/TASK); again to resume."
)
@click.pass_context
def sweep_command(
    ctx: click.Context,
    task_name: str,
    grids: tuple[str, ...],
    seeds: str,
    jobs: int,
    threads: int | None,
    out: str | None,
    **options: Any,
) -> None:
    """Run a grid of settings over seeds and compare them in one table (Markdown, CSV, plot).

    Every combination of the --grid values is trained once per seed, each a normal run folder
    (`rnnkit run` in a subprocess) under OUT/CONFIG/seedK/. All settings are checked before the
    first run starts. The same command again skips finished runs, resumes interrupted ones and
    runs the rest; a longer grid adds runs. A run that fails is recorded
    (OUT/CONFIG/seedK/sweep-error.txt), the others go on, and the exit code is 1. The table,
    also in OUT/results.md and OUT/results.csv (and OUT/results.png), gives per configuration
    each test metric as mean ± std over seeds, the parameters, the training time, and the
    milliseconds per streamed frame and state bytes of models that stream (batch 1, 1 thread).

    \b
    Examples:
      rnnkit sweep --task video-action --grid model.head=gru,lstm,mean --seeds 0,1,2
      rnnkit sweep --task image-classify --data mnist:~/data --grid model.head=gru,lstm \\
          --grid model.hidden_size=64,128 --epochs 5 --jobs 2 --out sweeps/mnist
    """
    host = ctx.find_root().obj
    grid = parse_grid(grids)
    seed_list = parse_seeds(seeds)
    points = grid_points(grid)
    base_sets = list(options.pop("overrides") or ())
    out_dir = Path(out or Path("sweeps") / task_name).expanduser()

    # every setting checked before anything runs or is written
    base = _validated(host, task_name, options, base_sets, seed_list[0])
    share = _thread_share(threads, jobs, base.train.threads)
    sets = [*base_sets, f"train.threads={share}"]
    for point in points:
        _validated(host, task_name, options, [*base_sets, *point.sets, sets[-1]], seed_list[0])

    data = f"{base.data.source}:{base.data.path}" if base.data.path else base.data.source
    settings = {
        "task": task_name,
        "data": options.get("data"),
        "data_source": data,
        "config": options.get("config_file"),
        "sets": base_sets,
        "epochs": options.get("epochs"),
        "device": options.get("device"),
        "grid": dict(grid),
        "seeds": seed_list,
        "jobs": jobs,
        "threads": share,
        "base": json.loads(json.dumps(flat(base.to_dict()), default=str)),
    }
    configurations = record_settings(out_dir, settings, points)
    slug = {json.dumps(c["grid"], sort_keys=True): c["slug"] for c in configurations}

    every = [
        s
        for p in points
        for s in slots(out_dir, p, seed_list, slug[json.dumps(p.to_dict(), sort_keys=True)])
    ]
    todo = [s for s in every if s.finished() is None]
    click.echo(
        f"sweep {out_dir}: {len(points)} configuration(s) x {len(seed_list)} seed(s) = "
        f"{len(every)} run(s); {len(every) - len(todo)} finished (skipped), {len(todo)} to run"
        + (f", {min(jobs, len(todo))} at a time, {share} thread(s) each" if todo else "")
    )
    if not todo:
        click.echo("nothing to run: every run of this sweep has finished")
    python = [sys.executable, "-m", "rnnvision_kit", *_local_plugins(host)]
    commands = Commands(python, task_name, options, sets)
    outcomes = Launcher(commands, jobs, share, click.echo).run(todo, _done_line)
    _report(host.registries, out_dir, configurations)
    failed = [o for o in outcomes if o.run_dir is None]
    if failed:
        click.echo(
            f"rnnkit: error: {len(failed)} of {len(outcomes)} run(s) failed (see "
            f"{ERROR_FILE} in their folders)",
            err=True,
        )
        ctx.exit(1)


def _report(registries: Any, out_dir: Path, configurations: Sequence[dict[str, Any]]) -> None:
    """Measure what is missing, then write and print the comparison of every configuration."""
    from rnnvision_kit.runner.rundir import RunDir

    points = [Point(tuple(c["grid"].items())) for c in configurations]
    results: dict[Point, list[RunResult]] = {}
    for point, entry in zip(points, configurations, strict=True):
        results[point] = []
        for slot in slots(out_dir, point, entry["seeds"], entry.get("slug")):
            run_dir = slot.finished()
            if run_dir is None:
                results[point].append(RunResult(slot, error=slot.error()))
                continue
            try:
                summary = json.loads(RunDir(run_dir).summary.read_text())
            except (OSError, ValueError) as problem:
                results[point].append(RunResult(slot, error=f"summary.json: {problem}"))
                continue
            cost = cached_stream_cost(registries, slot, run_dir)
            results[point].append(RunResult(slot, summary, cost))
    summaries = [r.summary for rs in results.values() for r in rs if r.summary]
    metrics = list(dict.fromkeys(m for s in summaries for m in scalar_metrics(s)))
    keys = list(dict.fromkeys(k for p in points for k, _ in p.values))
    rows = build_rows(points, results, metrics)
    headers, cells = table(rows, keys, metrics)
    (out_dir / "results.md").write_text(markdown(headers, cells))
    (out_dir / "results.csv").write_text(csv_text(rows, keys, metrics))
    from rnnvision_kit.texttable import format_table

    click.echo(format_table(headers, cells))
    for line in collapse_lines(rows, results):
        warn(line)
    main = main_metric(summaries, metrics)
    if main is not None:
        plot(rows, main, out_dir / "results.png")
    click.echo(
        f"results: {out_dir / 'results.md'}, results.csv" + (", results.png" if main else "")
    )
