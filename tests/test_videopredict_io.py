"""video-predict's predict, stream, export, report and check-data on a tiny trained run."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch

from rnnvision_kit.data import FrameSource, write_video
from tests.conftest import CliRunner, train_in_process
from tests.test_videopredict_run import TINY

CONTEXT, SIZE = 3, 32


@pytest.fixture(scope="module")
def trained(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict]:
    """One tiny convlstm run (state: a list of (h, c)), evaluated 4 frames ahead."""
    return train_in_process(
        tmp_path_factory.mktemp("vp-run"),
        *TINY,
        "--set",
        "model.name=convlstm",
        "--set",
        "data.eval_horizon=4",
    )


def _load(run_dir: Path) -> tuple[torch.nn.Module, object]:
    from rnnvision_kit.plugins import build_host
    from rnnvision_kit.runner.pipeline import load_for_inference

    _, built = load_for_inference(build_host().registries, run_dir, "predict")
    return built.model.eval(), built.spec


def _video(path: Path, frames: int, seed: int = 0) -> Path:
    """A grey square moving right over noise, ``frames`` frames at 32x32."""
    rng = np.random.default_rng(seed)
    video = rng.integers(0, 40, (frames, SIZE, SIZE, 3), dtype=np.uint8)
    for t in range(frames):
        video[t, 10:18, 2 + 2 * t : 10 + 2 * t] = 220
    return write_video(path, video, fps=8)


def _grey(raw: torch.Tensor) -> torch.Tensor:
    frames = raw.float() / 255
    return (frames * frames.new_tensor((0.299, 0.587, 0.114)).view(3, 1, 1)).sum(1, keepdim=True)


def test_predict_writes_video_gif_strip_of_a_manual_rollout(
    trained: tuple[Path, dict], rnnkit: CliRunner, tmp_path: Path
) -> None:
    run_dir = trained[0]
    video = _video(tmp_path / "clip.mp4", 9)
    result = rnnkit(
        "predict", str(run_dir), str(video), "--horizon", "5", "--out", "out", "--json", check=True
    )
    (record,) = json.loads(result.stdout)
    assert record["frames"] == 9 and record["context"] == CONTEXT and record["horizon"] == 5
    assert record["context_frames"] == [6, 8]  # the last context frames: what comes next
    for key, suffix in (("video", ".mp4"), ("gif", ".gif"), ("strip_png", ".png")):
        assert (
            record[key] == f"out/clip.mp4_{'strip' if key == 'strip_png' else 'predicted'}{suffix}"
        )
        assert (tmp_path / record[key]).is_file()
    from PIL import Image

    gif = Image.open(tmp_path / record["gif"])
    assert gif.n_frames == 5 and gif.size == (SIZE, SIZE)
    assert FrameSource(tmp_path / record["video"]).probe().num_frames == 5
    strip = Image.open(tmp_path / record["strip_png"])
    assert strip.size == (SIZE * (CONTEXT + 5) + 4, SIZE)

    model, _ = _load(run_dir)  # the rollout, step by step with the state carried
    raw = FrameSource(video).read(range(6, 9), size=(SIZE, SIZE))
    frames = _grey(raw).unsqueeze(0)
    with torch.inference_mode():
        state, x, outs = None, frames[:, 0], []
        for t in range(CONTEXT + 4):
            y, state = model.step(x, state)
            x = frames[:, t + 1] if t + 1 < CONTEXT else y.clamp(0, 1)
            if t >= CONTEXT - 1:
                outs.append(y.clamp(0, 1))
    expected = (torch.cat(outs)[:, 0] * 255 + 0.5).to(torch.uint8).numpy()
    got = np.stack([np.asarray(frame.convert("RGB"))[..., 0] for frame in _gif_frames(gif)])
    assert np.abs(got.astype(int) - expected.astype(int)).max() <= 1


def _gif_frames(gif: object) -> list:
    from PIL import ImageSequence

    return [frame.copy() for frame in ImageSequence.Iterator(gif)]  # type: ignore[arg-type]


def test_predict_default_horizon_and_a_short_video(
    trained: tuple[Path, dict], rnnkit: CliRunner, tmp_path: Path
) -> None:
    run_dir = trained[0]
    video = _video(tmp_path / "clip.mp4", 4)
    short = _video(tmp_path / "short.mp4", 2)
    result = rnnkit("predict", str(run_dir), str(video), str(short), "--json")
    assert result.returncode == 1
    records = json.loads(result.stdout)
    assert records[0]["horizon"] == 4  # the run's data.eval_horizon
    assert records[1]["file"] == str(short)
    assert "2 frames, fewer than the run's 3-frame context (data.context)" in records[1]["error"]
    assert len(result.stderr.strip().splitlines()) == 1


def test_stream_steps_as_the_offline_model_reads(
    trained: tuple[Path, dict], rnnkit: CliRunner, tmp_path: Path
) -> None:
    run_dir = trained[0]
    video = _video(tmp_path / "clip.mp4", 6)
    result = rnnkit("stream", str(run_dir), str(video), "--out", "s.mp4", check=True)
    lines = [json.loads(line) for line in result.stdout.splitlines() if line.startswith("{")]
    if not lines:  # records went to a file beside the video
        pytest.fail(result.stdout + result.stderr)
    records, summary = lines[:-1], lines[-1]
    assert [r["frame"] for r in records] == list(range(6))
    assert "mse" not in records[0] and summary["scored"] == 5
    assert FrameSource(tmp_path / "s.mp4").probe().num_frames == 6

    model, _ = _load(run_dir)  # offline: the model reads the 6 frames (teacher-forced)
    frames = _grey(FrameSource(video).read(range(6), size=(SIZE, SIZE))).unsqueeze(0)
    with torch.inference_mode():
        preds = model(frames, 6, 1)[:, :5].clamp(0, 1)  # predictions of frames 1..5
    mse = ((preds - frames[:, 1:]) ** 2).flatten(2).sum(-1)[0]
    got = torch.tensor([r["mse"] for r in records[1:]])
    assert torch.allclose(got, mse, atol=2e-3)
    assert summary["mean_mse"] == pytest.approx(float(mse.mean()), abs=2e-3)


@pytest.fixture(scope="module")
def trained_mingru(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict]:
    """One tiny run of the default model: mingru, one layer, its gates reading the frame
    difference (state: a list of (h, previous input))."""
    return train_in_process(tmp_path_factory.mktemp("vp-mingru"), *TINY)


@pytest.mark.parametrize(
    ("run", "names"),
    [
        ("trained", ["state_layer0_h", "state_layer0_c"]),
        ("trained_mingru", ["state_layer0_h", "state_layer0_prev"]),
    ],
)
def test_export_onnx_steps_as_pytorch(
    run: str, names: list[str], request: pytest.FixtureRequest, rnnkit: CliRunner
) -> None:
    """The exported step, started from all-zero states, rolls out as the PyTorch model."""
    ort = pytest.importorskip("onnxruntime", reason="onnxruntime not installed (export extra)")
    run_dir = request.getfixturevalue(run)[0]
    rnnkit("export", str(run_dir), "--format", "onnx", check=True)
    path = run_dir / "export" / "model.onnx"
    sidecar = json.loads(path.with_name("model.onnx.json").read_text())
    assert sidecar["mode"] == "frame-step" and "next frame" in sidecar["frames_out"]
    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    assert [i.name for i in session.get_inputs()] == ["frame", *names]
    assert [o.name for o in session.get_outputs()] == ["next_frame", *(f"{n}_out" for n in names)]
    model, _ = _load(run_dir)
    frames = torch.rand(2, 5, 1, SIZE, SIZE, generator=torch.Generator().manual_seed(0))
    state = [np.zeros((2, *i.shape[1:]), np.float32) for i in session.get_inputs()[1:]]
    outs = []
    for t in range(5):
        y, *state = session.run(
            None, {"frame": frames[:, t].numpy(), **dict(zip(names, state, strict=True))}
        )
        outs.append(torch.from_numpy(y))
    with torch.inference_mode():
        expected = model(frames, 5, 1)
    assert torch.allclose(torch.stack(outs, 1), expected, atol=1e-4)


def test_export_names_every_models_state() -> None:
    from rnnkit_videopredict.export import state_layout
    from rnnkit_videopredict.models import build_predictor

    expected = {
        "convgru": ["state_layer0_h", "state_layer1_h"],
        "mingru": ["state_layer0_h", "state_layer0_prev", "state_layer1_h"],
        "predrnn": [
            "state_layer0_h",
            "state_layer0_c",
            "state_layer1_h",
            "state_layer1_c",
            "state_m",
        ],
        "copy-last": [],
    }
    for name, names in expected.items():
        model = build_predictor(name, 1, 1, 2, 4, 2, 3, shift=1)
        assert state_layout(model, (1, 8, 8))[1] == names, name
    plain = build_predictor("mingru", 1, 1, 2, 4, 2, 3, shift=0)  # runs recorded before shift
    assert state_layout(plain, (1, 8, 8))[1] == ["state_layer0_h", "state_layer1_h"]


def test_a_run_recorded_before_model_shift_loads_as_it_was_trained(tmp_path: Path) -> None:
    """A mingru run whose config.yaml predates ``model.shift`` was trained without it: it loads
    with ``shift`` 0 (its ``before`` value), not the new default 1 (whose weights differ)."""
    run_dir, _ = train_in_process(tmp_path, *TINY, "--set", "model.shift=0")
    config = run_dir / "config.yaml"
    lines = config.read_text().splitlines(keepends=True)
    assert sum(line.strip().startswith("shift:") for line in lines) == 1
    config.write_text("".join(line for line in lines if not line.strip().startswith("shift:")))
    model, _ = _load(run_dir)
    assert [cell.shift for cell in model.layer_list()] == [False]  # type: ignore[operator]


def test_report_writes_grid_gif_and_error_plot(trained: tuple[Path, dict]) -> None:
    run_dir = trained[0]
    for name in ("predictions_test.png", "predictions_test.gif", "error_by_step_test.png"):
        assert (run_dir / name).is_file(), name
    from PIL import Image

    grid = Image.open(run_dir / "predictions_test.png")
    assert grid.size == (SIZE * 4, 12 * SIZE + 11 * 4)  # 4 sequences x 3 rows, 4 px apart


def test_check_data_lists_splits_and_short_videos(rnnkit: CliRunner, tmp_path: Path) -> None:
    (tmp_path / "clips").mkdir()
    for i in range(4):
        _video(tmp_path / "clips" / f"v{i}.mp4", 12, seed=i)
    _video(tmp_path / "clips" / "short.mp4", 4)
    result = rnnkit(
        "check-data",
        "--task",
        "video-predict",
        "--data",
        f"videoframes:{tmp_path / 'clips'}",
        *("--set", "data.size=32", "--set", "data.context=3", "--set", "data.horizon=2"),
        check=True,
    )
    assert "short.mp4" in result.stdout and "shorter than a 5-frame clip" in result.stdout
    assert "1 video skipped" in result.stdout
    for split in ("train", "val", "test"):
        assert split in result.stdout


def test_horizon_is_refused_for_a_task_that_does_not_predict_frames() -> None:
    """``rnnkit predict --horizon`` (and ``Predictor.predict(horizon=)``) check it against the
    run's spec before reading any file: a spec without a horizon predicts no frames."""
    from rnnvision_kit import ConfigError, ImageSpec
    from rnnvision_kit.task import check_horizon

    spec = ImageSpec(class_names=("a", "b"), channels=1, height=8, width=8, mean=(0.5,), std=(0.5,))
    with pytest.raises(ConfigError) as refused:
        check_horizon(3, spec, "image-classify")
    assert str(refused.value) == (
        "--horizon: task image-classify does not predict frames (its runs have no horizon); "
        "leave --horizon out"
    )
    check_horizon(None, spec, "image-classify")  # no --horizon: nothing to check


