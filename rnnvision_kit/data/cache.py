"""Where generated data sets, probe caches and the record of data-set notices already shown live:
``$RNNKIT_CACHE`` or the user's cache folder."""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import shutil
import time
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any

from rnnvision_kit.atomicfile import make_temp_dir
from rnnvision_kit.errors import DataError, warn


def cache_dir(*parts: str) -> Path:
    """Return (and create) a folder under the rnnvision-kit cache.

    The root is ``$RNNKIT_CACHE`` when set, else ``$XDG_CACHE_HOME/rnnvision-kit`` or
    ``~/.cache/rnnvision-kit``.
    """
    root = os.environ.get("RNNKIT_CACHE")
    if root:
        base = Path(root).expanduser()
    else:
        xdg = os.environ.get("XDG_CACHE_HOME")
        base = (Path(xdg) if xdg else Path.home() / ".cache") / "rnnvision-kit"
    path = base.joinpath(*parts)
    path.mkdir(parents=True, exist_ok=True)
    return path


MARKER = "COMPLETE.json"


def generate_once(
    name: str, key: str, generate: Callable[[Path], None], meta: dict[str, Any]
) -> Path:
    """Return ``cache_dir(name) / key``, calling ``generate(folder)`` first if it is not complete.

    Generation writes into a temporary folder that is renamed into place only when complete (with
    ``meta`` in its ``COMPLETE.json`` marker), so an interrupted run never leaves half a data set,
    and two processes generating at once both end with one complete folder. The folder gets the
    umask's permissions, as ``mkdir`` would give.
    """
    parent = cache_dir(name)
    final = parent / key
    if (final / MARKER).is_file():
        return final
    if final.is_symlink() or (final.exists() and (not final.is_dir() or any(final.iterdir()))):
        # complete folders are renamed into place whole: this one was not written here
        raise DataError(
            f"{final}: in the way of the generated data set (not one it wrote: no {MARKER}); "
            "move it, or set RNNKIT_CACHE to another folder"
        )
    tmp = make_temp_dir(parent, prefix=f".tmp-{key}-")
    try:
        generate(tmp)
        (tmp / MARKER).write_text(json.dumps(meta, indent=2), encoding="utf-8")
        try:
            os.replace(tmp, final)
        except OSError:
            if not (final / MARKER).is_file():  # not a concurrent generator that won the race
                raise
    finally:
        if tmp.exists():
            shutil.rmtree(tmp, ignore_errors=True)
    return final


NOTICES = "notices"  # cache_dir(NOTICES): one marker file per data-set notice already shown
_every_notice = False  # check-data shows every notice, shown before or not


@contextlib.contextmanager
def every_notice() -> Iterator[None]:
    """Within this block :func:`notice_once` shows every notice (``rnnkit check-data``)."""
    global _every_notice
    before, _every_notice = _every_notice, True
    try:
        yield
    finally:
        _every_notice = before


def _fingerprint(root: Path | str) -> list[Any]:
    """A data set's root: its absolute path, and its inode and mtime (a folder replaced at the
    same path is another data set)."""
    path = Path(root).expanduser().absolute()
    try:
        stat = path.stat()
    except OSError:
        return [str(path)]
    return [str(path), stat.st_dev, stat.st_ino, stat.st_mtime_ns]


def notice_once(message: str, roots: Sequence[Path | str]) -> bool:
    """Warn ``message``, a notice about the data set at ``roots``, unless it was shown before
    for the same data set with this cache (a marker in ``cache_dir("notices")``; never in the
    data's folder). Inside :func:`every_notice` it is always shown. Returns whether it was.

    A cache that cannot be written shows the notice every time."""
    fingerprint = json.dumps([message, [_fingerprint(r) for r in roots]])
    key = hashlib.sha256(fingerprint.encode("utf-8")).hexdigest()[:32]
    try:
        marker = cache_dir(NOTICES) / f"{key}.json"
        seen = marker.is_file()
    except OSError:
        marker, seen = None, False
    if seen and not _every_notice:
        return False
    warn(message)
    if marker is not None and not seen:
        record = {"notice": message, "roots": [str(r) for r in roots], "shown": time.time()}
        # "x": of two runs at once, one writes it
        with contextlib.suppress(OSError), marker.open("x", encoding="utf-8") as file:
            json.dump(record, file)
    return True
