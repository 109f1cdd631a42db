"""Stream cost of a finished run's best model: milliseconds per streamed frame and state bytes,
cached in the slot's ``stream-cost.json``."""

from __future__ import annotations

import contextlib
import json
import statistics
import time
from pathlib import Path
from typing import Any

from rnnvision_kit.sweep.folder import Slot, _write_json

COST_FILE = "stream-cost.json"
STREAM_FRAMES, STREAM_WARMUP = 100, 10


def state_bytes(state: Any) -> int:
    """Bytes of a recurrent state: a tensor, or tuples, lists or dicts of them (None: 0)."""
    if state is None:
        return 0
    if hasattr(state, "element_size") and hasattr(state, "numel"):
        return int(state.numel() * state.element_size())
    if isinstance(state, dict):
        return sum(state_bytes(v) for v in state.values())
    if isinstance(state, list | tuple):
        return sum(state_bytes(v) for v in state)
    return 0


def stream_cost(
    registries: Any, run_dir: Path, frames: int = STREAM_FRAMES, warmup: int = STREAM_WARMUP
) -> dict[str, Any]:
    """Median milliseconds per streamed frame (``model.step(model.encode_frame(frame), state)``
    at batch 1 on one thread, after ``warmup`` frames) and the state's bytes
    (``model.initial_state(1)``; ``state_bytes_after``: after the timed frames) of a run's best
    model; a model that cannot stream gets ``None`` and the reason in ``note``."""
    import torch

    from rnnvision_kit.runner.pipeline import load_for_inference

    result: dict[str, Any] = {"run_dir": str(run_dir), "ms_per_frame": None, "state_bytes": None}
    threads = torch.get_num_threads()
    try:
        _, built = load_for_inference(registries, run_dir, "time streaming", require=False)
        torch.set_num_threads(1)
        model: Any = built.model.eval()  # duck-typed: encode_frame, step, initial_state
        blocker = getattr(model, "stream_blocker", "it has no per-step API (encode_frame, step)")
        if blocker is not None:
            return {**result, "note": f"cannot stream: {blocker}"}
        height, width = built.spec.split_size("test")
        frame = torch.rand(1, built.spec.channels, height, width)
        with torch.inference_mode():
            try:
                initial = model.initial_state(1)
            except Exception:  # initial_state takes a frame or features (seg-refine)
                initial = None
            state, times = initial, []
            for n in range(warmup + frames):
                start = time.perf_counter()
                _, state = model.step(model.encode_frame(frame), state)
                if n >= warmup:
                    times.append(time.perf_counter() - start)
                if initial is None and n == 0:
                    initial = state
        return {
            **result,
            "ms_per_frame": statistics.median(times) * 1000,
            "state_bytes": state_bytes(initial),
            "state_bytes_after": state_bytes(state),
            "frames": frames,
            "warmup": warmup,
            "threads": 1,
            "note": None,
        }
    except Exception as error:  # a cost that cannot be measured is a note, not a failure
        first = (str(error).splitlines() or [type(error).__name__])[0]
        return {**result, "note": f"stream timing failed: {first}"}
    finally:
        torch.set_num_threads(threads)


def cached_stream_cost(registries: Any, slot: Slot, run_dir: Path) -> dict[str, Any]:
    """``stream-cost.json`` of the slot when it is for ``run_dir`` (its path inside the slot),
    else measured and written."""
    path = slot.folder / COST_FILE
    inside = run_dir.relative_to(slot.folder).as_posix()
    with contextlib.suppress(OSError, ValueError, AttributeError):
        cost = json.loads(path.read_text())
        if cost.get("run_dir") == inside:
            return cost
    cost = {**stream_cost(registries, run_dir), "run_dir": inside}
    with contextlib.suppress(OSError):
        _write_json(path, cost)
    return cost
