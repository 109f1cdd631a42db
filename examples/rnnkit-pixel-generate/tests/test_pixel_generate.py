"""Tests of rnnkit-pixel-generate: registration without torch, the model's causality, the metric,
the spec, the settings' checks, conformance with the Task contract, the report, and learning
(held-out bits per dimension drop). Only the public API of rnnvision_kit is used."""

from __future__ import annotations

import ast
import math
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from rnnkit_pixel_generate import plugin
from rnnkit_pixel_generate.data import LevelSpec
from rnnkit_pixel_generate.metrics import BitsPerDim
from rnnkit_pixel_generate.model import RowLSTM
from rnnkit_pixel_generate.task import PixelGenerateTask

from rnnvision_kit import (
    DataContext,
    DataSpec,
    ModelContext,
    ReportContext,
    StepContext,
)
from rnnvision_kit.testing import check_plugin, plugin_host

TASK = "pixel-generate"
PACKAGE = Path(__file__).resolve().parents[1] / "rnnkit_pixel_generate"
PUBLIC = {  # the public API of rnnvision_kit; everything else may change between versions
    "rnnvision_kit",
    "rnnvision_kit.data",
    "rnnvision_kit.nn",
    "rnnvision_kit.classification",
    "rnnvision_kit.runner",
    "rnnvision_kit.testing",
}


