"""Honest parameter counts (issue 20, item 8): the run shows the parameters the model uses and
the trainable ones, leaving out those smp keeps but never runs (ResNet stages beyond
``encoder_depth``)."""

from __future__ import annotations

import pytest
import torch

from rnnvision_kit.runner.run import ParameterCounts, parameter_counts

pytest.importorskip("segmentation_models_pytorch")


def test_seg_refine_at_encoder_depth_3_leaves_out_resnet_stages_3_and_4() -> None:
    from rnnkit_segrefine.config import defaults
    from rnnkit_segrefine.model import create_segmenter, probe_segmenter

    torch.manual_seed(0)
    m = defaults().model
    m.encoder, m.encoder_depth = "resnet18", 3
    segmenter = create_segmenter(m, 2)
    total = sum(p.numel() for p in segmenter.parameters())
    stages = sum(
        p.numel()
        for name, p in segmenter.named_parameters()
        if name.startswith(("encoder.layer3", "encoder.layer4"))
    )
    assert stages == 10_493_440
    probe_segmenter(segmenter, m, 64, 64)
    probe_segmenter(segmenter, m, 32, 32, "data.crop_size")  # a second probe counts them once
    counts = parameter_counts(segmenter)
    assert counts == ParameterCounts(total - stages, total - stages, stages)
    assert (
        counts.line()
        == f"{total - stages:,} parameters ({total - stages:,} trainable; 10,493,440 unused left out)"
    )


def test_frozen_parameters_are_used_but_not_trainable() -> None:
    model = torch.nn.Sequential(torch.nn.Linear(3, 4), torch.nn.Linear(4, 2))
    model[0].requires_grad_(False)
    counts = parameter_counts(model)
    assert counts == ParameterCounts(26, 10, 0)
    assert counts.line() == "26 parameters (10 trainable)"
