"""The sweep folder: one slot per configuration and seed, and ``sweep.json``, the record of what
the folder has run."""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from rnnvision_kit.errors import ConfigError
from rnnvision_kit.sweep.grid import Point

SETTINGS_FILE = "sweep.json"
ERROR_FILE = "sweep-error.txt"
LOG_FILE = "sweep-run.log"
# Settings that change where or how fast a run goes, not its results: they may differ between
# invocations on one sweep folder (the others must not: the rows would mix two experiments).
VOLATILE: tuple[str, ...] = ("seed", "out_dir", "train.threads", "train.device", "data.num_workers")
VOLATILE += ("train.checkpoint_every",)


@dataclasses.dataclass(frozen=True)
class Slot:
    """One run of the sweep: a configuration and a seed, and its folder."""

    point: Point
    seed: int
    folder: Path

    @property
    def label(self) -> str:
        return f"{self.point.label} seed={self.seed}"

    def run_dirs(self) -> list[Path]:
        """The run folders ``rnnkit run --out`` made here, oldest first."""
        from rnnvision_kit.runner.rundir import RunDir

        found = [p for p in self.folder.glob(f"*/*/{RunDir.CONFIG}")]
        return [p.parent for p in sorted(found, key=lambda p: (p.stat().st_mtime_ns, str(p)))]

    def finished(self) -> Path | None:
        from rnnvision_kit.runner.rundir import RunDir

        done = [d for d in self.run_dirs() if RunDir(d).finished()]
        return done[-1] if done else None

    def resumable(self) -> Path | None:
        """The newest run folder without a summary but with ``last.pt``, when it is the newest
        run folder (a later fresh start supersedes it)."""
        from rnnvision_kit.runner.rundir import RunDir

        dirs = self.run_dirs()
        if dirs and RunDir(dirs[-1]).resumable():
            return dirs[-1]
        return None

    def error(self) -> str | None:
        path = self.folder / ERROR_FILE
        return path.read_text() if path.is_file() else None


def slots(out: Path, point: Point, seeds: Sequence[int], slug: str | None = None) -> list[Slot]:
    """The runs of ``point``: ``OUT/<slug>/seed<k>`` for each seed."""
    return [Slot(point, seed, out / (slug or point.slug) / f"seed{seed}") for seed in seeds]


def flat(values: Any, prefix: str = "") -> dict[str, Any]:
    """A nested mapping as dotted keys."""
    if not isinstance(values, dict):
        return {prefix.rstrip("."): values}
    out: dict[str, Any] = {}
    for key, value in values.items():
        out.update(flat(value, f"{prefix}{key}."))
    return out


def _write_json(path: Path, data: Any) -> None:
    from rnnvision_kit.atomicfile import atomic_open

    with atomic_open(path, "w") as handle:
        json.dump(data, handle, indent=2, default=str)
        handle.write("\n")


def record_settings(out: Path, settings: dict[str, Any], points: Sequence[Point]) -> list[dict]:
    """Write ``OUT/sweep.json``: this command's settings and every configuration the folder has
    run (earlier ones kept, seeds merged). An existing sweep of another task, other data or other
    settings is refused with one line. Returns the configurations, in the order they came."""
    path = out / SETTINGS_FILE
    configurations: list[dict[str, Any]] = []
    if path.is_file():
        try:
            saved = json.loads(path.read_text())
            old_base = saved["base"]
            configurations = list(saved["configurations"])
        except (OSError, ValueError, KeyError, TypeError):
            raise ConfigError(f"{path}: not a sweep settings file (unreadable)") from None
        _check_same_sweep(path, saved, settings, old_base)
    seeds = settings["seeds"]
    known = {json.dumps(c["grid"], sort_keys=True): c for c in configurations}
    for point in points:
        entry = known.get(json.dumps(point.to_dict(), sort_keys=True))
        if entry is None:
            entry = {"grid": point.to_dict(), "slug": point.slug, "seeds": []}
            configurations.append(entry)
            known[json.dumps(point.to_dict(), sort_keys=True)] = entry
        entry["seeds"] = sorted(set(entry["seeds"]) | set(seeds))
    out.mkdir(parents=True, exist_ok=True)
    _write_json(path, {**settings, "configurations": configurations})
    return configurations


def _check_same_sweep(
    path: Path, saved: dict[str, Any], settings: dict[str, Any], old_base: dict[str, Any]
) -> None:
    hint = "choose another --out for a different sweep"
    if saved.get("task") != settings["task"]:
        raise ConfigError(
            f"{path}: a sweep of task {saved.get('task')!r}, not {settings['task']!r}; {hint}"
        )
    old_data, new_data = saved.get("data_source"), settings["data_source"]
    if old_data != new_data:
        raise ConfigError(f"{path}: a sweep on data {old_data}, not {new_data}; {hint}")
    new_base = settings["base"]
    for key in sorted(set(old_base) | set(new_base)):
        if key in VOLATILE or old_base.get(key) == new_base.get(key):
            continue
        raise ConfigError(
            f"{path}: the sweep there has {key}={old_base.get(key)!r}, this command "
            f"{key}={new_base.get(key)!r}; {hint} (or sweep {key} with --grid)"
        )
