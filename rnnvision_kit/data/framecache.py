"""A disk cache of decoded video frames at training size: memory-mapped uint8 ``.npy`` files.

One entry holds frames of one video, resized, as a ``(T, 3, H, W)`` uint8 array:

- a video whose clips are drawn at random keeps its whole frame range (clips slice it), when it
  has at most ``whole_max_frames`` frames; a longer one is decoded as without a cache (decoding it
  whole would cost more than the epochs it saves);
- a video whose clips are fixed (evaluation: uniform clips, centre clips) keeps just those frames.

Entries are keyed by the file's absolute path, size and mtime, the frame count, the resize
settings and the frames held, so a changed file or another size is a new entry. Writers write a
temporary file and rename it into place: readers (DataLoader workers, DDP ranks, other runs) see
whole files only. A size bound evicts the least recently used entries not used by this run, then
refuses new entries (one warning). A folder that cannot be written (or a full disk) turns the
writing off with one warning; reading what is there, and training, go on.

The cache owns one folder, ``rnnkit-frames/`` inside the folder it is given, marked by a
``.rnnkit-frame-cache`` file it writes when it makes the folder. It deletes only its own files:
entries (``<sha1>.npy``) and writers' temporary files (``.tmp-<sha1>-<pid>-<hex8>.npy``), and only
in a folder that carries the marker. A folder of that name without the marker is someone else's:
the cache leaves it untouched and is off (one warning).
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import re
import time
import uuid
from collections import OrderedDict
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, BinaryIO

import numpy as np
import torch

from rnnvision_kit.atomicfile import make_temp_dir
from rnnvision_kit.data.cache import cache_dir
from rnnvision_kit.data.frames import FrameSource
from rnnvision_kit.data.geometry import fit
from rnnvision_kit.data.video import VideoInfo
from rnnvision_kit.errors import warn

__all__ = ["WHOLE_MAX_FRAMES", "FrameCache"]

VERSION = 1
# Videos with more frames are not cached whole: decoding a whole video costs about as much as
# decoding many random clips of it (the break-even is near epochs x frames decoded per clip).
WHOLE_MAX_FRAMES = 1000
OPEN_ENTRIES = 64  # memory maps kept open per process
TMP_PREFIX = ".tmp-"
STALE_TMP_SECONDS = 3600.0  # a temporary file this old is a crashed writer's leftover
FOLDER = "rnnkit-frames"  # the cache's own folder, inside the one it is given
MARKER = ".rnnkit-frame-cache"  # in FOLDER, written by the cache that made it
MARKER_TEXT = "rnnvision-kit frame cache"  # the marker's first line starts so (then a version)
# The only names the cache ever deletes (in a folder with its marker): entries, temporary files.
ENTRY_NAME = re.compile(r"[0-9a-f]{40}\.npy")
TMP_NAME = re.compile(re.escape(TMP_PREFIX) + r"[0-9a-f]{40}-[0-9]+-[0-9a-f]{8}\.npy")

Writer = Callable[[BinaryIO, np.ndarray], None]
Decode = Callable[[Sequence[int]], torch.Tensor]

# Shared flags (reach DataLoader workers): writing off after an error; the size bound reached.
_WRITE_OFF, _FULL = 0, 1


def _write_npy(handle: BinaryIO, array: np.ndarray) -> None:
    np.lib.format.write_array(handle, array, allow_pickle=False)


def _main_rank() -> bool:
    return os.environ.get("RANK", "0") == "0"


def _marked(folder: Path) -> bool:
    """Whether ``folder`` carries a frame cache's marker."""
    try:
        with open(folder / MARKER, encoding="utf-8") as handle:
            return handle.readline(200).startswith(MARKER_TEXT)
    except (OSError, UnicodeDecodeError):
        return False


