"""Faults during a run: Ctrl-C, SIGTERM and SIGKILL at a random point inside an epoch, a kill in the middle
of a checkpoint write, a full disk, checkpoints that would run code or belong to another model,
and ``--resume`` with options that conflict with the saved run."""

from __future__ import annotations

import errno
import json
import os
import random
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch

from rnnvision_kit.runner.checkpoint import load_checkpoint, save_checkpoint
from tests.conftest import CliRunner, checkpoint_position, run_dirs

# digits: 1,259 training images in 79 steps of 16 per epoch; a checkpoint after every step
RUN = [
    *("--task", "image-classify", "--seed", "5", "--epochs", "3", "--quiet"),
    *("--set", "model.hidden_size=16", "--set", "data.batch_size=16"),
    *("--set", "train.threads=1", "--set", "train.checkpoint_every=1"),
]
STEPS_PER_EPOCH = 79


def _rows(run_dir: Path) -> list[dict]:
    return [json.loads(line) for line in (run_dir / "metrics.jsonl").read_text().splitlines()]


def _val(rows: list[dict]) -> list[dict]:
    return [{k: v for k, v in row.items() if k.startswith("val/")} for row in rows]


@pytest.fixture(scope="module")
def reference(tmp_path_factory: pytest.TempPathFactory) -> tuple[dict, list[dict]]:
    """The uninterrupted run: (summary, metrics rows)."""
    cwd = tmp_path_factory.mktemp("reference")
    summary = _run_json(cwd, ["run", *RUN])
    return summary, _rows(cwd / summary["run_dir"])


def _run_json(cwd: Path, args: list[str]) -> dict:
    """``rnnkit ARGS --json`` in a subprocess (one thread) in ``cwd``: its summary."""
    result = subprocess.run(
        [sys.executable, "-m", "rnnvision_kit", *args, "--json"],
        cwd=cwd,
        env={**os.environ, "OMP_NUM_THREADS": "1"},
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout)


def _interrupt_mid_epoch(cwd: Path, sig: signal.Signals, seed: int) -> Path:
    """Start the run, wait until it is a random number of steps into epoch 2, send ``sig``;
    returns the run folder after the process ended. SIGTERM goes to the whole process group,
    DataLoader workers included, as SLURM sends it (workers change no result: the reference
    runs without them)."""
    target = random.Random(seed).randrange(3, STEPS_PER_EPOCH - 20)
    workers = ["--set", "data.num_workers=1"] if sig == signal.SIGTERM else []
    process = subprocess.Popen(
        [sys.executable, "-m", "rnnvision_kit", "run", *RUN, *workers],
        cwd=cwd,
        env={**os.environ, "OMP_NUM_THREADS": "1"},
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=True,  # its own process group
    )
    deadline = time.monotonic() + 300
    try:
        while time.monotonic() < deadline and process.poll() is None:
            dirs = run_dirs(cwd, "image-classify")
            position = checkpoint_position(dirs[0] / "last.pt") if dirs else None
            if position is not None and position >= (1, target):
                break
            time.sleep(0.005)
        assert process.poll() is None, f"the run ended before it was interrupted: {target}"
        if sig == signal.SIGTERM:
            os.killpg(process.pid, sig)
        else:
            process.send_signal(sig)
        _, stderr = process.communicate(timeout=300)
    finally:
        process.kill()
    expected = -signal.SIGKILL if sig == signal.SIGKILL else 128 + sig  # 130, 143 (SIGTERM)
    assert process.returncode == expected, stderr
    if sig != signal.SIGKILL:  # saved at the next step, as Ctrl-C does
        assert f"interrupted ({sig.name}); resume with: rnnkit run --resume" in stderr, stderr
    (run_dir,) = run_dirs(cwd, "image-classify")
    return run_dir


@pytest.mark.parametrize(
    ("sig", "seed"),
    [
        (signal.SIGKILL, 0),
        pytest.param(signal.SIGKILL, 1, marks=pytest.mark.slow),  # another step of epoch 2
        # SLURM, docker stop, Kubernetes: saved as Ctrl-C is (slow: tests/test_signals.py
        # stops a run with SIGTERM in the quick suite)
        pytest.param(signal.SIGTERM, 3, marks=pytest.mark.slow),
        # (SIGINT shares SIGTERM's handler; tests/test_runner.py stops a run with it too)
        pytest.param(signal.SIGINT, 2, marks=pytest.mark.slow),
    ],
)
def test_interrupted_mid_epoch_then_resumed_equals_the_uninterrupted_run(
    reference: tuple[dict, list[dict]], rnnkit: CliRunner, tmp_path: Path, sig: int, seed: int
) -> None:
    run_dir = _interrupt_mid_epoch(tmp_path, sig, seed)
    stopped = load_checkpoint(run_dir / "last.pt")
    epoch, step = stopped["epoch"], stopped["batch_in_epoch"]
    assert epoch == 1 and 0 < step < STEPS_PER_EPOCH, (epoch, step)  # stopped mid-epoch
    assert len(_rows(run_dir)) == 1

    result = rnnkit("run", "--resume", str(run_dir), "--json")
    assert result.returncode == 0, result.stderr
    resumed = json.loads(result.stdout)
    summary, rows = reference
    assert _val(_rows(run_dir)) == _val(rows)  # every epoch's val metrics, exactly
    assert resumed["test"] == summary["test"]
    assert resumed["best_epoch"] == summary["best_epoch"]


