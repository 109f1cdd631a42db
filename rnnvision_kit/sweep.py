"""``rnnkit sweep``: a grid of settings over seeds, each a normal run folder, and one comparison.

The cartesian product of the ``--grid`` settings is run over every seed of ``--seeds``, each as
``python -m rnnvision_kit run ...`` in a subprocess (one at a time, or ``--jobs N`` at a time
with the CPU threads split between them). Every grid point's settings are validated in this
process first, by the same code as ``rnnkit run``, so a bad value is one line before anything
runs. The sweep folder ``OUT`` holds:

- ``sweep.json``: the command's settings and every configuration the folder has run;
- ``<slug>/seed<k>/``: one slot per configuration and seed: ``rnnkit run --out`` of that slot,
  so its run folder is ``<slug>/seed<k>/<task>/<timestamp>/``; ``sweep-run.log`` (the run's
  output), ``sweep-error.txt`` (the tail of a failed run's output) and ``stream-cost.json``
  (milliseconds per streamed frame and state bytes of the finished run's best model);
- ``results.md``, ``results.csv`` and ``results.png``: one row (bar) per configuration.

Running the same command again skips finished runs (a run folder with ``summary.json``),
resumes interrupted ones (``rnnkit run --resume`` on a run folder with ``last.pt``) and starts
the others afresh in a new run folder (nothing is deleted); a changed grid adds runs.
"""

from __future__ import annotations

import contextlib
import csv
import dataclasses
import hashlib
import io
import itertools
import json
import os
import re
import signal
import statistics
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any

import click

from rnnvision_kit.errors import ConfigError, RunInterrupted

__all__ = [
    "Point",
    "Slot",
    "parse_grid",
    "parse_seeds",
    "state_bytes",
    "stream_cost",
    "sweep_command",
]

SETTINGS_FILE = "sweep.json"
ERROR_FILE = "sweep-error.txt"
LOG_FILE = "sweep-run.log"
COST_FILE = "stream-cost.json"
# Settings that change where or how fast a run goes, not its results: they may differ between
# invocations on one sweep folder (the others must not: the rows would mix two experiments).
VOLATILE = ("seed", "out_dir", "train.threads", "train.device", "data.num_workers")
VOLATILE += ("train.checkpoint_every",)
# Keys the sweep sets itself, refused in --grid.
RESERVED = {"seed": "--seeds", "out_dir": "--out", "train.threads": "--threads"}
BOOKKEEPING = ("/samples", "/unreadable")  # counts in summary["test"], not metrics
STREAM_FRAMES, STREAM_WARMUP = 100, 10
ERROR_TAIL = 40  # lines of a failed run's output kept in sweep-error.txt


# ------------------------------------------------------------------------------ the grid


def split_values(text: str) -> list[str]:
    """``"gru,lstm"`` -> ``["gru", "lstm"]``; commas inside brackets or quotes stay
    (``"[8],[16,4]"`` -> ``["[8]", "[16,4]"]``)."""
    values, depth, quote, current = [], 0, "", []
    for char in text:
        if quote:
            quote = "" if char == quote else quote
        elif char in "'\"":
            quote = char
        elif char in "[{":
            depth += 1
        elif char in "]}":
            depth -= 1
        elif char == "," and depth == 0:
            values.append("".join(current).strip())
            current = []
            continue
        current.append(char)
    values.append("".join(current).strip())
    return values


def parse_grid(texts: Sequence[str]) -> list[tuple[str, list[str]]]:
    """``--grid KEY=V1,V2`` options -> ``[(KEY, [V1, V2]), ...]`` (values as typed, each once)."""
    grid: list[tuple[str, list[str]]] = []
    for text in texts:
        key, sep, raw = text.partition("=")
        key = key.strip()
        values = list(dict.fromkeys(split_values(raw))) if sep else []
        if not key or not sep or not all(values):
            raise click.BadParameter(
                f"{text!r}: expected KEY=V1,V2,..., e.g. model.head=gru,lstm", param_hint="--grid"
            )
        if key in RESERVED:
            raise click.BadParameter(
                f"{key}: the sweep sets it; use {RESERVED[key]}", param_hint="--grid"
            )
        if any(key == seen for seen, _ in grid):
            raise click.BadParameter(f"{key} is given twice", param_hint="--grid")
        grid.append((key, values))
    return grid


