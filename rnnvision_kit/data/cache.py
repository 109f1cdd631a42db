"""Where generated data sets and probe caches live: ``$RNNKIT_CACHE`` or the user's cache folder."""

from __future__ import annotations

import os
from pathlib import Path


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