def test_a_kill_inside_a_checkpoint_write_keeps_the_previous_one(tmp_path: Path) -> None:
    path = tmp_path / "last.pt"
    save_checkpoint({"model": {"w": torch.ones(3)}, "epoch": 1, "config": {}, "spec": {}}, path)
    # a second write large enough to be caught in the middle (about 400 MB)
    writer = (
        "import torch, sys; from pathlib import Path; "
        "from rnnvision_kit.runner.checkpoint import save_checkpoint; "
        "save_checkpoint({'model': {'w': torch.zeros(100_000_000)}, 'epoch': 2, 'config': {},"
        " 'spec': {}}, Path(sys.argv[1]))"
    )
    process = subprocess.Popen([sys.executable, "-c", writer, str(path)])
    deadline = time.monotonic() + 120
    partial: list[Path] = []
    while time.monotonic() < deadline and process.poll() is None:
        partial = [p for p in tmp_path.glob(".last.pt.*.tmp") if p.stat().st_size > 1_000_000]
        if partial:
            break
        time.sleep(0.001)
    process.send_signal(signal.SIGKILL)
    process.wait(timeout=60)
    assert partial and process.returncode == -signal.SIGKILL, "the write was not caught mid-way"
    assert load_checkpoint(path)["epoch"] == 1  # the previous checkpoint, intact
    save_checkpoint({"model": {}, "epoch": 3, "config": {}, "spec": {}}, path)
    assert not list(tmp_path.glob(".last.pt.*.tmp"))  # the killed writer's leftover is gone


