"""Running a sweep's slots as ``rnnkit run`` subprocesses, a few at a time, passing a Ctrl-C or
SIGTERM on to them."""

from __future__ import annotations

import contextlib
import dataclasses
import os
import signal
import subprocess
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any

from rnnvision_kit.errors import RunInterrupted
from rnnvision_kit.sweep.folder import ERROR_FILE, LOG_FILE, Slot

ERROR_TAIL = 40  # lines of a failed run's output kept in sweep-error.txt


@dataclasses.dataclass
class Outcome:
    """What became of one run this invocation started."""

    slot: Slot
    seconds: float
    run_dir: Path | None = None  # None: it failed
    code: int = 0  # its exit code


def _error_line(text: str) -> str:
    """The line of a run's output that says why it failed: its last ``rnnkit: error:`` line,
    else its last line (a traceback's exception)."""
    lines = [line.strip() for line in text.splitlines() if line.strip()]
    errors = [line for line in lines if line.startswith("rnnkit: error:")]
    chosen = errors[-1] if errors else (lines[-1] if lines else "no output")
    return chosen.removeprefix("rnnkit: error: ")


class Launcher:
    """Runs slots as ``python -m rnnvision_kit run`` subprocesses, ``jobs`` at a time, each in
    its own session (a Ctrl-C or SIGTERM reaches the sweep, which passes it on once: each run
    saves ``last.pt`` and stops, as ``rnnkit run`` does)."""

    def __init__(
        self,
        command: Callable[[Slot], list[str]],
        jobs: int,
        threads: int,
        echo: Callable[[str], Any],
    ) -> None:
        self.command, self.jobs, self.threads, self.echo = command, jobs, threads, echo

    def run(self, todo: Sequence[Slot], on_done: Callable[[Outcome, int], str]) -> list[Outcome]:
        """Run ``todo``; ``on_done(outcome, log offset)`` gives the rest of each run's line. A
        SIGINT or SIGTERM starts nothing more, waits for the running ones to save and raises
        :class:`RunInterrupted`."""
        env = {**os.environ, "OMP_NUM_THREADS": str(self.threads)}
        pending = list(enumerate(todo, 1))
        running: dict[int, tuple[Slot, subprocess.Popen, float, int, Any]] = {}
        outcomes: list[Outcome] = []
        with _caught_signals() as caught:
            passed_on = 0
            while pending or running:
                if caught and len(caught) > passed_on:  # pass each signal on once
                    pending.clear()
                    for _, proc, *_ in running.values():
                        with contextlib.suppress(ProcessLookupError):
                            proc.send_signal(caught[-1])
                    passed_on = len(caught)
                while pending and len(running) < self.jobs:
                    number, slot = pending.pop(0)
                    running[number] = self._start(number, len(todo), slot, env)
                for number in [n for n, r in running.items() if r[1].poll() is not None]:
                    slot, proc, start, offset, log = running.pop(number)
                    log.close()
                    outcome = self._finish(slot, proc.returncode, time.monotonic() - start)
                    prefix = f"[{number}/{len(todo)}] {slot.label} ... "
                    if caught and outcome.run_dir is None:
                        self.echo(prefix + f"interrupted (exit code {proc.returncode})")
                        continue
                    outcomes.append(outcome)
                    self.echo(prefix + on_done(outcome, offset))
                time.sleep(0.05)
        if caught:
            name = signal.Signals(caught[0]).name
            error = RunInterrupted(
                f"sweep interrupted ({name}); run the same command again to resume it"
            )
            error.exit_code = 128 + caught[0]
            raise error
        return outcomes

    def _start(
        self, number: int, total: int, slot: Slot, env: dict[str, str]
    ) -> tuple[Slot, subprocess.Popen, float, int, Any]:
        slot.folder.mkdir(parents=True, exist_ok=True)
        args = self.command(slot)
        log = (slot.folder / LOG_FILE).open("a")
        offset = log.tell()
        log.write(f"$ {' '.join(args)}\n")
        log.flush()
        how = "resuming" if "--resume" in args else "started"
        self.echo(f"[{number}/{total}] {slot.label} {how} ({slot.folder})")
        proc = subprocess.Popen(
            args,
            stdout=log,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            env=env,
            start_new_session=True,
        )
        return slot, proc, time.monotonic(), offset, log

    def _finish(self, slot: Slot, code: int, seconds: float) -> Outcome:
        run_dir = slot.finished()  # its summary written: finished, as the next sweep sees it
        if run_dir is not None:
            with contextlib.suppress(FileNotFoundError):
                (slot.folder / ERROR_FILE).unlink()  # an earlier attempt's: superseded
            return Outcome(slot, seconds, run_dir)
        return Outcome(slot, seconds, code=code)


def _tail(path: Path, offset: int, lines: int = ERROR_TAIL) -> str:
    with path.open("rb") as handle:
        handle.seek(offset)
        text = handle.read().decode(errors="replace")
    return "\n".join(text.splitlines()[-lines:])


@contextlib.contextmanager
def _caught_signals() -> Iterator[list[int]]:
    """A list that SIGINT and SIGTERM append to (in the main thread; elsewhere it stays empty
    and the signals keep their handlers)."""
    caught: list[int] = []
    if threading.current_thread() is not threading.main_thread():
        yield caught
        return
    sigs = (signal.SIGINT, signal.SIGTERM)
    old = {sig: signal.signal(sig, lambda signum, _frame: caught.append(signum)) for sig in sigs}
    try:
        yield caught
    finally:
        for sig, previous in old.items():
            signal.signal(sig, previous)
