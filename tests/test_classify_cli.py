"""The image-classify task through the real CLI: run, eval, predict, and bad input."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from tests.conftest import CliRunner, run_dirs

TINY = [
    "--epochs",
    "1",
    "--set",
    "model.hidden_size=16",
    "--set",
    "train.max_steps_per_epoch=3",
    "--quiet",
]


def write_digit_folder(root: Path, per_class: int = 12, classes: int = 3) -> None:
    from sklearn.datasets import load_digits

    digits = load_digits()
    for label in range(classes):
        folder = root / f"class{label}"
        folder.mkdir(parents=True)
        images = digits.images[digits.target == label][:per_class]
        for i, image in enumerate(images):
            array = (image * 255 / 16).astype(np.uint8)
            Image.fromarray(array).resize((16, 16)).save(folder / f"{i}.png")


@pytest.fixture(scope="module")
def trained_run(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One tiny run through the real CLI in a subprocess, shared by the tests of this module."""
    import os
    import subprocess
    import sys

    cwd = tmp_path_factory.mktemp("classify-run")
    subprocess.run(
        [sys.executable, "-m", "rnnvision_kit", "run", "--task", "image-classify", *TINY],
        cwd=cwd,
        check=True,
        capture_output=True,
        text=True,
        env={**os.environ, "OMP_NUM_THREADS": "1"},
    )
    (run_dir,) = run_dirs(cwd, "image-classify")
    return run_dir


def test_run_writes_the_run_folder(trained_run: Path) -> None:
    names = {p.name for p in trained_run.iterdir()}
    assert {
        "config.yaml",
        "metrics.jsonl",
        "last.pt",
        "best.pt",
        "summary.json",
        "curves.png",
        "confusion_test.png",
        "per_class_test.json",
    } <= names
    summary = json.loads((trained_run / "summary.json").read_text())
    assert summary["test"]["test/samples"] == 359  # digits' fixed stratified test split
    assert 0.0 <= summary["test"]["test/acc"] <= 1.0
    assert len(summary["test_details"]["test/confmat"]) == 10
    rows = [json.loads(line) for line in (trained_run / "metrics.jsonl").read_text().splitlines()]
    assert rows[0]["epoch"] == 0 and "val/acc" in rows[0] and "train/loss" in rows[0]


def test_checkpoints_load_with_weights_only(trained_run: Path) -> None:
    import torch

    state = torch.load(trained_run / "best.pt", weights_only=True)
    assert {"model", "optimizer", "scheduler", "rng", "config", "spec", "versions"} <= set(state)
    assert state["config"]["task"] == "image-classify"
    assert not list(trained_run.glob(".*.tmp"))  # atomic writes leave no temp files


def test_eval_reproduces_the_test_metrics(rnnkit: CliRunner, trained_run: Path) -> None:
    result = rnnkit("eval", str(trained_run), "--json", check=True)
    evaluated = json.loads(result.stdout)["metrics"]
    summary = json.loads((trained_run / "summary.json").read_text())
    assert evaluated["test/acc"] == pytest.approx(summary["test"]["test/acc"])
    assert (trained_run / "eval-test.json").is_file()


def test_predict_prints_top_k(rnnkit: CliRunner, trained_run: Path, tmp_path: Path) -> None:
    from sklearn.datasets import load_digits

    image = (load_digits().images[0] * 255 / 16).astype(np.uint8)
    Image.fromarray(image).save(tmp_path / "zero.png")
    result = rnnkit("predict", str(trained_run), "zero.png", "--top-k", "3", "--json", check=True)
    (record,) = json.loads(result.stdout)
    assert record["file"] == "zero.png" and len(record["top"]) == 3
    assert sum(p["score"] for p in record["top"]) <= 1.0 + 1e-6
    plain = rnnkit("predict", str(trained_run), "zero.png", check=True)
    assert plain.stdout.startswith("zero.png: ")
    bad = rnnkit("predict", str(trained_run), "missing.png")
    assert bad.returncode == 1 and bad.stderr == "rnnkit: error: missing.png: file not found\n"


