"""Deep decode checks: decode every frame of a video file (or open every image of a frame
folder) and say where decoding fails, for files that probe fine but are corrupt part-way.

Each kind of source decodes itself whole (:meth:`FrameSource.decode`); this module checks one
source or many (in threads, with progress: :mod:`rnnvision_kit.progress`)."""

from __future__ import annotations

import os
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor, as_completed

from rnnvision_kit.data.decoded import DecodeResult
from rnnvision_kit.data.frames import FrameSource
from rnnvision_kit.data.video import VideoInfo
from rnnvision_kit.errors import DataError
from rnnvision_kit.progress import Progress

__all__ = ["DecodeResult", "decode_file", "decode_files", "default_workers"]


def decode_file(
    path: str | os.PathLike[str], info: VideoInfo | None = None, *, fps: float = 25.0
) -> DecodeResult:
    """Decode every frame of the video ``path`` with PyAV (a frame folder: open every image) and
    record how many decoded against the probe's count (``info``, probed when None), how long it
    took, and where and why decoding fails. A file that decodes fewer frames than probed counts
    as failing where it stops. ``fps`` is a frame folder's frame rate. Never raises
    ``DataError``: a probe failure is a result with no frames."""
    source = FrameSource(path)
    if info is None:
        try:
            info = source.probe(fps)
        except DataError as error:
            text = str(error).removeprefix(f"{source.path}: ")
            return DecodeResult(source.path, 0, 0, 0.0, reason=text)
    return source.decode(info)


def default_workers(workers: int | None = None) -> int:
    """``workers`` if given (at least 1), else ``min(8, cpu_count)``: files decoded at a time."""
    return max(1, workers or min(8, os.cpu_count() or 1))


def decode_files(
    paths: Sequence[str | os.PathLike[str]],
    infos: Sequence[VideoInfo | None] | None = None,
    *,
    workers: int | None = None,
    fps: float = 25.0,
    progress: bool | None = None,
) -> list[DecodeResult]:
    """:func:`decode_file` for every path (``infos``: their probes, where known), ``workers``
    files at a time (threads: PyAV decodes without the GIL; default ``min(8, cpu_count)``), with
    progress on stderr (``progress=None``: a bar on a terminal, else a line every 30 s; True: a
    bar; False: none). Results are in the order of ``paths``."""
    items = [str(p) for p in paths]
    known = list(infos) if infos is not None else [None] * len(items)
    if len(known) != len(items):
        raise ValueError(f"{len(items)} paths but {len(known)} infos")
    workers = default_workers(workers)
    results: list[DecodeResult | None] = [None] * len(items)
    bar = Progress(len(items), "decoding", "file", show=progress)
    try:
        if workers == 1 or len(items) < 2:
            for k, (path, info) in enumerate(zip(items, known, strict=True)):
                results[k] = decode_file(path, info, fps=fps)
                bar.update(1)
        else:
            with ThreadPoolExecutor(max_workers=workers) as pool:
                futures = {
                    pool.submit(decode_file, path, info, fps=fps): k
                    for k, (path, info) in enumerate(zip(items, known, strict=True))
                }
                for future in as_completed(futures):
                    results[futures[future]] = future.result()
                    bar.update(1)
    finally:
        bar.close()
    return [r for r in results if r is not None]
