"""The shared runner: fit, evaluate and predict for any task (device, precision, DDP, checkpoints).

Public API: the commands' functions (what ``rnnkit run``, ``eval``, ``predict`` and ``check-data``
call, for tests and embedding), the ``Run`` record that runner events receive, checkpoint reading,
the run folder (``RunDir``: its file names, and which checkpoint a command uses) and the run
folder's record writers. Names are imported when first used: importing this package (or
``rnnvision_kit.runner.rundir``) does not import torch.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from rnnvision_kit.lazyexports import lazy_exports

if TYPE_CHECKING:
    from rnnvision_kit.runner.checkpoint import load_checkpoint
    from rnnvision_kit.runner.events import Run, RunEvents
    from rnnvision_kit.runner.plots import plot_confusion
    from rnnvision_kit.runner.records import to_jsonable, write_json
    from rnnvision_kit.runner.run import check_data, evaluate_run, predict_files, train
    from rnnvision_kit.runner.rundir import RunDir, checkpoint_source
    from rnnvision_kit.safe_load import load_torch_file

_WHERE = {
    "Run": "rnnvision_kit.runner.events",
    "RunDir": "rnnvision_kit.runner.rundir",
    "RunEvents": "rnnvision_kit.runner.events",
    "check_data": "rnnvision_kit.runner.run",
    "checkpoint_source": "rnnvision_kit.runner.rundir",
    "evaluate_run": "rnnvision_kit.runner.run",
    "load_checkpoint": "rnnvision_kit.runner.checkpoint",
    "load_torch_file": "rnnvision_kit.safe_load",
    "plot_confusion": "rnnvision_kit.runner.plots",
    "predict_files": "rnnvision_kit.runner.run",
    "to_jsonable": "rnnvision_kit.runner.records",
    "train": "rnnvision_kit.runner.run",
    "write_json": "rnnvision_kit.runner.records",
}

__all__ = [
    "Run",
    "RunDir",
    "RunEvents",
    "check_data",
    "checkpoint_source",
    "evaluate_run",
    "load_checkpoint",
    "load_torch_file",
    "plot_confusion",
    "predict_files",
    "to_jsonable",
    "train",
    "write_json",
]  # the keys of _WHERE


__getattr__, __dir__ = lazy_exports(globals(), _WHERE)