def test_imagefolder_skips_and_counts_corrupt_files(rnnkit: CliRunner, tmp_path: Path) -> None:
    root = tmp_path / "pictures"
    write_digit_folder(root)
    (root / "class1" / "corrupt.png").write_bytes(b"\x89PNG\r\n\x1a\n not really")
    (root / "class2" / "notes.txt").write_text("not an image")
    result = rnnkit(
        "run",
        "--task",
        "image-classify",
        "--data",
        f"imagefolder:{root}",
        *TINY,
        "--json",
        check=True,
    )
    summary = json.loads(result.stdout)
    assert summary["skipped_files"] == 2
    assert {Path(s["file"]).name for s in summary["skipped"]} == {"corrupt.png", "notes.txt"}
    assert "corrupt.png" in result.stderr  # warned with its path


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (
            ["--task", "image-clasify"],
            "unknown task 'image-clasify'.*did you mean 'image-classify'",
        ),
        (["--task", "image-classify", "--set", "model.head=gruu"], "unknown layer or head 'gruu'"),
        (
            ["--task", "image-classify", "--set", "train.optimizer=adamax"],
            "train.optimizer: 'adamax'",
        ),
        (["--task", "image-classify", "--set", "train.lr=x"], "train.lr: expected a number"),
        (["--task", "image-classify", "--set", "trian.lr=1"], "unknown config key 'trian.lr'"),
        (
            ["--task", "image-classify", "--data", "mnist:/nonexistent/mnist"],
            "/nonexistent/mnist: data path does not exist",
        ),
        (["--task", "image-classify", "--data", "mnist"], "needs a local path"),
        (
            ["--task", "image-classify", "--set", "train.monitor=val/f1"],
            "train.monitor: metric 'val/f1' does not exist",
        ),
        (
            ["--task", "image-classify", "--precision", "16-mixed", "--device", "cpu"],
            "16-mixed needs CUDA",
        ),
    ],
)
def test_bad_input_gives_one_line_errors(rnnkit: CliRunner, args: list[str], message: str) -> None:
    import re

    result = rnnkit("run", *args, *TINY)
    assert result.returncode == 2, result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("rnnkit: error: "), result.stderr
    assert re.search(message, lines[0]), lines[0]


def test_empty_image_folder_and_mnist_files_missing(rnnkit: CliRunner, tmp_path: Path) -> None:
    (tmp_path / "empty").mkdir()
    result = rnnkit(
        "run", "--task", "image-classify", "--data", f"imagefolder:{tmp_path / 'empty'}", *TINY
    )
    assert result.returncode == 2 and "empty: no class folders" in result.stderr
    (tmp_path / "nomnist").mkdir()
    result = rnnkit(
        "run", "--task", "image-classify", "--data", f"mnist:{tmp_path / 'nomnist'}", *TINY
    )
    assert result.returncode == 2
    assert "expected train-images-idx3-ubyte" in result.stderr and "MNIST/raw" in result.stderr


def test_resume_refuses_truncated_or_foreign_checkpoints(
    rnnkit: CliRunner, trained_run: Path, tmp_path: Path
) -> None:
    import shutil

    for name, damage in [("truncated", lambda b: b[: len(b) // 2]), ("foreign", None)]:
        run_dir = tmp_path / name
        shutil.copytree(trained_run, run_dir)
        last = run_dir / "last.pt"
        if damage is None:
            import torch

            torch.save({"weights": torch.zeros(3)}, last)
        else:
            last.write_bytes(damage(last.read_bytes()))
        before = {p: p.read_bytes() for p in run_dir.rglob("*") if p.is_file()}
        result = rnnkit("run", "--resume", str(run_dir))
        assert result.returncode == 2, result.stderr
        assert f"{last}:" in result.stderr and len(result.stderr.strip().splitlines()) == 1
        after = {p: p.read_bytes() for p in run_dir.rglob("*") if p.is_file()}
        assert after == before  # nothing overwritten, nothing added