def parse_seeds(text: str) -> list[int]:
    """``"0,1,2"`` -> ``[0, 1, 2]``; ``"0-4"`` is ``0,1,2,3,4``."""
    seeds: list[int] = []
    for part in text.split(","):
        first, dash, last = part.strip().partition("-")
        try:
            low = int(first)
            high = int(last) if dash else low
        except ValueError:
            raise click.BadParameter(
                f"{text!r}: expected seeds like 0,1,2 or 0-4", param_hint="--seeds"
            ) from None
        if low < 0 or high < low or high >= 2**64:
            raise click.BadParameter(
                f"{part.strip()!r}: seeds are integers >= 0, ranges low-high", param_hint="--seeds"
            )
        seeds.extend(range(low, high + 1))
    return list(dict.fromkeys(seeds))


_SAFE = re.compile(r"[^A-Za-z0-9._=+-]")


@dataclasses.dataclass(frozen=True)
class Point:
    """One configuration of the grid: ``(key, value as typed)`` pairs in grid order."""

    values: tuple[tuple[str, str], ...]

    @property
    def sets(self) -> list[str]:
        """Its ``--set KEY=VALUE`` arguments."""
        return [f"{key}={value}" for key, value in self.values]

    @property
    def label(self) -> str:
        """``model.head=gru model.hidden_size=8`` (``base`` for the empty grid)."""
        return " ".join(self.sets) or "base"

    @property
    def slug(self) -> str:
        """Its folder name: ``model.head=gru,model.hidden_size=8``; characters a file name
        should not hold become ``_``, with a hash of the settings so that names stay distinct."""
        text = ",".join(self.sets) or "base"
        safe = ",".join(_SAFE.sub("_", part) for part in self.sets) or "base"
        if safe != text or len(safe) > 120:
            digest = hashlib.sha256(text.encode()).hexdigest()[:8]
            safe = f"{safe[:100]}-{digest}"
        return safe

    def to_dict(self) -> dict[str, str]:
        return dict(self.values)


def grid_points(grid: Sequence[tuple[str, Sequence[str]]]) -> list[Point]:
    """The cartesian product of the grid, the first key varying slowest."""
    keys = [key for key, _ in grid]
    return [
        Point(tuple(zip(keys, combo, strict=True)))
        for combo in itertools.product(*(values for _, values in grid))
    ]


# ------------------------------------------------------------------------- sweep folder


@dataclasses.dataclass(frozen=True)
class Slot:
    """One run of the sweep: a configuration and a seed, and its folder."""

    point: Point
    seed: int
    folder: Path

    @property
    def label(self) -> str:
        return f"{self.point.label} seed={self.seed}"

    def run_dirs(self) -> list[Path]:
        """The run folders ``rnnkit run --out`` made here, oldest first."""
        found = [p for p in self.folder.glob("*/*/config.yaml")]
        return [p.parent for p in sorted(found, key=lambda p: (p.stat().st_mtime_ns, str(p)))]

    def finished(self) -> Path | None:
        done = [d for d in self.run_dirs() if (d / "summary.json").is_file()]
        return done[-1] if done else None

    def resumable(self) -> Path | None:
        """The newest run folder without a summary but with ``last.pt``, when it is the newest
        run folder (a later fresh start supersedes it)."""
        dirs = self.run_dirs()
        if dirs and (dirs[-1] / "last.pt").is_file() and not (dirs[-1] / "summary.json").is_file():
            return dirs[-1]
        return None

    def error(self) -> str | None:
        path = self.folder / ERROR_FILE
        return path.read_text() if path.is_file() else None


def slots(out: Path, point: Point, seeds: Sequence[int], slug: str | None = None) -> list[Slot]:
    """The runs of ``point``: ``OUT/<slug>/seed<k>`` for each seed."""
    return [Slot(point, seed, out / (slug or point.slug) / f"seed{seed}") for seed in seeds]


def flat(values: Any, prefix: str = "") -> dict[str, Any]:
    """A nested mapping as dotted keys."""
    if not isinstance(values, dict):
        return {prefix.rstrip("."): values}
    out: dict[str, Any] = {}
    for key, value in values.items():
        out.update(flat(value, f"{prefix}{key}."))
    return out


