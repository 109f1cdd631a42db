"""Data a user can get wrong ends in one line naming the folder or the settings (issue 17): a
classification data set of one class (before a run folder is made, from ``check-data`` too),
split fractions that leave nothing to train on, and masks whose few stored values (0/128/255)
would make a model of hundreds of classes."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import pytest
import torch
from PIL import Image
from torch.utils.data import TensorDataset

from rnnvision_kit import ConfigError, DataBundle, DataError, ImageSpec, SegmentationSpec
from rnnvision_kit.config import apply_overrides, validate
from rnnvision_kit.data import write_video
from rnnvision_kit.dataspec import check_bundle
from rnnvision_kit.plugins import build_host
from rnnvision_kit.task import declared_defaults

if TYPE_CHECKING:
    from tests.conftest import CliRunner


@pytest.fixture(autouse=True)
def _cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("RNNKIT_CACHE", str(tmp_path / "cache"))


def defaults(task: str) -> object:
    config = declared_defaults(build_host().registries.tasks.get(task), task)
    assert config is not None
    return config


# ------------------------------------------------------------------------------ one class


def one_class_videos(root: Path) -> Path:
    """root/walk/ with 4 tiny real videos, and nothing else."""
    (root / "walk").mkdir(parents=True)
    frames = np.zeros((8, 32, 32, 3), dtype=np.uint8)
    for k in range(4):
        frames[:, 4 * k : 4 * k + 4] = 200
        write_video(root / "walk" / f"v{k}.mp4", frames, fps=10)
    return root


def one_class_images(root: Path) -> Path:
    """root/seven/ with 6 tiny PNG images."""
    (root / "seven").mkdir(parents=True)
    for k in range(6):
        Image.fromarray(np.full((12, 12), 20 * k, dtype=np.uint8)).save(root / "seven" / f"{k}.png")
    return root


def test_one_video_class_is_one_line_naming_the_folder_and_no_run_folder(
    rnnkit: CliRunner, tmp_path: Path
) -> None:
    root = one_class_videos(tmp_path / "videos")
    out = tmp_path / "runs"
    data = f"videofolder:{root}"
    expected = (
        f"rnnkit: error: {root}: only one class folder (walk); classification needs at least 2"
    )
    run = rnnkit(
        "run", "--task", "video-action", "--data", data, "--out", str(out), "--epochs", "1"
    )
    assert run.returncode == 2, run.stderr
    assert run.stderr.strip() == expected
    assert not out.exists() or not any(out.rglob("*"))  # no half-made run folder
    check = rnnkit("check-data", "--task", "video-action", "--data", data)
    assert check.returncode == 2, check.stdout + check.stderr
    assert check.stderr.strip() == expected


def test_one_image_class_is_one_line_naming_the_folder(rnnkit: CliRunner, tmp_path: Path) -> None:
    root = one_class_images(tmp_path / "pictures")
    out = tmp_path / "runs"
    args = ("--task", "image-classify", "--data", f"imagefolder:{root}", "--out", str(out))
    run = rnnkit("run", *args, "--epochs", "1")
    assert run.returncode == 2, run.stderr
    assert run.stderr.strip() == (
        f"rnnkit: error: {root}: only one class folder (seven); classification needs at least 2"
    )
    assert not out.exists() or not any(out.rglob("*"))


def test_one_class_from_any_classification_source_is_a_data_error() -> None:
    """The contract check every source passes: a third party's source of one class."""
    dataset = TensorDataset(torch.rand(4, 1, 4, 4), torch.zeros(4, dtype=torch.long))
    spec = ImageSpec(("only",), 1, 4, 4, (0.5,), (0.5,))
    with pytest.raises(DataError) as caught:
        check_bundle(DataBundle(dataset, dataset, dataset, spec), "image", "p:one")
    assert str(caught.value) == (
        "data source 'p:one': only one class (only); classification needs at least 2"
    )


