"""The Python front door: :func:`fit` and :func:`evaluate` run what ``rnnkit run`` and
``rnnkit eval`` run, :func:`load` reads a run for :class:`Predictor` (predict, stream, export).

One job per module: ``training`` (fit, evaluate), ``predictor`` (load, Predictor), ``inputs``
(paths, tensors and arrays checked against a task's data), ``frames`` (frames from memory as a
stream), ``settings`` (keyword settings as the CLI's), ``host`` (plugins, torch threads). Names
are imported when first used: ``rnnvision_kit.fit("...", train__lrr=1)`` reports the typo before
torch is imported, as the CLI does.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from rnnvision_kit.lazyexports import lazy_exports

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


__getattr__, __dir__ = lazy_exports(globals(), _WHERE)
