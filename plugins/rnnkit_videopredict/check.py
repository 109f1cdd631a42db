"""``rnnkit check-data`` for video-predict: the sequences of each split, and (``videoframes``)
the videos skipped as unreadable or shorter than a clip. Nothing is trained; Moving MNIST's
validation and test sets are generated (and cached) as a run would."""

from __future__ import annotations

from collections.abc import Sequence, Sized
from typing import Any, cast

from rnnkit_videopredict.config import PredictConfig
from rnnvision_kit import DataCheck, DataContext, DataError

HEADERS = ["kind", "name", "detail"]
SPLITS = ("train", "val", "test")
NAMED = 50  # skipped videos named one per row; the others are counted in a note


def check_data(ctx: DataContext) -> DataCheck:
    """Rows: each split's sequences (and where they come from), then each skipped video with
    the reason; unusable when the source cannot be built."""
    config = cast(PredictConfig, ctx.config)
    d = config.data
    try:
        bundle = ctx.open_source()
    except DataError as error:
        return DataCheck(
            HEADERS, [], [str(error), "no usable sequence: nothing to train on"], False
        )
    origins: dict[str, str] = dict(getattr(bundle, "origins", None) or {})
    rows: list[Sequence[Any]] = []
    for split in SPLITS:
        dataset = getattr(bundle, split)
        size = len(cast(Sized, dataset))
        length = d.context + (d.horizon if split == "train" else d.test_horizon)
        detail = origins.get(split) or f"{size} sequences of {length} frames"
        rows.append(("split", split, detail))
    skipped = list(getattr(bundle, "skipped", None) or [])
    for path, why in skipped[:NAMED]:
        rows.append(("skipped", str(path), why))
    notes = [
        f"{d.context} context frames, {d.horizon} predicted in training, "
        f"{d.test_horizon} at evaluation; frames {d.size}x{d.size}, "
        f"{'grey' if d.channels == 1 else 'RGB'}"
    ]
    if skipped:
        more = f" ({len(skipped) - NAMED} not listed)" if len(skipped) > NAMED else ""
        videos = "video" if len(skipped) == 1 else "videos"
        notes.append(f"{len(skipped)} {videos} skipped{more}: unreadable or shorter than a clip")
    return DataCheck(HEADERS, rows, notes)