def _write_json(path: Path, data: Any) -> None:
    from rnnvision_kit.atomicfile import atomic_open

    with atomic_open(path, "w") as handle:
        json.dump(data, handle, indent=2, default=str)
        handle.write("\n")


def record_settings(out: Path, settings: dict[str, Any], points: Sequence[Point]) -> list[dict]:
    """Write ``OUT/sweep.json``: this command's settings and every configuration the folder has
    run (earlier ones kept, seeds merged). An existing sweep of another task, other data or other
    settings is refused with one line. Returns the configurations, in the order they came."""
    path = out / SETTINGS_FILE
    configurations: list[dict[str, Any]] = []
    if path.is_file():
        try:
            saved = json.loads(path.read_text())
            old_base = saved["base"]
            configurations = list(saved["configurations"])
        except (OSError, ValueError, KeyError, TypeError):
            raise ConfigError(f"{path}: not a sweep settings file (unreadable)") from None
        _check_same_sweep(path, saved, settings, old_base)
    seeds = settings["seeds"]
    known = {json.dumps(c["grid"], sort_keys=True): c for c in configurations}
    for point in points:
        entry = known.get(json.dumps(point.to_dict(), sort_keys=True))
        if entry is None:
            entry = {"grid": point.to_dict(), "slug": point.slug, "seeds": []}
            configurations.append(entry)
            known[json.dumps(point.to_dict(), sort_keys=True)] = entry
        entry["seeds"] = sorted(set(entry["seeds"]) | set(seeds))
    out.mkdir(parents=True, exist_ok=True)
    _write_json(path, {**settings, "configurations": configurations})
    return configurations


def _check_same_sweep(
    path: Path, saved: dict[str, Any], settings: dict[str, Any], old_base: dict[str, Any]
) -> None:
    hint = "choose another --out for a different sweep"
    if saved.get("task") != settings["task"]:
        raise ConfigError(
            f"{path}: a sweep of task {saved.get('task')!r}, not {settings['task']!r}; {hint}"
        )
    old_data, new_data = saved.get("data_source"), settings["data_source"]
    if old_data != new_data:
        raise ConfigError(f"{path}: a sweep on data {old_data}, not {new_data}; {hint}")
    new_base = settings["base"]
    for key in sorted(set(old_base) | set(new_base)):
        if key in VOLATILE or old_base.get(key) == new_base.get(key):
            continue
        raise ConfigError(
            f"{path}: the sweep there has {key}={old_base.get(key)!r}, this command "
            f"{key}={new_base.get(key)!r}; {hint} (or sweep {key} with --grid)"
        )


# ------------------------------------------------------------------------------ running


@dataclasses.dataclass
class Outcome:
    """What became of one run this invocation started."""

    slot: Slot
    seconds: float
    run_dir: Path | None = None  # None: it failed
    code: int = 0  # its exit code


def _error_line(text: str) -> str:
    """The line of a run's output that says why it failed: its last ``rnnkit: error:`` line,
    else its last line (a traceback's exception)."""
    lines = [line.strip() for line in text.splitlines() if line.strip()]
    errors = [line for line in lines if line.startswith("rnnkit: error:")]
    chosen = errors[-1] if errors else (lines[-1] if lines else "no output")
    return chosen.removeprefix("rnnkit: error: ")


