"""``rnnkit check-data`` for video-action: probe every listed video once (``--deep``: decode every
frame) and tabulate findings."""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from typing import cast

from rnnkit_video.config import VideoActionConfig
from rnnkit_video.data import SPLITS, VideoRunConfig
from rnnvision_kit import DataCheck, DataContext
from rnnvision_kit.data import (
    Listing,
    ProbeCache,
    ScanReport,
    clip_span,
    count_note,
    listing_of,
    scan_videos,
)

NAMED = 50  # videos a 'carved' row names


def check_data(ctx: DataContext) -> DataCheck:
    """The scan of ``data.source``'s listing (its ``list_samples``): nothing is trained."""
    entry = ctx.source()
    config = cast(VideoActionConfig, ctx.config)  # a video-action run's
    listing = listing_of(entry.qualified_name, entry.meta.get("list_samples"), config)
    return check_listing(listing, config, deep=ctx.deep)


def check_listing(listing: Listing, config: VideoRunConfig, *, deep: bool = False) -> DataCheck:
    """Rows: readable videos per class and split, unreadable files with the reason, files the
    listing did not take (not a video file, dangling link, FIFO...), with ``deep`` files that
    fail to decode part-way with the frame and time, videos shorter than a clip (the
    ``data.short_policy`` fills them), and totals; notes count the files by reason, and with
    ``deep`` give the decode rate. Counts are of videos: a file listed more than once (segments
    of one video as samples of their own) is scanned and counted once."""
    d = config.data
    span = clip_span(d.num_frames, d.stride) if d.sampling == "random" else d.num_frames
    samples = listing.all_samples()
    videos = list({str(s.path): s for s in samples}.values())  # each file once, first listing
    report = scan_videos(
        videos,
        clip_span=span,
        class_names=listing.class_names,
        probe_cache=ProbeCache(),
        deep=deep,
    )
    listed = {split: {(str(s.path), s.label) for s in listing.splits[split]} for split in SPLITS}
    per_split = {
        split: Counter(label for path, label in listed[split] if path in report.frames)
        for split in SPLITS
    }
    rows: list[Sequence[str]] = split_rows(listing)
    for label, name in enumerate(listing.class_names):
        counts = ", ".join(f"{split} {per_split[split][label]}" for split in SPLITS)
        rows.append(("class", name, counts))
    rows += [("unreadable", path, problem) for path, problem in report.problems]
    rows += [("skipped", path, why) for path, why in listing.skipped]
    rows += [("corrupt", path, detail) for path, detail in report.corrupt]
    rows += [("short", path, detail) for path, detail in report.short]
    readable = ", ".join(
        f"{split} {sum(per_split[split].values())}/{len(listed[split])}" for split in SPLITS
    )
    rows.append(("total", "readable", f"{report.num_ok}/{report.num_files} ({readable})"))
    notes = _notes(report, span, d.short_policy, listing.skipped)
    if listing.carved:
        notes.append(
            f"no split {'folder' if len(listing.carved) == 1 else 'folders'} for "
            f"{' and '.join(listing.carved)}: carved by the fixed split seed (the 'carved' rows "
            "name each video; a run's splits.json lists every split)"
        )
    if len(samples) > len(videos):
        notes.insert(1, f"{len(samples)} samples list {len(videos)} videos (each counted once)")
    return DataCheck(list(ScanReport.HEADER), rows, notes, usable=report.num_ok > 0)


def split_rows(listing: Listing) -> list[Sequence[str]]:
    """Rows saying where each split comes from (``Listing.origins``) and, for each split carved
    by the seeded split rather than read from folders or split files, which videos it took."""
    rows: list[Sequence[str]] = []
    for split in SPLITS:
        origin = listing.origins.get(split)
        count = len(listing.splits[split])
        rows.append(("split", split, f"{count} videos: {origin}" if origin else f"{count} videos"))
    for split in listing.carved:
        names = [_relative(s.path, listing.root) for s in listing.splits[split]]
        shown = ", ".join(names[:NAMED])
        if len(names) > NAMED:
            shown += f", and {len(names) - NAMED} more (a run's splits.json lists them all)"
        rows.append(("carved", split, shown))
    return rows


def _relative(path: str, root: str) -> str:
    prefix = root.rstrip("/") + "/"
    return path[len(prefix) :] if root and path.startswith(prefix) else path


def _notes(report: ScanReport, span: int, policy: str, skipped: list[tuple[str, str]]) -> list[str]:
    notes = [f"{report.num_ok} of {report.num_files} videos readable"]
    for kind, count in report.problem_counts().items():
        notes.append(f"{count} file(s): {kind}")
    if skipped:
        notes.append(f"{len(skipped)} file(s) not taken as videos: {count_note(skipped)}")
    decode = report.decode_note()
    if decode is not None:
        notes.append(decode)
    elif report.num_ok:
        notes.append("files were probed (first frame decoded); --deep decodes every frame")
    if report.short:
        notes.append(f"short videos are read with data.short_policy={policy} (clip span {span})")
    if report.num_ok == 0:
        notes.append("no readable video: nothing to train on")
    return notes
