"""The Python front door: :func:`fit` and :func:`evaluate` run what ``rnnkit run`` and
``rnnkit eval`` run, :func:`load` reads a run for :class:`Predictor` (predict, stream, export).

One job per module: ``training`` (fit, evaluate), ``predictor`` (load, Predictor), ``inputs``
(paths, tensors and arrays checked against a task's data), ``frames`` (frames from memory as a
stream), ``settings`` (keyword settings as the CLI's), ``host`` (plugins, torch threads). Names
are imported when first used: ``rnnvision_kit.fit("...", train__lrr=1)`` reports the typo before
torch is imported, as the CLI does.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from rnnvision_kit.api.predictor import Prediction, Predictor, load
    from rnnvision_kit.api.training import Evaluation, FitResult, evaluate, fit

_WHERE = {
    "Evaluation": "rnnvision_kit.api.training",
    "FitResult": "rnnvision_kit.api.training",
    "Prediction": "rnnvision_kit.api.predictor",
    "Predictor": "rnnvision_kit.api.predictor",
    "evaluate": "rnnvision_kit.api.training",
    "fit": "rnnvision_kit.api.training",
    "load": "rnnvision_kit.api.predictor",
}

__all__ = ["Evaluation", "FitResult", "Prediction", "Predictor", "evaluate", "fit", "load"]


def __getattr__(name: str) -> Any:
    if name not in _WHERE:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(importlib.import_module(_WHERE[name]), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted([*globals(), *_WHERE])
