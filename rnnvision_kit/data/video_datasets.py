"""Video data sets: folder / UCF101 / frame-folder listings, a clip data set and a data scan."""

from __future__ import annotations

import os
import time
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import NamedTuple

import torch
from torch.utils.data import Dataset, get_worker_info

from rnnvision_kit.data.augment import ClipAugment
from rnnvision_kit.data.decoded import DecodeResult
from rnnvision_kit.data.deepcheck import decode_files, default_workers
from rnnvision_kit.data.framecache import FrameCache
from rnnvision_kit.data.frames import (
    FRAME_SUFFIXES,
    FrameSource,
    probe_frame_folder,
    probe_sources,
    read_frame_folder,
)
from rnnvision_kit.data.geometry import check_resize
from rnnvision_kit.data.readable import reason_kind, skipped_note
from rnnvision_kit.data.samplers import (
    SHORT_POLICIES,
    apply_short_policy,
    clip_generator,
    random_clip_indices,
    segment_clip_indices,
    segment_indices,
    uniform_clip_indices,
)
from rnnvision_kit.data.video import ProbeCache, VideoInfo, stat_data_file
from rnnvision_kit.errors import ConfigError, DataError, UnreadableItem, warn

# FRAME_SUFFIXES, probe_frame_folder and read_frame_folder live in rnnvision_kit.data.frames
# (with FrameSource, which reads files and frame folders alike); their names stay importable here.
__all__ = [
    "FRAME_SUFFIXES",
    "MODES",
    "NOT_VIDEO_SUFFIXES",
    "ScanReport",
    "VideoClipDataset",
    "VideoSample",
    "list_framefolder",
    "list_ucf101",
    "list_videofolder",
    "probe_frame_folder",
    "read_frame_folder",
    "scan_videos",
]

MODES = ("random", "uniform", "segment")
# Files beside videos that are not videos (images, text, arrays): counted, never probed.
NOT_VIDEO_SUFFIXES: frozenset[str] = frozenset(
    FRAME_SUFFIXES
    + (".bmp", ".webp", ".tif", ".tiff", ".heic", ".svg")
    + (".txt", ".md", ".rst", ".json", ".jsonl", ".csv", ".tsv", ".yaml", ".yml", ".xml")
    + (".html", ".pdf", ".srt", ".vtt", ".ass", ".ssa", ".nfo", ".log")
    + (".npy", ".npz", ".pkl", ".pt", ".py", ".sh", ".zip", ".tar", ".gz")
)
Skipped = list[tuple[str, str]]  # (path, reason) of files a listing did not take


class VideoSample(NamedTuple):
    """One labelled video: a file path (or a frame folder) and a class index."""

    path: str
    label: int


def _require_dir(root: str | os.PathLike[str]) -> Path:
    path = Path(root)
    if not path.exists():
        raise DataError(f"{path}: data folder does not exist")
    if not path.is_dir():
        raise DataError(f"{path}: not a folder")
    return path


def _class_dirs(root: Path) -> list[Path]:
    try:
        dirs = sorted(p for p in root.iterdir() if p.is_dir() and not p.name.startswith("."))
    except PermissionError:
        raise DataError(f"{root}: folder is not readable (permission denied)") from None
    if not dirs:
        raise DataError(f"{root}: no class folders (expected {root}/<class>/<video>)")
    return dirs


def _entries(folder: Path) -> list[os.DirEntry[str]] | None:
    """Sorted entries of ``folder``, or None (with a warning) if it cannot be read."""
    try:
        with os.scandir(folder) as it:
            return sorted(it, key=lambda e: e.name)
    except OSError as error:
        reason = error.strerror or type(error).__name__
        warn(f"{folder}: unreadable folder skipped ({reason})")
        return None


def _is_dir(entry: os.DirEntry[str]) -> bool:
    try:
        return entry.is_dir()
    except OSError:  # a symlink loop: a file entry, which stat_data_file names
        return False


def _not_taken(path: str, skipped: Skipped | None, why: str) -> None:
    if skipped is None:
        warn(f"skipping {path}: {why}")
    else:
        skipped.append((path, why))


