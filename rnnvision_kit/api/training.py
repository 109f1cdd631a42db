"""``fit`` and ``evaluate``: what ``rnnkit run`` and ``rnnkit eval`` run, called from Python.

Both take the CLI's settings (``data`` as ``--data``, ``config`` as ``--config``, the shortcuts)
plus settings as ``SECTION__NAME`` keywords or a ``settings`` mapping (``api.settings``), and go
through the CLI's own path: ``runconfig.configured`` then ``runner.run.train`` for ``fit``,
``runner.run.evaluate_run`` for ``evaluate``. They write the same run folder and files.
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

from rnnvision_kit.api.host import caller_state, plugin_host
from rnnvision_kit.api.settings import as_overrides, merged
from rnnvision_kit.errors import warn
from rnnvision_kit.runconfig import configured

if TYPE_CHECKING:
    import torch

    from rnnvision_kit.api.predictor import Predictor

PathLike = str | os.PathLike[str]


@dataclass(frozen=True)
class FitResult:
    """What :func:`fit` returns: the run's ``summary.json`` record, its folder and the
    checkpoint that ``load``, ``rnnkit predict`` and ``rnnkit eval`` read (best.pt, else
    last.pt)."""

    summary: dict[str, Any]  # as summary.json (and ``rnnkit run --json``)
    run_dir: Path | None  # runs/<task>/<time>; None on DDP ranks other than 0
    best_checkpoint: Path | None  # best.pt, else last.pt; None without a run folder

    @property
    def test(self) -> dict[str, float]:
        """The test split's scalar metrics (``test/acc``, ``test/loss``, ...)."""
        return dict(self.summary.get("test", {}))

    def load(self, device: str | torch.device | None = None) -> Predictor:
        """The run's :class:`~rnnvision_kit.api.Predictor` (``rnnvision_kit.load(run_dir)``)."""
        from rnnvision_kit.api.predictor import load

        return load(self, device)

    def __fspath__(self) -> str:
        if self.run_dir is None:
            raise TypeError("this process wrote no run folder (a DDP rank other than 0)")
        return os.fspath(self.run_dir)


@dataclass(frozen=True)
class Evaluation:
    """What :func:`evaluate` returns: the record ``rnnkit eval --json`` prints and writes to
    ``RUN_DIR/eval-SPLIT.json``."""

    result: dict[str, Any]  # run_dir, split, checkpoint, metrics, details, skipped, data
    file: Path  # RUN_DIR/eval-SPLIT.json

    @property
    def metrics(self) -> dict[str, float]:
        """Scalar metrics, ``test/acc`` and so on."""
        return dict(self.result["metrics"])

    @property
    def details(self) -> dict[str, Any]:
        """Per-class and confusion metrics, ``test/confmat`` and so on."""
        return dict(self.result["details"])


def fit(
    task: str,
    data: str | None = None,
    *,
    config: PathLike | None = None,
    settings: Mapping[str, Any] | None = None,
    epochs: int | None = None,
    device: str | None = None,
    precision: str | None = None,
    seed: int | None = None,
    out: PathLike | None = None,
    quiet: bool = False,
    plugins: Sequence[str] = (),
    **keywords: Any,
) -> FitResult:
    """Train ``task`` as ``rnnkit run --task TASK`` does: the same settings, run folder
    (``OUT/<task>/<time>``), checkpoints, test of the best checkpoint and ``summary.json``.

    ``data`` is ``--data NAME[:PATH]``, ``config`` a YAML file of settings (``--config``);
    ``epochs``, ``device``, ``precision``, ``seed`` and ``out`` are the CLI's shortcuts. Any
    other setting is a ``SECTION__NAME`` keyword (``model__head="lstm"``,
    ``model__layer__state_size=8``) or an entry of ``settings`` (nested or dotted keys);
    keywords win over ``settings``, which win over the shortcuts. ``quiet`` drops the opening
    line and the per-epoch lines; ``plugins`` loads local plugin modules or files
    (``--plugin``). The caller's torch thread count is restored afterwards."""
    overrides = as_overrides(merged(settings, keywords, "fit"))
    options = {
        "config_file": os.fspath(config) if config is not None else None,
        "data": data,
        "overrides": overrides,
        "epochs": epochs,
        "device": device,
        "precision": precision,
        "seed": seed,
        "out": os.fspath(out) if out is not None else None,
    }
    host = plugin_host(plugins)
    notes: list[str] = []
    run_config, opened = configured(host.registries, task, options, notes)  # before torch
    if notes and not quiet:
        warn(f"{'; '.join(notes)} (set them to override)")
    from rnnvision_kit.runner.pipeline import open_task
    from rnnvision_kit.runner.run import train
    from rnnvision_kit.runner.rundir import RunDir

    with caller_state():
        handle = opened if opened is not None else open_task(host.registries, task)
        summary = train(host.registries, run_config, task=handle, events=host.events, quiet=quiet)
    folder = Path(summary["run_dir"]) if summary.get("run_dir") else None
    best = RunDir(folder).checkpoint_file() if folder is not None else None
    return FitResult(summary, folder, best)


def evaluate(
    run: PathLike | FitResult,
    data: str | None = None,
    *,
    split: Literal["train", "val", "test"] = "test",
    checkpoint: Literal["best", "last"] = "best",
    settings: Mapping[str, Any] | None = None,
    plugins: Sequence[str] = (),
    **keywords: Any,
) -> Evaluation:
    """Re-evaluate a run's checkpoint as ``rnnkit eval RUN_DIR`` does (and write
    ``RUN_DIR/eval-SPLIT.json``): on ``split`` of its own data, or of ``data`` (``--data
    NAME[:PATH]``), with settings changed by ``SECTION__NAME`` keywords or ``settings``
    (``--set``). ``run`` is a run folder or what :func:`fit` returned."""
    from rnnvision_kit.config import parse_data_source

    folder = Path(os.fspath(run)).expanduser()
    host = plugin_host(plugins)
    values: dict[str, Any] = {}
    if data:
        source, path = parse_data_source(data, host.registries.datasets)
        values["data"] = {"source": source, "path": path}
    values.update(merged(settings, keywords, "evaluate"))
    from rnnvision_kit.runner.run import evaluate_run
    from rnnvision_kit.runner.rundir import RunDir

    with caller_state():
        result = evaluate_run(
            host.registries, folder, overrides=values, split=split, checkpoint=checkpoint
        )
    return Evaluation(result, RunDir(folder).eval_file(split, checkpoint))
