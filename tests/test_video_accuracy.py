"""Accuracy by real training: the default video-action run learns moving-digits' time-reversed
pairs; the order-less mean head on the same data cannot tell the two classes of a pair apart."""

from __future__ import annotations

import json

import pytest

from tests.conftest import CliRunner


@pytest.mark.slow
def test_recurrent_head_beats_the_order_less_mean(rnnkit: CliRunner) -> None:
    gru = rnnkit("run", "--task", "video-action", "--json")
    assert gru.returncode == 0, gru.stderr
    mean = rnnkit("run", "--task", "video-action", "--set", "model.head=mean", "--json")
    assert mean.returncode == 0, mean.stderr
    summary = json.loads(gru.stdout)
    assert {"val/acc", "val/clip_acc", "val/top5", "val/clip_top5"} <= set(summary["last_val"])
    gru_acc = summary["test"]["test/acc"]
    mean_acc = json.loads(mean.stdout)["test"]["test/acc"]
    assert gru_acc >= 0.95, f"default GRU reached only {gru_acc:.3f}"
    assert mean_acc <= 0.75, f"mean head reached {mean_acc:.3f}: the pairs are not order-only"
    assert gru_acc - mean_acc >= 0.25
