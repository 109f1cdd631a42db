"""What the runner tells loggers and callbacks: the ``Run`` record and the ``RunEvents`` it calls.

The runner receives a ``RunEvents`` (the plugin host's typed hook facade, or ``NO_EVENTS``),
never the plugin host itself.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

from rnnvision_kit.config import RunConfig
from rnnvision_kit.runner.distributed import DistInfo


@dataclass(frozen=True)
class Run:
    """What runner-event hooks receive."""

    config: RunConfig
    dir: Path | None  # the run folder (None on ranks other than 0)
    task: str  # the name the task is registered under
    plugin: str  # the plugin that registered the task
    dist: DistInfo


class RunEvents(Protocol):
    """The runner events, called on rank 0."""

    def on_run_start(self, run: Run) -> None: ...

    def on_epoch_end(self, run: Run, epoch: int, metrics: dict[str, float]) -> None: ...

    def on_run_end(self, run: Run, summary: dict[str, Any]) -> None: ...

    def on_exception(self, run: Run, error: BaseException) -> None: ...


class NoEvents:
    """``RunEvents`` that do nothing (tests, embedding without plugins)."""

    def __repr__(self) -> str:
        return "NO_EVENTS"

    def on_run_start(self, run: Run) -> None:
        pass

    def on_epoch_end(self, run: Run, epoch: int, metrics: dict[str, float]) -> None:
        pass

    def on_run_end(self, run: Run, summary: dict[str, Any]) -> None:
        pass

    def on_exception(self, run: Run, error: BaseException) -> None:
        pass


NO_EVENTS = NoEvents()
