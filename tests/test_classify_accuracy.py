"""Accuracy by real training (slow): the numbers the README states."""

from __future__ import annotations

import json

import pytest

from tests.conftest import SHARED_DATA, CliRunner

MNIST = SHARED_DATA / "mnist"


@pytest.mark.slow
def test_default_run_reaches_98_percent_on_digits(rnnkit: CliRunner) -> None:
    result = rnnkit("run", "--task", "image-classify", "--json")
    assert result.returncode == 0, result.stderr
    summary = json.loads(result.stdout)
    assert summary["test"]["test/acc"] >= 0.98, summary["test"]


@pytest.mark.slow
@pytest.mark.skipif(
    not (MNIST / "MNIST" / "raw").is_dir(),
    reason=f"needs MNIST in {MNIST / 'MNIST' / 'raw'} (torchvision's files; tests never download)",
)
def test_gru_row_model_reaches_98_5_percent_on_mnist(rnnkit: CliRunner) -> None:
    from tests.conftest import REPO

    preset = REPO / "examples" / "configs" / "mnist-gru.yaml"
    result = rnnkit(
        "run",
        "--task",
        "image-classify",
        "--config",
        str(preset),
        "--data",
        f"mnist:{MNIST}",
        "--json",
    )
    assert result.returncode == 0, result.stderr
    summary = json.loads(result.stdout)
    assert summary["test"]["test/samples"] == 10_000
    assert summary["test"]["test/acc"] >= 0.985, summary["test"]
