"""The shared runner: fit, evaluate and predict for any task (device, precision, DDP, checkpoints).

Public API: the commands' functions (what ``rnnkit run``, ``eval``, ``predict`` and ``check-data``
call, for tests and embedding), the ``Run`` record that runner events receive, checkpoint reading
and the run folder's record writers.
"""

from rnnvision_kit.runner.checkpoint import load_checkpoint
from rnnvision_kit.runner.events import Run, RunEvents
from rnnvision_kit.runner.plots import plot_confusion
from rnnvision_kit.runner.records import to_jsonable, write_json
from rnnvision_kit.runner.run import check_data, evaluate_run, predict_files, train
from rnnvision_kit.safe_load import load_torch_file

__all__ = [
    "Run",
    "RunEvents",
    "check_data",
    "evaluate_run",
    "load_checkpoint",
    "load_torch_file",
    "plot_confusion",
    "predict_files",
    "to_jsonable",
    "train",
    "write_json",
]
