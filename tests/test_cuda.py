"""The runner's CUDA paths: fp16 with GradScaler and clipping, bf16, DDP with NCCL (and gloo on
GPU tensors), torch.compile, channels_last, pinned memory with workers, gradient accumulation.

Each test skips where there is no CUDA; ``benchmarks/gpu_session.sh`` runs them on a GPU machine.
Runs are tiny real ``rnnkit run`` calls; the DDP ones go through torchrun in subprocesses.
"""

from __future__ import annotations

import dataclasses
import json
import math
import os
import socket
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from rnnvision_kit.config import TrainConfig
from tests.conftest import CliRunner, run_dirs

pytestmark = pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA (a GPU machine)")

SMALL = ["--task", "image-classify", "--set", "model.hidden_size=24", "--seed", "3", "--quiet"]
VIDEO = ["--task", "video-action", "--set", "data.videos_per_class=[6]", "--quiet"]
TINY = ["--epochs", "2", "--set", "train.max_steps_per_epoch=4", "--json"]


def needs_setting(name: str) -> None:
    """Skip when this runner's TrainConfig has no ``train.<name>`` (yet)."""
    if name not in {f.name for f in dataclasses.fields(TrainConfig)}:
        pytest.skip(f"train.{name} is not a runner setting in this checkout")


def summary_of(result: subprocess.CompletedProcess) -> dict:
    assert result.returncode == 0, (result.stderr or "")[-3000:]
    return json.loads(result.stdout)


def rows_of(root: Path, task: str) -> list[dict]:
    (run_dir,) = run_dirs(root, task)
    return [json.loads(line) for line in (run_dir / "metrics.jsonl").read_text().splitlines()]