def test_a_full_disk_during_a_checkpoint_write_is_one_line_and_loses_nothing(
    rnnkit: CliRunner, one_thread: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    real_fsync, calls = os.fsync, []

    def fsync_on_a_full_disk(fd: int) -> None:
        if ".last.pt." in os.readlink(f"/proc/self/fd/{fd}"):  # a checkpoint's temporary file
            calls.append(fd)
            if len(calls) == 2:  # epoch 2's last.pt
                raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
        real_fsync(fd)

    monkeypatch.setattr(os, "fsync", fsync_on_a_full_disk)
    args = ["run", "--task", "image-classify", "--epochs", "2", "--quiet"]
    result = rnnkit(*args, "--set", "train.max_steps_per_epoch=2", "--set", "train.threads=1")
    assert result.returncode == 2
    (line,) = result.stderr.strip().splitlines()
    assert line.startswith("rnnkit: error: ") and "last.pt: checkpoint not written" in line
    assert "No space left on device" in line and "previous checkpoint is kept" in line
    (run_dir,) = run_dirs(Path.cwd(), "image-classify")
    assert load_checkpoint(run_dir / "last.pt")["epoch"] == 1
    assert not list(run_dir.glob(".*.tmp"))
    monkeypatch.setattr(os, "fsync", real_fsync)
    resumed = rnnkit("run", "--resume", str(run_dir), "--json")
    assert resumed.returncode == 0, resumed.stderr
    assert json.loads(resumed.stdout)["epochs"] == 2


class _RunsCode:
    """Pickles as a call of ``os.system``: loading it with ``weights_only=False`` runs a shell."""

    def __init__(self, command: str) -> None:
        self.command = command

    def __reduce__(self) -> tuple:
        return (os.system, (self.command,))


@pytest.fixture(scope="module")
def small_run(tmp_path_factory: pytest.TempPathFactory) -> Path:
    cwd = tmp_path_factory.mktemp("small")
    args = ["run", "--task", "image-classify", "--epochs", "1", "--quiet"]
    args += ["--set", "train.max_steps_per_epoch=2", "--set", "train.threads=1"]
    return cwd / _run_json(cwd, args)["run_dir"]


def test_a_checkpoint_that_would_run_code_is_refused_and_never_runs(
    small_run: Path, rnnkit: CliRunner, tmp_path: Path
) -> None:
    marker = tmp_path / "code-ran"
    state = torch.load(small_run / "best.pt", weights_only=True)
    state["model"] = _RunsCode(f"touch {marker}")
    for name in ("best.pt", "last.pt"):
        torch.save(state, tmp_path / name)
    run_dir = tmp_path / "run"
    run_dir.mkdir()
    (run_dir / "config.yaml").write_text((small_run / "config.yaml").read_text())
    for name in ("best.pt", "last.pt"):
        (tmp_path / name).rename(run_dir / name)
    attempts = [
        ("eval", str(run_dir)),
        ("run", "--resume", str(run_dir)),
        ("predict", str(run_dir), str(small_run / "config.yaml")),
        ("run", "--task", "image-classify", "--set", f"model.init_from={run_dir / 'best.pt'}"),
    ]
    for args in attempts:
        result = rnnkit(*args)
        assert result.returncode == 2, (args, result.stderr)
        (line,) = result.stderr.strip().splitlines()
        assert "refused: its pickle would call posix.system" in line, line
        assert "nothing in it was run" in line
    assert not marker.exists()


def test_a_checkpoint_of_another_model_or_task_names_the_first_mismatch(
    small_run: Path, rnnkit: CliRunner, tmp_path: Path
) -> None:
    state = load_checkpoint(small_run / "last.pt")
    run_dir = tmp_path / "run"
    run_dir.mkdir()
    (run_dir / "config.yaml").write_text((small_run / "config.yaml").read_text())
    # another model: the same task with a wider GRU
    wider = {**state, "model": {k: torch.cat([v, v]) for k, v in state["model"].items()}}
    save_checkpoint(wider, run_dir / "last.pt")
    for args in (("run", "--resume", str(run_dir)), ("eval", str(run_dir), "--checkpoint", "last")):
        result = rnnkit(*args)
        (line,) = result.stderr.strip().splitlines()
        assert result.returncode == 2 and "weights do not fit the model:" in line, line
        assert "has shape" in line and "in the checkpoint" in line
    # another task's checkpoint in this run folder
    foreign = {**state, "config": {**state["config"], "task": "video-action"}}
    save_checkpoint(foreign, run_dir / "last.pt")
    result = rnnkit("run", "--resume", str(run_dir))
    (line,) = result.stderr.strip().splitlines()
    assert "a checkpoint of task 'video-action'" in line and "'image-classify'" in line


@pytest.fixture
def interrupted(small_run: Path, tmp_path: Path) -> Path:
    """A copy of the small run to resume."""
    run_dir = tmp_path / "copy"
    run_dir.mkdir()
    for name in ("config.yaml", "last.pt", "best.pt", "metrics.jsonl"):
        (run_dir / name).write_bytes((small_run / name).read_bytes())
    return run_dir


@pytest.mark.parametrize(
    ("option", "named"),
    [
        (["--seed", "9"], "--seed 9: conflicts with the run being resumed (seed=0 there)"),
        (["--precision", "bf16-mixed"], "--precision bf16-mixed: conflicts"),
        (["--data", "mnist:/nowhere"], "--data mnist:/nowhere: conflicts"),
        (["--out", "elsewhere"], "--out elsewhere: conflicts"),
        (["--task", "video-action"], "--task video-action: conflicts"),
        (["--set", "model.hidden_size=7"], "--set model.hidden_size=7: conflicts"),
        (["--set", "train.lr=0.5"], "--set train.lr=0.5: conflicts"),
    ],
)
def test_resume_refuses_an_option_that_conflicts_with_the_saved_run(
    interrupted: Path, rnnkit: CliRunner, option: list[str], named: str
) -> None:
    result = rnnkit("run", "--resume", str(interrupted), *option)
    assert result.returncode == 2
    (line,) = result.stderr.strip().splitlines()
    assert line.startswith(f"rnnkit: error: {named}"), line


def test_resume_refuses_a_config_file_that_changes_a_setting(
    interrupted: Path, rnnkit: CliRunner, tmp_path: Path
) -> None:
    same = tmp_path / "same.yaml"
    same.write_text("seed: 0\ntrain:\n  epochs: 1\n")
    other = tmp_path / "other.yaml"
    other.write_text("train:\n  epochs: 1\n  optimizer: sgd\n")
    result = rnnkit("run", "--resume", str(interrupted), "--config", str(other))
    assert result.returncode == 2
    assert f"--config {other} (train.optimizer): conflicts" in result.stderr
    result = rnnkit("run", "--resume", str(interrupted), "--config", str(same), "--json")
    assert result.returncode == 0, result.stderr  # nothing changes: the run just finishes


def test_resume_applies_safe_options_and_says_so(interrupted: Path, rnnkit: CliRunner) -> None:
    args = ["--device", "cpu", "--epochs", "2", "--seed", "0", "--quiet", "--json"]
    result = rnnkit("run", "--resume", str(interrupted), *args, "--set", "train.threads=1")
    assert result.returncode == 0, result.stderr
    assert "rnnkit: resume: train.device='cpu' (the run had 'auto')" in result.stderr
    assert "rnnkit: resume: train.epochs=2 (the run had 1)" in result.stderr
    assert "seed" not in result.stderr  # the same value as the saved run: nothing to say
    summary = json.loads(result.stdout)
    assert summary["epochs"] == 2 and summary["device"] == "cpu"


def _files(folder: Path) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()}