def _stat_problem(path: str) -> str | None:
    """Why ``path`` is not a regular file (a dangling link, a FIFO...), or None."""
    try:
        stat_data_file(path)
    except DataError as error:
        return _problem(error, path)
    return None


def _videos_under(
    folder: Path, label: int, samples: list[VideoSample], skipped: Skipped | None, seen: set[str]
) -> None:
    """Every regular, non-hidden file under ``folder`` (sub-folders too) as a ``label`` sample,
    but known non-video suffixes and what is not a regular file, which go to ``skipped``."""
    for entry in _entries(folder) or []:
        if entry.name.startswith("."):
            continue
        if _is_dir(entry):
            real = os.path.realpath(entry.path)
            if real not in seen:  # a link back up the tree is read once
                seen.add(real)
                _videos_under(Path(entry.path), label, samples, skipped, seen)
            continue
        suffix = os.path.splitext(entry.name)[1].lower()
        why = f"not a video file (a {suffix} file)" if suffix in NOT_VIDEO_SUFFIXES else None
        why = why or _stat_problem(entry.path)
        if why is None:
            samples.append(VideoSample(entry.path, label))
        else:
            _not_taken(entry.path, skipped, why)


def list_videofolder(
    root: str | os.PathLike[str], *, skipped: Skipped | None = None
) -> tuple[list[VideoSample], list[str]]:
    """List ``root/<class>/<video>`` files (class folders sorted by name give the labels).

    Every regular, non-hidden file in a class folder or its sub-folders is taken, whatever its
    suffix: the probe decides what is a video. Files with a known non-video suffix (images,
    text) and entries that are not regular files (dangling links, symlink loops, FIFOs) are not
    opened: they go to ``skipped`` as ``(path, reason)`` (each is warned about when it is None).
    Unreadable class folders are skipped with a warning.
    """
    base = _require_dir(root)
    classes = _class_dirs(base)
    samples: list[VideoSample] = []
    not_taken: Skipped = []
    for label, folder in enumerate(classes):
        _videos_under(folder, label, samples, not_taken, {os.path.realpath(folder)})
    if not samples:
        detail = f" ({skipped_note(not_taken)})" if not_taken else ""
        raise DataError(f"{base}: no video files in its class folders{detail}")
    for path, why in not_taken:
        _not_taken(path, skipped, why)
    return samples, [c.name for c in classes]


def _read_lines(path: Path) -> list[tuple[int, list[str]]]:
    with open(path, encoding="utf-8", errors="replace") as handle:
        rows = [(n, line.split()) for n, line in enumerate(handle, 1)]
    return [(n, parts) for n, parts in rows if parts]


def list_ucf101(
    root: str | os.PathLike[str], fold: int = 1, split: str = "train"
) -> tuple[list[VideoSample], list[str]]:
    """List a UCF101/HMDB51-style split: ``classInd.txt``, ``trainlist0N.txt``, ``testlist0N.txt``.

    Split files are looked for in ``root`` and ``root/ucfTrainTestlist``; videos at
    ``root/<relpath>`` or ``root/videos/<relpath>``. Listed videos that do not exist are kept
    (the data set skips them with a warning) unless none exists.
    """
    if split not in ("train", "test"):
        raise DataError(f"{root}: unknown split {split!r} (expected 'train' or 'test')")
    base = _require_dir(root)
    where = [base, base / "ucfTrainTestlist"]
    split_dir = next((d for d in where if (d / "classInd.txt").is_file()), None)
    if split_dir is None:
        raise DataError(
            f"{base}: classInd.txt not found in {where[0]} or {where[1]} (expected classInd.txt, "
            f"trainlist0{fold}.txt and testlist0{fold}.txt there)"
        )
    class_file = split_dir / "classInd.txt"
    classes: dict[int, str] = {}
    for lineno, parts in _read_lines(class_file):
        if len(parts) != 2 or not parts[0].isdigit():
            raise DataError(f"{class_file}:{lineno}: expected '<index> <ClassName>'")
        classes[int(parts[0])] = parts[1]
    if sorted(classes) != list(range(1, len(classes) + 1)):
        raise DataError(f"{class_file}: class indices must run 1..N without gaps")
    class_names = [classes[i] for i in range(1, len(classes) + 1)]
    by_name = {name.lower(): i for i, name in enumerate(class_names)}
    list_file = split_dir / f"{split}list{fold:02d}.txt"
    if not list_file.is_file():
        raise DataError(f"{list_file}: split file not found (fold {fold}, split {split!r})")
    samples: list[VideoSample] = []
    for lineno, parts in _read_lines(list_file):
        rel = parts[0].replace("\\", "/")
        if len(parts) >= 2 and parts[1].isdigit():
            label = int(parts[1]) - 1
        else:
            label = by_name.get(rel.split("/")[0].lower(), -1)
        if not 0 <= label < len(class_names):
            raise DataError(f"{list_file}:{lineno}: unknown class for {rel!r}")
        candidates = (base / rel, base / "videos" / rel)
        path = next((c for c in candidates if c.is_file()), candidates[0])
        samples.append(VideoSample(str(path), label))
    if not samples:
        raise DataError(f"{list_file}: no videos listed")
    if not any(Path(s.path).is_file() for s in samples):
        first = samples[0].path
        raise DataError(
            f"{base}: none of the {len(samples)} videos in {list_file.name} exist "
            f"(expected e.g. {first} or under {base / 'videos'})"
        )
    return samples, class_names


