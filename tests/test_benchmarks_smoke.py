"""The sequence-layer benchmarks run (their smallest settings), and the sMNIST/psMNIST presets
are valid image-classify settings."""

from __future__ import annotations

import importlib.util
import json
import sys
from pathlib import Path
from types import ModuleType

import pytest
from layer_checks import one_thread  # noqa: F401

from rnnvision_kit.config import validate
from rnnvision_kit.layers import check_head
from rnnvision_kit.plugins import build_host
from rnnvision_kit.runner.pipeline import configure, open_task

REPO = Path(__file__).resolve().parents[1]
PRESETS = ("smnist", "psmnist")


def script(name: str) -> ModuleType:
    """``benchmarks/NAME.py`` as a module (the folder is no package)."""
    path = REPO / "benchmarks" / f"{name}.py"
    spec = importlib.util.spec_from_file_location(f"bench_{name}", path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module


def test_sequence_layers_prints_every_table(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    bench = script("sequence_layers")
    out = tmp_path / "figures.json"
    argv = ["--quick", "--layers", "mingru,transformer", "--lengths", "16", "--repeats", "1"]
    assert bench.main([*argv, "--json", str(out)]) == 0
    printed = capsys.readouterr().out
    for title in ("### Training", "### Forward", "### Peak training memory", "### Streaming"):
        assert title in printed
    figures = json.loads(out.read_text())
    assert set(figures["train_ms"]["16"]) == {"nn.GRU", "mingru", "transformer"}
    assert figures["memory_bytes"]["16"]["mingru"] > 0  # the profiler saw the allocations
    stream = figures["stream_ms"]
    assert set(stream) == {"mingru", "transformer", "transformer w=100", "transformer w=context"}
    assert set(stream["mingru"]) == {"10", "100"}
    # state bytes from state_spec: mingru keeps H float32 values; the cache grows with the window
    assert figures["state_bytes"]["mingru"] == 128 * 4
    assert figures["state_bytes"]["transformer w=100"] > figures["state_bytes"]["transformer"]


def test_long_range_plans_and_commands(capsys: pytest.CaptureFixture[str]) -> None:
    bench = script("long_range")
    argv = ["--quick", "--dry-run", "--layers", "gru,lru", "--data", "mnist:/nowhere"]
    argv += ["--max-eval-ratio", "0"]
    assert bench.main(argv) == 0
    printed = capsys.readouterr().out
    assert "--set model.head=gru --set 'model.layer={}' --set model.num_layers=1" in printed
    # lru is the preset's head: its long-range initialisation comes from the preset, kept
    assert "--set model.head=lru --set train.epochs=1" in printed
    assert "--config " + str(REPO / "examples" / "configs" / "psmnist.yaml") in printed


def test_long_range_plan_fits_the_budget() -> None:
    plan = script("long_range").plan
    short = plan(60.0, 0.5, 30.0, 64)
    assert (short.epochs, short.steps_per_epoch) == (1, 120)
    assert plan(5.0, 1.0, 30.0, 64).steps == 10  # at least a few steps
    # an hour at 0.1 s per step: 36,000 steps in epochs of at most 860 batches (55,000 / 64)
    long = plan(3600.0, 0.1, 30.0, 64)
    assert long.steps_per_epoch <= 860 and 36_000 <= long.steps < 36_000 + long.epochs


@pytest.mark.parametrize("name", PRESETS)
def test_presets_are_valid_pixel_settings(name: str) -> None:
    registries = build_host().registries
    task = open_task(registries, "image-classify")
    preset = REPO / "examples" / "configs" / f"{name}.yaml"
    config = configure(task, config_file=str(preset), data="mnist:/nowhere")
    validate(config)
    check_head(registries, config.model)
    assert config.data.sequence == "pixels"
    assert config.data.permute is (name == "psmnist")
    assert (config.model.bidirectional, config.model.pooling) == (False, "last")
    assert "rnnkit run --task image-classify --config examples/configs" in preset.read_text()


def test_video_predict_compares_models_of_their_own_settings_over_seeds(
    capsys: pytest.CaptureFixture[str],
) -> None:
    bench = script("video_predict")
    models = [
        "copy-last",
        "convlstm",
        "convgru:feed=reverse-ss",
        "mingru:layers=1,shift=0",
        "mingru-k1",
    ]
    bench.main(["--quick", "--epochs", "1", "--seeds", "0", "1", "--models", *models, "--json"])
    printed = capsys.readouterr().out
    rows = json.loads(printed[printed.index("[") :])
    by = {row["model"]: row for row in rows}
    assert list(by) == models
    assert len(by["convlstm"]["mse_seeds"]) == 2 and len(by["copy-last"]["mse_seeds"]) == 1
    # its own settings: one plain layer of 8 (--quick), against mingru-k1's one shifted layer
    assert by["mingru:layers=1,shift=0"]["parameters"] < by["mingru-k1"]["parameters"]
    assert "mingru-k1 against convlstm:" in printed and "per seed" in printed
    for model, message in [
        ("mingru:depth=2", "expected KEY=INT"),
        ("mingru:feed=reverse-ss", "reverse-ss needs one of convlstm"),
    ]:
        with pytest.raises(SystemExit):
            bench.main(["--quick", "--models", model])
        assert message in capsys.readouterr().err