def test_resume_of_a_finished_run_changes_nothing_and_epochs_train_on(
    small_run: Path, rnnkit: CliRunner, tmp_path: Path
) -> None:
    run_dir = tmp_path / "finished"
    shutil.copytree(small_run, run_dir)
    before = _files(run_dir)
    first = json.loads((run_dir / "summary.json").read_text())["train_seconds"]
    result = rnnkit("run", "--resume", str(run_dir))
    assert result.returncode == 0, result.stderr
    assert result.stderr.strip().splitlines() == [
        f"rnnkit: {run_dir} is finished (1/1 epochs); nothing to resume (rnnkit eval {run_dir} "
        "re-evaluates it; --epochs N above 1 trains on)"
    ]
    assert _files(run_dir) == before  # train_seconds and summary.json untouched

    result = rnnkit("run", "--resume", str(run_dir), "--epochs", "2", "--json")
    assert result.returncode == 0, result.stderr
    summary = json.loads(result.stdout)
    assert summary["epochs"] == 2
    assert summary["train_seconds"] > first  # the first epoch's seconds are kept
    saved = load_checkpoint(run_dir / "last.pt")["train_seconds"]  # what a resume adds to
    assert first < saved <= summary["train_seconds"]


def test_a_missing_best_pt_is_announced(small_run: Path, rnnkit: CliRunner, tmp_path: Path) -> None:
    run_dir = tmp_path / "no-best"
    shutil.copytree(small_run, run_dir)
    (run_dir / "best.pt").unlink()
    note = f"rnnkit: warning: {run_dir / 'best.pt'} not found; using last.pt (after epoch 1)"
    (digit,) = _digits(tmp_path, 1)
    for args in (("eval", str(run_dir)), ("predict", str(run_dir), str(digit))):
        result = rnnkit(*args)
        assert result.returncode == 0, result.stderr
        assert result.stderr.strip().splitlines() == [note], args
    # a run stopped before its first validation never had one: said so
    state = load_checkpoint(run_dir / "last.pt")
    state["early_stopping"]["best_epoch"] = -1
    state["epoch"], state["batch_in_epoch"] = 0, 1
    save_checkpoint(state, run_dir / "last.pt")
    result = rnnkit("eval", str(run_dir), "--checkpoint", "best")
    assert result.stderr.strip().splitlines()[0] == (
        f"rnnkit: warning: {run_dir} has no best.pt (no epoch validated yet); using last.pt "
        "(1 batches into epoch 1)"
    )


def _digits(folder: Path, count: int) -> list[Path]:
    """``count`` small grey PNG images."""
    from PIL import Image

    paths = [folder / f"digit{i}.png" for i in range(count)]
    for i, path in enumerate(paths):
        Image.new("L", (8, 8), color=40 * i).save(path)
    return paths


def test_predict_prints_every_good_file_and_lists_the_bad_ones(
    small_run: Path, rnnkit: CliRunner, tmp_path: Path
) -> None:
    good = _digits(tmp_path, 3)
    bad = tmp_path / "broken.png"
    bad.write_text("not an image")
    files = [str(good[0]), str(bad), str(good[1]), str(good[2])]
    result = rnnkit("predict", str(small_run), *files)
    assert result.returncode == 1
    assert [line.split(": ")[0] for line in result.stdout.splitlines()] == list(map(str, good))
    (line,) = result.stderr.strip().splitlines()
    assert line.startswith(f"rnnkit: error: {bad}: ") and "image" in line, line

    result = rnnkit("predict", str(small_run), *files, "--json")
    assert result.returncode == 1
    records = json.loads(result.stdout)  # still a valid JSON array, in the files' order
    assert [r["file"] for r in records] == files
    assert records[1]["error"] == line.removeprefix(f"rnnkit: error: {bad}: ")
    assert all("top" in records[i] for i in (0, 2, 3))