def list_framefolder(
    root: str | os.PathLike[str], *, skipped: Skipped | None = None
) -> tuple[list[VideoSample], list[str]]:
    """List ``root/<class>/<video>/`` folders holding a video's frames as JPEG/PNG images.

    Other non-hidden entries of a class folder go to ``skipped`` as ``(path, reason)`` (each is
    warned about when it is None)."""
    base = _require_dir(root)
    classes = _class_dirs(base)
    samples: list[VideoSample] = []
    for label, folder in enumerate(classes):
        for entry in _entries(folder) or []:
            if entry.name.startswith("."):
                continue
            if _is_dir(entry):
                samples.append(VideoSample(entry.path, label))
            else:
                why = _stat_problem(entry.path) or "not a frame folder (a file)"
                _not_taken(entry.path, skipped, why)
    if not samples:
        raise DataError(f"{base}: no video frame folders (expected {base}/<class>/<video>/*.jpg)")
    return samples, [c.name for c in classes]


def _problem(error: DataError, path: str) -> str:
    """The error message without its leading ``"<path>: "``."""
    text = str(error)
    prefix = f"{path}: "
    return text[len(prefix) :] if text.startswith(prefix) else text


class VideoClipDataset(Dataset):
    """Clips of labelled videos, as float32 in [0, 1].

    ``mode="random"``: one random clip ``(T, 3, H, W)`` (training); ``"uniform"``: ``num_clips``
    evenly spaced clips ``(N, T, 3, H, W)`` (testing); ``"segment"``: TSN sampling, one frame from
    each of ``num_frames`` segments. ``seed=None`` turns randomness off (centre clip, segment
    centres; with ``num_clips > 1``, ``num_clips`` TSN clips ``(N, T, 3, H, W)`` at evenly
    spaced offsets within the segments).
    All files are probed at construction; unreadable ones are dropped with one warning each and
    listed in ``self.skipped`` as ``(path, reason)``. A read that fails later (mid-file
    corruption) raises :class:`~rnnvision_kit.errors.UnreadableItem` under ``on_error="skip"``
    (the runner leaves the clip out of evaluation, reads another in training, and counts the file
    once; :class:`~rnnvision_kit.data.SkipUnreadable` does that for a plain DataLoader) and the
    underlying :class:`DataError` under ``"raise"``. Random choices depend only on
    ``(seed, index, epoch)`` so results do not depend on the number of workers. ``return_index``
    makes items ``(clip, label, index)``, so predictions can be traced back to files. ``threads=None``
    decodes with threads in the main process only, not inside DataLoader workers.
    ``resize`` is how frames that are not ``size``'s shape get there: ``stretch``, ``crop``
    (short side, centre crop) or ``pad`` (:mod:`rnnvision_kit.data.geometry`).
    ``frame_cache`` reads decoded frames from a :class:`FrameCache` after their first decode;
    ``augment`` transforms each clip with one draw seeded by ``(seed, epoch, index, 1)`` (only
    when ``seed`` is set: data sets without randomness are not augmented).
    """

    def __init__(
        self,
        samples: Sequence[tuple[str, int]],
        *,
        num_frames: int,
        stride: int = 1,
        mode: str = "random",
        num_clips: int = 1,
        size: tuple[int, int] | None = None,
        resize: str = "stretch",
        short_policy: str = "loop",
        seed: int | None = 0,
        probe_cache: ProbeCache | None = None,
        on_error: str = "skip",
        frame_folder_fps: float = 25.0,
        class_names: Sequence[str] | None = None,
        threads: bool | None = None,
        return_index: bool = False,
        frame_cache: FrameCache | None = None,
        augment: ClipAugment | None = None,
    ) -> None:
        if mode not in MODES:
            raise ConfigError(f"unknown clip mode {mode!r} (expected one of {', '.join(MODES)})")
        if short_policy not in SHORT_POLICIES:
            raise ConfigError(f"unknown short_policy {short_policy!r} (expected 'loop' or 'pad')")
        if on_error not in ("skip", "raise"):
            raise ConfigError(f"unknown on_error {on_error!r} (expected 'skip' or 'raise')")
        for key, value in (
            ("num_frames", num_frames),
            ("stride", stride),
            ("num_clips", num_clips),
        ):
            if int(value) < 1:
                raise ConfigError(f"{key} must be >= 1, got {value}")
        self.num_frames, self.stride, self.mode = int(num_frames), int(stride), mode
        # several clips per video: uniform test clips, or TSN test clips (segment, no seed)
        several = mode == "uniform" or (mode == "segment" and seed is None)
        self.num_clips = int(num_clips) if several else 1
        self.size: tuple[int, int] | None = None if size is None else (size[0], size[1])
        self.resize = check_resize(resize)
        self.short_policy, self.seed, self.on_error = short_policy, seed, on_error
        self.class_names = list(class_names) if class_names is not None else None
        self.threads = threads
        self.return_index = return_index
        self.frame_cache = frame_cache
        self.augment = augment if augment is not None and augment.active else None
        self.skipped: list[tuple[str, str]] = []
        # Shared memory so that set_epoch reaches persistent DataLoader workers too.
        self._epoch = torch.zeros(1, dtype=torch.int64).share_memory_()

        cache = probe_cache if probe_cache is not None else ProbeCache()
        items = [(str(p), int(label)) for p, label in samples]
        probed = probe_sources([p for p, _ in items], cache, frame_folder_fps)
        self.samples: list[VideoSample] = []
        self.infos: list[VideoInfo] = []
        for (path, label), result in zip(items, probed, strict=True):
            if isinstance(result, DataError):
                if on_error == "raise":
                    raise result
                self._skip(path, _problem(result, path))
                continue
            self.samples.append(VideoSample(path, label))
            self.infos.append(result)

    def _skip(self, path: str, reason: str) -> None:
        self.skipped.append((path, reason))
        warn(f"skipping video {path}: {reason}")

    def __len__(self) -> int:
        return len(self.samples)

    @property
    def epoch(self) -> int:
        return int(self._epoch.item())

    def set_epoch(self, epoch: int) -> None:
        """Change the random choices for a new epoch (reaches DataLoader workers)."""
        self._epoch.fill_(int(epoch))

    def _rng(self, index: int) -> torch.Generator | None:
        if self.seed is None:
            return None
        return clip_generator(self.seed, self.epoch, index)

    def clip_indices(self, index: int) -> list[int]:
        """The frame indices (after the short-video policy) that ``__getitem__(index)`` reads."""
        info, rng = self.infos[index], self._rng(index)
        n = info.num_frames
        if self.mode == "segment":
            if rng is None and self.num_clips > 1:
                clips = segment_clip_indices(n, self.num_frames, self.num_clips)
                return [i for clip in clips for i in clip]
            return segment_indices(n, self.num_frames, rng)
        if self.mode == "uniform":
            clips = uniform_clip_indices(n, self.num_frames, self.stride, self.num_clips)
            indices = [i for clip in clips for i in clip]
        elif rng is None:
            indices = uniform_clip_indices(n, self.num_frames, self.stride, 1)[0]
        else:
            indices = random_clip_indices(n, self.num_frames, self.stride, rng)
        return apply_short_policy(indices, n, self.short_policy)

    def _decode(self, index: int, indices: Sequence[int]) -> torch.Tensor:
        """Frames ``indices`` of video ``index`` decoded from its file, ``(T, 3, H, W)`` uint8."""
        source, info = FrameSource(self.samples[index].path), self.infos[index]
        threads = self.threads
        if threads is None:  # DataLoader workers already run in parallel: no nested threads
            threads = get_worker_info() is None
        return source.read(indices, info, size=self.size, resize=self.resize, threads=threads)

    def _load(self, index: int) -> torch.Tensor:
        indices = self.clip_indices(index)
        frames = None
        if self.frame_cache is not None:
            fixed = self.seed is None or self.mode == "uniform"  # the same clip every epoch
            frames = self.frame_cache.read(
                self.samples[index].path,
                self.infos[index],
                indices,
                self.size,
                lambda wanted: self._decode(index, wanted),
                fixed=fixed,
                resize=self.resize,
            )
        if frames is None:
            frames = self._decode(index, indices)
        clip = frames.to(torch.float32).div_(255.0)
        if self.augment is not None and self.seed is not None:
            clip = self.augment(clip, clip_generator(self.seed, self.epoch, index, 1))[0]
        if self.mode == "uniform" or self.num_clips > 1:
            clip = clip.reshape(self.num_clips, self.num_frames, *clip.shape[1:])
        return clip

    def __getitem__(self, index: int) -> tuple[torch.Tensor, int] | tuple[torch.Tensor, int, int]:
        count = len(self.samples)
        if not -count <= index < count:
            raise IndexError(f"index {index} out of range for {count} samples")
        index %= count
        try:
            clip, label = self._load(index), self.samples[index].label
        except DataError as error:
            if self.on_error == "raise":
                raise
            path = self.samples[index].path
            raise UnreadableItem(path, _problem(error, path)) from None
        return (clip, label, index) if self.return_index else (clip, label)


