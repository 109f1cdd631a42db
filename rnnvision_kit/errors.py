"""Exceptions a user can cause. Each carries a one-line message; the CLI prints it without a traceback."""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator


class RnnkitError(Exception):
    """Base class for errors caused by user input (config, data, names, checkpoints)."""


class ConfigError(RnnkitError):
    """A configuration key or value is invalid."""


class RegistryError(RnnkitError):
    """A registered name is unknown, ambiguous or registered twice."""


class PluginError(RnnkitError):
    """A plugin failed to load or register (raised in strict mode; otherwise it is listed as
    broken), breaks the contract (a task whose capabilities and methods differ), or a factory it
    registered (data source, backbone, head, metric) raised."""


class DataError(RnnkitError):
    """A data set path, file or layout is invalid."""


class UnreadableItem(DataError):
    """A data set item whose file cannot be read, raised by a data set whose policy is to skip
    bad files (``on_error="skip"``): the runner leaves the item out of evaluation (or reads the
    next one in training), counts the file once and lists it in ``summary.json``."""

    def __init__(self, path: str, reason: str) -> None:
        super().__init__(f"{path}: {reason}")
        self.path, self.reason = str(path), reason

    def __reduce__(self) -> tuple:  # DataLoader workers send exceptions through pickle
        return (type(self), (self.path, self.reason))


class TaskError(RnnkitError):
    """Task code (a plugin's) raised an unexpected exception, or a task was asked for a
    capability it does not declare; the message names task, plugin and method (``method``: the
    Task method or the capability), the original exception, if any, is the cause (shown with
    ``--debug``)."""

    def __init__(self, message: str, method: str = "") -> None:
        super().__init__(message)
        self.method = method  # the Task method that raised, e.g. "build_data"


class CheckpointError(RnnkitError):
    """A checkpoint is missing, truncated or foreign."""


class RunInterrupted(RnnkitError):
    """A run stopped on Ctrl-C after writing a checkpoint; the message says how to resume."""

    exit_code = 130


def warn(message: str) -> None:
    """Print a one-line warning for the user on stderr (``rnnkit: warning: ...``)."""
    import sys

    print(f"rnnkit: warning: {message}", file=sys.stderr, flush=True)


def reason(error: BaseException) -> str:
    """What went wrong, on one line (an OSError's ``strerror``, else the message, else the type),
    for messages such as ``f"{path}: cannot read ({reason(error)})"``."""
    text = getattr(error, "strerror", None) or str(error) or type(error).__name__
    return " ".join(str(text).split())


def one_line(error: BaseException) -> str:
    """``"TypeName: first line of the message"``."""
    lines = str(error).strip().splitlines()
    return f"{type(error).__name__}: {lines[0] if lines else ''}".rstrip(": ")


@contextlib.contextmanager
def rethrown(make: Callable[[str], RnnkitError]) -> Iterator[None]:
    """Turn an exception that is not an ``RnnkitError`` (nor an interrupt) into ``make(one_line)``,
    raised from the original (which ``--debug`` shows)."""
    try:
        yield
    except (RnnkitError, KeyboardInterrupt):
        raise
    except Exception as error:
        raise make(one_line(error)) from error
