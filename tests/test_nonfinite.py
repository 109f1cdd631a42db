"""A non-finite loss (``train.on_nan``): ``stop`` ends the run with one line naming the epoch and
step, keeping the last good checkpoint; ``skip`` skips those optimizer steps, counts them in
``metrics.jsonl`` and warns, and stops when a whole epoch is non-finite."""

from __future__ import annotations

import json
import math
import re
from pathlib import Path

import torch

from rnnvision_kit.runner.checkpoint import load_checkpoint
from rnnvision_kit.runner.loop import _LossCheck
from tests.conftest import CliRunner, run_dirs

# image-classify whose loss is NaN at the training batches listed (counted from 0 in the process)
DIVERGING = """
from rnnkit_classify.task import ImageClassifyTask
from rnnvision_kit import StepOutput, hookimpl

NAN_AT = {nan_at}


class Diverging(ImageClassifyTask):
    batches = 0

    def step(self, ctx, model, batch):
        out = ImageClassifyTask.step(self, ctx, model, batch)
        if not ctx.training:
            return out
        Diverging.batches += 1
        if Diverging.batches - 1 in NAN_AT:
            return StepOutput(out.loss * float("nan"), out.preds, out.targets)
        return out


@hookimpl
def rnnkit_register_tasks(register):
    register("diverging", Diverging, kind="image", capabilities=("predict", "report", "export"))
"""

# 2 epochs of 3 optimizer steps: batches 0-2 are epoch 1, 3-5 epoch 2
RUN = [
    *("run", "--task", "diverging", "--epochs", "2", "--quiet", "--set", "train.threads=1"),
    *("--set", "model.hidden_size=8", "--set", "train.max_steps_per_epoch=3"),
]


def _diverging(rnnkit: CliRunner, tmp_path: Path, nan_at: set[int], *sets: str) -> tuple:
    plugin = tmp_path / "diverging.py"
    plugin.write_text(DIVERGING.format(nan_at=sorted(nan_at)))
    result = rnnkit("--plugin", str(plugin), *RUN, *(f"--set={s}" for s in sets))
    (run_dir,) = run_dirs(tmp_path, "diverging")
    return result, run_dir


def _finite(run_dir: Path, name: str) -> bool:
    weights = load_checkpoint(run_dir / name)["model"]
    return all(torch.isfinite(w).all() for w in weights.values() if w.is_floating_point())


def test_stop_names_epoch_and_step_and_keeps_the_last_good_checkpoint(
    rnnkit: CliRunner, tmp_path: Path, one_thread: None
) -> None:
    result, run_dir = _diverging(rnnkit, tmp_path, {4})  # epoch 2, step 2
    assert result.returncode == 2, result.stderr
    (line,) = result.stderr.strip().splitlines()
    kept = re.escape(f"{run_dir.relative_to(tmp_path) / 'last.pt'} (after epoch 1) is kept")
    assert re.fullmatch(
        r"rnnkit: error: non-finite loss \(nan\) at epoch 2, step 2 of 3; training diverged: "
        r"lower train.lr \(now [0-9.e-]+\) or set train.grad_clip \(now 1.0\), or "
        rf"train.on_nan=skip to skip such steps; {kept}",
        line,
    ), line
    assert load_checkpoint(run_dir / "last.pt")["epoch"] == 1  # not overwritten
    assert _finite(run_dir, "last.pt") and _finite(run_dir, "best.pt")
    assert len((run_dir / "metrics.jsonl").read_text().splitlines()) == 1
    assert not (run_dir / "summary.json").exists()


def test_skip_skips_counts_and_warns(rnnkit: CliRunner, tmp_path: Path, one_thread: None) -> None:
    result, run_dir = _diverging(rnnkit, tmp_path, {1, 3}, "train.on_nan=skip")
    assert result.returncode == 0, result.stderr
    warnings = [x for x in result.stderr.splitlines() if "non-finite" in x]
    assert warnings == [
        f"rnnkit: warning: epoch {e}: 1 of 3 optimizer steps had a non-finite loss and were "
        "skipped (train.on_nan=skip); lower train.lr or set train.grad_clip"
        for e in (1, 2)
    ]
    rows = [json.loads(x) for x in (run_dir / "metrics.jsonl").read_text().splitlines()]
    assert [row["train/nonfinite"] for row in rows] == [1.0, 1.0]
    assert all(math.isfinite(row["train/loss"]) for row in rows)  # over the finite steps
    state = load_checkpoint(run_dir / "last.pt")
    assert state["step"] == 6 and _finite(run_dir, "last.pt")


def test_skip_stops_when_every_step_of_an_epoch_is_non_finite(
    rnnkit: CliRunner, tmp_path: Path, one_thread: None
) -> None:
    result, run_dir = _diverging(rnnkit, tmp_path, {3, 4, 5}, "train.on_nan=skip")
    assert result.returncode == 2
    (line,) = result.stderr.strip().splitlines()
    assert line.startswith(
        "rnnkit: error: every optimizer step of epoch 2 (3) had a non-finite loss "
        "(train.on_nan=skip); training diverged: lower train.lr"
    )
    assert line.endswith("(after epoch 1) is kept")
    assert load_checkpoint(run_dir / "last.pt")["epoch"] == 1


def test_the_deferred_check_reports_a_step_one_step_later_or_at_a_flush() -> None:
    """On CUDA with on_nan=stop the loss is read a step late (no sync); the logic, on the CPU."""
    check = _LossCheck(torch.device("cpu"), deferred=True)
    assert check.bad(torch.tensor(1.0), "step 1") is None
    assert check.bad(torch.tensor(math.inf), "step 2") is None  # not read yet
    value, where = check.bad(torch.tensor(2.0), "step 3") or (0.0, "")
    assert (value, where) == (math.inf, "step 2")
    assert check.bad(torch.tensor(math.nan), "step 4") is None
    flushed = check.flush()  # before a checkpoint is written
    assert flushed is not None and flushed[1] == "step 4" and math.isnan(flushed[0])
    assert check.flush() is None
    immediate = _LossCheck(torch.device("cpu"), deferred=False)
    assert immediate.bad(torch.tensor(math.nan), "step 1") is not None