class Launcher:
    """Runs slots as ``python -m rnnvision_kit run`` subprocesses, ``jobs`` at a time, each in
    its own session (a Ctrl-C or SIGTERM reaches the sweep, which passes it on once: each run
    saves ``last.pt`` and stops, as ``rnnkit run`` does)."""

    def __init__(
        self,
        command: Callable[[Slot], list[str]],
        jobs: int,
        threads: int,
        echo: Callable[[str], Any],
    ) -> None:
        self.command, self.jobs, self.threads, self.echo = command, jobs, threads, echo

    def run(self, todo: Sequence[Slot], on_done: Callable[[Outcome, int], str]) -> list[Outcome]:
        """Run ``todo``; ``on_done(outcome, log offset)`` gives the rest of each run's line. A
        SIGINT or SIGTERM starts nothing more, waits for the running ones to save and raises
        :class:`RunInterrupted`."""
        env = {**os.environ, "OMP_NUM_THREADS": str(self.threads)}
        pending = list(enumerate(todo, 1))
        running: dict[int, tuple[Slot, subprocess.Popen, float, int, Any]] = {}
        outcomes: list[Outcome] = []
        with _caught_signals() as caught:
            passed_on = 0
            while pending or running:
                if caught and len(caught) > passed_on:  # pass each signal on once
                    pending.clear()
                    for _, proc, *_ in running.values():
                        with contextlib.suppress(ProcessLookupError):
                            proc.send_signal(caught[-1])
                    passed_on = len(caught)
                while pending and len(running) < self.jobs:
                    number, slot = pending.pop(0)
                    running[number] = self._start(number, len(todo), slot, env)
                for number in [n for n, r in running.items() if r[1].poll() is not None]:
                    slot, proc, start, offset, log = running.pop(number)
                    log.close()
                    outcome = self._finish(slot, proc.returncode, time.monotonic() - start)
                    prefix = f"[{number}/{len(todo)}] {slot.label} ... "
                    if caught and outcome.run_dir is None:
                        self.echo(prefix + f"interrupted (exit code {proc.returncode})")
                        continue
                    outcomes.append(outcome)
                    self.echo(prefix + on_done(outcome, offset))
                time.sleep(0.05)
        if caught:
            name = signal.Signals(caught[0]).name
            error = RunInterrupted(
                f"sweep interrupted ({name}); run the same command again to resume it"
            )
            error.exit_code = 128 + caught[0]
            raise error
        return outcomes

    def _start(
        self, number: int, total: int, slot: Slot, env: dict[str, str]
    ) -> tuple[Slot, subprocess.Popen, float, int, Any]:
        slot.folder.mkdir(parents=True, exist_ok=True)
        args = self.command(slot)
        log = (slot.folder / LOG_FILE).open("a")
        offset = log.tell()
        log.write(f"$ {' '.join(args)}\n")
        log.flush()
        how = "resuming" if "--resume" in args else "started"
        self.echo(f"[{number}/{total}] {slot.label} {how} ({slot.folder})")
        proc = subprocess.Popen(
            args,
            stdout=log,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            env=env,
            start_new_session=True,
        )
        return slot, proc, time.monotonic(), offset, log

    def _finish(self, slot: Slot, code: int, seconds: float) -> Outcome:
        run_dir = slot.finished()  # its summary written: finished, as the next sweep sees it
        if run_dir is not None:
            with contextlib.suppress(FileNotFoundError):
                (slot.folder / ERROR_FILE).unlink()  # an earlier attempt's: superseded
            return Outcome(slot, seconds, run_dir)
        return Outcome(slot, seconds, code=code)


def _tail(path: Path, offset: int, lines: int = ERROR_TAIL) -> str:
    with path.open("rb") as handle:
        handle.seek(offset)
        text = handle.read().decode(errors="replace")
    return "\n".join(text.splitlines()[-lines:])


@contextlib.contextmanager
def _caught_signals() -> Iterator[list[int]]:
    """A list that SIGINT and SIGTERM append to (in the main thread; elsewhere it stays empty
    and the signals keep their handlers)."""
    caught: list[int] = []
    if threading.current_thread() is not threading.main_thread():
        yield caught
        return
    sigs = (signal.SIGINT, signal.SIGTERM)
    old = {sig: signal.signal(sig, lambda signum, _frame: caught.append(signum)) for sig in sigs}
    try:
        yield caught
    finally:
        for sig, previous in old.items():
            signal.signal(sig, previous)


# --------------------------------------------------------------------------- stream cost


def state_bytes(state: Any) -> int:
    """Bytes of a recurrent state: a tensor, or tuples, lists or dicts of them (None: 0)."""
    if state is None:
        return 0
    if hasattr(state, "element_size") and hasattr(state, "numel"):
        return int(state.numel() * state.element_size())
    if isinstance(state, dict):
        return sum(state_bytes(v) for v in state.values())
    if isinstance(state, list | tuple):
        return sum(state_bytes(v) for v in state)
    return 0


