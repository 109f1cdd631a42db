"""Data layer (public API): video I/O on PyAV, clip samplers, video folder data sets, the cache,
the decoded-frame cache, clip augmentation and deep decode checks.

Imports nothing else from the core but ``errors``. Plugins import from this package, not from
its modules.
"""

from rnnvision_kit.data.augment import ClipAugment
from rnnvision_kit.data.cache import cache_dir, generate_once
from rnnvision_kit.data.deepcheck import DecodeResult, decode_file, decode_files
from rnnvision_kit.data.framecache import WHOLE_MAX_FRAMES, FrameCache
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
    segment_indices,
    uniform_clip_indices,
)
from rnnvision_kit.data.video import (
    VIDEO_SUFFIXES,
    ProbeCache,
    VideoInfo,
    VideoWriter,
    decode_problem,
    open_media,
    open_video_file,
    probe_video,
    read_clip,
    read_frames,
    stat_data_file,
    write_video,
)
from rnnvision_kit.data.video_datasets import (
    FRAME_SUFFIXES,
    NOT_VIDEO_SUFFIXES,
    ScanReport,
    VideoClipDataset,
    VideoSample,
    list_framefolder,
    list_ucf101,
    list_videofolder,
    probe_frame_folder,
    read_frame_folder,
    scan_videos,
)

__all__ = [
    "ClipAugment",
    "DecodeResult",
    "FRAME_SUFFIXES",
    "WHOLE_MAX_FRAMES",
    "Failure",
    "FrameCache",
    "NOT_VIDEO_SUFFIXES",
    "SHORT_POLICIES",
    "VIDEO_SUFFIXES",
    "ProbeCache",
    "ReadableBatch",
    "ScanReport",
    "SkipUnreadable",
    "VideoClipDataset",
    "VideoInfo",
    "VideoWriter",
    "VideoSample",
    "apply_short_policy",
    "cache_dir",
    "clip_generator",
    "clip_span",
    "count_note",
    "count_reasons",
    "decode_problem",
    "decode_file",
    "decode_files",
    "collate_readable",
    "generate_once",
    "list_framefolder",
    "list_ucf101",
    "list_videofolder",
    "open_media",
    "open_video_file",
    "probe_frame_folder",
    "probe_video",
    "random_clip_indices",
    "reason_kind",
    "read_clip",
    "read_frame_folder",
    "read_frames",
    "scan_videos",
    "segment_indices",
    "skipped_note",
    "stat_data_file",
    "uniform_clip_indices",
    "write_video",
]
