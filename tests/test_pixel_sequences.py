"""image-classify reads one pixel per step (sequential MNIST) and in one fixed order (psMNIST)."""

from __future__ import annotations

import json
from pathlib import Path

import torch
from conftest import CliRunner
from layer_checks import one_thread  # noqa: F401
from torch import nn

from rnnvision_kit.safe_load import load_torch_file

PIXELS = [
    "--set",
    "data.sequence=pixels",
    "--set",
    "model.head=mingru",
    "--set",
    "model.scan=rows",
    "--set",
    "model.bidirectional=false",
    "--set",
    "model.pooling=last",
    "--set",
    "model.hidden_size=16",
    "--epochs",
    "1",
    "--set",
    "train.max_steps_per_epoch=2",
    "--quiet",
]


class Recorder(nn.Module):
    """A head that remembers the sequence it read and returns zeros."""

    def forward(self, sequence: torch.Tensor) -> torch.Tensor:
        self.seen = sequence
        return sequence.new_zeros(sequence.shape[0], 2)


def test_pixels_are_read_one_per_step_in_the_given_order() -> None:
    from rnnkit_classify.model import RowSequenceClassifier

    images = torch.rand(2, 3, 4, 5)
    order = torch.randperm(20)
    rows, columns = Recorder(), Recorder()
    model = RowSequenceClassifier(
        {"rows": rows, "columns": columns}, [0.0] * 3, [1.0] * 3, pixels=True, order=order
    )
    model(images)
    row_major = images.permute(0, 2, 3, 1).reshape(2, 20, 3)
    column_major = images.permute(0, 3, 2, 1).reshape(2, 20, 3)
    assert torch.equal(rows.seen, row_major[:, order])
    assert torch.equal(columns.seen, column_major[:, order])
    assert torch.equal(model.state_dict()["order"], order)


def test_permuted_pixel_run_keeps_its_order_and_evaluates(rnnkit: CliRunner) -> None:
    args = ["--task", "image-classify", "--set", "data.permute=true", *PIXELS]
    done = rnnkit("run", *args, "--set", "data.permute_seed=7", "--json")
    assert done.returncode == 0, done.stderr
    run_dir = Path(json.loads(done.stdout)["run_dir"])
    state = load_torch_file(run_dir / "best.pt")["model"]
    order = state["order"]  # 16x16 digits: 256 steps of one pixel
    expected = torch.randperm(256, generator=torch.Generator().manual_seed(7))
    assert torch.equal(order, expected)
    evaluated = rnnkit("eval", str(run_dir), "--json")
    assert evaluated.returncode == 0, evaluated.stderr


def test_permute_needs_pixels_in_one_line(rnnkit: CliRunner) -> None:
    result = rnnkit("run", "--task", "image-classify", "--set", "data.permute=true")
    assert result.returncode == 2
    assert result.stderr == "rnnkit: error: data.permute: needs data.sequence=pixels\n"
