"""Training-health notices: one line each, naming the setting to change, for training that runs
but learns badly: most steps clipped, too few optimizer steps per epoch, a validation split too
small to choose the best checkpoint on. Read from the epochs' rows (``metrics.jsonl``), so that a
finished run folder can be checked as well as a run that just ended."""

from __future__ import annotations

import json
import math
from collections.abc import Sequence
from pathlib import Path
from typing import Any

CLIPPED = 0.5  # more than this fraction of the steps clipped
MIN_STEPS = 10  # fewer optimizer steps per epoch than this
MIN_VAL = 50  # fewer validation samples than this


def clipped_notice(rows: Sequence[dict[str, Any]], grad_clip: float | None) -> str | None:
    """More than half of the optimizer steps clipped (``train/clipped``, over all epochs)."""
    fractions = [
        r["train/clipped"] for r in rows if isinstance(r.get("train/clipped"), int | float)
    ]
    if not grad_clip or not fractions:
        return None
    share = sum(fractions) / len(fractions)
    if share <= CLIPPED:
        return None
    norms = sorted(r["train/grad_norm"] for r in rows if "train/grad_norm" in r)
    typical = f" (median gradient norm {norms[len(norms) // 2]:.3g})" if norms else ""
    return (
        f"{share:.0%} of the optimizer steps were clipped at train.grad_clip={grad_clip:g}"
        f"{typical}: the clip, not train.lr, set the step size; raise train.grad_clip or "
        "lower train.lr"
    )


def steps_notice(
    steps_per_epoch: int, batch_size: int, train_samples: int | None = None
) -> str | None:
    """Fewer than ``MIN_STEPS`` optimizer steps per epoch."""
    if steps_per_epoch >= MIN_STEPS:
        return None
    samples = f"{train_samples} training samples, " if train_samples is not None else ""
    suggestion = ""
    if train_samples:
        smaller = max(1, train_samples // MIN_STEPS)
        if smaller < batch_size:
            suggestion = f" (e.g. data.batch_size={smaller})"
    return (
        f"only {steps_per_epoch} optimizer step(s) per epoch ({samples}data.batch_size="
        f"{batch_size}): lower data.batch_size{suggestion} or raise train.epochs"
    )


def validation_notice(val_samples: int | None) -> str | None:
    """A validation split too small for a reliable best checkpoint."""
    if val_samples is None or val_samples >= MIN_VAL:
        return None
    return (
        f"the best checkpoint is chosen on {val_samples} validation samples, too few to tell "
        f"epochs apart reliably (fewer than {MIN_VAL}): give the val split more data, or "
        "compare with `rnnkit eval RUN_DIR --checkpoint last`"
    )


def notices(
    rows: Sequence[dict[str, Any]],
    *,
    grad_clip: float | None,
    batch_size: int,
    accumulate: int = 1,
    train_samples: int | None = None,
    max_steps: int | None = None,
) -> list[str]:
    """The notices of a run from its epochs' rows (``metrics.jsonl``: ``step``,
    ``train/clipped``, ``train/grad_norm``, ``val/samples``); ``max_steps``: the
    ``train.max_steps_per_epoch`` the run set (epochs it shortened draw no steps notice)."""
    clipped = clipped_notice(rows, grad_clip)
    val = [r["val/samples"] for r in rows if isinstance(r.get("val/samples"), int | float)]
    return ([clipped] if clipped else []) + start_notices(
        steps_per_epoch(rows),
        batch_size=batch_size,
        accumulate=accumulate,
        train_samples=train_samples,
        val_samples=int(val[-1]) if val else None,
        max_steps=max_steps,
    )


def start_notices(
    steps_per_epoch: int | None,
    *,
    batch_size: int,
    accumulate: int = 1,
    train_samples: int | None = None,
    val_samples: int | None = None,
    max_steps: int | None = None,
) -> list[str]:
    """The notices known before training: too few optimizer steps per epoch (not when
    ``train.max_steps_per_epoch`` chose them; none without a count) and a validation split too
    small to choose the best checkpoint on. The run prints them once, at its start."""
    found: list[str | None] = []
    if steps_per_epoch is not None and steps_per_epoch != max_steps:
        found.append(steps_notice(steps_per_epoch, batch_size * accumulate, train_samples))
    found.append(validation_notice(val_samples))
    return [line for line in found if line is not None]


def steps_per_epoch(rows: Sequence[dict[str, Any]]) -> int | None:
    """Optimizer steps per epoch, from the first row's ``step`` count (None without one)."""
    for row in rows:
        if isinstance(row.get("step"), int | float) and isinstance(row.get("epoch"), int):
            return max(1, math.ceil(row["step"] / (row["epoch"] + 1)))
    return None


def run_notices(run_dir: Path | str, config: Any, *, known_at_start: bool = False) -> list[str]:
    """:func:`notices` of a run folder (its ``metrics.jsonl`` and ``splits.json``) trained with
    the run config ``config``; empty when the folder holds no epochs. Without
    ``known_at_start``, only those training revealed (clipped steps): the run printed the
    others (:func:`start_notices`) at its start."""
    folder = Path(run_dir)
    rows = _rows(folder / "metrics.jsonl")
    if not rows:
        return []
    if not known_at_start:
        clipped = clipped_notice(rows, config.train.grad_clip)
        return [clipped] if clipped else []
    train_samples = None
    try:
        splits = json.loads((folder / "splits.json").read_text())
        train_samples = int(splits["splits"]["train"]["count"])
    except (OSError, ValueError, KeyError, TypeError):
        pass
    return notices(
        rows,
        grad_clip=config.train.grad_clip,
        batch_size=config.data.batch_size,
        accumulate=config.train.accumulate,
        train_samples=train_samples,
        max_steps=config.train.max_steps_per_epoch,
    )


def _rows(path: Path) -> list[dict[str, Any]]:
    try:
        lines = path.read_text().splitlines()
    except OSError:
        return []
    rows = []
    for line in lines:
        try:
            row = json.loads(line)
        except ValueError:
            continue
        if isinstance(row, dict):
            rows.append(row)
    return rows
