"""Run-folder files: ``metrics.jsonl`` (one row per epoch), JSON written atomically."""

from __future__ import annotations

import json
import math
import os
import tempfile
from pathlib import Path
from typing import Any


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
    """Write JSON atomically (temp file in the same folder, then rename)."""
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
    with os.fdopen(fd, "w") as handle:
        json.dump(to_jsonable(data), handle, indent=2)
        handle.write("\n")
    os.replace(tmp, path)


def read_jsonl(path: Path) -> list[dict[str, Any]]:
    if not path.is_file():
        return []
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


class MetricsLog:
    """Appends one JSON row per epoch to ``metrics.jsonl``."""

    def __init__(self, path: Path, keep_epochs_below: int | None = None) -> None:
        self.path = path
        if keep_epochs_below is not None:  # resume: drop rows of epochs that will be re-run
            rows = [r for r in read_jsonl(path) if r.get("epoch", 0) < keep_epochs_below]
            path.write_text("".join(json.dumps(r) + "\n" for r in rows))

    def append(self, row: dict[str, Any]) -> None:
        with self.path.open("a") as handle:
            handle.write(json.dumps(to_jsonable(row)) + "\n")

    def rows(self) -> list[dict[str, Any]]:
        return read_jsonl(self.path)