def _first_words(text: str, limit: int = 70) -> str:
    head = text.split(";")[0].strip()
    if len(head) <= limit:
        return head
    return head[:limit].rsplit(" ", 1)[0] + " ..."


def stream_cost(
    registries: Any, run_dir: Path, frames: int = STREAM_FRAMES, warmup: int = STREAM_WARMUP
) -> dict[str, Any]:
    """Median milliseconds per streamed frame (``model.step(model.encode_frame(frame), state)``
    at batch 1 on one thread, after ``warmup`` frames) and the state's bytes
    (``model.initial_state(1)``; ``state_bytes_after``: after the timed frames) of a run's best
    model; a model that cannot stream gets ``None`` and the reason in ``note``."""
    import torch

    from rnnvision_kit.runner.pipeline import build, load_run

    result: dict[str, Any] = {"run_dir": str(run_dir), "ms_per_frame": None, "state_bytes": None}
    threads = torch.get_num_threads()
    try:
        saved = load_run(registries, run_dir, "best.pt", "time streaming")
        built = build(
            saved.task,
            registries,
            saved.config,
            "predict",
            spec=saved.spec,
            weights=saved.checkpoint["model"],
            weights_source=str(saved.checkpoint_path),
        )
        torch.set_num_threads(1)
        model = built.model.eval()
        blocker = getattr(model, "stream_blocker", "it has no per-step API (encode_frame, step)")
        if blocker is not None:
            return {**result, "note": f"cannot stream: {blocker}"}
        height, width = built.spec.split_size("test")
        frame = torch.rand(1, built.spec.channels, height, width)
        with torch.inference_mode():
            try:
                initial = model.initial_state(1)
            except Exception:  # initial_state takes a frame or features (seg-refine)
                initial = None
            state, times = initial, []
            for n in range(warmup + frames):
                start = time.perf_counter()
                _, state = model.step(model.encode_frame(frame), state)
                if n >= warmup:
                    times.append(time.perf_counter() - start)
                if initial is None and n == 0:
                    initial = state
        return {
            **result,
            "ms_per_frame": statistics.median(times) * 1000,
            "state_bytes": state_bytes(initial),
            "state_bytes_after": state_bytes(state),
            "frames": frames,
            "warmup": warmup,
            "threads": 1,
            "note": None,
        }
    except Exception as error:  # a cost that cannot be measured is a note, not a failure
        first = (str(error).splitlines() or [type(error).__name__])[0]
        return {**result, "note": f"stream timing failed: {first}"}
    finally:
        torch.set_num_threads(threads)


def cached_stream_cost(registries: Any, slot: Slot, run_dir: Path) -> dict[str, Any]:
    """``stream-cost.json`` of the slot when it is for ``run_dir`` (its path inside the slot),
    else measured and written."""
    path = slot.folder / COST_FILE
    inside = run_dir.relative_to(slot.folder).as_posix()
    with contextlib.suppress(OSError, ValueError, AttributeError):
        cost = json.loads(path.read_text())
        if cost.get("run_dir") == inside:
            return cost
    cost = {**stream_cost(registries, run_dir), "run_dir": inside}
    with contextlib.suppress(OSError):
        _write_json(path, cost)
    return cost


# ------------------------------------------------------------------------------ results


@dataclasses.dataclass
class RunResult:
    """A finished run's numbers (or a failed run's error) for the table."""

    slot: Slot
    summary: dict[str, Any] | None = None
    cost: dict[str, Any] | None = None
    error: str | None = None


def scalar_metrics(summary: dict[str, Any]) -> dict[str, float]:
    """The scalar test metrics of a summary, without the sample counts."""
    return {
        key: float(value)
        for key, value in (summary.get("test") or {}).items()
        if isinstance(value, int | float)
        and not isinstance(value, bool)
        and not key.endswith(BOOKKEEPING)
    }


def main_metric(summaries: Sequence[dict[str, Any]], metrics: Sequence[str]) -> str | None:
    """The test counterpart of the runs' ``monitor`` (``val/acc`` -> ``test/acc``), else the
    first scalar test metric."""
    for summary in summaries:
        monitor = str(summary.get("monitor") or "")
        name = "test/" + monitor.split("/", 1)[-1]
        if name in metrics:
            return name
    return metrics[0] if metrics else None


