"""The comparison of a sweep's configurations: metrics as mean ± std over seeds, as a table,
Markdown, CSV and a plot."""

from __future__ import annotations

import contextlib
import csv
import dataclasses
import io
import statistics
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from rnnvision_kit.baselines import recorded_collapse
from rnnvision_kit.sweep.folder import Slot
from rnnvision_kit.sweep.grid import Point
from rnnvision_kit.sweep.launch import _error_line

BOOKKEEPING = ("/samples", "/unreadable")  # counts in summary["test"], not metrics


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
    collapsed: int = 0  # finished seeds whose model did not beat its trivial baseline


def _mean(values: Sequence[float | None]) -> float | None:
    present = [v for v in values if v is not None]
    return statistics.fmean(present) if present else None


def _first_words(text: str, limit: int = 70) -> str:
    head = text.split(";")[0].strip()
    if len(head) <= limit:
        return head
    return head[:limit].rsplit(" ", 1)[0] + " ..."


def build_rows(
    points: Sequence[Point], results: dict[Point, list[RunResult]], metrics: Sequence[str]
) -> list[Row]:
    rows = []
    for point in points:
        done = [r for r in results[point] if r.summary is not None]
        failed = [r for r in results[point] if r.error is not None]
        summaries = [r.summary for r in done if r.summary is not None]  # all of done's
        costs = [r.cost or {} for r in done]
        notes = sorted({_first_words(c["note"]) for c in costs if c.get("note")})
        collapses = [line for s in summaries if (line := recorded_collapse(s)) is not None]
        if collapses:
            notes.insert(0, f"COLLAPSED ({len(collapses)}/{len(summaries)} seeds)")
        if failed:
            notes.append(f"failed: {_first_words(_error_line(failed[0].error or ''), 60)}")
        rows.append(
            Row(
                point=point,
                metrics={
                    m: [scalar_metrics(s)[m] for s in summaries if m in scalar_metrics(s)]
                    for m in metrics
                },
                seeds=len(done),
                parameters=_mean([_parameters(r) for r in done]),
                train_seconds=_mean([s.get("train_seconds") for s in summaries]),
                ms_per_frame=_mean([c.get("ms_per_frame") for c in costs]),
                state_bytes=max(
                    (c["state_bytes"] for c in costs if c.get("state_bytes") is not None),
                    default=None,
                ),
                failed=len(failed),
                missing=len(results[point]) - len(done) - len(failed),
                notes="; ".join(notes),
                collapsed=len(collapses),
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
        from rnnvision_kit.runner.rundir import RunDir

        state = load_checkpoint(RunDir(run_dir).best)["model"]
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


def collapse_lines(rows: Sequence[Row], results: dict[Point, list[RunResult]]) -> list[str]:
    """One warning line per configuration with a seed that did not beat its trivial baseline,
    naming it and what its first such run did."""
    lines = []
    for row in rows:
        if not row.collapsed:
            continue
        first = next(
            line
            for r in results[row.point]
            if r.summary is not None and (line := recorded_collapse(r.summary)) is not None
        )
        lines.append(
            f"{row.point.label}: {row.collapsed} of {row.seeds} seed(s) collapsed ({first})"
        )
    return lines


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