@dataclass
class ScanReport:
    """Result of :func:`scan_videos` (what a video task's ``check_data`` builds its table from):
    problems per file and video counts per class; ``decode_rate`` and ``decode_note()``
    summarise a deep scan."""

    num_files: int  # files listed
    num_ok: int  # files readable
    clip_span: int | None  # frames a clip needs (None: not checked)
    problems: list[tuple[str, str]] = field(default_factory=list)  # (path, reason) unreadable
    short: list[tuple[str, str]] = field(default_factory=list)  # (path, reason) shorter than a clip
    class_counts: dict[str, int] = field(default_factory=dict)  # class -> readable videos, 0s too
    frames: dict[str, int] = field(default_factory=dict)  # readable path -> frame count
    # deep scans only: files that probe fine but fail to decode part-way, (path, where and why)
    corrupt: list[tuple[str, str]] = field(default_factory=list)
    decoded: list[DecodeResult] = field(default_factory=list)  # deep: one per probed file
    decode_wall: float = 0.0  # deep: seconds the whole decode pass took (all workers)
    workers: int = 0  # deep: files decoded at a time

    HEADER = ("kind", "name", "detail")

    @property
    def ok(self) -> bool:
        """True when every file is readable (short videos are allowed: the read policy pads)."""
        return not self.problems and not self.corrupt

    @property
    def deep(self) -> bool:
        """True when every probed file was also decoded whole (``scan_videos(deep=True)``)."""
        return self.workers > 0

    @property
    def decoded_frames(self) -> int:
        """Frames decoded in the deep pass."""
        return sum(r.frames for r in self.decoded)

    @property
    def decode_rate(self) -> float:
        """Whole-file decode rate of the deep pass: frames per second of wall time."""
        return self.decoded_frames / self.decode_wall if self.decode_wall > 0 else 0.0

    def problem_counts(self) -> dict[str, int]:
        """How many files have each kind of problem (the text before any parenthesis)."""
        kinds = Counter(reason_kind(p) for _, p in self.problems)
        if self.corrupt:
            kinds["mid-file corruption"] = len(self.corrupt)
        if self.short:
            kinds["shorter than clip span"] = len(self.short)
        return dict(kinds)

    def decode_note(self) -> str | None:
        """One line on the deep pass: frames, files, seconds, rate (None without ``deep``)."""
        if not self.deep:
            return None
        busy = sum(r.seconds for r in self.decoded)
        per_file = self.decoded_frames / busy if busy > 0 else 0.0
        return (
            f"decoded {self.decoded_frames} frames of {len(self.decoded)} files in "
            f"{self.decode_wall:.2f} s: {self.decode_rate:.0f} frames/s "
            f"({self.workers} worker(s), {per_file:.0f} frames/s each)"
        )

    def rows(self) -> list[tuple[str, str, str]]:
        """Table rows ``(kind, name, detail)``: classes, problems, mid-file corruption, short
        videos, then totals."""
        rows = [("class", name, f"{n} videos") for name, n in self.class_counts.items()]
        rows += [("problem", path, problem) for path, problem in self.problems]
        rows += [("corrupt", path, detail) for path, detail in self.corrupt]
        rows += [("short", path, detail) for path, detail in self.short]
        rows.append(("total", "readable", f"{self.num_ok}/{self.num_files}"))
        return rows


