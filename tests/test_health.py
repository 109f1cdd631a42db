"""Training-health notices (rnnvision_kit.runner.health): one line each, naming the setting."""

from __future__ import annotations

import json
from pathlib import Path
from types import SimpleNamespace

from rnnvision_kit.runner.health import notices, run_notices, start_notices


def rows(clipped: float, steps: int, val: int, epochs: int = 3) -> list[dict]:
    return [
        {
            "epoch": e,
            "step": steps * (e + 1),
            "train/clipped": clipped,
            "train/grad_norm": 4.0,
            "val/samples": val,
        }
        for e in range(epochs)
    ]


def test_a_healthy_run_has_no_notices() -> None:
    assert notices(rows(0.1, 40, 200), grad_clip=1.0, batch_size=32) == []


def test_each_problem_is_one_line_with_its_setting() -> None:
    found = notices(rows(0.9, 2, 15), grad_clip=1.0, batch_size=32, train_samples=40)
    assert len(found) == 3
    clipped, steps, val = found
    assert clipped.startswith("90% of the optimizer steps were clipped at train.grad_clip=1")
    assert "median gradient norm 4" in clipped and "raise train.grad_clip" in clipped
    assert steps.startswith("only 2 optimizer step(s) per epoch (40 training samples")
    assert "data.batch_size=4" in steps
    assert "15 validation samples" in val and "--checkpoint last" in val
    assert all("\n" not in line for line in found)


def test_no_clip_and_a_chosen_step_limit_draw_no_notice() -> None:
    assert notices(rows(0.9, 3, 100), grad_clip=None, batch_size=8, max_steps=3) == []


def test_run_notices_read_a_run_folder(tmp_path: Path) -> None:
    (tmp_path / "metrics.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows(0, 2, 9)))
    (tmp_path / "splits.json").write_text(json.dumps({"splits": {"train": {"count": 30}}}))
    config = SimpleNamespace(
        train=SimpleNamespace(grad_clip=1.0, accumulate=1, max_steps_per_epoch=None),
        data=SimpleNamespace(batch_size=16),
    )
    found = run_notices(tmp_path, config, known_at_start=True)
    assert len(found) == 2 and "30 training samples" in found[0]
    assert run_notices(tmp_path / "missing", config) == []
    assert run_notices(tmp_path, config) == []  # the run printed those at its start


def test_start_notices_are_known_before_training() -> None:
    found = start_notices(2, batch_size=32, train_samples=40, val_samples=15)
    assert len(found) == 2
    assert found[0].startswith("only 2 optimizer step(s) per epoch (40 training samples")
    assert "15 validation samples" in found[1]
    assert start_notices(3, batch_size=8, val_samples=100, max_steps=3) == []
    assert start_notices(40, batch_size=8, val_samples=None) == []
