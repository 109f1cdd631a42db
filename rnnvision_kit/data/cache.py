"""Where generated data sets and probe caches live: ``$RNNKIT_CACHE`` or the user's cache folder."""

from __future__ import annotations

import json
import os
import shutil
from collections.abc import Callable
from pathlib import Path
from typing import Any

from rnnvision_kit.atomicfile import make_temp_dir
from rnnvision_kit.errors import DataError


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