@pytest.fixture(autouse=True)
def one_thread():
    """Small models run fastest on one thread, above all on a busy machine."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def test_hook_module_does_not_import_torch() -> None:
    code = "import sys, rnnkit_pixel_generate.plugin; print('torch' in sys.modules)"
    root = Path(__file__).resolve().parents[1]  # importable from there, installed or not
    result = subprocess.run([sys.executable, "-c", code], cwd=root, capture_output=True, text=True)
    assert result.stdout.strip() == "False", result.stderr


@pytest.mark.parametrize("path", sorted(PACKAGE.glob("*.py")), ids=lambda p: p.name)
def test_imports_only_the_public_api(path: Path) -> None:
    modules = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            modules.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            modules.add(node.module)
    private = {m for m in modules if m.split(".")[0] == "rnnvision_kit"} - PUBLIC
    assert not private, f"{path.name} imports {private}"


def test_registers_task_data_source_and_metric() -> None:
    registries = plugin_host(pixel=plugin).registries
    task = registries.tasks.get(TASK)
    assert (task.plugin, task.meta["kind"], task.capabilities) == ("pixel", "levels", ("report",))
    source = registries.datasets.get("digit-levels")
    assert source.meta["kind"] == "levels"
    assert source.meta["reads"] == ("levels", "val_fraction", "test_fraction")
    assert registries.metrics.get("pixel:bpd").meta["kinds"] == ("levels",)


def test_each_logit_sees_only_earlier_pixels() -> None:
    torch.manual_seed(0)
    model = RowLSTM(5, 4, 3, hidden_size=16, channels=8)
    torch.nn.init.normal_(model.out.weight)  # zero at start: every logit would be constant
    images = torch.randint(0, 3, (2, 5, 4))
    logits = model(images)
    for r in range(5):
        for c in range(4):
            changed = images.clone()
            changed[:, r, c] = (changed[:, r, c] + 1) % 3
            moved = (model(changed) - logits).abs().amax(dim=(0, 1)).flatten() > 0
            position = r * 4 + c
            assert not moved[: position + 1].any(), f"pixel {r},{c} leaks to itself or before"
            if position + 1 < 20:
                assert moved[position + 1 :].any(), f"pixel {r},{c} influences nothing after it"


def test_untrained_model_is_uniform() -> None:
    model = RowLSTM(8, 8, 4)
    images = torch.randint(0, 4, (3, 8, 8))
    metric = BitsPerDim()
    metric.update(model(images), images)
    assert metric.compute().item() == pytest.approx(2.0, abs=1e-6)  # log2(4 levels)


def test_bits_per_dim_weights_every_pixel_equally() -> None:
    metric = BitsPerDim()
    metric.update(torch.zeros(1, 2, 2, 3), torch.zeros(1, 2, 3, dtype=torch.long))  # 6 px, 1 bit
    sure = torch.tensor([0.0, -1e4]).view(1, 2, 1, 1).expand(3, 2, 2, 3)  # 18 px, 0 bits
    metric.update(sure, torch.zeros(3, 2, 3, dtype=torch.long))
    assert metric.compute().item() == pytest.approx(6 / 24)


def test_samples_have_the_shape_and_levels_of_the_data() -> None:
    images = RowLSTM(8, 8, 4).sample(5, torch.Generator().manual_seed(0))
    assert images.shape == (5, 8, 8) and images.dtype == torch.long
    assert images.min() >= 0 and images.max() <= 3


def build(levels: int = 4):
    """Config, data and untrained model of the task, built through its context records."""
    registries = plugin_host(pixel=plugin).registries
    task = PixelGenerateTask()
    config = task.default_config()
    config.data.levels = levels
    data = task.build_data(DataContext(config, registries, TASK, "pixel", "levels", "train"))
    torch.manual_seed(0)
    model = task.build_model(ModelContext(config, data.spec, registries, TASK, "pixel", "train"))
    return task, config, data, model


def test_data_is_levels_with_a_typed_spec_that_round_trips() -> None:
    _, _, data, _ = build(levels=3)
    spec = data.spec
    assert isinstance(spec, LevelSpec) and spec.kind == "levels"
    assert (spec.levels, spec.channels, spec.height, spec.width) == (3, 1, 8, 8)
    assert spec.class_names == ("level 0", "level 1", "level 2")
    assert DataSpec.from_dict(spec.to_dict()) == spec  # what a checkpoint stores
    assert (len(data.train), len(data.val), len(data.test)) == (1258, 180, 359)
    item = data.train[0]
    assert item.shape == (8, 8) and item.dtype == torch.long
    assert int(item.min()) >= 0 and int(item.max()) <= 2


def test_task_conforms_to_the_contract() -> None:
    results = check_plugin(plugin_host(pixel=plugin), "pixel")
    assert [(r.task, r.ok, r.error) for r in results] == [("pixel:pixel-generate", True, None)]


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        (["data.levels=1"], "data.levels: must be in [2, 17] (got 1)"),
        (["model.hidden_size=0"], "model.hidden_size: must be >= 1 (got 0)"),
        (
            ["data.val_fraction=0.5", "data.test_fraction=0.5"],
            "data.test_fraction: val_fraction + test_fraction must be below 1",
        ),
    ],
)
def test_bad_settings_are_one_line_config_errors(overrides: list[str], message: str) -> None:
    (result,) = check_plugin(plugin_host(pixel=plugin), "pixel", overrides=overrides)
    assert (result.ok, result.stage) == (False, "build")
    assert result.error.startswith(f"ConfigError: {message}"), result.error


def test_report_writes_samples_of_the_test_split_only(tmp_path: Path) -> None:
    task, config, data, model = build()
    config.model.samples = 6
    model.eval()
    for split in ("val", "test"):
        report = ReportContext(
            tmp_path, split, {}, data.spec, config, model, data.test, torch.device("cpu")
        )
        task.report(report)
        assert (tmp_path / "samples.png").exists() == (split == "test")


def test_training_lowers_held_out_bits_per_dim() -> None:
    task, config, data, model = build()
    test = torch.stack([data.test[i] for i in range(len(data.test))])
    ctx = StepContext(config, data.spec, training=True)

    def held_out_bpd() -> float:
        with torch.no_grad():
            return task.step(ctx, model, test).loss.item() / math.log(2)

    before = held_out_bpd()
    optimizer = torch.optim.Adam(model.parameters(), lr=3e-3)
    train = torch.stack([data.train[i] for i in range(len(data.train))])
    for _ in range(150):
        batch = train[torch.randint(0, len(train), (32,))]
        loss = task.step(ctx, model, batch).loss
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    assert before == pytest.approx(2.0, abs=1e-6)
    assert held_out_bpd() < 1.4
