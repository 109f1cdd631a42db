"""What data a run reads: the run folder's ``splits.json``, the check that ``--resume`` reads the
same data, and the data record and class-name check of ``rnnkit eval``.

``splits.json`` holds, per split, its item count, where it comes from (``DataBundle.origins``)
and, when the data source names its items
(``DataBundle.items``: file paths, or stable ids for data without files), the items in order and
a hash of them. A resumed run rebuilds its data and stops with one line naming what changed.
"""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from rnnvision_kit.config import RunConfig
from rnnvision_kit.errors import DataError, reason, warn
from rnnvision_kit.runner.records import write_json
from rnnvision_kit.runner.rundir import RunDir
from rnnvision_kit.task import DataBundle

SPLITS = ("train", "val", "test")
SHOWN = 2  # items named in a message, per change


def items_hash(items: Sequence[str]) -> str:
    """The SHA-256 of a split's items in order (its identity in ``splits.json`` and eval JSON)."""
    digest = hashlib.sha256()
    for item in items:
        digest.update(item.encode("utf-8", "surrogateescape") + b"\n")
    return digest.hexdigest()


def split_items(bundle: DataBundle, split: str, source: str) -> list[str] | None:
    """The items ``bundle`` names for ``split`` (None if it names none), checked against the
    split's length."""
    items = (bundle.items or {}).get(split)
    if items is None:
        return None
    size = len(getattr(bundle, split))
    if len(items) != size:
        raise DataError(
            f"data source {source!r}: DataBundle.items names {len(items)} {split} items, "
            f"the {split} split holds {size}"
        )
    return [str(item) for item in items]


def split_record(bundle: DataBundle, config: RunConfig) -> dict[str, Any]:
    """The ``splits.json`` record of ``bundle``: source, path, and per split ``count`` (plus
    ``origin`` when the source says where the split comes from, and ``sha256`` and ``items``
    when it names its items)."""
    splits: dict[str, dict[str, Any]] = {}
    for split in SPLITS:
        entry: dict[str, Any] = {"count": len(getattr(bundle, split))}
        origin = (bundle.origins or {}).get(split)
        if origin:
            entry["origin"] = origin
        items = split_items(bundle, split, config.data.source)
        if items is not None:
            entry.update(sha256=items_hash(items), items=items)
        splits[split] = entry
    return {"source": config.data.source, "path": config.data.path, "splits": splits}


def record_splits(run_dir: RunDir | Path, record: dict[str, Any]) -> None:
    """Write ``run_dir/splits.json`` (a :func:`split_record` record; at the start of a run, rank 0)."""
    write_json(RunDir(Path(run_dir)).splits, record)


def load_splits(path: Path) -> dict[str, Any] | None:
    """A saved ``splits.json``; None when there is none (a run from before it was recorded)."""
    if not path.is_file():
        return None
    try:
        saved = json.loads(path.read_text())
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as error:
        raise DataError(f"{path}: not a readable splits record ({reason(error)})") from None
    if not isinstance(saved, dict) or not isinstance(saved.get("splits"), dict):
        raise DataError(f"{path}: not a splits record (no 'splits' mapping)")
    return saved


def check_resume(run_dir: RunDir | Path, record: dict[str, Any]) -> None:
    """Before a resumed run trains: a DataError naming what changed when the data rebuilt now
    (its :func:`split_record` record) differs from the data recorded in ``run_dir/splits.json``."""
    path = RunDir(Path(run_dir)).splits
    saved = load_splits(path)
    if saved is None:
        return
    root = str(Path(saved["path"]).expanduser()) if saved.get("path") else None
    found = changes(saved["splits"], record["splits"], root)
    if found:
        where = f" in {root}" if root else ""
        raise DataError(
            f"{path}: the data{where} changed since the run started: {', '.join(found)}; a "
            "resumed run must read the data it started with (start a new run, or restore the data)"
        )