def mean_std(values: Sequence[float]) -> tuple[float, float | None]:
    """Mean and sample standard deviation (None for one value)."""
    mean = statistics.fmean(values)
    return mean, (statistics.stdev(values) if len(values) > 1 else None)


def fmt_mean_std(values: Sequence[float]) -> str:
    """``0.9870 ± 0.0040``; one value: ``0.9870 (n=1)``; none: ``-``."""
    if not values:
        return "-"
    mean, std = mean_std(values)
    return f"{mean:.4f} (n=1)" if std is None else f"{mean:.4f} ± {std:.4f}"


@dataclasses.dataclass
class Row:
    """One configuration's line of the comparison."""

    point: Point
    metrics: dict[str, list[float]]
    seeds: int
    parameters: float | None
    train_seconds: float | None
    ms_per_frame: float | None
    state_bytes: int | None
    failed: int
    missing: int
    notes: str


def _mean(values: Sequence[float | None]) -> float | None:
    present = [v for v in values if v is not None]
    return statistics.fmean(present) if present else None


def build_rows(
    points: Sequence[Point], results: dict[Point, list[RunResult]], metrics: Sequence[str]
) -> list[Row]:
    rows = []
    for point in points:
        done = [r for r in results[point] if r.summary is not None]
        failed = [r for r in results[point] if r.error is not None]
        costs = [r.cost or {} for r in done]
        notes = sorted({_first_words(c["note"]) for c in costs if c.get("note")})
        if failed:
            notes.append(f"failed: {_first_words(_error_line(failed[0].error or ''), 60)}")
        rows.append(
            Row(
                point=point,
                metrics={
                    m: [
                        scalar_metrics(r.summary)[m] for r in done if m in scalar_metrics(r.summary)
                    ]
                    for m in metrics
                },
                seeds=len(done),
                parameters=_mean([_parameters(r) for r in done]),
                train_seconds=_mean([r.summary.get("train_seconds") for r in done]),
                ms_per_frame=_mean([c.get("ms_per_frame") for c in costs]),
                state_bytes=max(
                    (c["state_bytes"] for c in costs if c.get("state_bytes") is not None),
                    default=None,
                ),
                failed=len(failed),
                missing=len(results[point]) - len(done) - len(failed),
                notes="; ".join(notes),
            )
        )
    return rows


def _parameters(result: RunResult) -> float | None:
    """The run's parameter count: its summary's, else counted from ``best.pt``'s state dict."""
    assert result.summary is not None
    if isinstance(result.summary.get("parameters"), int):
        return result.summary["parameters"]
    run_dir = Path(result.summary.get("run_dir") or "")
    with contextlib.suppress(Exception):
        from rnnvision_kit.runner.checkpoint import load_checkpoint

        state = load_checkpoint(run_dir / "best.pt")["model"]
        return sum(t.numel() for t in state.values() if hasattr(t, "numel"))
    return None


def _int(value: float | None) -> int | None:
    return None if value is None else round(value)


def _num(value: float | None, spec: str) -> str:
    return "-" if value is None else format(value, spec)


def table(
    rows: Sequence[Row], keys: Sequence[str], metrics: Sequence[str]
) -> tuple[list[str], list[list[str]]]:
    """Headers and cells of the comparison (Markdown and terminal); without grid keys, a
    ``configuration`` column (``base``)."""
    headers = [
        *(keys or ["configuration"]),
        *metrics,
        "seeds",
        "parameters",
        "train s",
        "ms/frame",
        "state bytes",
    ]
    headers += ["failed", "notes"]
    cells = []
    for row in rows:
        grid = row.point.to_dict()
        cells.append(
            [
                *((grid.get(key, "-") for key in keys) if keys else [row.point.label]),
                *(fmt_mean_std(row.metrics[m]) for m in metrics),
                str(row.seeds) + (f" (+{row.missing} not run)" if row.missing else ""),
                _num(row.parameters, ",.0f"),
                _num(row.train_seconds, ".1f"),
                _num(row.ms_per_frame, ".3g"),
                _num(row.state_bytes, "d"),
                str(row.failed),
                row.notes or "-",
            ]
        )
    return headers, cells


