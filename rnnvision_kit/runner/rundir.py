"""The run folder ``runs/<task>/<timestamp>/``: the names of the files the runner writes in it,
and which checkpoint a command uses.

Every command that reads a run's weights (``eval``, ``predict``, ``stream``, ``export``, a
sweep's timing, ``model.init_from``, a task's own starting weights) takes ``best.pt``, else
``last.pt`` (a run stopped before it validated an epoch has no ``best.pt``), through
:meth:`RunDir.checkpoint_file` or :meth:`RunDir.read_checkpoint`, which also says so in one line.
Importing this module does not import torch (``rnnkit sweep`` reads run folders without it).
"""

from __future__ import annotations

import datetime as _dt
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar, Literal

from rnnvision_kit.errors import CheckpointError, RnnkitError, warn

Checkpoint = Literal["best", "last"]  # which checkpoint: best.pt (falls back to last.pt), last.pt


def position(epoch: int, batch_in_epoch: int = 0) -> str:
    """Where a checkpoint stands: ``after epoch 3``, or ``12 batches into epoch 4``."""
    if batch_in_epoch:
        return f"{batch_in_epoch} batches into epoch {epoch + 1}"
    return f"after epoch {epoch}"


@dataclass(frozen=True)
class SavedCheckpoint:
    """A checkpoint read from a run folder: its file and its contents."""

    path: Path
    state: dict[str, Any]


