"""The shared runner: determinism, Ctrl-C + resume, DDP through torchrun, schedules, checkpoints."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch

from rnnvision_kit.config import TrainConfig
from rnnvision_kit.errors import CheckpointError
from rnnvision_kit.runner.checkpoint import load_checkpoint, save_checkpoint
from rnnvision_kit.runner.optim import build_optimizer, lr_factor
from tests.conftest import CliRunner, run_dirs, torchrun

SMALL = ["--task", "image-classify", "--set", "model.hidden_size=24", "--seed", "3", "--quiet"]


def summary_of(result: subprocess.CompletedProcess) -> dict:
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout)


def test_same_seed_same_metrics(rnnkit: CliRunner, one_thread: None) -> None:
    args = [*SMALL, "--epochs", "2", "--set", "train.max_steps_per_epoch=5", "--json"]
    first, second = summary_of(rnnkit("run", *args)), summary_of(rnnkit("run", *args))
    assert first["test"] == second["test"]


def test_ctrl_c_then_resume_matches_an_uninterrupted_run(
    rnnkit: CliRunner, one_thread: None, tmp_path: Path
) -> None:
    args = [*SMALL, "--epochs", "6"]
    (tmp_path / "a").mkdir()
    reference = summary_of(rnnkit("run", *args, "--json", cwd=tmp_path / "a"))

    cwd = tmp_path / "b"
    cwd.mkdir()
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    process = subprocess.Popen(
        [sys.executable, "-m", "rnnvision_kit", "run", *args],
        cwd=cwd,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    deadline = time.monotonic() + 300
    while time.monotonic() < deadline and process.poll() is None:
        dirs = run_dirs(cwd, "image-classify")
        if (
            dirs
            and (dirs[0] / "metrics.jsonl").is_file()
            and (dirs[0] / "metrics.jsonl").read_text()
        ):
            break
        time.sleep(0.02)
    process.send_signal(signal.SIGINT)
    _, stderr = process.communicate(timeout=300)
    assert process.returncode == 130, stderr
    assert "resume with: rnnkit run --resume" in stderr
    (run_dir,) = run_dirs(cwd, "image-classify")
    interrupted_at = torch.load(run_dir / "last.pt", weights_only=True)
    assert interrupted_at["epoch"] < 6

    resumed = summary_of(rnnkit("run", "--resume", str(run_dir), "--json", cwd=cwd))
    assert resumed["test"]["test/acc"] == reference["test"]["test/acc"]
    assert resumed["test"]["test/loss"] == pytest.approx(reference["test"]["test/loss"], rel=1e-5)
    rows = [json.loads(line) for line in (run_dir / "metrics.jsonl").read_text().splitlines()]
    assert [row["epoch"] for row in rows] == list(range(6))


def test_torchrun_two_processes_count_each_test_sample_once(tmp_path: Path) -> None:
    args = [*SMALL, "--device", "cpu", "--epochs", "1", "--set", "train.max_steps_per_epoch=3"]
    result = torchrun(["run", *args, "--json"], tmp_path, port=29517)
    assert result.returncode == 0, result.stderr[-3000:]
    summary = json.loads(result.stdout)
    assert summary["world_size"] == 2
    assert summary["test"]["test/samples"] == 359  # odd: padding would have counted 360
    assert (
        sum(summary["test_details"]["test/confmat"][i][j] for i in range(10) for j in range(10))
        == 359
    )
    assert len(run_dirs(tmp_path, "image-classify")) == 1  # only rank 0 writes


@pytest.mark.slow
def test_torchrun_accuracy_matches_one_process(
    rnnkit: CliRunner, one_thread: None, tmp_path: Path
) -> None:
    # data.batch_size is per process: the 2-process run uses half of it, so that both runs take
    # the same number of optimizer steps on the same global batch size.
    args = [*SMALL, "--device", "cpu", "--epochs", "15", "--set", "model.hidden_size=64", "--json"]
    single = summary_of(rnnkit("run", *args, "--set", "data.batch_size=64"))["test"]["test/acc"]
    result = torchrun(["run", *args, "--set", "data.batch_size=32"], tmp_path, 29518, 900)
    assert result.returncode == 0, result.stderr[-3000:]
    double = json.loads(result.stdout)["test"]["test/acc"]
    assert single > 0.9 and abs(single - double) < 0.03, (single, double)


def test_bf16_mixed_precision_runs_on_the_cpu(rnnkit: CliRunner) -> None:
    args = [
        *SMALL,
        "--epochs",
        "1",
        "--set",
        "train.max_steps_per_epoch=2",
        "--precision",
        "bf16-mixed",
    ]
    summary = summary_of(rnnkit("run", *args, "--json"))
    assert summary["precision"] == "bf16-mixed" and summary["test"]["test/loss"] > 0


def test_early_stopping_stops_and_keeps_the_best(rnnkit: CliRunner) -> None:
    # A learning rate this small leaves val/acc unchanged: no improvement after the first epoch.
    args = [
        *SMALL,
        "--epochs",
        "8",
        "--set",
        "train.max_steps_per_epoch=1",
        "--set",
        "train.lr=1e-12",
        "--set",
        "train.patience=2",
    ]
    summary = summary_of(rnnkit("run", *args, "--json"))
    assert summary["stopped_early"] and summary["epochs"] == 3 and summary["best_epoch"] == 1


def test_tensorboard_gets_every_epoch_row(rnnkit: CliRunner, tmp_path: Path) -> None:
    pytest.importorskip("tensorboard", reason="TensorBoard logging needs the tensorboard package")
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    args = [*SMALL, "--epochs", "2", "--set", "train.max_steps_per_epoch=2"]
    summary_of(rnnkit("run", *args, "--json", cwd=tmp_path))
    (run_dir,) = run_dirs(tmp_path, "image-classify")
    events = EventAccumulator(str(run_dir / "tensorboard"))
    events.Reload()
    rows = [json.loads(line) for line in (run_dir / "metrics.jsonl").read_text().splitlines()]
    for key in ("train/loss", "val/acc", "val/loss"):
        logged = [(e.step, e.value) for e in events.Scalars(key)]
        assert logged == [(r["epoch"] + 1, pytest.approx(r[key])) for r in rows]


def test_warmup_cosine_and_step_schedules() -> None:
    cosine = TrainConfig(epochs=10, schedule="cosine", warmup_epochs=1)
    assert lr_factor(0, cosine, 10) == pytest.approx(0.1)
    assert lr_factor(9, cosine, 10) == pytest.approx(1.0)
    assert lr_factor(55, cosine, 10) == pytest.approx(0.5, abs=0.02)
    assert lr_factor(99, cosine, 10) < 0.01
    step = TrainConfig(epochs=10, schedule="step", step_size=2, gamma=0.5)
    assert [lr_factor(s, step, 10) for s in (0, 19, 20, 45)] == [1.0, 1.0, 0.5, 0.25]
    assert lr_factor(50, TrainConfig(schedule="none"), 10) == 1.0


@pytest.mark.parametrize("name", ["sgd", "adagrad", "rmsprop", "adam", "adamw"])
def test_optimizers(name: str) -> None:
    model = torch.nn.Linear(3, 2)
    optimizer = build_optimizer(model.parameters(), TrainConfig(optimizer=name, lr=0.1))
    before = model.weight.detach().clone()
    model(torch.ones(4, 3)).sum().backward()
    optimizer.step()
    assert not torch.equal(before, model.weight)


def test_checkpoint_round_trip_and_foreign_files(tmp_path: Path) -> None:
    path = tmp_path / "c.pt"
    save_checkpoint({"model": {"w": torch.ones(2)}, "epoch": 1, "config": {}, "spec": {}}, path)
    assert load_checkpoint(path)["epoch"] == 1
    torch.save({"hello": 1}, tmp_path / "foreign.pt")
    with pytest.raises(CheckpointError, match="foreign.pt: not an rnnvision-kit checkpoint"):
        load_checkpoint(tmp_path / "foreign.pt")
    (tmp_path / "text.pt").write_text("nope")
    with pytest.raises(CheckpointError, match="text.pt: not a readable checkpoint"):
        load_checkpoint(tmp_path / "text.pt")


def _weights(run_dir: Path) -> dict[str, torch.Tensor]:
    return load_checkpoint(run_dir / "last.pt")["model"]


def test_gradient_accumulation_equals_the_larger_batch(
    rnnkit: CliRunner, one_thread: None, tmp_path: Path
) -> None:
    args = [*SMALL, "--epochs", "1", "--set", "model.dropout=0", "--set", "train.lr=0.01"]
    (tmp_path / "big").mkdir()
    (tmp_path / "small").mkdir()
    big = rnnkit(
        "run",
        *args,
        "--set",
        "data.batch_size=32",
        "--set",
        "train.max_steps_per_epoch=3",
        cwd=tmp_path / "big",
    )
    small = rnnkit(
        "run",
        *args,
        "--set",
        "data.batch_size=16",
        "--set",
        "train.accumulate=2",
        "--set",
        "train.max_steps_per_epoch=3",
        cwd=tmp_path / "small",
    )
    assert big.returncode == 0 and small.returncode == 0, big.stderr + small.stderr
    (big_dir,) = run_dirs(tmp_path / "big", "image-classify")
    (small_dir,) = run_dirs(tmp_path / "small", "image-classify")
    assert load_checkpoint(small_dir / "last.pt")["step"] == 3  # optimizer steps, not batches
    a, b = _weights(big_dir), _weights(small_dir)
    for key in a:  # the same 96 samples, the same 3 optimizer steps: the same weights
        assert torch.allclose(a[key], b[key], rtol=1e-4, atol=1e-6), key


def test_gradient_norms_and_clipping_are_logged_and_drawn(
    rnnkit: CliRunner, one_thread: None, tmp_path: Path
) -> None:
    args = [*SMALL, "--epochs", "2", "--set", "train.max_steps_per_epoch=4"]
    result = rnnkit("run", *args, "--set", "train.grad_clip=1e-6")
    assert result.returncode == 0, result.stderr
    (run_dir,) = run_dirs(tmp_path, "image-classify")
    rows = [json.loads(line) for line in (run_dir / "metrics.jsonl").read_text().splitlines()]
    for row in rows:
        assert 0 < row["train/grad_norm"] <= row["train/grad_norm_max"]
        assert row["train/clipped"] == 1.0  # every step's norm is above 1e-6
    assert (run_dir / "curves.png").stat().st_size > 10_000
    result = rnnkit("run", *args, "--set", "train.grad_clip=null", cwd=tmp_path / "..")
    assert result.returncode == 0, result.stderr
    (unclipped,) = run_dirs(tmp_path / "..", "image-classify")
    rows = [json.loads(line) for line in (unclipped / "metrics.jsonl").read_text().splitlines()]
    assert all(row["train/clipped"] == 0.0 for row in rows)


def test_compile_falls_back_in_one_line_when_the_compiler_fails(
    rnnkit_process: CliRunner,
) -> None:
    # a C++ compiler that always fails (and no cached kernels): inductor cannot build kernels
    args = [*SMALL, "--epochs", "1", "--set", "train.max_steps_per_epoch=2", "--json"]
    env = {"CXX": "/bin/false", "TORCHINDUCTOR_FORCE_DISABLE_CACHES": "1"}
    result = rnnkit_process("run", *args, "--set", "train.compile=true", env=env)
    assert result.returncode == 0, result.stderr
    (line,) = [x for x in result.stderr.splitlines() if "train.compile" in x]
    assert line.startswith("rnnkit: warning: train.compile: torch.compile failed (")
    assert line.endswith("; training without it")
    assert json.loads(result.stdout)["test"]["test/loss"] > 0


@pytest.mark.parametrize(
    ("setting", "message"),
    [
        ("train.sync_bn=true", "train.sync_bn: SyncBatchNorm runs only on CUDA"),
        ("train.accumulate=0", "train.accumulate: must be >= 1"),
        ("data.prefetch_factor=0", "data.prefetch_factor: must be >= 1"),
    ],
)
def test_gpu_settings_on_the_cpu_are_one_line_errors(
    rnnkit: CliRunner, setting: str, message: str, tmp_path: Path
) -> None:
    if setting.startswith("train.sync_bn"):  # only meaningful with several processes
        args = ["run", *SMALL, "--device", "cpu", "--epochs", "1", "--set", setting]
        result = torchrun([*args, "--set", "train.max_steps_per_epoch=1"], tmp_path, port=29531)
        assert result.returncode != 0 and message in result.stderr, result.stderr[-2000:]
        frames = [x for x in result.stderr.splitlines() if x.strip().startswith("File ")]
        assert not [x for x in frames if "rnnvision_kit" in x]  # torchrun's own report only
        return
    result = rnnkit("run", *SMALL, "--set", setting)
    assert result.returncode == 2
    assert result.stderr.strip().startswith(f"rnnkit: error: {message}")


def test_a_ddp_rank_ends_without_finalizing_yet_runs_atexit_and_flushes(tmp_path: Path) -> None:
    # exit_without_finalizing (how the CLI ends a process that joined a process group) must keep
    # what an ordinary exit gives: atexit handlers run, buffered output written, the exit status.
    marker = tmp_path / "atexit-ran"
    script = (
        "import atexit, pathlib, sys\n"
        "from rnnvision_kit.runner.distributed import exit_without_finalizing\n"
        f"atexit.register(pathlib.Path({str(marker)!r}).write_text, 'yes')\n"
        "sys.stdout.write('buffered, no newline')\n"
        "sys.stderr.write('error line')\n"
        "exit_without_finalizing(3)\n"
        "print('never')\n"
    )
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True)
    assert done.returncode == 3, done.stderr
    assert done.stdout == "buffered, no newline"
    assert done.stderr == "error line"
    assert marker.read_text() == "yes"


def test_exit_status_follows_sys_exit() -> None:
    from rnnvision_kit.cli import exit_status

    assert exit_status(None) == 0
    assert exit_status(4) == 4
    assert exit_status("rnnkit: a message") == 1


@pytest.mark.parametrize(("debug", "status"), [(False, 2), (True, 1)])
def test_a_ddp_rank_keeps_its_exit_status_and_error(debug: bool, status: int) -> None:
    # The CLI ends a process that joined a process group through exit_without_finalizing: an
    # error still prints its line (or, with --debug, its traceback) and exits as it would.
    # An object that says when the interpreter's finalization frees it: it must not get there.
    script = (
        "import sys\n"
        "import rnnvision_kit.runner.distributed as distributed\n"
        "from rnnvision_kit.cli import main\n"
        "class Finalized:\n"
        "    def __del__(self): sys.stderr.write('finalized')\n"
        "witness = Finalized()\n"
        "distributed._joined = {joined}  # True: as init_distributed leaves it under torchrun\n"
        f"main([*{['--debug'] if debug else []!r}, 'run', '--task', 'no-such-task'])\n"
        "print('never')\n"
    )
    for joined in (False, True):
        done = subprocess.run(
            [sys.executable, "-c", script.format(joined=joined)], capture_output=True, text=True
        )
        assert done.returncode == status, done.stderr
        assert "no-such-task" in done.stderr and "never" not in done.stdout
        assert ("Traceback" in done.stderr) is debug
        assert ("finalized" in done.stderr) is not joined
