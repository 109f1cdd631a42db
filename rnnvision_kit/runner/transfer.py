"""``model.init_from``: start training any task from another run's checkpoint or a weights file.

Every tensor of the model's state dict (parameters and buffers) whose name and shape match one
of the source is copied; the rest keep their fresh values and are listed in one warning line
(e.g. a classifier for another number of classes).
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

import torch
from torch import nn

from rnnvision_kit.errors import CheckpointError
from rnnvision_kit.runner.rundir import checkpoint_source
from rnnvision_kit.safe_load import load_torch_file

SETTING = "model.init_from"
SHOWN = 4  # tensors named in the warning line before "and N more"


def source_file(source: str) -> Path:
    """``RUN_DIR`` (its best checkpoint, else its last) or a file."""
    return checkpoint_source(source, SETTING, "a weights file")


def read_state(path: Path) -> dict[str, torch.Tensor]:
    """The model state of an rnnvision-kit checkpoint, or a plain state dict (also under
    ``state_dict``/``model``, ``module.`` prefixes dropped)."""
    raw: Any = load_torch_file(path, f"checkpoint ({SETTING})")
    for key in ("model", "state_dict"):
        if isinstance(raw, Mapping) and isinstance(raw.get(key), Mapping):
            raw = raw[key]
            break
    if not isinstance(raw, Mapping) or not raw:
        raise CheckpointError(f"{path}: {SETTING}: no state dict of tensors found")
    state = {
        str(k).removeprefix("module."): v for k, v in raw.items() if isinstance(v, torch.Tensor)
    }
    if not state:
        raise CheckpointError(f"{path}: {SETTING}: no state dict of tensors found")
    return state


def init_from(model: nn.Module, source: str) -> str | None:
    """Copy the matching tensors of ``source`` into ``model``; return the warning line about
    what was not copied (None when everything was)."""
    path = source_file(source)
    state = read_state(path)
    own = model.state_dict()
    copied = {k: state[k] for k, v in own.items() if k in state and state[k].shape == v.shape}
    if not copied:
        example = next(iter(own), "")
        raise CheckpointError(
            f"{path}: {SETTING}: no tensor fits this model (e.g. {example!r}: "
            f"{'shape ' + str(tuple(state[example].shape)) if example in state else 'absent'} "
            "there); a checkpoint of another model?"
        )
    model.load_state_dict(copied, strict=False)
    skipped = [k for k in own if k not in copied]
    unused = len(set(state) - set(own))
    if not skipped and not unused:
        return None
    parts = []
    for key in skipped[:SHOWN]:
        if key in state:
            there, here = tuple(state[key].shape), tuple(own[key].shape)
            parts.append(f"{key} (shape {there} there, {here} here)")
        else:
            parts.append(f"{key} (absent there)")
    if len(skipped) > SHOWN:
        parts.append(f"and {len(skipped) - SHOWN} more")
    line = f"{SETTING}: copied {len(copied)} of {len(own)} tensors from {path}"
    if skipped:
        line += f"; kept fresh: {', '.join(parts)}"
    if unused:
        line += f"; {unused} tensor(s) of the checkpoint unused"
    return line
