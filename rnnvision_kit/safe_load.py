"""Reading files written by ``torch.save`` safely: ``torch.load(weights_only=True)`` with
one-line errors. A pickle that would call a function (``os.system``, a class constructor...) is
refused before anything in it runs; only tensors and plain values are ever loaded."""

from __future__ import annotations

import os
import pickle
import re
from typing import Any

from rnnvision_kit.errors import CheckpointError

_GLOBAL = re.compile(r"GLOBAL (\S+)")


def load_torch_file(path: str | os.PathLike[str], what: str = "checkpoint") -> Any:
    """The contents of a ``torch.save`` file at ``path`` (on the CPU), or a
    :class:`~rnnvision_kit.errors.CheckpointError` naming the file and ``what`` it should be."""
    import torch

    try:
        return torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as error:
        found = _GLOBAL.search(str(error))
        if found:
            raise CheckpointError(
                f"{path}: {what} refused: its pickle would call {found[1].rstrip('.,')}; only "
                "tensors and plain values are loaded (nothing in it was run)"
            ) from None
        raise CheckpointError(f"{path}: not a readable {what} ({_first_line(error)})") from None
    except Exception as error:  # truncated zips, other formats, empty files
        raise CheckpointError(f"{path}: not a readable {what} ({_first_line(error)})") from None


def _first_line(error: BaseException) -> str:
    lines = [line.strip() for line in str(error).splitlines() if line.strip()]
    unpickler = [line for line in lines if line.startswith("WeightsUnpickler error")]
    return (unpickler or lines or [type(error).__name__])[0][:120]
