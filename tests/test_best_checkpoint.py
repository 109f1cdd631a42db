"""``rnnkit eval`` on a run whose best epoch is not its last one evaluates ``best.pt`` (the
checkpoint the run's own test metrics came from) unless ``--checkpoint last`` asks otherwise."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

from tests.conftest import CliRunner

# Three short epochs; the step schedule multiplies the learning rate by 1000 after epoch 2, so
# epoch 3 (Adam at lr 3) diverges and the lowest val/loss is always that of epoch 1 or 2.
DIVERGES_LAST = [
    *("--task", "image-classify", "--seed", "3", "--epochs", "3", "--quiet", "--json"),
    *("--set", "model.hidden_size=24", "--set", "train.max_steps_per_epoch=8"),
    *("--set", "train.threads=1", "--set", "train.warmup_epochs=0"),
    *("--set", "train.schedule=step", "--set", "train.step_size=2"),
    *("--set", "train.gamma=1000"),
]


def _json(result: subprocess.CompletedProcess) -> dict:
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout)


def test_eval_uses_best_pt_when_best_is_not_last(
    rnnkit: CliRunner, tmp_path: Path, one_thread: None
) -> None:
    summary = _json(rnnkit("run", *DIVERGES_LAST))
    assert summary["monitor"] == "val/loss" and summary["epochs"] == 3
    assert summary["best_epoch"] != summary["epochs"], summary  # the premise of this test
    run_dir = str(tmp_path / summary["run_dir"])

    best = _json(rnnkit("eval", run_dir, "--json"))
    assert best["checkpoint"] == "best.pt"
    assert best["metrics"] == summary["test"]

    last = _json(rnnkit("eval", run_dir, "--checkpoint", "last", "--json"))
    assert last["checkpoint"] == "last.pt"
    assert last["metrics"]["test/loss"] != best["metrics"]["test/loss"]
    assert last["metrics"]["test/loss"] > best["metrics"]["test/loss"]  # the diverged epoch
