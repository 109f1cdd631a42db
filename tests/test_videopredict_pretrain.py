"""Prediction as pretraining: video-predict's encoder-rnn shares video-action's state-dict names,
rolls out like the other predictors, and ``model.init_from`` copies its encoder and head into a
video-action run."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
import torch
from rnnkit_videopredict.config import PredictModelConfig
from rnnkit_videopredict.models import EncoderRNNPredictor

from rnnvision_kit import ConfigError, build_sequence_head
from rnnvision_kit.plugins import build_host
from tests.conftest import CliRunner

PREDICT = (
    "--task", "video-predict", "--set", "model.name=encoder-rnn",
    "--set", "data.size=32", "--set", "data.channels=3", "--set", "data.train_sequences=8",
    "--set", "data.val_sequences=4", "--set", "data.test_sequences=4",
    "--set", "data.batch_size=4", "--set", "data.context=3", "--set", "data.horizon=2",
    "--set", "data.sequence_length=5", "--set", "train.epochs=1",
)  # fmt: skip
ACTION = (
    "--task", "video-action", "--set", "data.videos_per_class=[2,1,1]",
    "--set", "data.num_frames=4", "--set", "train.epochs=1",
)  # fmt: skip


@pytest.fixture(scope="module")
def registries():
    return build_host().registries


def predictor(registries, channels: int = 3, size: int = 16) -> EncoderRNNPredictor:
    torch.manual_seed(0)
    config = PredictModelConfig(name="encoder-rnn", hidden_size=16, feature_dim=12)
    encoder = registries.backbones.create("small-cnn", feature_dim=12)
    head = build_sequence_head(registries, config, encoder.out_features, 8)
    return EncoderRNNPredictor(encoder, head, channels, channels, (size, size), 8)


@pytest.mark.parametrize("channels", [1, 3])
def test_encoder_rnn_rolls_out_past_its_context(registries, channels: int) -> None:
    model = predictor(registries, channels).eval()
    frames = torch.rand(2, 5, channels, 16, 16)
    with torch.no_grad():
        out = model(frames, 3, 6)  # 6 out: 4 frames past the given ones
        teacher = model(frames, 3, 2, teacher=True)
    assert out.shape == (2, 8, channels, 16, 16)
    assert teacher.shape == (2, 4, channels, 16, 16)
    # the batched scan over the context equals stepping frame by frame
    with torch.no_grad():
        state, steps = None, []
        for t in range(3):
            y, state = model.step(frames[:, t], state)
            steps.append(y)
    torch.testing.assert_close(out[:, :3], torch.stack(steps, 1), atol=1e-5, rtol=1e-4)


def test_encoder_rnn_names_are_video_actions(registries) -> None:
    from rnnkit_video.model import ClipClassifier

    model = predictor(registries)
    config = PredictModelConfig(hidden_size=16)
    encoder = registries.backbones.create("small-cnn", feature_dim=12)
    action = ClipClassifier(
        encoder, build_sequence_head(registries, config, 12, 10), (0.5,) * 3, (0.2,) * 3
    )
    mine, theirs = model.state_dict(), action.state_dict()
    shared = {k for k in theirs if k in mine and mine[k].shape == theirs[k].shape}
    assert {k for k in theirs if k.startswith("encoder.")} <= shared
    assert any(k.startswith("head.layers.0.") for k in shared)  # the GRU
    assert set(theirs) - shared == {"mean", "std", "head.classifier.weight", "head.classifier.bias"}


def test_encoder_rnn_needs_a_size_of_eight(registries) -> None:
    with pytest.raises(ConfigError, match="data.size: encoder-rnn decodes frames of a multiple"):
        predictor(registries, size=20)


def test_video_action_starts_from_a_prediction_run(rnnkit: CliRunner, tmp_path: Path) -> None:
    summary = json.loads(rnnkit("run", *PREDICT, "--json", check=True).stdout)
    source = tmp_path / summary["run_dir"]
    result = rnnkit("run", *ACTION, "--set", f"model.init_from={source}", check=True)
    found = re.search(r"model\.init_from: copied (\d+) of (\d+) tensors", result.stderr)
    assert found, result.stderr
    line = result.stderr[found.start() :].splitlines()[0]
    # everything but video-action's normalisation and its classifier's last layer
    assert int(found[2]) - int(found[1]) == 4
    assert "kept fresh: mean (absent there), std (absent there), head.classifier" in line
    assert "encoder." not in line


# ---------------------------------------------------------------- reverse scheduled sampling


def test_reverse_ss_schedule_ends_as_rollout() -> None:
    from rnnkit_videopredict.models import build_predictor

    model = build_predictor("convgru", 1, 1, 2, 4, 1, 3, reverse_ss_steps=10)
    early = model.truth_probabilities(3, 2)
    assert early == [1.0, 0.5, 0.5, 0.5, 0.5]  # frame 0, context, horizon
    model.reverse_ss_step.fill_(8)  # p = 0.8: context mostly true, horizon mostly predicted
    middle = model.truth_probabilities(3, 2)
    assert 0.9 < middle[1] < 1.0 and middle[3] == pytest.approx(0.2)
    model.reverse_ss_step.fill_(10)
    assert model.truth_probabilities(3, 2) == [1.0, 1.0, 1.0, 0.0, 0.0]
    # training steps count; evaluation neither samples nor counts
    frames = torch.rand(2, 5, 1, 8, 8)
    model.reverse_ss_step.zero_()
    model.train()(frames, 3, 2)
    assert int(model.reverse_ss_step) == 1
    model.eval()
    with torch.no_grad():
        assert model(frames[:, :3], 3, 4).shape == (2, 6, 1, 8, 8)
    assert int(model.reverse_ss_step) == 1
    assert "reverse_ss_step" in model.state_dict()


def test_reverse_ss_needs_a_stepped_model(rnnkit: CliRunner) -> None:
    result = rnnkit("run", *PREDICT[:2], "--set", "model.feed=reverse-ss")  # mingru
    assert result.returncode != 0
    assert "model.feed: reverse-ss needs a model that reads frame by frame" in result.stderr
    assert "Traceback" not in result.stderr


def test_reverse_ss_trains(rnnkit: CliRunner) -> None:
    """A tiny predrnn run with reverse-ss: the step count is saved with the model."""
    args = [a if a != "model.name=encoder-rnn" else "model.name=predrnn" for a in PREDICT]
    result = rnnkit(
        "run", *args, "--set", "model.feed=reverse-ss", "--set", "model.hidden=4",
        "--set", "model.layers=1", "--set", "data.channels=1", "--json", check=True,
    )  # fmt: skip
    assert json.loads(result.stdout)["test"]["test/mse"] > 0