def markdown(headers: Sequence[str], cells: Sequence[Sequence[str]]) -> str:
    def line(values: Sequence[str]) -> str:
        return "| " + " | ".join(str(v).replace("|", "\\|") for v in values) + " |"

    return "\n".join([line(headers), line(["---"] * len(headers)), *map(line, cells)]) + "\n"


def csv_text(rows: Sequence[Row], keys: Sequence[str], metrics: Sequence[str]) -> str:
    """One line per configuration, numbers unformatted: each metric's mean and std (empty for
    one seed)."""
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(
        [*(keys or ["configuration"]), *(f"{m}_{s}" for m in metrics for s in ("mean", "std"))]
        + ["seeds", "parameters", "train_seconds", "ms_per_frame", "state_bytes", "failed"]
        + ["notes"]
    )
    for row in rows:
        stats = []
        for m in metrics:
            mean, std = mean_std(row.metrics[m]) if row.metrics[m] else (None, None)
            stats += [_blank(mean), _blank(std)]
        grid = row.point.to_dict()
        writer.writerow(
            ([grid.get(key, "") for key in keys] if keys else [row.point.label])
            + stats
            + [row.seeds, _blank(_int(row.parameters)), _blank(row.train_seconds)]
            + [_blank(row.ms_per_frame), _blank(row.state_bytes), row.failed, row.notes]
        )
    return buffer.getvalue()


def _blank(value: Any) -> Any:
    """A CSV cell: empty for None, a float to 6 significant digits."""
    if value is None:
        return ""
    return float(f"{value:.6g}") if isinstance(value, float) else value


def plot(rows: Sequence[Row], metric: str, path: Path) -> None:
    """Bars of ``metric`` per configuration (mean, ± std over seeds) and, when some models
    stream, ``metric`` against milliseconds per streamed frame."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    shown = [r for r in rows if r.metrics.get(metric)]
    labels = [", ".join(v for _, v in r.point.values) or "base" for r in shown]
    stats = [mean_std(r.metrics[metric]) for r in shown]
    timed = [(r, s, lab) for r, s, lab in zip(shown, stats, labels, strict=True) if r.ms_per_frame]
    panels = 2 if timed else 1
    fig, axes = plt.subplots(
        1, panels, figsize=(max(6.0, 0.7 * len(shown) + 3) + 5 * (panels - 1), 4.5)
    )
    axes = list(axes) if panels == 2 else [axes]
    bars = axes[0]
    bars.bar(
        range(len(shown)),
        [m for m, _ in stats],
        yerr=[s or 0.0 for _, s in stats],
        capsize=4,
        color="tab:blue",
    )
    bars.set_xticks(range(len(shown)), labels, rotation=30, ha="right")
    keys = sorted({k for r in shown for k, _ in r.point.values})
    bars.set(
        xlabel=", ".join(keys) or "configuration",
        ylabel=metric,
        title=f"{metric} (mean ± std over seeds)",
    )
    if timed:
        scatter = axes[1]
        for row, (mean, std), label in timed:
            scatter.errorbar(row.ms_per_frame, mean, yerr=std or 0.0, fmt="o", capsize=3)
            scatter.annotate(
                label, (row.ms_per_frame, mean), textcoords="offset points", xytext=(4, 4)
            )
        scatter.set(
            xlabel="ms per streamed frame (batch 1, 1 thread)",
            ylabel=metric,
            title=f"{metric} vs streaming cost",
        )
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)


# ------------------------------------------------------------------------------- command


def _validated(
    host: Any, task: str, options: dict[str, Any], sets: Sequence[str], seed: int
) -> Any:
    """The run config of these settings, checked as ``rnnkit run`` checks it (one line naming
    the key; torch not imported for a task that declares its defaults)."""
    from rnnvision_kit.cli import _configure

    return _configure(host, task, {**options, "overrides": tuple(sets), "seed": seed})


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
    summary = json.loads((outcome.run_dir / "summary.json").read_text())
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
                summary = json.loads((run_dir / "summary.json").read_text())
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
    from rnnvision_kit.cli import format_table

    click.echo(format_table(headers, cells))
    main = main_metric(summaries, metrics)
    if main is not None:
        plot(rows, main, out_dir / "results.png")
    click.echo(
        f"results: {out_dir / 'results.md'}, results.csv" + (", results.png" if main else "")
    )
