"""The Python front door (issue 22): ``fit`` and ``evaluate`` run what ``rnnkit run`` and
``rnnkit eval`` run; ``load`` gives a ``Predictor`` whose ``predict``, ``stream`` and ``export``
give what the commands give, for files, tensors and arrays, for every built-in task and a
third-party one; bad input is one line of a project error class."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch

import rnnvision_kit as rk
from rnnvision_kit.errors import CheckpointError, ConfigError, DataError, RegistryError, TaskError
from tests.conftest import CliRunner

pytestmark = pytest.mark.usefixtures("one_thread")

# the data set docs/python.md and the notebook use too: generated once per test session
VIDEO = {"data__videos_per_class": [20, 3, 3], "data__batch_size": 16}
IMAGE_ARGS = ["--task", "image-classify", "--epochs", "1", "--seed", "3"]
IMAGE_ARGS += ["--set", "train.max_steps_per_epoch=3", "--set", "model.hidden_size=16"]


def one_line(error: pytest.ExceptionInfo[BaseException]) -> str:
    text = str(error.value)
    assert "\n" not in text and text, text
    return text


@pytest.fixture(scope="module")
def video_run(tmp_path_factory: pytest.TempPathFactory) -> rk.FitResult:
    out = tmp_path_factory.mktemp("video")
    threads = torch.get_num_threads()
    result = rk.fit(
        "video-action", epochs=1, out=out, quiet=True, train__max_steps_per_epoch=3, **VIDEO
    )
    assert torch.get_num_threads() == threads  # train.threads=1 only while it trained
    return result


@pytest.fixture(scope="module")
def video(video_run: rk.FitResult) -> rk.Predictor:
    return rk.load(video_run)


@pytest.fixture(scope="module")
def test_video(video_run: rk.FitResult) -> str:
    splits = json.loads((video_run.run_dir / "splits.json").read_text())
    return splits["splits"]["test"]["items"][0]


@pytest.fixture(scope="module")
def image_run(tmp_path_factory: pytest.TempPathFactory) -> rk.FitResult:
    """A run like ``rnnkit run IMAGE_ARGS``, trained with a caller's own thread count and
    plot backend, which it records (``caller``) as it found them after ``fit``."""
    import matplotlib
    import matplotlib.pyplot as plt

    backend, threads = matplotlib.get_backend(), torch.get_num_threads()
    plt.switch_backend("svg")  # the runner's plots switch to Agg while they draw
    torch.set_num_threads(3)
    try:
        result = rk.fit(
            "image-classify",
            epochs=1,
            seed=3,
            out=tmp_path_factory.mktemp("image"),
            quiet=True,
            train__max_steps_per_epoch=3,
            settings={"model": {"hidden_size": 16}},
        )
        CALLER.update(threads=torch.get_num_threads(), backend=matplotlib.get_backend())
    finally:
        torch.set_num_threads(threads)
        plt.switch_backend(backend)
    return result


CALLER: dict[str, Any] = {}  # what image_run found after fit


# ------------------------------------------------------------------------ import and fit


def test_import_and_a_bad_setting_do_not_import_torch() -> None:
    code = (
        "import sys\n"
        "import rnnvision_kit as rk\n"
        "assert 'torch' not in sys.modules\n"
        "try:\n"
        "    rk.fit('video-action', train__lrr=1)\n"
        "except rk.ConfigError as error:\n"
        "    print(error)\n"
        "print('torch' in sys.modules)\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    )
    lines = result.stdout.strip().splitlines()
    assert "unknown config key 'train.lrr'" in lines[0] and "train.lr" in lines[0]
    assert lines[-1] == "False"


def test_fit_runs_what_rnnkit_run_runs(
    image_run: rk.FitResult, rnnkit: CliRunner, tmp_path: Path
) -> None:
    cli = rnnkit("run", *IMAGE_ARGS, "--out", str(tmp_path), "--quiet", "--json", check=True)
    summary = json.loads(cli.stdout)
    assert image_run.summary["test"] == summary["test"]  # same seed and settings: same metrics
    cli_dir = Path(summary["run_dir"])
    assert sorted(p.name for p in image_run.run_dir.iterdir()) == sorted(
        p.name for p in cli_dir.iterdir()
    )
    ours = (
        (image_run.run_dir / "config.yaml")
        .read_text()
        .replace(str(image_run.run_dir.parents[1]), "OUT")
    )
    theirs = (cli_dir / "config.yaml").read_text().replace(str(tmp_path), "OUT")
    assert ours == theirs
    assert image_run.best_checkpoint == image_run.run_dir / "best.pt"
    assert json.loads((image_run.run_dir / "summary.json").read_text())["test"] == image_run.test


def test_evaluate_runs_what_rnnkit_eval_runs(image_run: rk.FitResult, rnnkit: CliRunner) -> None:
    evaluation = rk.evaluate(image_run, split="val", train__device="cpu")
    assert evaluation.file == image_run.run_dir / "eval-val.json"
    cli = rnnkit("eval", str(image_run.run_dir), "--split", "val", "--json", check=True)
    assert json.loads(cli.stdout)["metrics"] == evaluation.metrics
    assert "val/confmat" in evaluation.details


def test_fit_keeps_the_callers_threads_and_plot_backend(image_run: rk.FitResult) -> None:
    assert CALLER == {"threads": 3, "backend": "svg"}  # train.threads=1 while it trained


@pytest.mark.parametrize(
    ("keywords", "message"),
    [
        ({"lr": 0.1}, "fit(lr=...): unknown keyword; settings are SECTION__NAME keywords"),
        ({"train__lrr": 0.1}, "unknown config key 'train.lrr'"),
        ({"settings": {"model": {"hidden_size": 0}}}, "model.hidden_size: must be >= 1"),
        ({"train__lr": float("inf")}, "train.lr: must be finite"),
    ],
)
def test_bad_settings_are_one_line(keywords: dict[str, Any], message: str) -> None:
    with pytest.raises(ConfigError) as error:
        rk.fit("image-classify", **keywords)
    assert message in one_line(error)


# ------------------------------------------------------------------------ load and predict


def test_load_gives_the_model_in_eval_mode_with_its_run(
    video: rk.Predictor, video_run: rk.FitResult
) -> None:
    assert not video.model.training
    assert video.checkpoint == video_run.best_checkpoint and video.run_dir == video_run.run_dir
    assert (video.task.name, video.task.kind) == ("video-action", "video")
    assert video.config.model.head == "gru" and video.spec.num_frames == 5
    assert len(video.class_names) == 10 and video.device == torch.device("cpu")


def test_predict_on_a_file_is_what_rnnkit_predict_prints(
    video: rk.Predictor, test_video: str, rnnkit: CliRunner
) -> None:
    record = video.predict(test_video, top_k=3)
    cli = rnnkit("predict", str(video.run_dir), test_video, "--top-k", "3", "--json", check=True)
    assert json.loads(cli.stdout) == [record]
    assert video.predict([test_video, test_video], top_k=3) == [record, record]


def test_arrays_are_read_as_files_are(video: rk.Predictor, test_video: str) -> None:
    from_file = video.predict(test_video, top_k=3)
    frames = video.preprocess(test_video)
    assert frames.shape == (1, 16, 3, 32, 32) and frames.dtype == torch.float32
    assert float(frames.min()) >= 0.0 and float(frames.max()) <= 1.0
    as_uint8 = (frames[0] * 255).round().to(torch.uint8)
    for clip in (frames[0], as_uint8, as_uint8.numpy(), frames[0].double().numpy()):
        record = video.predict(clip, top_k=3)
        assert record["file"] == "input[0]" and record["top"] == from_file["top"]
    batch = video.predict(torch.stack([as_uint8, as_uint8.flip(0)]), top_k=1)
    assert [r["file"] for r in batch] == ["input[0]", "input[1]"]
    with torch.inference_mode():
        logits = video.model(frames)
    assert logits.shape == (1, 10)


def test_stream_carries_the_state(video: rk.Predictor, test_video: str) -> None:
    frames = video.preprocess(test_video)[0]
    records = list(video.stream(frames, top_k=10, fps=video.spec.fps))
    *per_frame, closing = records
    stride = video.spec.stride
    assert [r["frame"] for r in per_frame] == list(range(0, 16, stride))
    assert closing["steps"] == len(per_frame)
    with torch.inference_mode():  # the last record: the model on all the frames read so far
        offline = torch.softmax(video.model(frames[None, ::stride]), -1)[0]
    scores = {t["label"]: t["score"] for t in per_frame[-1]["top"]}
    expected = dict(zip(video.class_names, offline.tolist(), strict=True))
    assert scores == pytest.approx(expected, abs=1e-5)
    from_file = list(video.stream(test_video, top_k=10))  # the file, read as rnnkit stream does
    assert from_file == records


def test_stream_reads_frames_as_they_come(video: rk.Predictor) -> None:
    seen: list[int] = []

    def camera() -> Any:
        for i in range(7):
            seen.append(i)
            yield np.full((3, 48, 64), 40 * i, dtype=np.uint8)

    records = video.stream(camera(), every=2, max_frames=6, fps=10)
    assert seen == []  # nothing read before the records are asked for
    first = next(records)
    assert first["frame"] == 3 and first["time_s"] == pytest.approx(0.3)
    rest = list(records)
    assert seen == list(range(6)) and rest[-1]["steps"] == 2


def test_a_checkpoint_on_its_own_loads(
    video: rk.Predictor, test_video: str, tmp_path: Path
) -> None:
    lone = tmp_path / "video-action.pt"
    shutil.copy(video.checkpoint, lone)
    predictor = rk.load(lone)
    assert predictor.run_dir == tmp_path
    assert predictor.predict(test_video)["top"] == video.predict(test_video)["top"]
    with pytest.raises(CheckpointError) as error:
        predictor.export(tmp_path / "model.onnx")
    assert "export reads a run folder" in one_line(error)
    last = rk.load(video.run_dir / "last.pt")
    assert last.checkpoint.name == "last.pt"


# ------------------------------------------------------------------------ bad input


@pytest.mark.parametrize(
    ("value", "message"),
    [
        (torch.zeros(3, 32, 32, dtype=torch.uint8), "input of shape (3, 32, 32)"),
        (np.zeros((5, 32, 32, 3), np.uint8), "input of shape (5, 32, 32, 3)"),
        (torch.zeros(5, 3, 32, 32, dtype=torch.int64), "input of dtype int64"),
        (torch.full((5, 3, 8, 8), 255.0), "input values from 255 to 255"),
        (torch.full((5, 3, 8, 8), float("nan")), "input values from nan to nan"),
        (np.array(["a", "b"]), "a NumPy array of dtype <U1 is not an image"),
        (42, "input of type int: expected a path, a list of paths, a torch tensor"),
    ],
)
def test_a_bad_array_is_one_line_naming_the_layout(
    video: rk.Predictor, value: Any, message: str
) -> None:
    with pytest.raises(DataError) as error:
        video.predict(value)
    text = one_line(error)
    assert message in text
    if "shape" in message or "dtype int64" in message or "values" in message:
        assert "B,T,C,H,W or T,C,H,W with C=3, uint8 or float in [0, 1]" in text
    with pytest.raises(DataError):
        video.preprocess(value)


def test_a_bad_stream_frame_is_one_line(video: rk.Predictor) -> None:
    records = video.stream([torch.zeros(1, 3, 32, 32)])
    with pytest.raises(DataError) as error:
        next(records)
    assert "expects C,H,W with C=3" in one_line(error)


def test_a_file_that_cannot_be_read(video: rk.Predictor, tmp_path: Path) -> None:
    with pytest.raises(DataError) as error:
        video.predict(tmp_path / "missing.mp4")
    assert "missing.mp4: file not found" in one_line(error)


def test_load_says_what_it_expected(image_run: rk.FitResult, tmp_path: Path) -> None:
    (tmp_path / "notes.txt").write_text("not a checkpoint")
    cases = [
        tmp_path / "missing",
        tmp_path,
        tmp_path / "notes.txt",
        image_run.run_dir / "config.yaml",
    ]
    for path in cases:
        with pytest.raises(CheckpointError) as error:
            rk.load(path)
        text = one_line(error)
        assert text.startswith(str(path)) and "expected a run folder (with config.yaml)" in text


# ------------------------------------------------------------------------ other tasks


def test_image_classify_predicts_arrays_and_has_no_stream(image_run: rk.FitResult) -> None:
    predictor = image_run.load()
    images = np.random.default_rng(0).integers(0, 256, (2, 1, 16, 16), dtype=np.uint8)
    records = predictor.predict(images, top_k=2)
    assert [r["file"] for r in records] == ["input[0]", "input[1]"]
    assert predictor.predict(images[0], top_k=2) == records[0]
    assert predictor.preprocess(images).shape == (2, 1, 16, 16)
    with pytest.raises(TaskError) as error:
        predictor.stream(images)
    assert "does not support stream (it supports: predict, report, export)" in one_line(error)
    assert error.value.method == "stream"


SEG_SPEC = {
    "kind": "segmentation",
    "class_names": ["bg", "car", "road"],
    "channels": 3,
    "height": 32,
    "width": 32,
    "mean": [0.5, 0.5, 0.5],
    "std": [0.25, 0.25, 0.25],
    "clip_len": 4,
}


def make_seg_run(folder: Path) -> Path:
    """A seg-refine run folder of an untrained model (no data, no training)."""
    from rnnvision_kit import DataSpec, ModelContext
    from rnnvision_kit.config import save_yaml, validate
    from rnnvision_kit.plugins import build_host
    from rnnvision_kit.runner.checkpoint import save_checkpoint
    from rnnvision_kit.runner.pipeline import configure, open_task

    registries = build_host().registries
    task = open_task(registries, "seg-refine")
    config = configure(task, overrides=["model.hidden_channels=4", "model.bidirectional=false"])
    validate(config)
    spec = DataSpec.from_dict(SEG_SPEC)
    model = task.build_model(
        ModelContext(config, spec, registries, task.name, task.plugin, "check")
    )
    folder.mkdir(parents=True)
    save_yaml(config, folder / "config.yaml")
    state = {"model": model.state_dict(), "epoch": 1, "config": config.to_dict(), "spec": SEG_SPEC}
    save_checkpoint(state, folder / "best.pt")
    return folder


def test_seg_refine_predicts_and_streams_arrays(tmp_path: Path) -> None:
    from PIL import Image

    predictor = rk.load(make_seg_run(tmp_path / "run"))
    clip = torch.rand(4, 3, 40, 48)
    record = predictor.predict(clip, out_dir=tmp_path / "masks")
    assert record["file"] == "input[0]" and record["frames"] == 4 and record["size"] == [48, 40]
    masks = sorted(Path(record["masks"]).glob("*.png"))
    assert len(masks) == 4 and Image.open(masks[0]).size == (48, 40)
    records = list(predictor.stream(clip, every=2, out_dir=tmp_path / "stream"))
    assert [r.get("frame") for r in records] == [1, 3, None]
    assert Image.open(records[0]["mask"]).size == (48, 40)  # the frames' own size
    outputs = predictor.model(predictor.preprocess(clip))
    assert outputs[0].shape == (1, 4, 3, 32, 32)


THIRD_PARTY = '''
from rnnvision_kit import hookimpl
from plugins_fixtures.tiny_runs import TinyTask, _bundle


class PredictingTask(TinyTask):
    """tiny, with a predict of its own: 4x4 gray images."""

    def default_config(self):
        config = super().default_config()
        config.data.source = "tiny-images"
        return config

    def predict(self, ctx):
        import numpy as np
        import torch
        from PIL import Image
        from rnnvision_kit.classification import top_k

        records = []
        for file in ctx.files:
            image = np.array(Image.open(file).convert("L").resize((4, 4)), dtype=np.float32)
            logits = ctx.model(torch.from_numpy(image / 255)[None, None].to(ctx.device))[0]
            records.append({"file": str(file), "top": top_k(logits, ctx.spec.class_names, 1)})
        return records


@hookimpl
def rnnkit_register_tasks(register):
    register("tiny-predict", PredictingTask, kind="image", capabilities=("predict",))


@hookimpl
def rnnkit_register_datasets(register):
    register("tiny-images", lambda config: _bundle(), kind="image")
'''


def test_a_third_party_task_does_what_it_declares(tmp_path: Path) -> None:
    plugin = tmp_path / "my_plugin.py"
    plugin.write_text(THIRD_PARTY)
    result = rk.fit("tiny-predict", out=tmp_path, quiet=True, plugins=[str(plugin)])
    predictor = rk.load(result, plugins=[str(plugin)])
    record = predictor.predict(np.zeros((1, 4, 4), np.uint8))
    assert record["file"] == "input[0]" and record["top"][0]["label"] in ("a", "b")
    for capability, call in (
        ("stream", lambda: predictor.stream([np.zeros((1, 4, 4), np.uint8)])),
        ("export", lambda: predictor.export(tmp_path / "m.onnx")),
    ):
        with pytest.raises(TaskError) as error:
            call()
        assert (
            f"task 'tiny-predict' (plugin 'my_plugin') does not support {capability}"
            in one_line(error)
        )
    with pytest.raises(RegistryError) as unknown:
        rk.load(result)  # without the plugin: the task is unknown
    assert "tiny-predict" in one_line(unknown)
