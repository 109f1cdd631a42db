"""Data layer (public API): video I/O on PyAV, clip samplers, video folder data sets, the cache,
the decoded-frame cache, clip augmentation, deep decode checks, and what a video source is made
of: the video-source contract (``VideoDataset``, ``ListSamples``, ``check_video_source``), the
``Listing`` a source lists, the clip-bundle builder (``build_clip_bundle``) and the ``data.*``
settings video sources read (``VideoDataConfig``).

Plugins import from this package, not from its modules. Each name is imported on first use
(PEP 562), so that ``from rnnvision_kit.data import VideoDataConfig`` in a task's ``config.py``
imports no torch; the data sets, video I/O and caches import torch and PyAV when first used.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from rnnvision_kit.lazyexports import lazy_exports

# module of this package -> the public names it defines (the type checker reads the imports
# under TYPE_CHECKING below; tests/test_video_source_contract.py keeps the three lists equal)
_MODULES: dict[str, tuple[str, ...]] = {
    "augment": ("ClipAugment",),
    "bundle": ("build_clip_bundle",),
    "cache": ("cache_dir", "every_notice", "generate_once", "notice_once"),
    "contract": (
        "ListSamples",
        "VideoDataset",
        "check_video_source",
        "listing_of",
        "video_dataset_problems",
    ),
    "decoded": ("DecodeResult", "decode_problem"),
    "deepcheck": ("decode_file", "decode_files"),
    "framecache": ("WHOLE_MAX_FRAMES", "FrameCache"),
    "frames": ("FRAME_SUFFIXES", "FrameSource", "probe_frame_folder", "read_frame_folder"),
    "listing": ("Listing",),
    "livestream": ("Frame", "FrameStream", "as_trained", "open_frames"),
    "readable": (
        "Failure",
        "ReadableBatch",
        "SkipUnreadable",
        "collate_readable",
        "count_note",
        "count_reasons",
        "reason_kind",
        "skipped_note",
    ),
    "samplers": (
        "SHORT_POLICIES",
        "apply_short_policy",
        "clip_generator",
        "clip_span",
        "random_clip_indices",
        "segment_clip_indices",
        "segment_indices",
        "uniform_clip_indices",
    ),
    "settings": ("CLIP_SETTINGS", "VideoDataConfig", "frame_cache_problem"),
    "statistics": ("channel_statistics",),
    "video": (
        "VIDEO_SUFFIXES",
        "ProbeCache",
        "VideoInfo",
        "VideoWriter",
        "open_media",
        "open_video_file",
        "probe_video",
        "read_clip",
        "read_frames",
        "stat_data_file",
        "write_video",
    ),
    "video_datasets": (
        "NOT_VIDEO_SUFFIXES",
        "ScanReport",
        "VideoClipDataset",
        "VideoSample",
        "list_framefolder",
        "list_ucf101",
        "list_videofolder",
        "scan_videos",
    ),
}
_HOME = {name: module for module, names in _MODULES.items() for name in names}


__getattr__, __dir__ = lazy_exports(
    globals(), {name: f"{__name__}.{module}" for name, module in _HOME.items()}
)


if TYPE_CHECKING:
    from rnnvision_kit.data.augment import ClipAugment
    from rnnvision_kit.data.bundle import build_clip_bundle
    from rnnvision_kit.data.cache import cache_dir, every_notice, generate_once, notice_once
    from rnnvision_kit.data.contract import (
        ListSamples,
        VideoDataset,
        check_video_source,
        listing_of,
        video_dataset_problems,
    )
    from rnnvision_kit.data.decoded import DecodeResult, decode_problem
    from rnnvision_kit.data.deepcheck import decode_file, decode_files
    from rnnvision_kit.data.framecache import WHOLE_MAX_FRAMES, FrameCache
    from rnnvision_kit.data.frames import (
        FRAME_SUFFIXES,
        FrameSource,
        probe_frame_folder,
        read_frame_folder,
    )
    from rnnvision_kit.data.listing import Listing
    from rnnvision_kit.data.livestream import Frame, FrameStream, as_trained, open_frames
    from rnnvision_kit.data.readable import (
        Failure,
        ReadableBatch,
        SkipUnreadable,
        collate_readable,
        count_note,
        count_reasons,
        reason_kind,
        skipped_note,
    )
    from rnnvision_kit.data.samplers import (
        SHORT_POLICIES,
        apply_short_policy,
        clip_generator,
        clip_span,
        random_clip_indices,
        segment_clip_indices,
        segment_indices,
        uniform_clip_indices,
    )
    from rnnvision_kit.data.settings import CLIP_SETTINGS, VideoDataConfig, frame_cache_problem
    from rnnvision_kit.data.statistics import channel_statistics
    from rnnvision_kit.data.video import (
        VIDEO_SUFFIXES,
        ProbeCache,
        VideoInfo,
        VideoWriter,
        open_media,
        open_video_file,
        probe_video,
        read_clip,
        read_frames,
        stat_data_file,
        write_video,
    )
    from rnnvision_kit.data.video_datasets import (
        NOT_VIDEO_SUFFIXES,
        ScanReport,
        VideoClipDataset,
        VideoSample,
        list_framefolder,
        list_ucf101,
        list_videofolder,
        scan_videos,
    )

__all__ = [
    "apply_short_policy",
    "as_trained",
    "build_clip_bundle",
    "cache_dir",
    "channel_statistics",
    "check_video_source",
    "clip_generator",
    "CLIP_SETTINGS",
    "clip_span",
    "ClipAugment",
    "collate_readable",
    "count_note",
    "count_reasons",
    "decode_file",
    "decode_files",
    "decode_problem",
    "DecodeResult",
    "Failure",
    "frame_cache_problem",
    "FRAME_SUFFIXES",
    "FrameCache",
    "Frame",
    "FrameSource",
    "FrameStream",
    "open_frames",
    "every_notice",
    "generate_once",
    "notice_once",
    "list_framefolder",
    "list_ucf101",
    "list_videofolder",
    "listing_of",
    "Listing",
    "ListSamples",
    "NOT_VIDEO_SUFFIXES",
    "open_media",
    "open_video_file",
    "probe_frame_folder",
    "probe_video",
    "ProbeCache",
    "random_clip_indices",
    "read_clip",
    "read_frame_folder",
    "read_frames",
    "ReadableBatch",
    "reason_kind",
    "scan_videos",
    "ScanReport",
    "segment_clip_indices",
    "segment_indices",
    "SHORT_POLICIES",
    "skipped_note",
    "SkipUnreadable",
    "stat_data_file",
    "uniform_clip_indices",
    "video_dataset_problems",
    "VIDEO_SUFFIXES",
    "VideoClipDataset",
    "VideoDataConfig",
    "VideoDataset",
    "VideoInfo",
    "VideoSample",
    "VideoWriter",
    "WHOLE_MAX_FRAMES",
    "write_video",
]
