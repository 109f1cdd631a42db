"""Several machines: two torchrun "nodes" on this machine (c10d rendezvous on 127.0.0.1, one
process each, gloo on the CPU), as ``docs/guide.md`` launches them on two hosts."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import uuid
from pathlib import Path

import pytest

from tests.conftest import CliRunner, run_dirs

SMALL = ["--task", "image-classify", "--set", "model.hidden_size=24", "--seed", "3", "--quiet"]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def two_nodes(args: list[str], cwd: Path, timeout: float = 300) -> list[tuple[int, str, str]]:
    """``torchrun --nnodes 2 --node-rank R ... -m rnnvision_kit ARGS`` for R = 0, 1, started
    together in ``cwd`` (the nodes share its file system, as cluster nodes share a home or
    scratch folder); returns (exit code, stdout, stderr) of each node."""
    endpoint, run_id = f"127.0.0.1:{free_port()}", f"rnnkit-{uuid.uuid4().hex[:8]}"
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    nodes = [
        subprocess.Popen(
            [
                *(sys.executable, "-m", "torch.distributed.run"),
                *("--nnodes", "2", "--node-rank", str(rank), "--nproc-per-node", "1"),
                *("--rdzv-backend", "c10d", "--rdzv-endpoint", endpoint, "--rdzv-id", run_id),
                *("--rdzv-conf", "join_timeout=120", "--max-restarts", "0"),
                *("-m", "rnnvision_kit", *args),
            ],
            cwd=cwd,
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for rank in (0, 1)
    ]
    try:
        outputs = [n.communicate(timeout=timeout) for n in nodes]
        return [(n.returncode, out, err) for n, (out, err) in zip(nodes, outputs, strict=True)]
    finally:
        for node in nodes:
            if node.poll() is None:
                node.kill()


def summary_of_job(results: list[tuple[int, str, str]]) -> dict:
    """The one summary the job printed (global rank 0's, whichever node it ran on)."""
    for code, _, err in results:
        assert code == 0, err[-3000:]
    printed = [json.loads(out) for _, out, _ in results if out.strip()]
    assert len(printed) == 1, [out[-500:] for _, out, _ in results]
    return printed[0]


@pytest.mark.slow  # the slow accuracy test below runs the same two-node job (fast suite budget)
def test_two_nodes_train_as_one_job(tmp_path: Path) -> None:
    args = [*SMALL, "--device", "cpu", "--epochs", "1", "--set", "train.max_steps_per_epoch=3"]
    results = two_nodes(["run", *args, "--json"], tmp_path)
    summary = summary_of_job(results)
    assert summary["world_size"] == 2
    assert summary["test"]["test/samples"] == 359  # each test sample once across the nodes
    assert len(run_dirs(tmp_path, "image-classify")) == 1  # only global rank 0 writes


@pytest.mark.slow
def test_two_nodes_reach_the_accuracy_of_one_process(
    rnnkit: CliRunner, one_thread: None, tmp_path: Path
) -> None:
    # data.batch_size is per process: each node takes half, so that both runs make the same
    # optimizer steps on the same global batch size.
    args = [*SMALL, "--device", "cpu", "--epochs", "15", "--set", "model.hidden_size=64", "--json"]
    (tmp_path / "one").mkdir()
    result = rnnkit("run", *args, "--set", "data.batch_size=64", cwd=tmp_path / "one")
    assert result.returncode == 0, result.stderr
    single = json.loads(result.stdout)["test"]["test/acc"]
    (tmp_path / "two").mkdir()
    job = two_nodes(["run", *args, "--set", "data.batch_size=32"], tmp_path / "two", 900)
    double = summary_of_job(job)["test"]["test/acc"]
    assert single > 0.9 and abs(single - double) < 0.03, (single, double)
