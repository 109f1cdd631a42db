"""Outputs named and kept apart: eval files per checkpoint, prediction rows with class names."""

from __future__ import annotations

from pathlib import Path

import torch
from rnnkit_video.metrics import VideoPredictions, prediction_rows
from rnnkit_video.report import prediction_records

from rnnvision_kit.runner.rundir import RunDir


def test_eval_of_the_last_checkpoint_has_its_own_file(tmp_path: Path) -> None:
    run = RunDir(tmp_path)
    assert run.eval_file("test").name == "eval-test.json"
    assert run.eval_file("test", "best").name == "eval-test.json"
    assert run.eval_file("test", "last").name == "eval-test-last.json"


def test_video_predictions_are_labelled_records() -> None:
    metric = VideoPredictions(k=2)
    logits = torch.tensor([[0.0, 3.0, 0.0], [2.0, 0.0, 0.0]])
    metric.update(logits, torch.tensor([1, 2]), torch.tensor([4, 0]))
    records = metric.labelled(metric.compute().tolist(), ("cat", "dog", "eel"))
    assert [r["index"] for r in records] == [0, 4]  # by data set index
    assert records[1]["label"] == "dog" and records[1]["predicted"] == "dog"
    assert records[0]["label"] == "eel" and records[0]["top"][0]["label"] == "cat"
    assert prediction_rows(records, ("cat", "dog", "eel")) == records  # labelled: as they are
    files = [f"v{i}.mp4" for i in range(5)]
    written = prediction_records(records, files, ("cat", "dog", "eel"))
    assert written[1]["file"] == "v4.mp4" and written[1]["top5"] == records[1]["top"]