@dataclass(frozen=True)
class RunDir:
    """A run folder and the files in it (only rank 0 writes them); ``os.PathLike``, so
    ``RunDir(RunDir(path))`` and ``Path(run_dir)`` work."""

    path: Path

    CONFIG: ClassVar[str] = "config.yaml"  # the run's settings, as validated
    SPLITS: ClassVar[str] = "splits.json"  # what each split held (``--resume`` checks it)
    METRICS: ClassVar[str] = "metrics.jsonl"  # one row per epoch
    SUMMARY: ClassVar[str] = "summary.json"  # written when the run ends; a finished run has it
    BEST: ClassVar[str] = "best.pt"  # the checkpoint of the best validated epoch
    LAST: ClassVar[str] = "last.pt"  # the latest checkpoint (``--resume`` continues from it)
    CURVES: ClassVar[str] = "curves.png"  # loss and metrics per epoch
    TENSORBOARD: ClassVar[str] = "tensorboard"  # event files, when TensorBoard is installed
    PREDICT: ClassVar[str] = "predict"  # files ``rnnkit predict`` writes (without --out)
    STREAM: ClassVar[str] = "stream"  # files ``rnnkit stream`` writes (without --out)
    EXPORT: ClassVar[str] = "export"  # models ``rnnkit export`` writes (without --out)

    def __post_init__(self) -> None:
        object.__setattr__(self, "path", Path(self.path).expanduser())

    @classmethod
    def create(cls, out_dir: str | Path, task: str) -> RunDir:
        """A new, empty folder ``OUT_DIR/TASK/TIMESTAMP`` (``-2``, ``-3``... when taken)."""
        stamp = _dt.datetime.now().strftime("%Y-%m-%dT%H-%M-%S")
        base = Path(out_dir).expanduser() / task / stamp
        path, n = base, 1
        while path.exists():
            n += 1
            path = base.with_name(f"{stamp}-{n}")
        path.mkdir(parents=True)
        return cls(path)

    def __str__(self) -> str:
        return str(self.path)

    def __fspath__(self) -> str:
        return str(self.path)

    # ------------------------------------------------------------------- files
    @property
    def config(self) -> Path:
        return self.path / self.CONFIG

    @property
    def splits(self) -> Path:
        return self.path / self.SPLITS

    @property
    def metrics(self) -> Path:
        return self.path / self.METRICS

    @property
    def summary(self) -> Path:
        return self.path / self.SUMMARY

    @property
    def curves(self) -> Path:
        return self.path / self.CURVES

    @property
    def tensorboard(self) -> Path:
        return self.path / self.TENSORBOARD

    @property
    def predict_dir(self) -> Path:
        return self.path / self.PREDICT

    @property
    def stream_dir(self) -> Path:
        return self.path / self.STREAM

    @property
    def export_dir(self) -> Path:
        return self.path / self.EXPORT

    def write_config(self, values: Mapping[str, Any]) -> None:
        """Write ``config.yaml`` (a config as ``RunConfig.to_dict`` gives it)."""
        import yaml

        self.config.write_text(yaml.safe_dump(dict(values), sort_keys=False))

    def eval_file(self, split: str, checkpoint: Checkpoint = "best") -> Path:
        """``eval-SPLIT.json``: what ``rnnkit eval`` measured on ``split`` with the best
        checkpoint; ``eval-SPLIT-last.json`` with the last one (it never overwrites the best's)."""
        return self.path / (
            f"eval-{split}.json" if checkpoint == "best" else f"eval-{split}-last.json"
        )

    def checkpoint(self, which: Checkpoint) -> Path:
        """``best.pt`` or ``last.pt`` (whether or not it exists)."""
        if which not in ("best", "last"):
            raise RnnkitError(f"checkpoint {which!r}: choose best or last")
        return self.path / (self.BEST if which == "best" else self.LAST)

    @property
    def best(self) -> Path:
        return self.checkpoint("best")

    @property
    def last(self) -> Path:
        return self.checkpoint("last")

    # ----------------------------------------------------------------- states
    def is_run(self) -> bool:
        """Whether this is a run folder (it has ``config.yaml``)."""
        return self.config.is_file()

    def finished(self) -> bool:
        """Whether the run ended (it wrote ``summary.json``)."""
        return self.summary.is_file()

    def resumable(self) -> bool:
        """Whether the run stopped before its end with a checkpoint to continue from."""
        return self.last.is_file() and not self.finished()

    # ------------------------------------------------------------ checkpoints
    def candidates(self, which: Checkpoint = "best") -> list[Path]:
        """The files ``which`` may be read from, in order: best.pt then last.pt for ``best``."""
        return [self.best, self.last] if which == "best" else [self.checkpoint(which)]

    def checkpoint_file(self, which: Checkpoint = "best") -> Path | None:
        """The checkpoint file ``which`` stands for here (``best``: best.pt, else last.pt), or
        None when there is none."""
        return next((path for path in self.candidates(which) if path.is_file()), None)

    def read_checkpoint(self, which: Checkpoint = "best", action: str = "use") -> SavedCheckpoint:
        """Read checkpoint ``which``; a ``best`` read from last.pt (no best.pt) is said in one
        warning line; neither file is one line saying there is no checkpoint to ``action``
        (evaluate, predict, export, ...)."""
        from rnnvision_kit.runner.checkpoint import load_checkpoint

        path = self.checkpoint_file(which)
        if path is None:
            names = " or ".join(p.name for p in self.candidates(which))
            raise CheckpointError(
                f"{self.path}: no checkpoint to {action} ({names} missing; did the run finish "
                "an epoch?)"
            )
        state = load_checkpoint(path)
        if path != self.checkpoint(which):
            warn(self.fallback_note(state))
        return SavedCheckpoint(path, state)

    def fallback_note(self, last: Mapping[str, Any]) -> str:
        """The warning of a run used through last.pt for want of best.pt: deleted (the run
        validated an epoch, which writes best.pt) or never written (stopped before validating)."""
        where = position(int(last.get("epoch", 0)), int(last.get("batch_in_epoch", 0)))
        validated = int((last.get("early_stopping") or {}).get("best_epoch", -1)) >= 0
        if validated:
            return f"{self.best} not found; using {self.LAST} ({where})"
        return (
            f"{self.path} has no {self.BEST} (no epoch validated yet); using {self.LAST} ({where})"
        )


def checkpoint_source(source: str | Path, setting: str, what: str = "a checkpoint file") -> Path:
    """The file a setting such as ``model.init_from`` names: a run folder's checkpoint (best.pt,
    else last.pt) or a file; one line naming ``setting`` when there is none."""
    path = Path(source).expanduser()
    if path.is_dir():
        found = RunDir(path).checkpoint_file()
        if found is None:
            raise CheckpointError(f"{path}: {setting} folder has no {RunDir.BEST} or {RunDir.LAST}")
        return found
    if not path.is_file():
        raise CheckpointError(f"{path}: {setting} not found (a run folder or {what})")
    return path
