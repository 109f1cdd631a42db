"""Every built-in source says where each split comes from (``DataBundle.origins``): the run's
first lines, ``summary.json``, ``splits.json`` and ``rnnkit check-data`` show it (issue 20)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import cast

import pytest
import torch
from rnnkit_classify.config import ClassifyConfig
from rnnkit_classify.data import digits
from rnnkit_video.check import check_listing
from rnnkit_video.config import VideoActionConfig
from rnnkit_video.data import videofolder_listing

from rnnvision_kit.data import build_clip_bundle
from rnnvision_kit.data.bundle import cold_videos
from rnnvision_kit.runner.run import origin_lines
from tests.conftest import train_in_process
from tests.test_splits import TINY, video_folder


def _default(task: str, **plugins: object) -> object:
    from rnnvision_kit.runner.pipeline import open_task
    from rnnvision_kit.testing import plugin_host

    return open_task(plugin_host(**plugins).registries, task).default_config()


def _video_config(path: Path) -> VideoActionConfig:
    from rnnkit_video import plugin

    config = cast(VideoActionConfig, _default("video-action", video=plugin))
    config.data.source, config.data.path = "videofolder", str(path)
    config.data.val_fraction, config.data.test_fraction = 0.2, 0.2
    config.data.num_frames, config.data.size, config.data.test_clips = 2, 16, 1
    config.train.epochs = 1
    return config


def test_carved_test_split_is_named_with_its_videos(tmp_path: Path) -> None:
    root = video_folder(tmp_path / "clips" / "train")
    (tmp_path / "clips" / "val").mkdir()
    video_folder(tmp_path / "clips" / "val", ("jump",))  # a val/ folder, no test/ folder
    config = _video_config(tmp_path / "clips")
    listing = videofolder_listing(config)
    origins = listing.origins
    assert origins["val"] == f"the {tmp_path / 'clips' / 'val'}/ folder"
    assert origins["test"] == f"carved from {root}/ (20% per class, split seed 0)"
    assert origins["train"].endswith("less the videos carved for test")
    assert listing.carved == ["test"]
    check = check_listing(listing, config)
    rows = {(row[0], row[1]): row[2] for row in check.rows}
    assert rows[("split", "test")] == f"2 videos: {origins['test']}"
    carved = rows[("carved", "test")].split(", ")
    assert sorted(carved) == sorted(
        str(Path(s.path).relative_to(tmp_path / "clips")) for s in listing.splits["test"]
    )
    assert any("carved by the fixed split seed" in note for note in check.notes)


def test_no_split_folders_and_announce_lines(tmp_path: Path) -> None:
    root = video_folder(tmp_path / "clips")
    config = _video_config(root)
    config.data.frame_cache = str(tmp_path / "cache")
    listing = videofolder_listing(config)
    assert listing.carved == ["val", "test"]
    bundle = build_clip_bundle(listing, config)
    lines = origin_lines(bundle)
    assert (
        lines[2]
        == f"test (2): carved from {root}/<class>/ (no train/ folder) (20% per class, split seed 0)"
    )
    assert cold_videos(bundle.train) == len(bundle.train)  # first epoch decodes them
    for index in range(len(bundle.train)):
        bundle.train[index]
    assert cold_videos(bundle.train) == 0  # later epochs read the cache


def test_classify_digits_origins() -> None:
    torch.set_num_threads(1)
    from rnnkit_classify import plugin

    bundle = digits(cast(ClassifyConfig, _default("image-classify", classify=plugin)))
    assert bundle.origins is not None
    assert bundle.origins["test"].startswith("carved from scikit-learn's 1,797 digits (")
    assert set(bundle.origins) == {"train", "val", "test"}


@pytest.mark.slow
def test_run_records_origins(tmp_path: Path) -> None:
    data = video_folder(tmp_path / "videos")
    run_dir, summary = train_in_process(tmp_path, *TINY, "--data", f"videofolder:{data}")
    splits = summary["splits"]
    assert splits["test"]["origin"].startswith(f"carved from {data}/<class>/")
    assert splits["test"]["items"] == "splits.json"
    recorded = json.loads((run_dir / "splits.json").read_text())["splits"]
    assert recorded["test"]["origin"] == splits["test"]["origin"]
    assert len(recorded["test"]["items"]) == splits["test"]["count"]


def test_imagefolder_train_test_folders_use_every_training_image(tmp_path: Path) -> None:
    """With train/ and test/ but no val/, val is carved from train/ and every other training
    image trains: none is left unused."""
    torch.set_num_threads(1)
    from PIL import Image
    from rnnkit_classify import plugin
    from rnnkit_classify.data import imagefolder

    for split, count in (("train", 10), ("test", 2)):
        for name in ("cat", "dog"):
            folder = tmp_path / split / name
            folder.mkdir(parents=True)
            for i in range(count):
                Image.new("RGB", (8, 8), (i * 20, 0, 0)).save(folder / f"{i}.png")
    config = cast(ClassifyConfig, _default("image-classify", classify=plugin))
    config.data.source, config.data.path = "imagefolder", str(tmp_path)
    bundle = imagefolder(config)
    train, val, test = (len(split) for split in (bundle.train, bundle.val, bundle.test))  # type: ignore[arg-type]
    assert (train, val, test) == (18, 2, 4)  # val: 10% of each class's 10; none left unused
    assert bundle.origins is not None and "unused" not in bundle.origins["train"]
