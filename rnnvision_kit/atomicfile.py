"""Atomic file writes and temporary folders that respect the umask.

``tempfile.mkstemp`` makes files 0600 and ``mkdtemp`` folders 0700, whatever the umask; renamed
into place they would keep those modes, and teammates sharing a run folder or a data cache could
not read them. These helpers give what ``open`` and ``mkdir`` would: ``0o666 & ~umask`` for files
and ``0o777 & ~umask`` for folders.
"""

from __future__ import annotations

import contextlib
import os
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import IO, Any

from rnnvision_kit.errors import RnnkitError, reason

__all__ = [
    "atomic_open",
    "current_umask",
    "make_temp_dir",
    "staged_file",
    "unwritable",
    "writable_folder",
]


def current_umask() -> int:
    """The process's umask, read without changing it where Linux tells it (``/proc``); else set
    and restored at once."""
    with contextlib.suppress(OSError, ValueError), open("/proc/self/status") as status:
        for line in status:
            if line.startswith("Umask:"):
                return int(line.split()[1], 8)
    mask = os.umask(0o077)
    os.umask(mask)
    return mask


@contextlib.contextmanager
def staged_file(
    path: str | os.PathLike[str], *, prefix: str | None = None, suffix: str = ""
) -> Iterator[Path]:
    """A new empty temporary file beside ``path`` (default name ``.<name>.XXXXXXXX<suffix>``),
    renamed to ``path`` when the block succeeds, removed when it raises.

    The block writes the file by name (an exporter that takes a path); it gets the permissions a
    plain ``open`` would give. Errors (a full disk, a folder that cannot be written) propagate.
    """
    path = Path(path)
    fd, tmp = tempfile.mkstemp(
        prefix=f".{path.name}." if prefix is None else prefix, suffix=suffix, dir=path.parent
    )
    try:
        try:
            os.fchmod(fd, 0o666 & ~current_umask())
        finally:
            os.close(fd)
        yield Path(tmp)
        os.replace(tmp, path)
    finally:
        Path(tmp).unlink(missing_ok=True)


@contextlib.contextmanager
def atomic_open(
    path: str | os.PathLike[str],
    mode: str = "w",
    *,
    encoding: str | None = None,
    prefix: str | None = None,
    suffix: str = "",
) -> Iterator[IO[Any]]:
    """Open a temporary file beside ``path`` for writing (``"w"`` or ``"wb"``); when the block
    succeeds it is flushed, synced to disk and renamed to ``path``, so readers see the old file or
    the whole new one, never a part. See :func:`staged_file` for its name and permissions."""
    if "b" not in mode and encoding is None:
        encoding = "utf-8"
    with (
        staged_file(path, prefix=prefix, suffix=suffix) as tmp,
        open(tmp, mode, encoding=encoding) as handle,
    ):
        yield handle
        handle.flush()
        os.fsync(handle.fileno())


def make_temp_dir(parent: str | os.PathLike[str], prefix: str) -> Path:
    """``tempfile.mkdtemp(prefix=prefix, dir=parent)`` with the mode ``mkdir`` would give it."""
    folder = tempfile.mkdtemp(prefix=prefix, dir=parent)
    os.chmod(folder, 0o777 & ~current_umask())
    return Path(folder)


def writable_folder(folder: Path, setting: str = "") -> Path:
    """``folder``, made with its parents when missing, once a file could be written in it;
    else one line naming it (and the ``setting`` that chose it, e.g. ``out_dir``)."""
    try:
        folder.mkdir(parents=True, exist_ok=True)
        fd, probe = tempfile.mkstemp(prefix=".rnnkit-write-test.", dir=folder)
        os.close(fd)
        os.unlink(probe)
    except OSError as error:
        raise unwritable(folder, error, setting=setting) from None
    return folder


def unwritable(folder: Path, error: OSError, name: str = "", setting: str = "") -> RnnkitError:
    """The one-line error of a folder (or of the file ``name`` in it) that cannot be written."""
    why = "a file is in the way" if isinstance(error, FileExistsError) else reason(error)
    return RnnkitError(
        f"{setting + ' ' if setting else ''}{folder}: folder cannot be written "
        f"({name + ': ' if name else ''}{why})"
    )
