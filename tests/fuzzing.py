"""Shared pieces of the hypothesis fuzz tests: budgets (a fast, reproducible one and a slow one
with 10x the examples, marked ``slow``), a guard against hangs and the one-line error check."""

from __future__ import annotations

import contextlib
import signal
from collections.abc import Iterator
from datetime import timedelta

import pytest
from hypothesis import HealthCheck, settings

_HEALTH = [HealthCheck.too_slow, HealthCheck.data_too_large, HealthCheck.filter_too_much]

# Parametrize a fuzz test with BUDGETS and pass its value to budget(): "fast" runs in the quick
# suite with a fixed seed (derandomize), "slow" (marked slow) draws 10x the examples at random.
BUDGETS = ["fast", pytest.param("slow", marks=pytest.mark.slow)]


def budget(name: str, examples: int, deadline_s: float = 10.0, fixtures: bool = False) -> settings:
    """Hypothesis settings for the ``name`` budget with ``examples`` cases in the fast one;
    ``fixtures``: the test reuses function-scoped fixtures across cases (on purpose)."""
    slow = name == "slow"
    health = [*_HEALTH, HealthCheck.function_scoped_fixture] if fixtures else _HEALTH
    return settings(
        max_examples=examples * 10 if slow else examples,
        derandomize=not slow,
        database=None,
        deadline=timedelta(seconds=deadline_s * (3 if slow else 1)),
        suppress_health_check=health,
        print_blob=slow,
    )


@contextlib.contextmanager
def no_hang(seconds: int = 60) -> Iterator[None]:
    """Fail with TimeoutError when the block runs longer than ``seconds`` (SIGALRM, main thread)."""

    def expire(signum: int, frame: object) -> None:
        raise TimeoutError(f"no result after {seconds} s: a hang")

    previous = signal.signal(signal.SIGALRM, expire)
    signal.alarm(seconds)
    try:
        yield
    finally:
        signal.alarm(0)
        signal.signal(signal.SIGALRM, previous)


def assert_one_line(error: BaseException, *names: str) -> str:
    """``error``'s message is one non-empty line and names one of ``names`` (a file or a
    setting; as written or as its repr, whose start is enough: messages cut long values)."""
    message = str(error)
    assert message.strip(), f"empty message from {type(error).__name__}"
    assert len(message.splitlines()) == 1, f"not one line: {message!r}"
    if names:
        shown = [n for name in names for n in (str(name)[:40], repr(str(name))[:40])]
        assert any(n in message for n in shown), f"{message!r} names none of {names}"
    return message
