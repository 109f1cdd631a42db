"""Tests of rnnkit-pixel-generate: registration without torch, the model's causality, the metric,
conformance with the Task contract, and learning (held-out bits per dimension drop)."""

from __future__ import annotations

import math
import subprocess
import sys
from pathlib import Path

import pytest
import torch
import torch.nn.functional as F
from rnnkit_pixel_generate import plugin
from rnnkit_pixel_generate.metrics import BitsPerDim
from rnnkit_pixel_generate.model import RowLSTM

from rnnvision_kit.testing import check_plugin, plugin_host


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


def test_registers_task_and_data_source() -> None:
    host = plugin_host(pixel=plugin)
    assert host.registries.tasks.get("pixel-generate").plugin == "pixel"
    assert host.registries.datasets.get("digit-levels").meta["kind"] == "levels"


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
    metric.update(F.cross_entropy(model(images), images, reduction="none"), images)
    assert metric.compute().item() == pytest.approx(2.0, abs=1e-6)  # log2(4 levels)


def test_bits_per_dim_weights_every_pixel_equally() -> None:
    metric = BitsPerDim()
    metric.update(torch.full((2, 3), math.log(2)))
    metric.update(torch.full((1, 6), 3 * math.log(2)))
    assert metric.compute().item() == pytest.approx(2.0)


def test_samples_have_the_shape_and_levels_of_the_data() -> None:
    images = RowLSTM(8, 8, 4).sample(5, torch.Generator().manual_seed(0))
    assert images.shape == (5, 8, 8) and images.dtype == torch.long
    assert images.min() >= 0 and images.max() <= 3


def test_task_conforms_to_the_contract() -> None:
    results = check_plugin(plugin_host(pixel=plugin), "pixel")
    assert [(r.task, r.ok, r.error) for r in results] == [("pixel:pixel-generate", True, None)]


def test_training_lowers_held_out_bits_per_dim() -> None:
    from rnnkit_pixel_generate.task import PixelGenerateTask

    host = plugin_host(pixel=plugin)
    task = PixelGenerateTask()
    config = task.default_config()
    data = task.build_data(config, host.registries)
    torch.manual_seed(0)
    model = task.build_model(config, data.spec, host.registries)
    test = torch.stack([data.test[i] for i in range(len(data.test))])

    def held_out_bpd() -> float:
        with torch.no_grad():
            return F.cross_entropy(model(test), test).item() / math.log(2)

    before = held_out_bpd()
    optimizer = torch.optim.Adam(model.parameters(), lr=3e-3)
    train = torch.stack([data.train[i] for i in range(len(data.train))])
    for _ in range(150):
        batch = train[torch.randint(0, len(train), (32,))]
        loss = task.step(model, batch).loss
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    assert before == pytest.approx(2.0, abs=1e-6)
    assert held_out_bpd() < 1.4
