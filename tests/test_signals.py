"""SIGTERM (SLURM, ``docker stop``, Kubernetes) under DDP: torchrun forwards it to every worker,
the ranks agree on the optimizer step to stop at, rank 0 saves ``last.pt``, and a resumed run
ends with the uninterrupted run's metrics. (One process: tests/test_faults.py.)"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.conftest import checkpoint_position, run_dirs, torchrun

# two processes, 2 epochs of 12 optimizer steps; a checkpoint after each step shows the progress
DDP_RUN = [
    *("run", "--task", "image-classify", "--device", "cpu", "--seed", "4", "--epochs", "2"),
    *("--set", "model.hidden_size=16", "--set", "train.threads=1"),
    *("--set", "train.max_steps_per_epoch=12", "--set", "train.checkpoint_every=1", "--quiet"),
]


@pytest.mark.slow
def test_sigterm_to_torchrun_saves_on_rank_0_and_resumes_to_the_same_metrics(
    tmp_path: Path,
) -> None:
    (tmp_path / "a").mkdir()
    reference = torchrun([*DDP_RUN, "--json"], tmp_path / "a", port=29541)
    assert reference.returncode == 0, reference.stderr[-3000:]
    expected = json.loads(reference.stdout)["test"]

    cwd = tmp_path / "b"
    cwd.mkdir()
    command = [
        *(sys.executable, "-m", "torch.distributed.run", "--nproc-per-node", "2"),
        *("--master-port", "29542", "-m", "rnnvision_kit", *DDP_RUN),
    ]
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    process = subprocess.Popen(
        command, cwd=cwd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True
    )
    deadline = time.monotonic() + 300
    try:
        while time.monotonic() < deadline and process.poll() is None:
            dirs = run_dirs(cwd, "image-classify")
            position = checkpoint_position(dirs[0] / "last.pt") if dirs else None
            if position is not None and position >= (0, 4):
                break
            time.sleep(0.01)
        assert process.poll() is None, "the run ended before it was stopped"
        process.send_signal(signal.SIGTERM)  # to torchrun only: it forwards it to the workers
        _, stderr = process.communicate(timeout=120)  # well inside torchrun's 30 s per worker
    finally:
        process.kill()
    assert "rnnkit: SIGTERM: saving and stopping after this step" in stderr, stderr[-3000:]
    assert stderr.count("rnnkit: SIGTERM:") == 1  # rank 0 speaks for all
    (run_dir,) = run_dirs(cwd, "image-classify")
    assert (
        f"interrupted (SIGTERM); resume with: torchrun ... -m rnnvision_kit run --resume {run_dir.relative_to(cwd)}"
        in stderr
    )
    epoch, batch = checkpoint_position(run_dir / "last.pt") or (-1, -1)
    assert (epoch, batch) < (2, 0) and (epoch, batch) >= (0, 4), (epoch, batch)

    resumed = torchrun(["run", "--resume", str(run_dir), "--json"], cwd, port=29543)
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    test = json.loads(resumed.stdout)["test"]
    assert test["test/acc"] == expected["test/acc"]
    assert test["test/loss"] == pytest.approx(expected["test/loss"], rel=1e-5)


LEAKED_LOADER = """
import torch
from torch.utils.data import DataLoader
from rnnvision_kit.runner.device import loader_options

torch.set_num_threads(1)
options = loader_options(1, None, torch.device("cpu"), persistent=True)
loader = DataLoader(list(range(8)), batch_size=2, **options)
batches = iter(loader)
next(batches)  # the worker stays alive, idle: it is never shut down before the exit
print("worker", batches._workers[0].pid, flush=True)
"""


def test_a_worker_left_alive_ends_at_exit_and_ignores_sigterm_only_with_the_main_process(
    tmp_path: Path,
) -> None:
    """A DataLoader worker leaves a job-wide SIGTERM to the main process, but the SIGTERM that
    ends a worker no one shut down (multiprocessing at exit, DataLoader's terminate()) still
    ends it: the process exits instead of waiting for it forever."""
    script = tmp_path / "leak.py"
    script.write_text(LEAKED_LOADER)
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    done = subprocess.run(
        [sys.executable, str(script)], capture_output=True, text=True, timeout=120, env=env
    )
    assert done.returncode == 0, done.stderr[-2000:]
    pid = int(done.stdout.split()[1])
    time.sleep(0.5)
    with pytest.raises(ProcessLookupError):
        os.kill(pid, 0)  # the worker is gone too
