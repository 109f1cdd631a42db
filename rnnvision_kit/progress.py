"""Progress of long work, one way everywhere: a tqdm bar with an ETA on a terminal; off a
terminal (a log file, a pipe, a notebook's captured stderr), a plain line every ``every`` seconds
(30 by default) with the count, the rate and the time left; nothing when ``show`` is False.

Used by the training loop (epochs, so that the first epoch's decoding into the frame cache is
never silent), ``rnnkit check-data`` (probing and deep decoding) and data generation
(moving-digits, synthetic-seg).
"""

from __future__ import annotations

import sys
import time
from collections.abc import Iterable, Iterator
from typing import Any, Literal, TextIO, TypeVar

__all__ = ["EVERY_SECONDS", "Progress", "track"]

T = TypeVar("T")
EVERY_SECONDS = 30.0  # off a terminal: a line at most this often
Mode = Literal["bar", "lines", "off"]


def _duration(seconds: float) -> str:
    seconds = max(0, round(seconds))
    if seconds < 60:
        return f"{seconds} s"
    if seconds < 3600:
        return f"{seconds // 60} min {seconds % 60:02d} s"
    return f"{seconds // 3600} h {seconds % 3600 // 60:02d} min"


class Progress:
    """Counts work done out of ``total`` (None: unknown) and shows it on ``stream`` (stderr).

    ``show``: None follows the stream (a bar on a terminal, else lines every ``every`` s), True
    forces a bar, False shows nothing. Use as a context manager, or call
    :meth:`close`; :meth:`update` is safe to call from one thread at a time."""

    def __init__(
        self,
        total: int | None,
        description: str,
        unit: str = "it",
        *,
        show: bool | None = None,
        every: float = EVERY_SECONDS,
        stream: TextIO | None = None,
    ) -> None:
        self.total, self.description, self.unit = total, description, unit
        self.stream = stream if stream is not None else sys.stderr
        self.every = float(every)
        self.done = 0
        self.started = self._last = time.monotonic()
        self.mode: Mode = self._mode(show)
        self._bar: Any = None
        if self.mode == "bar":
            from tqdm import tqdm

            self._bar = tqdm(
                total=total,
                desc=description,
                unit=unit,
                file=self.stream,
                leave=False,
                dynamic_ncols=True,
            )

    def _mode(self, show: bool | None) -> Mode:
        if show is not None:
            return "bar" if show else "off"
        isatty = getattr(self.stream, "isatty", None)
        return "bar" if callable(isatty) and isatty() else "lines"

    def update(self, n: int = 1) -> None:
        """``n`` more units done; off a terminal, a line when ``every`` seconds have passed."""
        self.done += n
        if self._bar is not None:
            self._bar.update(n)
        elif self.mode == "lines" and time.monotonic() - self._last >= self.every:
            self._last = time.monotonic()
            print(self.line(), file=self.stream, flush=True)

    def line(self) -> str:
        """``"epoch 1/30: 12/64 batch (19%), 31 s, 0.39 batch/s, about 2 min 13 s left"``."""
        elapsed = time.monotonic() - self.started
        rate = self.done / elapsed if elapsed > 0 else 0.0
        count = f"{self.done}/{self.total}" if self.total else str(self.done)
        text = f"{self.description}: {count} {self.unit}"
        if self.total:
            text += f" ({self.done / self.total:.0%})"
        text += f", {_duration(elapsed)}, {rate:.3g} {self.unit}/s"
        if self.total and rate > 0 and self.done < self.total:
            text += f", about {_duration((self.total - self.done) / rate)} left"
        return text

    def close(self) -> None:
        if self._bar is not None:
            self._bar.close()
            self._bar = None

    def __enter__(self) -> Progress:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def track(
    iterable: Iterable[T],
    total: int | None,
    description: str,
    unit: str = "it",
    *,
    show: bool | None = None,
    every: float = EVERY_SECONDS,
    stream: TextIO | None = None,
) -> Iterator[T]:
    """The items of ``iterable``, counted by a :class:`Progress` (closed when the loop ends or
    is left)."""
    with Progress(total, description, unit, show=show, every=every, stream=stream) as progress:
        for item in iterable:
            yield item
            progress.update()
