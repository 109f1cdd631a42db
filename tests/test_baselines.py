"""Trivial baselines (rnnvision_kit.baselines): the numbers a constant prediction scores, the
majority class from the training labels, and the one-line warning for a collapsed model."""

from __future__ import annotations

import pytest
import torch
from torch.utils.data import Subset, TensorDataset

from rnnvision_kit.baselines import baseline, collapse_warning, label_counts
from rnnvision_kit.dataspec import SegmentationSpec
from rnnvision_kit.runner.evaluate import labelled, target_counts


def test_classification_baseline_uses_the_training_majority() -> None:
    names = ("a", "b", "c")
    base = baseline("video", [2, 6, 2], names, reference=[9, 1, 0])
    assert base is not None and base.majority == "a" and base.majority_of == "train"
    assert base.metrics["acc"] == pytest.approx(0.2)
    assert base.metrics["mean_class_acc"] == pytest.approx(1 / 3)
    assert base.per_class == {"a": 1.0, "b": 0.0, "c": 0.0}
    own = baseline("image", [2, 6, 2], names, split="val")
    assert own is not None and own.majority == "b" and own.majority_of == "val"


def test_segmentation_baseline_is_the_all_background_score() -> None:
    base = baseline("segmentation", [920, 80], ("background", "object"))
    assert base is not None and base.majority == "background"
    assert base.metrics["pixel_acc"] == pytest.approx(0.92)
    assert base.metrics["miou"] == pytest.approx(0.46)  # (0.92 + 0) / 2, as miou averages
    assert base.metrics["flicker"] == 0.0
    assert base.per_class == {"background": pytest.approx(0.92), "object": 0.0}
    assert baseline("segmentation", [0, 0], ("a", "b")) is None
    assert baseline("my-kind", [1, 2], ("a", "b")) is None


def test_a_collapsed_model_gets_one_warning_line() -> None:
    base = baseline("segmentation", [928, 72], ("background", "object"))
    assert base is not None
    collapsed = {
        "test/miou": 0.4641,
        "test/flicker": 0.0011,
        "test/per_class_iou": {"background": 0.928, "object": 0.005},
    }
    line = collapse_warning(collapsed, "test", base)
    assert line is not None and line.startswith(
        "the model predicts background everywhere: mIoU 0.464 = the all-background baseline"
    )
    assert "flicker 0.0011" in line
    assert collapse_warning({"test/miou": 0.71}, "test", base) is None
    cls = baseline("video", [5, 5], ("x", "y"), reference=[3, 1])
    assert cls is not None
    assert "always predicting class 'x'" in (collapse_warning({"t/acc": 0.5}, "t", cls) or "")
    assert collapse_warning({"t/acc": 0.9}, "t", cls) is None


def test_label_counts_read_labels_through_subsets() -> None:
    class Videos(torch.utils.data.Dataset):
        samples = [("a.mp4", 0), ("b.mp4", 1), ("c.mp4", 1)]

        def __len__(self) -> int:
            return 3

    assert label_counts(Videos(), 3) == [1, 2, 0]
    assert label_counts(Subset(Videos(), [0, 2]), 2) == [1, 1]

    class Images(TensorDataset):
        def __init__(self) -> None:
            super().__init__(torch.zeros(4, 1))
            self.labels = torch.tensor([2, 2, 0, 1])

    assert label_counts(Images(), 3) == [1, 1, 2]
    assert label_counts(TensorDataset(torch.zeros(2)), 2) is None  # nothing readable: None


def test_target_counts_leave_out_ignored_pixels() -> None:
    spec = SegmentationSpec(("bg", "fg"), 3, 2, 2, (0.5,) * 3, (0.5,) * 3, ignore_index=255)
    masks = torch.tensor([[[[0, 1], [255, 0]]]])
    assert target_counts(masks, spec).tolist() == [2, 1]


def test_per_class_figures_are_named_by_class() -> None:
    others = {"test/per_class_iou": [0.5, float("nan")], "test/confmat": [[1, 0], [0, 1]]}
    named = labelled(others, ("bg", "fg"), [], "test")
    assert named["test/per_class_iou"] == {"bg": 0.5, "fg": None}
    assert named["test/confmat"] == [[1, 0], [0, 1]]
