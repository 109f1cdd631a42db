"""A plugin that records runner events as JSON lines in the file ``$RNNKIT_TEST_EVENTS``."""

import json
import os
from typing import Any

from rnnvision_kit import hookimpl


def _record(event: str, **values: Any) -> None:
    with open(os.environ["RNNKIT_TEST_EVENTS"], "a") as handle:
        handle.write(json.dumps({"event": event, **values}) + "\n")


@hookimpl
def rnnkit_on_run_start(run: Any) -> None:
    _record("run_start", task=run.task, run_dir=str(run.dir), epochs=run.config.train.epochs)


@hookimpl
def rnnkit_on_epoch_end(run: Any, epoch: int, metrics: dict[str, float]) -> None:
    _record("epoch_end", epoch=epoch, metrics=sorted(metrics))


@hookimpl
def rnnkit_on_run_end(run: Any, summary: dict[str, Any]) -> None:
    _record("run_end", test=summary["test"], run_dir=summary["run_dir"])


@hookimpl
def rnnkit_on_exception(run: Any, error: BaseException) -> None:
    _record("exception", error=type(error).__name__, message=str(error))
