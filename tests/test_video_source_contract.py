"""The video-source contract is public (issue 19): what video tasks need from a source
(``list_samples=``, each split's ``samples`` and ``set_epoch``) is checked when the data is built
and by ``check_plugin``, one line naming the source and the missing part; ``Listing``,
``build_clip_bundle`` and ``VideoDataConfig`` come from ``rnnvision_kit.data``; a bad
``data.frame_cache`` is one line before anything is built."""

from __future__ import annotations

import ast
import json
import subprocess
import sys
from pathlib import Path
from typing import TYPE_CHECKING

import pytest
from plugins_fixtures import PLUGIN_ENV, fixture, one_thread

from rnnvision_kit import RunConfig
from rnnvision_kit.data import VideoSample, frame_cache_problem

if TYPE_CHECKING:
    from tests.conftest import CliRunner

VIDEO_SOURCES = ("--plugin", fixture("video_sources"))
QUICK = ("--epochs", "1", "--set", "train.max_steps_per_epoch=2", "--set", "data.batch_size=4")
BREACH = "rnnkit: error: data source 'video_sources:{}' breaks the video-source contract: {}"
WHERE = " (see 'Video sources' in docs/plugins.md)\n"


@pytest.fixture(autouse=True)
def _no_plugin_env(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in PLUGIN_ENV:
        monkeypatch.delenv(name, raising=False)


# --------------------------------------------------------------------------- public names


def test_listing_builder_settings_and_contract_import_from_rnnvision_kit_data() -> None:
    from rnnvision_kit import DataConfig
    from rnnvision_kit.data import (
        CLIP_SETTINGS,
        Listing,
        ListSamples,
        VideoDataConfig,
        VideoDataset,
        build_clip_bundle,
        check_video_source,
    )

    assert issubclass(VideoDataConfig, DataConfig) and callable(build_clip_bundle)
    assert set(CLIP_SETTINGS) <= {f for f in VideoDataConfig.__dataclass_fields__}
    assert Listing.__module__ == "rnnvision_kit.data.listing"
    assert {ListSamples.__name__, VideoDataset.__name__} == {"ListSamples", "VideoDataset"}
    assert check_video_source.__module__ == "rnnvision_kit.data.contract"


def test_video_data_config_imports_no_torch() -> None:
    """A task's config.py subclasses it and must stay light (settings are checked first)."""
    code = (
        "import sys\nfrom rnnvision_kit.data import CLIP_SETTINGS, VideoDataConfig\n"
        "print('torch' in sys.modules)"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert result.stdout.strip() == "False", result.stderr


def test_the_lazy_exports_agree_with_the_type_checker_imports() -> None:
    """``rnnvision_kit/data/__init__.py`` names each export three times: its module table, the
    imports the type checker reads and ``__all__``; they must agree."""
    import rnnvision_kit.data as data

    tree = ast.parse(Path(data.__file__).read_text())
    checked = {
        (node.module.rpartition(".")[2], alias.name)
        for node in ast.walk(tree)
        if isinstance(node, ast.ImportFrom)
        and node.module
        and node.module.startswith(data.__name__)
        for alias in node.names
    }
    table = {(module, name) for module, names in data._MODULES.items() for name in names}
    assert checked == table
    assert sorted(data.__all__) == sorted(name for _, name in table)
    assert len(data.__all__) == len(set(data.__all__))
    assert all(getattr(data, name) is not None for name in data.__all__)


def _tiny_videos(root: Path) -> dict[str, list[VideoSample]]:
    """Two classes (dark, light) of 4 videos of 6 frames of 16x16: train 2, val 1, test 1."""
    import numpy as np

    from rnnvision_kit.data import write_video

    splits: dict[str, list[VideoSample]] = {"train": [], "val": [], "test": []}
    for label, name in enumerate(("dark", "light")):
        for i, split in enumerate(("train", "train", "val", "test")):
            path = root / name / f"{i}.mp4"
            path.parent.mkdir(parents=True, exist_ok=True)
            write_video(path, np.full((6, 16, 16, 3), 40 + 160 * label + i, dtype=np.uint8), 5)
            splits[split].append(VideoSample(str(path), label))
    return splits


def _small_video_config() -> RunConfig:
    from rnnkit_video.config import defaults

    config = defaults()
    config.data.frame_cache, config.data.size, config.data.num_frames = False, 16, 2
    return config


def test_a_listing_reads_as_a_clip_bundle_that_keeps_the_contract(tmp_path: Path) -> None:
    """The docs' short way: list videos, ``build_clip_bundle`` reads them."""
    from rnnvision_kit.data import Listing, build_clip_bundle, check_video_source

    splits = _tiny_videos(tmp_path)
    listing = Listing(splits, ["dark", "light"], root=str(tmp_path))
    bundle = build_clip_bundle(listing, _small_video_config())
    check_video_source("mine", bundle, lambda c: listing)  # all three parts: no error
    assert [len(bundle.train), len(bundle.val), len(bundle.test)] == [4, 2, 2]
    assert bundle.items is not None and bundle.items["test"] == [s.path for s in splits["test"]]
    clip, label = bundle.train[0]
    assert tuple(clip.shape) == (2, 3, 16, 16) and label == 0
    assert bundle.spec.class_names == ("dark", "light")


def test_check_data_counts_a_video_listed_as_segments_once(tmp_path: Path) -> None:
    """Issue 19: check-data counted segments (one video listed several times) as videos."""
    from rnnkit_video.check import check_listing

    from rnnvision_kit.data import Listing

    splits = _tiny_videos(tmp_path)
    splits["train"] = [s for s in splits["train"] for _ in range(3)]  # 3 segments per video
    check = check_listing(Listing(splits, ["dark", "light"]), _small_video_config())
    assert check.notes[:2] == [
        "8 of 8 videos readable",
        "16 samples list 8 videos (each counted once)",
    ]
    rows = {(kind, name): detail for kind, name, detail in check.rows}
    assert rows["class", "dark"] == "train 2, val 1, test 1"
    assert rows["total", "readable"] == "8/8 (train 4/4, val 2/2, test 2/2)"


# ------------------------------------------------------------------- the contract, enforced


@pytest.mark.parametrize(
    ("source", "missing"),
    [
        (
            "dots-no-epoch",
            "its train, val and test data sets have no set_epoch(epoch) (Cached)",
        ),
        ("dots-no-samples", "its train data set has no samples (Unnamed)"),
        ("dots-no-listing", "it registers no list_samples="),
    ],
    ids=["set_epoch", "samples", "list_samples"],
)
def test_a_missing_part_is_one_line_when_the_data_is_built(
    rnnkit: CliRunner, tmp_path: Path, source: str, missing: str
) -> None:
    result = rnnkit(*VIDEO_SOURCES, "run", "--task", "video-action", "--data", source, *QUICK)
    assert result.returncode == 2
    assert result.stderr == BREACH.format(source, missing) + WHERE
    runs = tmp_path / "runs"
    assert not runs.exists() or not any(runs.rglob("*"))  # nothing trained, no run folder


def test_check_plugin_names_the_source_and_the_missing_part() -> None:
    from plugins_fixtures import video_sources
    from rnnkit_video import plugin

    from rnnvision_kit.testing import check_plugin, plugin_host

    host = plugin_host(video=plugin, video_sources=video_sources)
    overrides = ["data.source=video_sources:dots-no-epoch", "data.num_frames=4", "data.size=16"]
    (result,) = check_plugin(host, "video", overrides=overrides)
    assert (result.ok, result.stage) == (False, "build")
    assert result.error == (
        "DataError: data source 'video_sources:dots-no-epoch' breaks the video-source contract: "
        "its train, val and test data sets have no set_epoch(epoch) (Cached)" + WHERE.rstrip()
    )


def test_check_data_names_a_source_without_list_samples(rnnkit: CliRunner) -> None:
    result = rnnkit(
        *VIDEO_SOURCES, "check-data", "--task", "video-action", "--data", "dots-no-listing"
    )
    assert result.returncode == 2
    assert (
        result.stderr == BREACH.format("dots-no-listing", "it registers no list_samples=") + WHERE
    )


def test_a_source_that_keeps_the_contract_writes_predictions(rnnkit: CliRunner) -> None:
    """Issue 19: with a third-party source, video-action wrote no predictions_test.jsonl."""
    with one_thread():
        result = rnnkit(
            *VIDEO_SOURCES,
            *("run", "--task", "video-action", "--data", "dots", *QUICK, "--json"),
            *("--set", "data.num_frames=4", "--set", "data.size=16"),
        )
    assert result.returncode == 0, result.stderr
    run_dir = Path(json.loads(result.stdout)["run_dir"])
    records = [
        json.loads(line) for line in (run_dir / "predictions_test.jsonl").read_text().splitlines()
    ]
    assert [r["file"] for r in records] == [f"dots/test/{i:03d}.mp4" for i in range(8)]
    assert {r["label"] for r in records} == {"left", "right"}


def test_a_video_data_config_subclass_works_as_a_task_s_data_settings() -> None:
    """dots-action's DotsDataConfig subclasses VideoDataConfig: the task passes the conformance
    check on its default source, through video-action's Task."""
    from plugins_fixtures import video_sources
    from rnnkit_video import plugin

    from rnnvision_kit.data import VideoDataConfig
    from rnnvision_kit.testing import check_plugin, plugin_host

    assert isinstance(video_sources.defaults().data, VideoDataConfig)
    with one_thread():
        results = check_plugin(
            plugin_host(video=plugin, video_sources=video_sources), "video_sources"
        )
    assert [(r.task, r.ok, r.error) for r in results] == [("video_sources:dots-action", True, None)]


# ------------------------------------------------------------------------ data.frame_cache


@pytest.mark.parametrize("command", ["check-data", "run"])
def test_a_frame_cache_that_is_no_folder_is_one_line_and_creates_nothing(
    rnnkit: CliRunner, tmp_path: Path, command: str
) -> None:
    quick = QUICK if command == "run" else ()
    result = rnnkit(command, "--task", "video-action", "--set", "data.frame_cache=maybe", *quick)
    assert result.returncode == 2
    assert result.stderr == (
        "rnnkit: error: data.frame_cache: 'maybe' is not true, false or a folder "
        "(a new folder here: ./maybe)\n"
    )
    assert sorted(p.name for p in tmp_path.iterdir()) == []  # no folder 'maybe', no run


def test_a_frame_cache_inherits_its_check_in_a_task_s_own_settings(rnnkit: CliRunner) -> None:
    result = rnnkit(
        *VIDEO_SOURCES, "check-data", "--task", "dots-action", "--set", "data.frame_cache=null"
    )
    assert result.returncode == 2
    assert "data.frame_cache: 'None' is not true, false or a folder" in result.stderr


def test_frame_cache_takes_true_false_or_a_folder_that_is_or_can_be_made(tmp_path: Path) -> None:
    (tmp_path / "file").write_text("")
    assert frame_cache_problem(True) is None and frame_cache_problem(False) is None
    assert frame_cache_problem(str(tmp_path)) is None  # exists
    assert frame_cache_problem(str(tmp_path / "new")) is None  # its parent exists
    assert frame_cache_problem("./new") is None and frame_cache_problem("~") is None
    assert frame_cache_problem(str(tmp_path / "a" / "b")) == (
        f"{tmp_path / 'a' / 'b'}: neither the folder nor its parent folder exists"
    )
    assert (
        frame_cache_problem(str(tmp_path / "file"))
        == f"{tmp_path / 'file'} is a file, not a folder"
    )
    assert frame_cache_problem("") == "is empty (true, false or a folder)"
