"""``rnnkit run --resume RUN_DIR`` with options: a resumed run keeps the settings it was started
with. An option that changes one is refused with one line naming it, except the few that cannot
change its results (device, threads, workers, epochs to train up to), which are applied and said.
A finished run is not resumed (``--epochs`` above the epochs it trained continues it)."""

from __future__ import annotations

import copy
import dataclasses
from collections.abc import Iterable, Mapping
from typing import Any

from rnnvision_kit.config import RunConfig, set_value
from rnnvision_kit.errors import ConfigError
from rnnvision_kit.runner.rundir import RunDir

# Settings a resumed run may change: where and how fast it runs, and how long it trains.
SAFE_ON_RESUME = (
    "train.device",
    "train.threads",
    "data.num_workers",
    "train.epochs",
    "train.checkpoint_every",
)


@dataclasses.dataclass(frozen=True)
class Requested:
    """One setting an option asks for: the dotted key, the value, and the option as typed."""

    key: str
    value: Any
    option: str  # e.g. "--device", "--set model.hidden=64", "--config run.yaml"


def flat_settings(config: Any, values: Mapping[str, Any], prefix: str = "") -> dict[str, Any]:
    """A nested mapping of settings (a YAML file) as dotted keys, descending only into settings
    that are groups (dataclasses): a dict-valued setting stays one value."""
    flat: dict[str, Any] = {}
    for key, value in values.items():
        node = getattr(config, key, None) if dataclasses.is_dataclass(config) else None
        if dataclasses.is_dataclass(node) and isinstance(value, Mapping):
            flat.update(flat_settings(node, value, f"{prefix}{key}."))
        else:
            flat[f"{prefix}{key}"] = value
    return flat


def _get(config: Any, key: str) -> Any:
    for part in key.split("."):
        config = getattr(config, part)
    return config


def resume_config(saved: RunConfig, requested: Iterable[Requested]) -> tuple[RunConfig, list[str]]:
    """The saved config with the safe requests applied, and a line for each one that changed
    something; a ConfigError naming the first option that conflicts with the saved run."""
    config = copy.deepcopy(saved)
    notes: list[str] = []
    for item in requested:
        probe = copy.deepcopy(config)
        set_value(probe, item.key, item.value)  # type-checked like any setting
        old, new = _get(saved, item.key), _get(probe, item.key)
        if new == old:
            continue
        if item.key not in SAFE_ON_RESUME:
            raise ConfigError(
                f"{item.option}: conflicts with the run being resumed ({item.key}={old!r} "
                f"there); a resumed run keeps its settings, so start a new run to change it"
            )
        set_value(config, item.key, item.value)
        notes.append(f"resume: {item.key}={new!r} (the run had {old!r})")
    return config, notes


def finished(checkpoint: Mapping[str, Any], config: RunConfig, run_dir: RunDir) -> str | None:
    """What ``run --resume`` says of a run with nothing left to do (every epoch of
    ``train.epochs`` trained, or stopped early, and its summary written), else None: a run
    killed between its last epoch and its summary still resumes, to evaluate and summarise."""
    done, wanted = int(checkpoint["epoch"]), config.train.epochs
    stopped = bool((checkpoint.get("early_stopping") or {}).get("stopped"))
    if not (stopped or done >= wanted) or not run_dir.finished():
        return None
    how = f"stopped early after epoch {done}" if stopped else f"{done}/{wanted} epochs"
    more = "" if stopped else f"; --epochs N above {done} trains on"
    return (
        f"{run_dir} is finished ({how}); nothing to resume "
        f"(rnnkit eval {run_dir} re-evaluates it{more})"
    )