def scan_videos(
    samples: Sequence[tuple[str, int]],
    *,
    clip_span: int | None = None,
    class_names: Sequence[str] | None = None,
    probe_cache: ProbeCache | None = None,
    frame_folder_fps: float = 25.0,
    deep: bool = False,
    workers: int | None = None,
) -> ScanReport:
    """Probe every sample once and report unreadable files, missing video streams, zero-frame
    files, videos shorter than ``clip_span`` and readable videos per class.

    ``deep=True`` also decodes every frame of every file that probes fine (``workers`` files at
    a time, a progress bar on a terminal): those that fail part-way, or decode fewer frames than
    probed, go to ``corrupt`` with where they fail and are not counted readable; ``decoded``
    holds every file's :class:`DecodeResult` and ``decode_rate`` the whole-pass frame rate."""
    cache = probe_cache if probe_cache is not None else ProbeCache()
    items = [(str(p), int(label)) for p, label in samples]
    report = ScanReport(num_files=len(items), num_ok=0, clip_span=clip_span)
    counts: Counter[int] = Counter()
    probed = probe_sources([p for p, _ in items], cache, frame_folder_fps)
    failed: dict[str, str] = {}
    if deep:
        failed = _deep_pass(report, items, probed, workers, frame_folder_fps)
    for (path, label), info in zip(items, probed, strict=True):
        if isinstance(info, DataError):
            report.problems.append((path, _problem(info, path)))
            continue
        if path in failed:
            report.corrupt.append((path, failed[path]))
            continue
        report.num_ok += 1
        report.frames[path] = info.num_frames
        counts[label] += 1
        if clip_span is not None and info.num_frames < clip_span:
            detail = f"{info.num_frames} frames < clip span {clip_span}"
            report.short.append((path, detail))
    labels = sorted({label for _, label in items})
    names = list(class_names) if class_names is not None else None
    for label in range(len(names)) if names is not None else labels:
        name = names[label] if names is not None and 0 <= label < len(names) else str(label)
        report.class_counts[name] = counts[label]
    return report


def _deep_pass(
    report: ScanReport,
    items: Sequence[tuple[str, int]],
    probed: Sequence[VideoInfo | DataError],
    workers: int | None,
    fps: float,
) -> dict[str, str]:
    """Decode every probed file whole into ``report``; the problem of each one that fails."""
    readable = [(p, i) for (p, _), i in zip(items, probed, strict=True) if isinstance(i, VideoInfo)]
    unique = list(dict(readable).items())  # a file listed twice is decoded once
    report.workers = default_workers(workers)
    start = time.perf_counter()
    report.decoded = decode_files(
        [p for p, _ in unique], [i for _, i in unique], workers=report.workers, fps=fps
    )
    report.decode_wall = time.perf_counter() - start
    return {r.path: r.problem() or "" for r in report.decoded if not r.ok}
