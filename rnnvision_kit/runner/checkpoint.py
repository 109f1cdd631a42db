"""Checkpoints: written atomically (temp file + ``os.replace``), read with ``weights_only=True``."""

from __future__ import annotations

import random
from pathlib import Path
from typing import Any, cast

import numpy as np
import torch

from rnnvision_kit.atomicfile import atomic_open
from rnnvision_kit.errors import CheckpointError, reason
from rnnvision_kit.safe_load import load_torch_file

FORMAT = "rnnvision-kit/checkpoint"
FORMAT_VERSION = 1
REQUIRED_KEYS = ("format", "format_version", "model", "epoch", "config", "spec")


def capture_rng() -> dict[str, Any]:
    """Python, NumPy and torch (CPU and CUDA) random states as plain values and tensors."""
    # the legacy tuple (numpy's stubs pick the dict of legacy=False for a call without arguments)
    np_state = cast("tuple[str, np.ndarray, int, int, float]", np.random.get_state())
    return {
        "python": random.getstate(),
        "numpy": {
            "keys": torch.from_numpy(np_state[1].astype(np.int64)),
            "pos": int(np_state[2]),
            "has_gauss": int(np_state[3]),
            "cached_gaussian": float(np_state[4]),
        },
        "torch": torch.get_rng_state(),
        "cuda": torch.cuda.get_rng_state_all() if torch.cuda.is_available() else [],
    }


def restore_rng(state: dict[str, Any]) -> None:
    """Restore what :func:`capture_rng` captured."""
    random.setstate(_as_tuple(state["python"]))
    numpy_state = state["numpy"]
    np.random.set_state(
        (
            "MT19937",
            numpy_state["keys"].numpy().astype(np.uint32),
            numpy_state["pos"],
            numpy_state["has_gauss"],
            numpy_state["cached_gaussian"],
        )
    )
    torch.set_rng_state(state["torch"])
    if state.get("cuda") and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])


def _as_tuple(value: Any) -> Any:
    return tuple(_as_tuple(v) for v in value) if isinstance(value, list | tuple) else value


def save_checkpoint(state: dict[str, Any], path: Path) -> None:
    """Write ``state`` to ``path`` through a temporary file in the same folder, then rename: a
    crash or a full disk mid-write leaves the previous checkpoint as it was. A failed write is
    a one-line CheckpointError; temporary files left by a killed writer are removed."""
    state = {"format": FORMAT, "format_version": FORMAT_VERSION, **state}
    path.parent.mkdir(parents=True, exist_ok=True)
    for stale in path.parent.glob(f".{path.name}.*.tmp"):  # from a writer killed mid-write
        stale.unlink(missing_ok=True)
    try:
        with atomic_open(path, "wb", suffix=".tmp") as handle:
            torch.save(state, handle)
    except (OSError, RuntimeError) as error:
        cause = _os_error(error)  # torch.save reports a failed write as a RuntimeError
        if cause is None:
            raise
        kept = "; the previous checkpoint is kept" if path.is_file() else ""
        raise CheckpointError(f"{path}: checkpoint not written ({reason(cause)}){kept}") from None


def _os_error(error: BaseException | None) -> OSError | None:
    """The OSError in an exception's chain (its cause or context), if any."""
    while error is not None and not isinstance(error, OSError):
        error = error.__cause__ or error.__context__
    return error


def load_checkpoint(path: Path, map_location: str | torch.device = "cpu") -> dict[str, Any]:
    """Read and check a checkpoint; a missing, truncated or foreign file raises CheckpointError."""
    if not path.is_file():
        raise CheckpointError(f"{path}: checkpoint not found")
    state = load_torch_file(path, "checkpoint")
    if map_location != "cpu":
        state = _to_device(state, torch.device(map_location))
    if not isinstance(state, dict) or state.get("format") != FORMAT:
        raise CheckpointError(f"{path}: not an rnnvision-kit checkpoint")
    if state.get("format_version") != FORMAT_VERSION:
        raise CheckpointError(
            f"{path}: checkpoint format {state.get('format_version')} is not supported "
            f"(expected {FORMAT_VERSION})"
        )
    missing = [key for key in REQUIRED_KEYS if key not in state]
    if missing:
        raise CheckpointError(f"{path}: checkpoint lacks {', '.join(missing)}")
    return state


def _to_device(value: Any, device: torch.device) -> Any:
    if isinstance(value, torch.Tensor):
        return value.to(device)
    if isinstance(value, dict):
        return {k: _to_device(v, device) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return type(value)(_to_device(v, device) for v in value)
    return value
