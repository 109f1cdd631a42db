"""Run-folder files: ``metrics.jsonl`` (one row per epoch), JSON written atomically."""

from __future__ import annotations

import importlib.util
import json
import math
from pathlib import Path
from typing import Any

from rnnvision_kit.atomicfile import atomic_open


def to_jsonable(value: Any) -> Any:
    """Tensors and NumPy values to plain Python numbers and lists; NaN to None."""
    if hasattr(value, "tolist"):
        value = value.tolist()
    if isinstance(value, dict):
        return {str(k): to_jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [to_jsonable(v) for v in value]
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value


def write_json(path: Path, data: Any) -> None:
    """Write JSON atomically (temp file in the same folder, then rename), with the umask's
    permissions."""
    with atomic_open(path, "w") as handle:
        json.dump(to_jsonable(data), handle, indent=2)
        handle.write("\n")


def read_jsonl(path: Path) -> list[dict[str, Any]]:
    if not path.is_file():
        return []
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


def tensorboard_writer(folder: Path) -> Any:
    """A ``SummaryWriter`` on ``folder`` when the ``tensorboard`` package is installed, else None."""
    if importlib.util.find_spec("tensorboard") is None:
        return None
    from torch.utils.tensorboard import SummaryWriter

    return SummaryWriter(log_dir=str(folder))


class MetricsLog:
    """Appends one JSON row per epoch to ``metrics.jsonl`` and, when TensorBoard is installed,
    the row's numbers as scalars to ``tensorboard/`` (step: the epoch number, from 1)."""

    def __init__(self, path: Path, keep_epochs_below: int | None = None) -> None:
        self.path = path
        if keep_epochs_below is not None:  # resume: drop rows of epochs that will be re-run
            rows = [r for r in read_jsonl(path) if r.get("epoch", 0) < keep_epochs_below]
            path.write_text("".join(json.dumps(r) + "\n" for r in rows))
        self.tensorboard = tensorboard_writer(path.parent / "tensorboard")

    def append(self, row: dict[str, Any]) -> None:
        with self.path.open("a") as handle:
            handle.write(json.dumps(to_jsonable(row)) + "\n")
        if self.tensorboard is not None:
            step = int(row.get("epoch", 0)) + 1
            for key, value in row.items():
                if (
                    key != "epoch"
                    and isinstance(value, int | float)
                    and not isinstance(value, bool)
                ):
                    self.tensorboard.add_scalar(key, value, step)
            self.tensorboard.flush()

    def close(self) -> None:
        if self.tensorboard is not None:
            self.tensorboard.close()

    def rows(self) -> list[dict[str, Any]]:
        return read_jsonl(self.path)
