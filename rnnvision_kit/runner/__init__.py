"""The shared runner: fit, evaluate and predict for any task (device, precision, DDP, checkpoints).

Public API for plugins: checkpoint reading and the run folder's record writers below.
"""

from rnnvision_kit.runner.checkpoint import load_checkpoint
from rnnvision_kit.runner.plots import plot_confusion
from rnnvision_kit.runner.records import to_jsonable, write_json

__all__ = ["load_checkpoint", "plot_confusion", "to_jsonable", "write_json"]
