"""The grid of a sweep: ``--grid`` and ``--seeds`` parsed, and the configurations (points) of
their cartesian product."""

from __future__ import annotations

import dataclasses
import hashlib
import itertools
import re
from collections.abc import Sequence

import click

# Keys the sweep sets itself, refused in --grid.
RESERVED = {"seed": "--seeds", "out_dir": "--out", "train.threads": "--threads"}


def split_values(text: str) -> list[str]:
    """``"gru,lstm"`` -> ``["gru", "lstm"]``; commas inside brackets or quotes stay
    (``"[8],[16,4]"`` -> ``["[8]", "[16,4]"]``)."""
    values: list[str] = []
    current: list[str] = []
    depth, quote = 0, ""
    for char in text:
        if quote:
            quote = "" if char == quote else quote
        elif char in "'\"":
            quote = char
        elif char in "[{":
            depth += 1
        elif char in "]}":
            depth -= 1
        elif char == "," and depth == 0:
            values.append("".join(current).strip())
            current = []
            continue
        current.append(char)
    values.append("".join(current).strip())
    return values


def parse_grid(texts: Sequence[str]) -> list[tuple[str, list[str]]]:
    """``--grid KEY=V1,V2`` options -> ``[(KEY, [V1, V2]), ...]`` (values as typed, each once)."""
    grid: list[tuple[str, list[str]]] = []
    for text in texts:
        key, sep, raw = text.partition("=")
        key = key.strip()
        values = list(dict.fromkeys(split_values(raw))) if sep else []
        if not key or not sep or not all(values):
            raise click.BadParameter(
                f"{text!r}: expected KEY=V1,V2,..., e.g. model.head=gru,lstm", param_hint="--grid"
            )
        if key in RESERVED:
            raise click.BadParameter(
                f"{key}: the sweep sets it; use {RESERVED[key]}", param_hint="--grid"
            )
        if any(key == seen for seen, _ in grid):
            raise click.BadParameter(f"{key} is given twice", param_hint="--grid")
        grid.append((key, values))
    return grid


def parse_seeds(text: str) -> list[int]:
    """``"0,1,2"`` -> ``[0, 1, 2]``; ``"0-4"`` is ``0,1,2,3,4``."""
    seeds: list[int] = []
    for part in text.split(","):
        first, dash, last = part.strip().partition("-")
        try:
            low = int(first)
            high = int(last) if dash else low
        except ValueError:
            raise click.BadParameter(
                f"{text!r}: expected seeds like 0,1,2 or 0-4", param_hint="--seeds"
            ) from None
        if low < 0 or high < low or high >= 2**64:
            raise click.BadParameter(
                f"{part.strip()!r}: seeds are integers >= 0, ranges low-high", param_hint="--seeds"
            )
        seeds.extend(range(low, high + 1))
    return list(dict.fromkeys(seeds))


_SAFE = re.compile(r"[^A-Za-z0-9._=+-]")


@dataclasses.dataclass(frozen=True)
class Point:
    """One configuration of the grid: ``(key, value as typed)`` pairs in grid order."""

    values: tuple[tuple[str, str], ...]

    @property
    def sets(self) -> list[str]:
        """Its ``--set KEY=VALUE`` arguments."""
        return [f"{key}={value}" for key, value in self.values]

    @property
    def label(self) -> str:
        """``model.head=gru model.hidden_size=8`` (``base`` for the empty grid)."""
        return " ".join(self.sets) or "base"

    @property
    def slug(self) -> str:
        """Its folder name: ``model.head=gru,model.hidden_size=8``; characters a file name
        should not hold become ``_``, with a hash of the settings so that names stay distinct."""
        text = ",".join(self.sets) or "base"
        safe = ",".join(_SAFE.sub("_", part) for part in self.sets) or "base"
        if safe != text or len(safe) > 120:
            digest = hashlib.sha256(text.encode()).hexdigest()[:8]
            safe = f"{safe[:100]}-{digest}"
        return safe

    def to_dict(self) -> dict[str, str]:
        return dict(self.values)


def grid_points(grid: Sequence[tuple[str, Sequence[str]]]) -> list[Point]:
    """The cartesian product of the grid, the first key varying slowest."""
    keys = [key for key, _ in grid]
    return [
        Point(tuple(zip(keys, combo, strict=True)))
        for combo in itertools.product(*(values for _, values in grid))
    ]
