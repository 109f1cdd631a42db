"""Folders that cannot be written: ``--out``, and a run folder given to ``eval``, ``predict`` and
``export``. Results are printed before anything is written; the folder is one line; ``--out`` is
checked before any data is built.

Each case is made with something that fails for everyone (a path under a regular file, a folder
where a file must go), and again with a read-only folder: ``chmod 0o555`` for a user, a
read-only bind mount for root (root ignores permission bits)."""

from __future__ import annotations

import contextlib
import os
import shutil
import stat
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.bad_videos import write_moov_first
from tests.conftest import CliRunner, train_in_process

ROOT = os.geteuid() == 0

TINY = [
    *("--task", "image-classify", "--epochs", "1", "--set", "train.max_steps_per_epoch=1"),
    *("--set", "model.hidden_size=8", "--set", "train.threads=1"),
]


@pytest.fixture(scope="module")
def trained(tmp_path_factory: pytest.TempPathFactory) -> Path:
    run_dir, _ = train_in_process(tmp_path_factory.mktemp("trained"), *TINY)
    return run_dir


@pytest.fixture
def run_copy(trained: Path, tmp_path: Path) -> Iterator[Path]:
    """A copy of the trained run, made writable again after the test."""
    copy = tmp_path / "run"
    shutil.copytree(trained, copy)
    yield copy
    copy.chmod(0o755)


@contextlib.contextmanager
def _read_only(folder: Path) -> Iterator[str]:
    """``folder`` read-only while the block runs; yields the reason a write there gives."""
    if not ROOT:
        folder.chmod(stat.S_IRUSR | stat.S_IXUSR | stat.S_IRGRP | stat.S_IXGRP | stat.S_IROTH)
        try:
            yield "Permission denied"
        finally:
            folder.chmod(0o755)
        return
    mount = ["mount", "--bind", str(folder), str(folder)]
    if subprocess.run(mount, capture_output=True).returncode != 0:
        pytest.skip("root ignores chmod, and this machine refuses a bind mount")
    try:
        remount = ["mount", "-o", "remount,bind,ro", str(folder)]
        subprocess.run(remount, check=True, capture_output=True)
        yield "Read-only file system"
    finally:
        subprocess.run(["umount", str(folder)], check=True, capture_output=True)


def _one_error(result: object) -> str:
    lines = [  # one error line (a barely trained model's baseline warning may come before it)
        line
        for line in result.stderr.strip().splitlines()  # type: ignore[attr-defined]
        if not line.startswith(("rnnkit: warning: ", "rnnkit: notice: "))
    ]
    assert result.returncode == 2 and len(lines) == 1, result.stderr  # type: ignore[attr-defined]
    assert lines[0].startswith("rnnkit: error: ")
    return lines[0]


def test_out_that_cannot_be_written_is_one_line_before_any_data(
    rnnkit: CliRunner, tmp_path: Path
) -> None:
    blocker = tmp_path / "a-file"
    blocker.write_text("not a folder")
    result = rnnkit("run", *TINY, "--out", str(blocker / "runs"))
    line = _one_error(result)
    assert (
        line
        == f"rnnkit: error: out_dir {blocker / 'runs'}: folder cannot be written (Not a directory)"
    )
    assert blocker.read_text() == "not a folder"
    assert "task image-classify" not in result.stdout  # nothing was built or trained


def test_out_in_a_read_only_folder_is_one_line(rnnkit: CliRunner, tmp_path: Path) -> None:
    locked = tmp_path / "locked"
    locked.mkdir()
    with _read_only(locked) as why:
        line = _one_error(rnnkit("run", *TINY, "--out", str(locked / "runs")))
    assert line == f"rnnkit: error: out_dir {locked / 'runs'}: folder cannot be written ({why})"


def test_eval_prints_its_metrics_then_names_the_folder_it_cannot_write(
    rnnkit: CliRunner, run_copy: Path
) -> None:
    (run_copy / "eval-test.json").mkdir()  # where the result must go: fails for root too
    result = rnnkit("eval", str(run_copy))
    assert "test/acc" in result.stdout and "test/loss" in result.stdout  # printed first
    line = _one_error(result)
    assert line == (
        f"rnnkit: error: {run_copy}: folder cannot be written (eval-test.json: Is a directory)"
    )


def test_eval_in_a_read_only_run_folder(rnnkit: CliRunner, run_copy: Path) -> None:
    with _read_only(run_copy) as why:
        result = rnnkit("eval", str(run_copy), "--json")
    assert '"test/acc"' in result.stdout
    line = _one_error(result)
    assert line == f"rnnkit: error: {run_copy}: folder cannot be written (eval-test.json: {why})"


def test_export_names_the_folder_before_exporting(rnnkit: CliRunner, run_copy: Path) -> None:
    (run_copy / "export").write_text("in the way")
    result = rnnkit("export", str(run_copy), "--format", "exported-program")
    line = _one_error(result)
    assert (
        line
        == f"rnnkit: error: {run_copy / 'export'}: folder cannot be written (a file is in the way)"
    )
    assert (run_copy / "export").read_text() == "in the way"


def test_export_in_a_read_only_run_folder(rnnkit: CliRunner, run_copy: Path) -> None:
    with _read_only(run_copy) as why:
        line = _one_error(rnnkit("export", str(run_copy), "--format", "exported-program"))
    assert line == f"rnnkit: error: {run_copy / 'export'}: folder cannot be written ({why})"


# ------------------------------------------------------------ predict: the plot is a warning

VIDEO = [
    *("data.size=32", "data.num_frames=4", "data.batch_size=4", "data.frame_cache=false"),
    *("data.val_fraction=0.25", "data.test_fraction=0.25", "model.backbone=small-cnn"),
    *("train.threads=1", "train.max_steps_per_epoch=1"),
]


@pytest.fixture(scope="module")
def video_run(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """A tiny video-action run on 2 classes of 4 short videos, and a long video to predict
    (longer than a clip: a timeline and its plot)."""
    root = tmp_path_factory.mktemp("videos")
    for c, name in enumerate(("left", "right")):
        (root / name).mkdir()
        for i in range(4):
            write_moov_first(root / name / f"{i}.mp4", frames=8, seed=10 * c + i)
    sets = [f"--set={s}" for s in VIDEO]
    args = ["--task", "video-action", "--data", f"videofolder:{root}", "--epochs", "1", *sets]
    run_dir, _ = train_in_process(tmp_path_factory.mktemp("video-run"), *args)
    long = write_moov_first(root / "long.mp4", frames=40, seed=99)
    return run_dir, long


def test_predict_prints_every_prediction_when_the_plot_cannot_be_written(
    rnnkit: CliRunner, video_run: tuple[Path, Path], tmp_path: Path
) -> None:
    run_dir, long = video_run
    blocker = tmp_path / "plots"
    blocker.write_text("a file")  # --out under a regular file: fails for root too
    result = rnnkit("predict", str(run_dir), str(long), "--out", str(blocker / "out"))
    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith(f"{long}: ") and "0.00-" in result.stdout  # the timeline
    assert "timeline plot:" not in result.stdout
    (line,) = result.stderr.strip().splitlines()
    assert line == (
        f"rnnkit: warning: {blocker / 'out'}: timeline plot of long.mp4 not written "
        "(Not a directory); --out DIR"
    )