def assert_finite_rows(rows: list[dict]) -> None:
    """Every epoch row has a finite training loss and gradient norm, and a clipped fraction."""
    assert rows
    for row in rows:
        for key in ("train/loss", "train/grad_norm", "train/grad_norm_max", "val/loss"):
            assert math.isfinite(row[key]), (key, row)
        assert 0.0 <= row["train/clipped"] <= 1.0, row


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def torchrun(
    args: list[str], cwd: Path, nproc: int, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess:
    """``torchrun --nproc-per-node N -m rnnvision_kit ARGS`` on a free port."""
    command = [
        *(sys.executable, "-m", "torch.distributed.run", "--nproc-per-node", str(nproc)),
        *("--master-port", str(free_port()), "-m", "rnnvision_kit", *args),
    ]
    full_env = {**os.environ, "OMP_NUM_THREADS": "1", **(env or {})}
    return subprocess.run(
        command, cwd=cwd, env=full_env, capture_output=True, text=True, timeout=300
    )


def scaler_state(root: Path, task: str) -> dict:
    (run_dir,) = run_dirs(root, task)
    return torch.load(run_dir / "last.pt", weights_only=True)["scaler"]


# ------------------------------------------------------------------------------- precision


def test_fp16_gradscaler_unscales_before_clipping(rnnkit: CliRunner, tmp_path: Path) -> None:
    # A clip norm this small clips every step: the logged norm is the true (unscaled) one, far
    # below the loss scale (65536) a scaled gradient would carry.
    args = [*SMALL, *TINY, "--device", "cuda", "--precision", "16-mixed"]
    summary = summary_of(rnnkit("run", *args, "--set", "train.grad_clip=0.001"))
    assert summary["precision"] == "16-mixed" and summary["device"].startswith("cuda")
    assert math.isfinite(summary["test"]["test/loss"])
    rows = rows_of(tmp_path, "image-classify")
    assert_finite_rows(rows)
    assert all(row["train/clipped"] == 1.0 for row in rows)  # (overflowed steps left out)
    assert all(0.001 < row["train/grad_norm"] < 1000 for row in rows), rows
    assert all(row["train/grad_norm_max"] >= row["train/grad_norm"] for row in rows)
    assert scaler_state(tmp_path, "image-classify")["scale"] > 0  # GradScaler was on


def test_fp16_with_gradient_accumulation(rnnkit: CliRunner, tmp_path: Path) -> None:
    needs_setting("accumulate")
    args = [*SMALL, *TINY, "--device", "cuda", "--precision", "16-mixed"]
    summary_of(rnnkit("run", *args, "--set", "train.accumulate=2"))
    rows = rows_of(tmp_path, "image-classify")
    assert_finite_rows(rows)
    assert [row["step"] for row in rows] == [4, 8]  # optimizer steps, not batches


def test_bf16_mixed_on_cuda(rnnkit: CliRunner, tmp_path: Path) -> None:
    if not torch.cuda.is_bf16_supported():
        pytest.skip("this GPU has no bf16")
    args = [*SMALL, *TINY, "--device", "cuda", "--precision", "bf16-mixed"]
    summary = summary_of(rnnkit("run", *args))
    assert summary["precision"] == "bf16-mixed" and math.isfinite(summary["test"]["test/loss"])
    assert_finite_rows(rows_of(tmp_path, "image-classify"))
    assert "scale" not in scaler_state(tmp_path, "image-classify")  # no loss scaling for bf16


# ------------------------------------------------------------------------- speed settings


def test_compile_trains_on_cuda(rnnkit: CliRunner, tmp_path: Path) -> None:
    needs_setting("compile")
    result = rnnkit("run", *VIDEO, *TINY, "--device", "cuda", "--set", "train.compile=true")
    summary = summary_of(result)
    assert math.isfinite(summary["test"]["test/loss"])
    fallback = [line for line in result.stderr.splitlines() if "train.compile" in line]
    assert not fallback, fallback  # triton is there on a CUDA machine: no fallback expected


@pytest.mark.parametrize("task", ["video-action", "seg-refine"])
def test_channels_last(rnnkit: CliRunner, tmp_path: Path, task: str) -> None:
    needs_setting("channels_last")
    data = ["--set", "data.videos_per_class=[6]"] if task == "video-action" else []
    args = ["--task", task, *data, "--quiet", *TINY, "--device", "cuda"]
    summary = summary_of(rnnkit("run", *args, "--set", "train.channels_last=true"))
    assert math.isfinite(summary["test"]["test/loss"])
    assert_finite_rows(rows_of(tmp_path, task))


def test_pinned_memory_with_persistent_workers(rnnkit: CliRunner, tmp_path: Path) -> None:
    # Workers decode clips into pinned memory; copies to the GPU are non-blocking.
    args = [*VIDEO, *TINY, "--device", "cuda", "--set", "data.num_workers=2"]
    summary = summary_of(rnnkit("run", *args, "--set", "data.frame_cache=false"))
    assert math.isfinite(summary["test"]["test/loss"]) and summary["test"]["test/samples"] > 0
    assert_finite_rows(rows_of(tmp_path, "video-action"))


# ------------------------------------------------------------------------------------ DDP


def nccl_two_ranks() -> tuple[dict[str, str], str | None]:
    """Environment for 2 NCCL ranks here, or the reason they cannot run. NCCL refuses two ranks
    on one GPU since 2.5 ("Duplicate GPU detected", NVIDIA/nccl#418, #1241); 2.30 added
    experimental support behind NCCL_MULTI_RANK_GPU_ENABLE=1."""
    if torch.cuda.device_count() >= 2:
        return {}, None
    version = torch.cuda.nccl.version()
    if tuple(version) >= (2, 30):
        return {"NCCL_MULTI_RANK_GPU_ENABLE": "1"}, None
    shown = ".".join(map(str, version))
    return {}, (
        f"one GPU and NCCL {shown}: NCCL refuses two ranks on one GPU before 2.30 "
        "(NCCL_MULTI_RANK_GPU_ENABLE); needs 2 GPUs"
    )


def test_ddp_nccl_matches_one_process(rnnkit: CliRunner, tmp_path: Path) -> None:
    env, reason = nccl_two_ranks()
    if reason:
        pytest.skip(reason)
    # data.batch_size is per process: 2 x 32 against 1 x 64, the same optimizer steps.
    args = [*SMALL, "--device", "cuda", "--epochs", "15", "--set", "model.hidden_size=64"]
    (tmp_path / "one").mkdir()
    single = summary_of(
        rnnkit("run", *args, "--json", "--set", "data.batch_size=64", cwd=tmp_path / "one")
    )
    (tmp_path / "two").mkdir()
    result = torchrun(
        ["run", *args, "--json", "--set", "data.batch_size=32"], tmp_path / "two", 2, env
    )
    double = summary_of(result)
    assert double["world_size"] == 2 and double["device"].startswith("cuda")
    assert double["test"]["test/samples"] == single["test"]["test/samples"]  # counted once
    assert len(run_dirs(tmp_path / "two", "image-classify")) == 1  # only rank 0 writes
    one, two = single["test"]["test/acc"], double["test"]["test/acc"]
    assert one > 0.9 and abs(one - two) < 0.03, (one, two)


def test_ddp_nccl_sync_batchnorm(tmp_path: Path) -> None:
    needs_setting("sync_bn")
    env, reason = nccl_two_ranks()
    if reason:
        pytest.skip(reason)
    args = [*VIDEO, *TINY, "--device", "cuda", "--set", "train.sync_bn=true"]
    summary = summary_of(torchrun(["run", *args], tmp_path, 2, env))
    assert summary["world_size"] == 2 and math.isfinite(summary["test"]["test/loss"])
    assert_finite_rows(rows_of(tmp_path, "video-action"))


def test_ddp_gloo_on_gpu_tensors(tmp_path: Path) -> None:
    # Two processes sharing the one GPU (which NCCL refuses), gradients reduced by gloo.
    needs_setting("dist_backend")
    args = [*SMALL, *TINY, "--device", "cuda", "--set", "train.dist_backend=gloo"]
    summary = summary_of(torchrun(["run", *args], tmp_path, 2))
    assert summary["world_size"] == 2 and summary["device"].startswith("cuda")
    assert summary["test"]["test/samples"] == 359  # each test sample once
    assert_finite_rows(rows_of(tmp_path, "image-classify"))
