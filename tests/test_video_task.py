"""Task video-action end to end on tiny data: run folder, eval, predict timeline, check-data, skips."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from rnnvision_kit.data import write_video
from tests.bad_videos import write_bad_videos
from tests.conftest import CliRunner, run_dirs, torchrun, train_in_process

TINY = [
    "--task",
    "video-action",
    "--set",
    "data.videos_per_class=2",  # 20 train / 10 val / 10 test videos
    "--epochs",
    "1",
    "--set",
    "train.max_steps_per_epoch=2",
    "--set",
    "data.batch_size=4",
    "--seed",
    "1",
]


@pytest.fixture(scope="module")
def trained(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict]:
    """One tiny training run shared by the tests of this module: (run folder, summary)."""
    return train_in_process(tmp_path_factory.mktemp("video-run"), *TINY)


def _noise_video(path: Path, frames: int, seed: int = 0) -> Path:
    rng = np.random.default_rng(seed)
    return write_video(path, rng.integers(0, 256, (frames, 32, 32, 3), dtype=np.uint8), fps=10)


@pytest.fixture(scope="module")
def messy_folder(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict[str, str]]:
    """``root/<class>/*.mp4``: 8 good videos per class plus bad files; returns (root, bad name ->
    expected reason)."""
    root = tmp_path_factory.mktemp("messy")
    for c, name in enumerate(("jump", "wave")):
        (root / name).mkdir()
        for i in range(8):
            _noise_video(root / name / f"{i}.mp4", 20, seed=10 * c + i)
    for name, path in write_bad_videos(root / "bad", root / "jump" / "0.mp4").items():
        path.rename(root / ("jump" if name in ("zero", "truncated") else "wave") / path.name)
    (root / "bad").rmdir()
    _noise_video(root / "wave" / "short.mp4", 3)
    bad = {
        "zero.mp4": "empty file (0 bytes)",
        "truncated.mp4": "not a readable video",
        "text.mp4": "not a readable video",
        "audio.mp4": "no video stream",
    }
    return root, bad


@pytest.mark.slow  # two torchrun processes: about 12 s (test_runner keeps a fast torchrun test)
def test_torchrun_gathers_each_video_once_even_from_an_empty_rank(tmp_path: Path) -> None:
    """2 processes: 3 val videos shard 2/1, the 1 test video leaves rank 1 without a batch; the
    metrics and the per-video predictions gathered across ranks count each video once."""
    root = tmp_path / "videos"
    counts = {"train": 2, "val": 1, "test": 0}
    for c, name in enumerate(("jump", "run", "wave")):
        for split, n in {**counts, "test": int(name == "jump")}.items():
            (root / split / name).mkdir(parents=True)
            for i in range(n):
                _noise_video(root / split / name / f"{i}.mp4", 16, seed=10 * c + i)
    args = [*TINY[:2], "--data", f"videofolder:{root}", *TINY[4:], "--device", "cpu", "--json"]
    result = torchrun(["run", *args], tmp_path, port=29519)
    assert result.returncode == 0, result.stderr[-3000:]
    summary = json.loads(result.stdout)
    assert summary["world_size"] == 2 and summary["test"]["test/samples"] == 1
    assert summary["last_val"]["val/samples"] == 3
    (run_dir,) = run_dirs(tmp_path, "video-action")
    rows = (run_dir / "predictions_test.jsonl").read_text().splitlines()
    assert [Path(json.loads(r)["file"]).parent.name for r in rows] == ["jump"]


def test_run_folder_is_complete(trained: tuple[Path, dict]) -> None:
    run_dir, summary = trained
    names = {p.name for p in run_dir.iterdir()}
    assert {
        "config.yaml",
        "metrics.jsonl",
        "best.pt",
        "last.pt",
        "summary.json",
        "curves.png",
        "confusion_test.png",
        "per_class_test.json",
        "predictions_test.jsonl",
    } <= names
    for key in ("acc", "top5", "mean_class_acc", "clip_acc", "clip_top5"):
        assert 0.0 <= summary["test"][f"test/{key}"] <= 1.0
    assert summary["test"]["test/samples"] == 10
    assert np.array(summary["test_details"]["test/confmat"]).sum() == 10
    assert summary["skipped_files"] == 0
    rows = [
        json.loads(line) for line in (run_dir / "predictions_test.jsonl").read_text().splitlines()
    ]
    assert len(rows) == 10 and len({r["file"] for r in rows}) == 10
    for row in rows:
        assert Path(row["file"]).is_file() and Path(row["file"]).parent.name == row["label"]
        assert len(row["top5"]) == 5 and row["predicted"] == row["top5"][0]["label"]
    correct = np.mean([r["label"] == r["predicted"] for r in rows])
    assert correct == pytest.approx(summary["test"]["test/acc"])


def test_eval_reproduces_the_test_metrics(trained: tuple[Path, dict], rnnkit: CliRunner) -> None:
    run_dir, summary = trained
    result = rnnkit("eval", str(run_dir), "--json")
    assert result.returncode == 0, result.stderr
    metrics = json.loads(result.stdout)["metrics"]
    assert metrics["test/acc"] == pytest.approx(summary["test"]["test/acc"])
    assert metrics["test/clip_acc"] == pytest.approx(summary["test"]["test/clip_acc"])


def test_predict_gives_top5_and_a_timeline_for_long_videos(
    trained: tuple[Path, dict], rnnkit: CliRunner, tmp_path: Path
) -> None:
    run_dir, _ = trained
    long_video = _noise_video(tmp_path / "long.mp4", 40)
    short_video = _noise_video(tmp_path / "clip.mp4", 12)
    result = rnnkit("predict", str(run_dir), str(long_video), str(short_video), "--json")
    assert result.returncode == 0, result.stderr
    long_record, short_record = json.loads(result.stdout)
    assert len(long_record["top"]) == 5 and long_record["frames"] == 40
    timeline = long_record["timeline"]
    assert len(timeline) >= 3
    assert timeline[0]["start_s"] == 0.0 and timeline[-1]["end_s"] == pytest.approx(4.0)
    assert all(len(window["top"]) == 5 for window in timeline)
    png = run_dir / "predict" / "long.mp4_timeline.png"
    assert Path(long_record["timeline_png"]) == png and png.stat().st_size > 0
    assert "timeline" not in short_record and len(short_record["top"]) == 5

    out = tmp_path / "plots"
    result = rnnkit("predict", str(run_dir), str(long_video), "--out", str(out))
    assert result.returncode == 0 and (out / "long.mp4_timeline.png").is_file()
    lines = result.stdout.splitlines()
    assert lines[0].startswith(f"{long_video}: ") and len(lines[0].split(", ")) == 5
    assert len(lines) == 1 + len(timeline) + 1
    assert (
        lines[1].startswith("  0.00-")
        and lines[-1] == f"  timeline plot: {out / 'long.mp4_timeline.png'}"
    )

    # two inputs of one name never share an output (issue 20: nothing overwritten silently)
    (tmp_path / "a").mkdir(), (tmp_path / "b").mkdir()
    twins = [_noise_video(tmp_path / folder / "long.mp4", 40) for folder in ("a", "b")]
    result = rnnkit("predict", str(run_dir), *map(str, twins), "--json", "--out", str(out))
    plots = [Path(record["timeline_png"]) for record in json.loads(result.stdout)]
    assert [p.name for p in plots] == ["a-long.mp4_timeline.png", "b-long.mp4_timeline.png"]
    assert all(p.is_file() for p in plots)


def test_predict_names_a_bad_file(
    trained: tuple[Path, dict], rnnkit: CliRunner, tmp_path: Path
) -> None:
    bad = tmp_path / "broken.mp4"
    bad.write_text("no video here")
    result = rnnkit("predict", str(trained[0]), str(bad))
    assert result.returncode == 1  # a bad file among those given (issue 17)
    assert result.stderr.strip().startswith(f"rnnkit: error: {bad}: not a readable video")
    assert len(result.stderr.strip().splitlines()) == 1


def test_check_data_lists_bad_and_short_files(
    messy_folder: tuple[Path, dict[str, str]], rnnkit: CliRunner
) -> None:
    root, bad = messy_folder
    result = rnnkit("check-data", "--task", "video-action", "--data", f"videofolder:{root}")
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    for name, reason in bad.items():
        (line,) = [x for x in lines if x.startswith("unreadable") and f"/{name}" in x]
        assert reason in line
    (short,) = [x for x in lines if "short.mp4" in x]
    assert short.startswith("short") and "3 frames < clip span 13" in short
    (jump,) = [x for x in lines if x.startswith("class") and " jump " in x]
    assert sum(int(n) for n in jump.split("train")[1].replace(",", " ").split() if n.isdigit()) == 8
    assert any(x.startswith("total") and "17/21" in x for x in lines)
    assert "17 of 21 videos readable" in result.stdout


def test_check_data_fails_only_when_nothing_is_readable(rnnkit: CliRunner, tmp_path: Path) -> None:
    for name in ("a", "b"):
        (tmp_path / "junk" / name).mkdir(parents=True)
        for i in range(3):
            (tmp_path / "junk" / name / f"{i}.mp4").write_text("junk")
    result = rnnkit(
        "check-data", "--task", "video-action", "--data", f"videofolder:{tmp_path / 'junk'}"
    )
    assert result.returncode == 1
    assert "no readable video" in result.stdout


def test_run_skips_and_counts_bad_files(
    messy_folder: tuple[Path, dict[str, str]], rnnkit: CliRunner
) -> None:
    root, bad = messy_folder
    args = [
        *TINY[:2],
        "--data",
        f"videofolder:{root}",
        *TINY[4:],
        "--set",
        "data.test_fraction=0.25",
    ]
    result = rnnkit("run", *args)
    assert result.returncode == 0, result.stderr
    assert f"skipped {len(bad)} file(s): 2 not a readable video, " in result.stdout
    (run_dir,) = (Path.cwd() / "runs" / "video-action").iterdir()
    summary = json.loads((run_dir / "summary.json").read_text())
    assert sorted(Path(s["file"]).name for s in summary["skipped"]) == sorted(bad)


def test_check_data_is_an_error_for_tasks_without_it(rnnkit: CliRunner) -> None:
    result = rnnkit("check-data", "--task", "image-classify")
    assert result.returncode == 2
    assert "task 'image-classify' (plugin 'classify') does not support check-data" in result.stderr


def test_image_sources_and_bad_settings_are_one_line_errors(rnnkit: CliRunner) -> None:
    result = rnnkit("check-data", "--task", "video-action", "--data", "digits")
    assert result.returncode == 2 and "provides image data" in result.stderr
    result = rnnkit("check-data", "--task", "video-action", "--set", "data.num_frames=0")
    assert result.returncode == 2 and "data.num_frames: must be >= 1" in result.stderr
    result = rnnkit("check-data", "--task", "video-action", "--data", "videofolder:/nonexistent")
    assert result.returncode == 2 and "/nonexistent: data path does not exist" in result.stderr


def test_sources_read_through_the_frame_cache_and_augment_training_only(
    tmp_path: Path,
) -> None:
    """``data.frame_cache=FOLDER``: the second epoch decodes nothing; ``data.augment``: training
    clips change with the epoch, evaluation clips never; ``data.frame_cache=false``: no cache."""
    from rnnkit_video.data import open_source
    from rnnkit_video.task import VideoActionTask

    from rnnvision_kit.config import apply_overrides, validate

    root = tmp_path / "videos"
    for c, name in enumerate(("jump", "wave")):
        (root / name).mkdir(parents=True)
        for i in range(4):
            _noise_video(root / name / f"{i}.mp4", 18, seed=10 * c + i)
    config = VideoActionTask().default_config()
    config.data.source, config.data.path = "videofolder", str(root)
    apply_overrides(config, [f"data.frame_cache={tmp_path / 'frames'}", "data.augment=true"])
    validate(config)
    bundle = open_source("videofolder", config)
    train, val = bundle.train, bundle.val
    cache = train.frame_cache
    assert cache is not None and cache is val.frame_cache and cache.root == tmp_path / "frames"
    assert train.augment is not None and val.augment is None and bundle.test.augment is None
    first = [train[i][0] for i in range(len(train))], [val[i][0] for i in range(len(val))]
    decodes = cache.stats["decodes"]
    assert decodes == len(train) + len(val)
    train.set_epoch(1)
    again = [train[i][0] for i in range(len(train))], [val[i][0] for i in range(len(val))]
    assert cache.stats["decodes"] == decodes  # epoch 2: every clip from the cache
    assert all(torch.equal(a, b) for a, b in zip(first[1], again[1], strict=True))
    assert not all(torch.equal(a, b) for a, b in zip(first[0], again[0], strict=True))

    apply_overrides(config, ["data.frame_cache=false"])
    assert open_source("videofolder", config).train.frame_cache is None


def test_ucf101_and_framefolder_sources_list_their_splits(
    rnnkit: CliRunner, tmp_path: Path
) -> None:
    ucf = tmp_path / "ucf"
    for name in ("Jump", "Wave"):
        (ucf / name).mkdir(parents=True)
        for g in range(1, 5):
            _noise_video(ucf / name / f"v_{name}_g0{g}_c01.mp4", 14, seed=g)
    (ucf / "classInd.txt").write_text("1 Jump\n2 Wave\n")
    train = [f"{n}/v_{n}_g0{g}_c01.mp4" for n in ("Jump", "Wave") for g in (1, 2, 3)]
    (ucf / "trainlist01.txt").write_text("\n".join(train) + "\n")
    (ucf / "testlist01.txt").write_text("Jump/v_Jump_g04_c01.mp4\nWave/v_Wave_g04_c01.mp4\n")
    result = rnnkit("check-data", "--task", "video-action", "--data", f"ucf101:{ucf}")
    assert result.returncode == 0, result.stderr
    assert (
        "train 2, val 1, test 1" in result.stdout
        and "8/8 (train 4/4, val 2/2, test 2/2)" in result.stdout
    )
    result = rnnkit(
        "check-data", "--task", "video-action", "--data", f"ucf101:{ucf}", "--set", "data.fold=2"
    )
    assert result.returncode == 2 and "trainlist02.txt: split file not found" in result.stderr

    frames = tmp_path / "frames"
    for split, count in (("train", 3), ("test", 2)):
        for name in ("a", "b"):
            for v in range(count):
                folder = frames / split / name / f"video{v}"
                folder.mkdir(parents=True)
                for i in range(6):
                    Image.fromarray(np.full((20, 20, 3), 40 * i, np.uint8)).save(
                        folder / f"{i:03d}.jpg"
                    )
    result = rnnkit("check-data", "--task", "video-action", "--data", f"framefolder:{frames}")
    assert result.returncode == 0, result.stderr
    assert "train 2, val 1, test 2" in result.stdout  # val carved out of train: 1 video per class


def test_plugin_conforms_and_registers_what_the_contract_needs() -> None:
    """Task of kind video with its capabilities, stateless; sources of kind video whose
    ``reads`` are all settings of the task's data config; metrics for video data; no backbones
    (the core registers the frame encoders)."""
    import dataclasses

    from rnnkit_video import plugin
    from rnnkit_video.config import VideoDataConfig

    from rnnvision_kit.runner.pipeline import open_task
    from rnnvision_kit.testing import check_plugin, plugin_host

    host = plugin_host(video=plugin)
    registries = host.registries
    entry = registries.tasks.get("video:video-action")
    assert entry.meta["kind"] == "video"
    assert {"predict", "check-data", "report", "stream"} <= set(entry.capabilities)
    fields = {f.name for f in dataclasses.fields(VideoDataConfig)}
    sources = [e for e in registries.datasets if e.plugin == "video"]
    assert {e.name for e in sources} == {"moving-digits", "videofolder", "ucf101", "framefolder"}
    for source in sources:
        assert source.meta["kind"] == "video" and callable(source.meta["list_samples"])
        assert {"num_frames", "stride", "size"} <= set(source.meta["reads"]) <= fields
    assert "videos_per_class" in registries.datasets.get("moving-digits").meta["reads"]
    assert "fold" in registries.datasets.get("ucf101").meta["reads"]
    metrics = {e.name: e for e in registries.metrics if e.plugin == "video"}
    assert set(metrics) == {"clip_acc", "clip_top5", "predictions"}
    assert all(e.meta["kinds"] == ("video",) for e in metrics.values())
    assert not [e for e in registries.backbones if e.plugin == "video"]

    results = check_plugin(host, "video", overrides=["data.videos_per_class=[2]"])
    assert [(r.task, r.ok, r.error) for r in results] == [("video:video-action", True, None)]
    task = open_task(registries, "video-action").task
    assert vars(task) == {}  # nothing kept between calls


def test_checkpoint_keeps_a_video_spec(trained: tuple[Path, dict]) -> None:
    from rnnvision_kit import DataSpec, VideoSpec
    from rnnvision_kit.runner import load_checkpoint

    checkpoint = load_checkpoint(trained[0] / "best.pt")
    spec = DataSpec.from_dict(checkpoint["spec"])
    assert isinstance(spec, VideoSpec) and spec.num_classes == 10
    assert (spec.channels, spec.height, spec.width, spec.num_frames, spec.stride) == (
        3,
        32,
        32,
        5,
        3,
    )
    assert spec.fps == 10.0
    # no pretrained weights, no model.data_stats: ImageNet's statistics, said so
    assert spec.mean == (0.485, 0.456, 0.406)
    assert checkpoint["normalisation"] == {
        "mean": list(spec.mean),
        "std": list(spec.std),
        "source": "imagenet",
    }


def test_data_stats_normalise_with_the_training_clips(tmp_path: Path) -> None:
    """``model.data_stats=true``: the training clips' per-channel mean and std, recorded with
    source ``data`` (moving-digits: dark frames, mean about 0.21)."""
    from rnnvision_kit.runner import load_checkpoint

    run_dir, _ = train_in_process(tmp_path, *TINY, "--set", "model.data_stats=true")
    normalisation = load_checkpoint(run_dir / "best.pt")["normalisation"]
    assert normalisation["source"] == "data"
    assert all(0.1 < v < 0.35 for v in normalisation["mean"]), normalisation


@pytest.mark.parametrize(
    ("setting", "message"),
    [
        ("data.size=4", "data.size: must be in [8, 1024] (got 4)"),
        ("data.stride=0", "data.stride: must be >= 1 (got 0)"),
        ("data.val_fraction=1", "data.val_fraction: must be in [0, 1) (got 1.0)"),
        ("data.frame_cache_gb=0", "data.frame_cache_gb: must be > 0 (got 0.0)"),
        ("data.crop_scale=[0.8,0.5]", "data.crop_scale: needs [min, max] with min <= max"),
        ("data.crop_scale=[0,1]", "data.crop_scale: must be in (0, 1] (got [0.0, 1.0])"),
        ("data.jitter=-1", "data.jitter: must be >= 0 (got -1.0)"),
        ("data.videos_per_class=[4,2]", "data.videos_per_class: needs 1 or 3 value(s)"),
        ("data.videos_per_class=[0]", "data.videos_per_class: must be >= 1 (got [0])"),
        ("model.dropout=1", "model.dropout: must be in [0, 1) (got 1.0)"),
        ("model.feature_dim=0", "model.feature_dim: must be >= 1 (got 0)"),
        ("model.hidden_size=0", "model.hidden_size: must be >= 1 (got 0)"),
    ],
)
def test_settings_are_checked_with_one_line_errors(setting: str, message: str) -> None:
    from rnnkit_video.task import VideoActionTask

    from rnnvision_kit import ConfigError
    from rnnvision_kit.config import apply_overrides, validate

    config = VideoActionTask().default_config()
    validate(config)
    apply_overrides(config, [setting])
    with pytest.raises(ConfigError) as error:
        validate(config)
    assert str(error.value).startswith(message)


def test_report_finds_the_files_of_a_subset(tmp_path: Path) -> None:
    """The conformance check evaluates ``Subset``s: rows keep the wrapped data set's indices."""
    from rnnkit_video.report import prediction_records, split_files
    from torch.utils.data import Subset

    from rnnvision_kit.data import VideoClipDataset

    samples = [(str(_noise_video(tmp_path / f"{i}.mp4", 8, seed=i)), i % 2) for i in range(3)]
    dataset = VideoClipDataset(samples, num_frames=2, mode="uniform", num_clips=1, seed=None)
    files = split_files(Subset(dataset, [2, 0]))
    assert files == [s[0] for s in samples]
    rows = torch.tensor([[2, 0, 1, 0, 0.7, 0.3], [0, 0, 0, 1, 0.6, 0.4], [-1, 1, 1, 0, 0.5, 0.5]])
    records = prediction_records(rows, files, ("a", "b"))  # -1: a source that gives no index
    assert [r["file"] for r in records] == [None, samples[0][0], samples[2][0]]
    assert records[2] == {
        "file": samples[2][0],
        "label": "a",
        "predicted": "b",
        "top5": [{"label": "b", "score": 0.7}, {"label": "a", "score": 0.3}],
    }