def changes(old: dict[str, Any], new: dict[str, Any], root: str | None = None) -> list[str]:
    """What differs between two records' splits, in words; item by item when both name their
    items (files under ``root`` named relative to it), else by count."""
    if all("items" in old.get(s, {}) and "items" in new[s] for s in SPLITS):
        return _item_changes(
            {s: old[s]["items"] for s in SPLITS}, {s: new[s]["items"] for s in SPLITS}, root
        )
    return [
        f"{s} held {old.get(s, {}).get('count')} items, now {new[s]['count']}"
        for s in SPLITS
        if old.get(s, {}).get("count") != new[s]["count"]
    ]


def _item_changes(
    old: dict[str, list[str]], new: dict[str, list[str]], root: str | None
) -> list[str]:
    was = {item: split for split in SPLITS for item in old[split]}
    now = {item: split for split in SPLITS for item in new[split]}
    found: list[str] = []
    for split in SPLITS:
        lost = [i for i in old[split] if i not in now]
        gained = [i for i in new[split] if i not in was]
        if lost:
            found.append(f"{split} lost {_some(lost, root)}")
        if gained:
            found.append(f"{split} gained {_some(gained, root)}")
        for other in SPLITS:
            moved = [i for i in old[split] if now.get(i) == other != split]
            if moved:
                found.append(f"{split}: {_some(moved, root)} moved to {other}")
        if old[split] != new[split] and sorted(old[split]) == sorted(new[split]):
            found.append(f"{split} holds its {len(new[split])} items in another order")
    return found


def _some(items: list[str], root: str | None) -> str:
    """``"2 files (a.mp4, b.mp4)"``, naming at most ``SHOWN`` of them (relative to ``root``)."""
    noun = "file" if all(os.sep in i or "/" in i for i in items) else "item"
    prefix = root.rstrip(os.sep) + os.sep if root else None
    shown = [i[len(prefix) :] if prefix and i.startswith(prefix) else i for i in items[:SHOWN]]
    named = ", ".join(shown) + (f", and {len(items) - SHOWN} more" if len(items) > SHOWN else "")
    return f"{len(items)} {noun}{'s' if len(items) != 1 else ''} ({named})"


# --------------------------------------------------------------------------------- rnnkit eval


def data_name(config: RunConfig) -> str:
    """The evaluated data in messages: its path, else its source."""
    return config.data.path or f"data source {config.data.source!r}"


def check_class_names(run: Sequence[str], data: Sequence[str], where: str) -> None:
    """Compare the evaluated data's class names with the run's: another number of classes, or
    the same names in another order, is a DataError (the metrics would compare the wrong
    classes); other names for as many classes are a warning (the data may name them otherwise)."""
    run, data = list(run), list(data)
    if run == data:
        return
    if len(run) != len(data):
        raise DataError(
            f"{where}: {len(data)} classes ({_names(data)}), the run was trained on {len(run)} "
            f"({_names(run)}); evaluate on data with the run's classes"
        )
    first = next(i for i, (a, b) in enumerate(zip(run, data, strict=True)) if a != b)
    if sorted(run) == sorted(data):
        raise DataError(
            f"{where}: the run's classes in another order (class {first} is {data[first]!r} "
            f"here, {run[first]!r} in the run); the metrics would compare the wrong classes "
            "(list the classes in the run's order)"
        )
    differ = sum(a != b for a, b in zip(run, data, strict=True))
    warn(
        f"{where}: {differ} of {len(run)} class names differ from the run's (class {first} is "
        f"{data[first]!r} here, {run[first]!r} in the run); metrics take class i here for class i "
        "of the run"
    )


def _names(names: list[str]) -> str:
    return ", ".join(names[:5]) + (", ..." if len(names) > 5 else "")


def eval_data(bundle: DataBundle, split: str, config: RunConfig) -> dict[str, Any]:
    """The ``"data"`` record of ``eval-<split>.json``: what was measured."""
    record: dict[str, Any] = {
        "source": config.data.source,
        "path": config.data.path,
        "split": split,
        "items": len(getattr(bundle, split)),
        "class_names": list(bundle.spec.class_names),
    }
    items = split_items(bundle, split, config.data.source)
    if items is not None:
        record["sha256"] = items_hash(items)
    return record
