"""The report of an evaluated split: confusion matrix PNG, per-class accuracy, and
``predictions_<split>.jsonl`` with one record per video (file, label, predicted, top 5)."""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

from torch.utils.data import Dataset

from rnnkit_video.metrics import prediction_rows
from rnnvision_kit import ReportContext, warn
from rnnvision_kit.classification import write_classification_report


def split_files(dataset: Dataset) -> list[str] | None:
    """The file of each index of the clip data set under ``dataset`` (through ``Subset``s, whose
    items keep the index of the data set they wrap), or None when it lists no samples."""
    while not hasattr(dataset, "samples") and hasattr(dataset, "dataset"):
        dataset = dataset.dataset
    samples = getattr(dataset, "samples", None)
    return None if samples is None else [str(sample[0]) for sample in samples]  # (path, label)


def prediction_records(
    rows: Any, files: list[str], class_names: Sequence[str]
) -> list[dict[str, Any]]:
    """Records of ``predictions`` (rows ``[index, label, k classes, k probabilities]``, or the
    labelled records the evaluator makes of them), by index; ``file`` is None for rows without
    a data set index."""
    records = []
    for row in prediction_rows(rows, class_names):
        index = row["index"]
        file = files[index] if 0 <= index < len(files) else None  # -1: the source gave no index
        record = {"file": file, "label": row["label"], "predicted": row["predicted"]}
        records.append({**record, "top5": row["top"]})
    return records


def write_report(ctx: ReportContext) -> None:
    """``confusion_<split>.png``, ``per_class_<split>.json`` and ``predictions_<split>.jsonl``."""
    names = ctx.spec.class_names
    write_classification_report(ctx.run_dir, ctx.split, ctx.results, names)
    rows = ctx.results.get(f"{ctx.split}/predictions")
    files = split_files(ctx.dataset)
    if rows is None or not files:
        return
    records = prediction_records(rows, files, names)
    if records and all(record["file"] is None for record in records):
        warn(
            f"predictions_{ctx.split}.jsonl names no files: the data source's {ctx.split} items "
            "carry no index ((clips, label, index), see 'Video sources' in docs/plugins.md)"
        )
    lines = [json.dumps(record) for record in records]
    (ctx.run_dir / f"predictions_{ctx.split}.jsonl").write_text("".join(f"{x}\n" for x in lines))