def _claim(folder: Path) -> bool:
    """Whether ``folder`` is a frame cache's, making it (with its marker) when it does not exist.

    The folder is made as a temporary folder holding the marker, then renamed into place, so no
    process ever sees it without its marker. False: a folder (or file) of that name that is not
    a frame cache's. A folder that cannot be written raises OSError.
    """
    if _marked(folder):
        return True
    if os.path.lexists(folder):
        return False
    folder.parent.mkdir(parents=True, exist_ok=True)
    tmp = make_temp_dir(folder.parent, prefix=f".{folder.name}-")
    try:
        (tmp / MARKER).write_text(f"{MARKER_TEXT} {VERSION}\n", encoding="utf-8")
        try:
            os.rename(tmp, folder)
        except OSError:
            if not _marked(folder):  # else another process made it first
                raise
    finally:
        if tmp.exists():
            (tmp / MARKER).unlink(missing_ok=True)
            tmp.rmdir()
    return True


class FrameCache:
    """Decoded frames of videos on disk in ``root/rnnkit-frames`` (``root``: the folder given,
    default ``cache_dir("frames")``), at most ``max_bytes`` in all.

    ``directory`` is the cache's own folder; None when the cache is off because a folder of that
    name is not a frame cache's (one warning).

    :meth:`read` returns a clip's frames from an entry, decoding and storing the entry on a miss.
    ``writer`` writes an array to an open file (``numpy.lib.format.write_array``); a different one
    lets tests fail writes. ``stats`` counts, in this process, ``hits``, ``decodes`` (entries
    decoded on a miss), ``writes`` and ``refused`` (misses read without the cache).
    """

    def __init__(
        self,
        directory: str | os.PathLike[str] | None = None,
        max_bytes: int = 10 * 2**30,
        *,
        whole_max_frames: int = WHOLE_MAX_FRAMES,
        writer: Writer | None = None,
    ) -> None:
        self.max_bytes = int(max_bytes)
        self.whole_max_frames = int(whole_max_frames)
        self.writer: Writer = writer or _write_npy
        self.started = time.time()  # entries touched since then are this run's: never evicted
        self.stats = {"hits": 0, "decodes": 0, "writes": 0, "refused": 0}
        self._flags = torch.zeros(2, dtype=torch.uint8).share_memory_()
        self._open: OrderedDict[str, np.ndarray] = OrderedDict()
        self._usage: int | None = None  # bytes on disk at the last scan, plus own writes since
        self._since_scan = 0
        self.root = Path(directory).expanduser() if directory is not None else None
        self.directory: Path | None = None
        try:
            self.root = self.root or cache_dir("frames")
            self.directory = self.root / FOLDER
            if not _claim(self.directory):
                self._foreign(self.directory)
                return
            probe = self._tmp_file(self.directory, "0" * 40)
            probe.write_bytes(b"")
            probe.unlink()
        except OSError as error:
            self._write_failed(self.directory or self.root or Path("frames"), error)

    # ---------------------------------------------------------------- state

    @property
    def writable(self) -> bool:
        """False once writing failed (unwritable folder, full disk): misses are not stored."""
        return not self._flags[_WRITE_OFF]

    @property
    def full(self) -> bool:
        """True once the size bound refused an entry: misses are read without the cache."""
        return bool(self._flags[_FULL])

    def __getstate__(self) -> dict[str, Any]:
        state = self.__dict__.copy()
        state["_open"] = OrderedDict()  # memory maps stay in their process
        return state

    def _foreign(self, folder: Path) -> None:
        """The cache is off: ``folder`` exists but is not a frame cache's; nothing in it is
        read, written or deleted."""
        self.directory = None
        self._flags[_WRITE_OFF] = 1
        if _main_rank():
            warn(
                f"{folder}: not a frame cache folder (no {MARKER} file), left untouched; frame "
                "cache off, videos are decoded every epoch (set data.frame_cache to another "
                "folder)"
            )

    def _write_failed(self, where: Path, error: OSError) -> None:
        first = self.writable
        self._flags[_WRITE_OFF] = 1
        if first and _main_rank():
            reason = error.strerror or type(error).__name__
            warn(
                f"{where}: cannot write the frame cache ({reason}); frame cache off, "
                "videos are decoded every epoch (set data.frame_cache=false or another folder)"
            )

    # ---------------------------------------------------------------- keys

    @staticmethod
    def _stamp(path: str) -> tuple[str, int, int] | None:
        absolute = os.path.abspath(path)
        try:
            st = os.stat(absolute)
        except OSError:
            return None
        return absolute, st.st_size, st.st_mtime_ns

    def key(
        self,
        path: str,
        info: VideoInfo,
        size: tuple[int, int] | None,
        frames: str,
        resize: str = "stretch",
    ) -> str | None:
        """The entry name for ``frames`` (``"all"`` or a hash of indices) of ``path`` resized to
        ``size`` as ``resize`` says; None when the file cannot be stat'ed. ``stretch`` keys as
        entries written before ``data.resize`` existed (they stretched), so those stay valid;
        so does a ``crop`` or ``pad`` that is a plain resize (a frame of ``size``'s aspect)."""
        stamp = self._stamp(path)
        if stamp is None:
            return None
        reader = FrameSource(path).reader
        shape = "native" if size is None else f"{size[0]}x{size[1]}"
        if size is not None and fit((info.height, info.width), size, resize).scaled != size:
            shape += f"-{resize}"
        text = f"v{VERSION}|{stamp[0]}|{stamp[1]}|{stamp[2]}|{info.num_frames}|{reader}|{shape}"
        return hashlib.sha1(f"{text}|{frames}".encode()).hexdigest()

    def _file(self, key: str) -> Path:
        assert self.directory is not None
        return self.directory / f"{key}.npy"

    @staticmethod
    def _tmp_file(folder: Path, key: str) -> Path:
        """A writer's temporary file for entry ``key`` (a name :data:`TMP_NAME` matches)."""
        return folder / f"{TMP_PREFIX}{key}-{os.getpid()}-{uuid.uuid4().hex[:8]}.npy"

    # ---------------------------------------------------------------- reading

    def _load(self, key: str, rows: int) -> np.ndarray | None:
        array = self._open.get(key)
        if array is not None:
            self._open.move_to_end(key)
            return array
        file = self._file(key)
        try:
            array = np.load(file, mmap_mode="r", allow_pickle=False)
        except (OSError, ValueError):
            return None
        if array.dtype != np.uint8 or array.ndim != 4 or array.shape[:2] != (rows, 3):
            return None  # not an entry this version writes: a miss, rewritten on store
        with contextlib.suppress(OSError):  # recently used (mtime: atime is often not updated)
            os.utime(file)
        self._open[key] = array
        if len(self._open) > OPEN_ENTRIES:
            self._open.popitem(last=False)
        return array

    def read(
        self,
        path: str,
        info: VideoInfo,
        indices: Sequence[int],
        size: tuple[int, int] | None,
        decode: Decode,
        *,
        fixed: bool = False,
        resize: str = "stretch",
    ) -> torch.Tensor | None:
        """Frames ``indices`` of ``path`` as ``(T, 3, H, W)`` uint8, like ``decode(indices)``.

        ``fixed`` says the clip is the same every epoch (its frames alone are cached); else the
        video's whole frame range is. ``resize`` is how ``decode`` fits frames to ``size``
        (entries of one mode are never read for another). ``decode(frame_indices)`` decodes on a miss. None: not
        cached (the caller decodes as without a cache).
        """
        wanted = [int(i) for i in indices]
        if fixed:
            frames = sorted(set(wanted))
            label = hashlib.sha1(",".join(map(str, frames)).encode()).hexdigest()
        else:
            if info.num_frames > self.whole_max_frames or max(wanted, default=0) >= info.num_frames:
                self.stats["refused"] += 1
                return None
            frames, label = list(range(info.num_frames)), "all"
        key = self.key(path, info, size, label, resize)
        if key is None or self.directory is None:
            return None
        array = self._load(key, len(frames))
        if array is None:
            if not self.writable or not self._make_room(len(frames), size, info):
                self.stats["refused"] += 1
                return None
            array = decode(frames).numpy()
            self.stats["decodes"] += 1
            self._store(key, array)
        else:
            self.stats["hits"] += 1
        rows = wanted
        if fixed:
            position = {index: row for row, index in enumerate(frames)}
            rows = [position[i] for i in wanted]
        return torch.from_numpy(np.ascontiguousarray(array[rows]))

    def holds_whole(
        self,
        path: str,
        info: VideoInfo,
        size: tuple[int, int] | None,
        resize: str = "stretch",
    ) -> bool | None:
        """Whether the entry of ``path``'s whole frame range is on disk (a random clip of it is
        read without decoding); None when the video would not be cached whole (too long, or
        the cache is off)."""
        if self.directory is None or info.num_frames > self.whole_max_frames:
            return None
        key = self.key(path, info, size, "all", resize)
        return None if key is None else self._file(key).is_file()

    # ---------------------------------------------------------------- writing

    def _store(self, key: str, array: np.ndarray) -> None:
        if not self.writable:
            return
        final = self._file(key)
        tmp = self._tmp_file(final.parent, key)
        try:
            with open(tmp, "wb") as handle:
                self.writer(handle, np.ascontiguousarray(array))
            os.replace(tmp, final)
        except OSError as error:
            tmp.unlink(missing_ok=True)
            self._write_failed(final.parent, error)
            return
        nbytes = final.stat().st_size if final.exists() else array.nbytes
        self.stats["writes"] += 1
        self._usage = (self._usage or 0) + nbytes
        self._since_scan += nbytes

    def _scan(self) -> list[tuple[float, int, Path]]:
        """(mtime, bytes, file) of every entry; removes crashed writers' temporary files. Only
        the cache's own names count, and only while its folder carries the marker."""
        entries: list[tuple[float, int, Path]] = []
        self._since_scan = 0
        if self.directory is None or not _marked(self.directory):
            return entries
        now = time.time()
        try:
            with os.scandir(self.directory) as it:
                for item in it:
                    entry, tmp = ENTRY_NAME.fullmatch(item.name), TMP_NAME.fullmatch(item.name)
                    if not (entry or tmp) or not item.is_file(follow_symlinks=False):
                        continue
                    try:
                        st = item.stat(follow_symlinks=False)
                    except OSError:
                        continue
                    if entry:
                        entries.append((st.st_mtime, st.st_size, Path(item.path)))
                    elif now - st.st_mtime > STALE_TMP_SECONDS:
                        Path(item.path).unlink(missing_ok=True)
        except OSError:
            pass
        return entries

    def usage(self) -> int:
        """Bytes the cache's entries take on disk now."""
        return sum(size for _, size, _ in self._scan())

    def _make_room(self, rows: int, size: tuple[int, int] | None, info: VideoInfo) -> bool:
        """Whether an entry of ``rows`` frames fits the bound, evicting least recently used
        entries of earlier runs if needed; refuses (one warning) when it does not."""
        if self.full:
            return False
        height, width = size or (info.height, info.width)
        need = rows * 3 * height * width + 128
        stale = self._since_scan > self.max_bytes // 8  # other processes write too
        if self._usage is not None and not stale and self._usage + need <= self.max_bytes:
            return True
        entries = self._scan()
        total = sum(s for _, s, _ in entries)
        if total + need > self.max_bytes:
            for mtime, nbytes, file in sorted(entries, key=lambda e: e[0]):
                if total + need <= self.max_bytes or mtime >= self.started - 1.0:
                    break
                file.unlink(missing_ok=True)
                total -= nbytes
        self._usage = total
        if total + need <= self.max_bytes:
            return True
        first = not self.full
        self._flags[_FULL] = 1
        if first and _main_rank():
            warn(
                f"{self.directory}: frame cache full ({self.max_bytes / 2**30:.3g} GB); videos "
                "not in it are decoded every epoch (raise data.frame_cache_gb)"
            )
        return False
