"""``rnnkit sweep``: a grid of settings over seeds, each a normal run folder, and one comparison.

The cartesian product of the ``--grid`` settings is run over every seed of ``--seeds``, each as
``python -m rnnvision_kit run ...`` in a subprocess (one at a time, or ``--jobs N`` at a time
with the CPU threads split between them). Every grid point's settings are validated in this
process first, by the same code as ``rnnkit run``, so a bad value is one line before anything
runs. The sweep folder ``OUT`` holds:

- ``sweep.json``: the command's settings and every configuration the folder has run;
- ``<slug>/seed<k>/``: one slot per configuration and seed: ``rnnkit run --out`` of that slot,
  so its run folder is ``<slug>/seed<k>/<task>/<timestamp>/``; ``sweep-run.log`` (the run's
  output), ``sweep-error.txt`` (the tail of a failed run's output) and ``stream-cost.json``
  (milliseconds per streamed frame and state bytes of the finished run's best model);
- ``results.md``, ``results.csv`` and ``results.png``: one row (bar) per configuration.

Running the same command again skips finished runs (a run folder with ``summary.json``),
resumes interrupted ones (``rnnkit run --resume`` on a run folder with ``last.pt``) and starts
the others afresh in a new run folder (nothing is deleted); a changed grid adds runs.
"""

from __future__ import annotations

from rnnvision_kit.sweep.command import sweep_command
from rnnvision_kit.sweep.cost import state_bytes, stream_cost
from rnnvision_kit.sweep.folder import Slot
from rnnvision_kit.sweep.grid import Point, parse_grid, parse_seeds, split_values
from rnnvision_kit.sweep.report import fmt_mean_std

__all__ = [
    "Point",
    "Slot",
    "fmt_mean_std",
    "parse_grid",
    "parse_seeds",
    "split_values",
    "state_bytes",
    "stream_cost",
    "sweep_command",
]
