"""Shared fixtures: an isolated cache, the real ``rnnkit`` CLI in a subprocess, shared data paths."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
SHARED_DATA = REPO.parent / "shared" / "data"


@pytest.fixture(scope="session", autouse=True)
def _isolated_cache(tmp_path_factory: pytest.TempPathFactory) -> None:
    """Generated data sets go to a per-session cache unless RNNKIT_CACHE is already set."""
    if "RNNKIT_CACHE" not in os.environ:
        os.environ["RNNKIT_CACHE"] = str(tmp_path_factory.mktemp("rnnkit-cache"))


CliRunner = Callable[..., subprocess.CompletedProcess]


@pytest.fixture
def rnnkit(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> CliRunner:
    """Run the real ``rnnkit`` entry point in this process (no torch import per call), in
    ``tmp_path``; returns a CompletedProcess with the exit code and captured output."""
    from rnnvision_kit.cli import main

    def run(
        *args: str,
        env: dict[str, str] | None = None,
        cwd: Path | None = None,
        check: bool | None = None,
        **_: object,
    ) -> subprocess.CompletedProcess:
        monkeypatch.chdir(cwd or tmp_path)
        for key, value in (env or {}).items():
            monkeypatch.setenv(key, value)
        capsys.readouterr()
        code: int = 0
        try:
            main(list(args))
        except SystemExit as done:
            code = done.code if isinstance(done.code, int) else (0 if done.code is None else 1)
        out, err = capsys.readouterr()
        if check is True and code != 0:
            raise AssertionError(f"rnnkit {' '.join(args)} failed ({code}):\n{out}\n{err}")
        return subprocess.CompletedProcess(list(args), code, out, err)

    return run


@pytest.fixture
def rnnkit_process(tmp_path: Path) -> CliRunner:
    """Run ``python -m rnnvision_kit ARGS`` in a subprocess in ``tmp_path``."""

    def run(
        *args: str,
        env: dict[str, str] | None = None,
        cwd: Path | None = None,
        timeout: float = 600,
        check: bool | None = None,
    ) -> subprocess.CompletedProcess:
        full_env = {**os.environ, "OMP_NUM_THREADS": "1", **(env or {})}
        result = subprocess.run(
            [sys.executable, "-m", "rnnvision_kit", *args],
            cwd=cwd or tmp_path,
            env=full_env,
            capture_output=True,
            text=True,
            timeout=timeout,
        )
        if check is True and result.returncode != 0:
            raise AssertionError(
                f"rnnkit {' '.join(args)} failed:\n{result.stdout}\n{result.stderr}"
            )
        return result

    return run


def train_in_process(cwd: Path, *args: str) -> tuple[Path, dict]:
    """``rnnkit run ARGS --json`` in this process, in ``cwd``, for module-scoped fixtures (which
    cannot use capsys); the torch thread count is restored after. Returns (run folder, summary)."""
    import contextlib
    import io
    import json

    import torch

    from rnnvision_kit.cli import main

    out, err = io.StringIO(), io.StringIO()
    code, threads = 0, torch.get_num_threads()
    with pytest.MonkeyPatch.context() as mp:
        mp.chdir(cwd)
        with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
            try:
                main(["run", *args, "--json"])
            except SystemExit as done:
                code = done.code if isinstance(done.code, int) else int(done.code is not None)
            finally:
                torch.set_num_threads(threads)  # train.threads must not leak into other tests
    assert code == 0, err.getvalue()
    summary = json.loads(out.getvalue())
    return cwd / summary["run_dir"], summary


def torchrun(
    args: list[str], cwd: Path, port: int, timeout: float = 300
) -> subprocess.CompletedProcess:
    """``torchrun --nproc-per-node 2 -m rnnvision_kit ARGS`` (gloo on the CPU), one thread per
    process; each test passes its own ``port`` so that runs never meet."""
    command = [
        *(sys.executable, "-m", "torch.distributed.run", "--nproc-per-node", "2"),
        *("--master-port", str(port), "-m", "rnnvision_kit", *args),
    ]
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    return subprocess.run(
        command, cwd=cwd, env=env, capture_output=True, text=True, timeout=timeout
    )


def run_dirs(root: Path, task: str) -> list[Path]:
    return sorted((root / "runs" / task).iterdir()) if (root / "runs" / task).is_dir() else []


@pytest.fixture
def one_thread() -> Iterator[None]:
    """One torch thread for the test (restored after): small CPU models train fastest so on a
    shared machine, and in-process runs match subprocesses started with OMP_NUM_THREADS=1."""
    import torch

    previous = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(previous)


def checkpoint_position(path: Path) -> tuple[int, int] | None:
    """(completed epochs, steps into the next) of a checkpoint that a running job may be
    rewriting, or None while it cannot be read."""
    import torch

    try:
        state = torch.load(path, weights_only=True)
    except (OSError, RuntimeError, EOFError):
        return None
    return state["epoch"], state["batch_in_epoch"]