def test_python_predictor_takes_a_horizon(trained: tuple[Path, dict], tmp_path: Path) -> None:
    import rnnvision_kit as rk

    predictor = rk.load(trained[0])
    record = predictor.predict(_video(tmp_path / "clip.mp4", 4), horizon=2, out_dir=tmp_path)
    assert isinstance(record, dict) and record["horizon"] == 2
    with pytest.raises(rk.ConfigError, match="horizon: must be >= 1"):
        predictor.predict(_video(tmp_path / "clip.mp4", 4), horizon=0)


def test_a_frame_folder_of_mixed_sizes_is_one_line_naming_it(
    rnnkit: CliRunner, tmp_path: Path
) -> None:
    from PIL import Image

    for v in range(3):
        folder = tmp_path / "clips" / f"video{v}"
        folder.mkdir(parents=True)
        for t in range(8):
            side = 24 if (v, t) == (1, 5) else 32
            Image.new("L", (side, side), t * 20).save(folder / f"{t:03d}.png")
    result = rnnkit("run", *TINY, "--data", f"videoframes:{tmp_path / 'clips'}")
    assert result.returncode != 0
    lines = result.stderr.strip().splitlines()
    assert lines[-1].startswith(f"rnnkit: error: {tmp_path / 'clips' / 'video1'}: frames of mixed")
    assert "005.png is 24x24" in lines[-1] and "Traceback" not in result.stderr
