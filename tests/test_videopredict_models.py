"""video-predict: model shapes, rollout past the trained horizon, the parallel scan against the
step-by-step recurrence, metric values on known inputs, the Moving MNIST generator's protocol."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest
import torch
from rnnkit_videopredict.metrics import create_metric
from rnnkit_videopredict.models import build_predictor, convert_channels
from rnnkit_videopredict.moving_mnist import (
    DIGIT,
    generate,
    mnist_digits,
    sklearn_digits,
    trajectories,
)

from rnnvision_kit.errors import ConfigError, DataError

NAMES = ["copy-last", "convlstm", "convgru", "predrnn", "mingru"]


@pytest.fixture(autouse=True)
def _one_thread(one_thread: None) -> None:
    torch.manual_seed(0)


@pytest.mark.parametrize("name", NAMES)
@pytest.mark.parametrize("channels", [(1, 1), (3, 1)])
def test_shapes_and_rollout_past_horizon(name: str, channels: tuple[int, int]) -> None:
    c_in, c_out = channels
    model = build_predictor(name, c_in, c_out, 4, 8, 2, 3)
    frames = torch.rand(2, 6, c_in, 16, 16)
    assert model(frames, 4, 2).shape == (2, 5, c_out, 16, 16)
    assert model(frames, 4, 2, teacher=True).shape == (2, 5, c_out, 16, 16)
    # only the context is read: any horizon rolls out on the model's own predictions
    assert model(frames[:, :4], 4, 9).shape == (2, 12, c_out, 16, 16)


def test_copy_last_repeats_the_last_context_frame() -> None:
    frames = torch.rand(1, 5, 1, 8, 8)
    out = build_predictor("copy-last", 1, 1, 1, 1, 1, 3)(frames, 3, 4)
    assert torch.equal(out[:, 2:], frames[:, 2:3].expand(-1, 4, -1, -1, -1))


@pytest.mark.parametrize(("out_kernel", "shift"), [(None, 0), (1, 0), (None, 1), (1, 2)])
def test_mingru_scan_equals_its_steps(out_kernel: int | None, shift: int) -> None:
    model = build_predictor("mingru", 1, 1, 4, 8, 2, 3, out_kernel=out_kernel, shift=shift).eval()
    cells = model.layer_list()  # type: ignore[attr-defined]
    assert {cell.out.kernel_size for cell in cells} == {(out_kernel or 3,) * 2}
    assert [cell.shift for cell in cells] == [i < shift for i in range(2)]
    frames = torch.rand(2, 7, 1, 16, 16)
    with torch.no_grad():
        parallel = model(frames, 7, 1)
        state, steps = None, []
        for t in range(7):
            y, state = model.step(frames[:, t], state)
            steps.append(y)
        # the scan's last state goes on as the steps' does: read 4 frames, roll out 3
        rolled = model(frames, 4, 3)
        state, manual = None, []
        for t in range(6):
            y, state = model.step(frames[:, t] if t < 4 else model.feedback(manual[-1]), state)
            manual.append(y)
    torch.testing.assert_close(parallel, torch.stack(steps, 1)[:, :7], atol=1e-5, rtol=1e-5)
    torch.testing.assert_close(rolled, torch.stack(manual, 1), atol=1e-5, rtol=1e-5)


def test_shifted_mingru_sees_motion_and_starts_from_a_zero_state() -> None:
    """With ``shift`` the gates read ``x_t - x_{t-1}``: a frame after a different frame gives
    another prediction than after itself (plain minGRU's first layer cannot tell); and an
    all-zero state (as an exported model starts) is the start (None)."""
    plain = build_predictor("mingru", 1, 1, 4, 8, 1, 3, shift=0).eval()
    shifted = build_predictor("mingru", 1, 1, 4, 8, 1, 3, shift=1).eval()
    a, b = torch.rand(2, 1, 1, 16, 16).unbind(0)
    with torch.no_grad():
        for model, differs in ((plain, False), (shifted, True)):
            _, after_a = model.step(a, None)
            _, after_b = model.step(b, None)
            y_a, _ = model.step(b, after_a)
            h_a = after_a[0][0] if differs else after_a[0]
            h_b = after_b[0][0] if differs else after_b[0]
            # same h before the step: only the previous input can make the outputs differ
            after_b_same_h = [(h_a, after_b[0][1])] if differs else [h_a]
            y_b, _ = model.step(b, after_b_same_h)
            assert torch.allclose(y_a, y_b) is not differs, model
            assert not torch.equal(h_a, h_b)
        zeros = [(torch.zeros(1, 8, 4, 4), torch.zeros(1, 16, 4, 4))]
        torch.testing.assert_close(shifted.step(a, zeros)[0], shifted.step(a, None)[0])


def test_too_few_frames_is_one_line() -> None:
    model = build_predictor("convgru", 1, 1, 4, 8, 1, 3)
    with pytest.raises(ConfigError, match="data.context"):
        model(torch.rand(1, 3, 1, 16, 16), 5, 2)


def test_convert_channels() -> None:
    grey = torch.rand(2, 1, 4, 4)
    assert torch.equal(convert_channels(grey, 3)[:, 2:], grey)
    torch.testing.assert_close(convert_channels(convert_channels(grey, 3), 1), grey)


def test_metrics_on_identical_frames() -> None:
    x = torch.rand(3, 4, 1, 32, 32)
    for name, expected in [("mse", 0.0), ("mae", 0.0), ("ssim", 1.0), ("psnr", 100.0)]:
        metric = create_metric(name, None)  # type: ignore[arg-type]
        metric.update(x, x)
        assert float(metric.compute()) == pytest.approx(expected, abs=1e-5)


def test_metrics_on_a_constant_difference() -> None:
    truth = torch.rand(2, 3, 1, 64, 64) * 0.5
    preds = truth + 0.1
    values = {}
    for name in ("mse", "mae", "psnr", "mse_steps"):
        metric = create_metric(name, None)  # type: ignore[arg-type]
        metric.update(preds, truth)
        values[name] = metric.compute()
    assert float(values["mse"]) == pytest.approx(0.01 * 64 * 64, rel=1e-4)  # summed over pixels
    assert float(values["mae"]) == pytest.approx(0.1 * 64 * 64, rel=1e-4)
    assert float(values["psnr"]) == pytest.approx(10 * math.log10(1 / 0.01), rel=1e-4)
    assert values["mse_steps"] == pytest.approx([40.96] * 3, rel=1e-4)


def test_per_step_metric_follows_the_horizon() -> None:
    truth = torch.zeros(2, 3, 1, 8, 8)
    preds = truth.clone()
    preds[:, 1] = 0.5
    metric = create_metric("mae_steps", None)  # type: ignore[arg-type]
    metric.update(preds, truth)
    assert metric.compute() == pytest.approx([0.0, 32.0, 0.0])


def test_generator_keeps_digits_inside_and_bounces() -> None:
    rng = np.random.default_rng(0)
    corners = trajectories(rng, 200, 40, 64 - DIGIT)
    assert corners.min() >= 0 and corners.max() <= 64 - DIGIT
    moves = np.diff(corners, axis=1)
    # bouncing: some digit reverses direction on an axis, and only at the canvas's edges
    flips = np.sign(moves[:, 1:]) * np.sign(moves[:, :-1]) < 0
    assert flips.any()
    at = corners[:, 1:-1][flips]
    assert np.all((at <= 4) | (at >= 64 - DIGIT - 4))
    digits = sklearn_digits("eval")
    seqs = generate(np.random.default_rng(1), digits, 3, 20, 64, 2)
    assert seqs.shape == (3, 20, 64, 64) and seqs.dtype == np.uint8 and seqs.max() > 200


MNIST = Path(__file__).resolve().parents[1].parent / "shared" / "data" / "mnist"


@pytest.mark.skipif(not MNIST.is_dir(), reason="MNIST not in ../shared/data/mnist")
def test_mnist_digits_from_the_shared_folder() -> None:
    train, test = mnist_digits(MNIST, "train"), mnist_digits(MNIST, "eval")
    assert train.shape == (60000, DIGIT, DIGIT) and test.shape == (10000, DIGIT, DIGIT)
    assert test.dtype == np.uint8 and test.max() == 255


def test_not_an_mnist_folder_is_one_line(tmp_path: Path) -> None:
    with pytest.raises(DataError, match="not an MNIST folder"):
        mnist_digits(tmp_path, "train")


def test_training_sequences_are_new_each_epoch_and_reproducible() -> None:
    from rnnkit_videopredict.data import FreshSequences

    data = FreshSequences(sklearn_digits("train")[:50], 4, 6, 32, 2, 1, seed=0)
    first, _ = data[1]
    assert first.shape == (6, 1, 32, 32) and first.dtype == torch.float32
    assert float(first.min()) >= 0 and float(first.max()) <= 1
    assert torch.equal(first, data[1][0])  # same epoch, same index: same sequence
    data.set_epoch(1)
    assert not torch.equal(first, data[1][0])


def test_out_kernel_is_mingrus_alone() -> None:
    from rnnkit_videopredict.config import defaults

    from rnnvision_kit.config import validate

    config = defaults()
    config.model.out_kernel = 1
    validate(config)  # mingru, the default
    config.model.name = "convlstm"
    with pytest.raises(ConfigError, match="model.out_kernel: only mingru"):
        validate(config)


def test_shift_is_mingrus_alone_and_at_most_its_layers() -> None:
    from rnnkit_videopredict.config import defaults

    from rnnvision_kit.config import validate

    config = defaults()
    assert config.model.shift is None and config.model.mingru_shift == 1
    config.model.shift = 2
    validate(config)  # mingru, 2 layers
    config.model.layers = 1
    with pytest.raises(ConfigError, match=r"model.shift: 2 exceeds the 1 layer\(s\)"):
        validate(config)
    config.model.name, config.model.layers = "convgru", 2
    with pytest.raises(ConfigError, match="model.shift: only mingru reads the difference"):
        validate(config)