def test_one_segmentation_class_is_not_the_classification_error() -> None:
    frames = torch.rand(2, 1, 3, 4, 4)
    masks = torch.zeros(2, 1, 4, 4, dtype=torch.long)
    dataset = TensorDataset(frames, masks)
    spec = SegmentationSpec(("background",), 3, 4, 4, (0.5,) * 3, (0.5,) * 3)
    check_bundle(DataBundle(dataset, dataset, dataset, spec), "segmentation", "p:seg")


# ------------------------------------------------------------------------------ fractions


@pytest.mark.parametrize(
    ("task", "items"),
    [("video-action", "videos"), ("image-classify", "images"), ("seg-refine", "videos or images")],
)
def test_fractions_that_add_up_to_1_or_more_name_the_fractions(task: str, items: str) -> None:
    config = defaults(task)
    apply_overrides(config, ["data.source=videofolder", "data.path=/nowhere"])
    apply_overrides(config, ["data.val_fraction=0.7", "data.test_fraction=0.5"])
    with pytest.raises(ConfigError) as caught:
        validate(config)
    assert str(caught.value) == (
        f"data.val_fraction + data.test_fraction: 0.7 + 0.5 = 1.2 leaves no training {items} "
        "(must be < 1)"
    )


@pytest.mark.parametrize(
    ("task", "source"),
    [("video-action", "ucf101"), ("image-classify", "mnist"), ("seg-refine", "camvid")],
)
def test_sources_that_hold_out_one_fraction_or_none_are_not_refused(task: str, source: str) -> None:
    config = defaults(task)
    apply_overrides(config, [f"data.source={source}", "data.val_fraction=0.9"])
    apply_overrides(config, ["data.test_fraction=0.5"])
    validate(config)


# ------------------------------------------------------------------------ sparse mask values


def mask_folder(root: Path, values: tuple[int, ...]) -> Path:
    """root/images/*.png and root/masks/*.png: 6 images of 16x16, masks storing ``values``."""
    (root / "images").mkdir(parents=True)
    (root / "masks").mkdir()
    for k in range(6):
        image = np.full((16, 16, 3), 40 * k, dtype=np.uint8)
        Image.fromarray(image).save(root / "images" / f"{k}.png")
        mask = np.zeros((16, 16), dtype=np.uint8)
        for i, value in enumerate(values):
            mask[i * 4 : i * 4 + 4] = value
        Image.fromarray(mask, mode="L").save(root / "masks" / f"{k}.png")
    return root


def open_masks(root: Path, *overrides: str) -> DataBundle:
    from rnnkit_segrefine.data import maskfolder

    config = defaults("seg-refine")
    apply_overrides(config, ["data.source=maskfolder", f"data.path={root}", *overrides])
    validate(config)
    return maskfolder(config)


def warnings(capsys: pytest.CaptureFixture[str]) -> list[str]:
    return [line for line in capsys.readouterr().err.splitlines() if "warning" in line]


def test_sparse_mask_values_get_one_notice_with_the_fix(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    root = mask_folder(tmp_path / "shapes", (0, 128, 255))
    bundle = open_masks(root)
    assert bundle.spec.num_classes == 256  # what the notice warns about
    assert warnings(capsys) == [
        f"rnnkit: warning: {root}: mask values 0, 128, 255 make a 256-class model; if these are "
        "3 classes, set data.mask_values to {0: 0, 128: 1, 255: 2}"
    ]
    fixed = open_masks(root, "data.mask_values={0: 0, 128: 1, 255: 2}")  # the fix, as written
    assert fixed.spec.num_classes == 3
    assert warnings(capsys) == []


@pytest.mark.parametrize("values", [(0, 1, 2), (0, 255)], ids=["dense", "binary-0-255"])
def test_dense_or_binary_masks_get_no_sparse_notice(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], values: tuple[int, ...]
) -> None:
    open_masks(mask_folder(tmp_path / "shapes", values))
    assert not [line for line in warnings(capsys) if "class model" in line]
