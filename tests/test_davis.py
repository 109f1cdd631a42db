"""The ``davis:PATH`` source of seg-refine on small DAVIS-layout folders written here (JPEG frames,
0/255 grey masks for DAVIS-2016, palette masks of object ids for DAVIS-2017), and check-data on
them."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from rnnkit_segrefine.data import davis as davis_source
from rnnkit_segrefine.readers import davis, davis_splits, write_index_png

from rnnvision_kit import ConfigError, DataError, RunConfig
from tests.conftest import CliRunner

H, W = 24, 32
SPLITS = ("train", "val", "test")
VIDEOS = ("bear", "boat", "car", "dog", "elk", "fox", "goat", "hare")
VAL = ("goat", "hare")


def make_davis(
    root: Path,
    version: int,
    videos: tuple[str, ...] = VIDEOS,
    frames: int = 4,
    resolution: str = "480p",
    imagesets: bool = True,
) -> Path:
    """A DAVIS folder: ``JPEGImages/<res>/<video>/00000.jpg``, ``Annotations/<res>/<video>/
    00000.png`` and ``ImageSets`` (2016: frame/mask path pairs; 2017: video names)."""
    rng = np.random.default_rng(0)
    for v, name in enumerate(videos):
        for t in range(frames):
            mask = np.zeros((H, W), dtype=np.uint8)
            mask[4 + t : 12 + t, 4:14] = 1
            if version == 2017 and v % 2:
                mask[14:20, 18:28] = 2  # a second object in every other video
            frame = root / "JPEGImages" / resolution / name / f"{t:05d}.jpg"
            annotation = root / "Annotations" / resolution / name / f"{t:05d}.png"
            frame.parent.mkdir(parents=True, exist_ok=True)
            annotation.parent.mkdir(parents=True, exist_ok=True)
            Image.fromarray(rng.integers(0, 256, (H, W, 3), dtype=np.uint8)).save(frame)
            if version == 2016:
                Image.fromarray(mask * 255).save(annotation)  # mode L, values 0 and 255
            else:
                write_index_png(annotation, mask)  # mode P, values = object ids
    if imagesets:
        train = [n for n in videos if n not in VAL]
        val = [n for n in videos if n in VAL]
        if version == 2016:
            folder = root / "ImageSets" / resolution
            lines = [
                [
                    f"/JPEGImages/{resolution}/{n}/{t:05d}.jpg /Annotations/{resolution}/{n}/{t:05d}.png"
                    for n in names
                    for t in range(frames)
                ]
                for names in (train, val)
            ]
        else:
            folder = root / "ImageSets" / "2017"
            lines = [train, val]
        folder.mkdir(parents=True, exist_ok=True)
        for split, names in zip(("train", "val"), lines, strict=True):
            (folder / f"{split}.txt").write_text("".join(f"{line}\n" for line in names))
    return root


def config(path: Path, *overrides: str) -> RunConfig:
    from rnnkit_segrefine import plugin

    from rnnvision_kit.config import apply_overrides, validate
    from rnnvision_kit.runner.pipeline import open_task
    from rnnvision_kit.testing import plugin_host

    task = open_task(plugin_host(segrefine=plugin).registries, "seg-refine")
    cfg = task.default_config()
    cfg.data.source, cfg.data.path, cfg.data.clip_len = "davis", str(path), 2
    apply_overrides(cfg, overrides)
    validate(cfg)
    return cfg


def videos_of(dataset: object) -> set[str]:
    base = getattr(dataset, "dataset", dataset)
    indices = getattr(dataset, "indices", range(len(base.clips)))
    return {base.clips[i][0][0].parent.name for i in indices}


# ----------------------------------------------------------------------------- layouts


def test_davis_2016_masks_0_255_are_classes_0_1(
    tmp_path: Path, capsys: pytest.CaptureFixture
) -> None:
    root = make_davis(tmp_path / "DAVIS", 2016)
    assert davis_splits(root)[0] == {"train": list(VIDEOS[:6]), "val": list(VAL)}
    bundle = davis_source(config(root))
    err = capsys.readouterr().err
    assert err.count("warning") == 1 and "masks store only 0 and 255: read as classes 0/1" in err
    spec = bundle.spec
    assert spec.class_names == ("background", "foreground") and spec.num_classes == 2
    assert (spec.height, spec.width, spec.clip_len) == (H, W, 2)
    frames, masks = bundle.train[0]
    assert frames.shape == (2, 3, H, W) and masks.shape == (2, H, W)
    assert set(masks.unique().tolist()) == {0, 1}
    assert masks[0, 4:12, 4:14].eq(1).all() and masks[0, :4].eq(0).all()
    # DAVIS val videos are the test split; val is carved out of the train videos by video
    assert videos_of(bundle.test) == set(VAL)
    val, train = videos_of(bundle.val), videos_of(bundle.train)
    assert len(val) == 1 and not val & train and val | train == set(VIDEOS[:6])


def test_davis_2017_object_ids_or_binary(tmp_path: Path) -> None:
    root = make_davis(tmp_path, 2017)
    bundle = davis_source(config(root))
    assert bundle.spec.class_names == ("background", "object1", "object2")
    assert videos_of(bundle.test) == set(VAL)
    ids = set().union(
        *(set(bundle.train[i][1].unique().tolist()) for i in range(len(bundle.train)))
    )
    assert ids == {0, 1, 2}

    binary = davis_source(config(root, "data.binary=true"))
    assert binary.spec.class_names == ("background", "foreground")
    masks = binary.test[2][1]  # hare (clips 2, 3): two objects, both foreground
    assert set(masks.unique().tolist()) == {0, 1} and masks[0, 14:20, 18:28].eq(1).all()


def test_davis_without_split_files_is_split_by_video(tmp_path: Path) -> None:
    root = make_davis(tmp_path, 2017, imagesets=False)
    bundle = davis_source(config(root, "data.val_fraction=0.2", "data.test_fraction=0.3"))
    parts = [videos_of(s) for s in (bundle.train, bundle.val, bundle.test)]
    assert [len(p) for p in parts] == [4, 2, 2]
    assert set().union(*parts) == set(VIDEOS)


def test_davis_found_under_a_parent_folder_and_by_resolution(tmp_path: Path) -> None:
    make_davis(tmp_path / "DAVIS", 2017, resolution="Full-Resolution")
    with pytest.raises(
        DataError, match=r"480p: no such resolution folder \(found: Full-Resolution"
    ):
        davis_source(config(tmp_path))
    bundle = davis_source(config(tmp_path, "data.resolution=Full-Resolution"))
    assert len(bundle.train) > 0
    with pytest.raises(DataError, match="no JPEGImages/ and Annotations/ folders"):
        davis(tmp_path / "DAVIS" / "ImageSets")


def test_davis_listed_video_missing_and_clip_options(tmp_path: Path) -> None:
    root = make_davis(tmp_path, 2017)
    assert len(davis(root, "val", clip_len=2, stride=1)) == 2 * 3
    with pytest.raises(ConfigError, match="clip_len"):
        davis(root, clip_len=0)
    (root / "ImageSets" / "2017" / "val.txt").write_text("goat\nnope\n")
    with pytest.raises(DataError, match=r"480p/nope: video folder does not exist, listed in"):
        davis(root, "val", clip_len=2)
    ds = davis(root, "val", clip_len=2, on_error="skip")
    assert len(ds) == 2 and len(ds.skipped) == 1


def test_a_value_not_in_mask_values_names_the_file_and_the_value(tmp_path: Path) -> None:
    root = make_davis(tmp_path, 2016)
    bad = root / "Annotations" / "480p" / "car" / "00002.png"
    mask = np.asarray(Image.open(bad)).copy()
    mask[0, 0] = 128
    Image.fromarray(mask).save(bad)
    with pytest.raises(DataError) as info:
        davis_source(config(root, "data.mask_values={0: 0, 255: 1}"))
    assert str(info.value) == f"{bad}: value 128 is not in data.mask_values (0, 255)"
    bundle = davis_source(config(root, "data.mask_values={0: 0, 255: 1}", "data.on_error=skip"))
    assert bundle.skipped == [(str(bad), "value 128 is not in data.mask_values (0, 255)")]
    # without a mapping the masks are no longer 0/255 only: read as stored, 256 classes
    assert davis_source(config(root, "data.on_error=skip")).spec.num_classes == 256


# ----------------------------------------------------------------------------- check-data


def _table(stdout: str) -> dict[tuple[str, str], str]:
    rows = [line.split(None, 2) for line in stdout.splitlines()[2:] if line.strip()]
    return {(r[0], r[1]): r[2] for r in rows if len(r) == 3}


def test_check_data_on_davis_2016_reports_two_classes_and_the_mapping(
    tmp_path: Path, rnnkit: CliRunner
) -> None:
    root = make_davis(tmp_path / "DAVIS", 2016, frames=8)  # one clip of data.clip_len=8
    result = rnnkit("check-data", "--task", "seg-refine", "--data", f"davis:{root}")
    assert result.returncode == 0, result.stderr
    table = _table(result.stdout)
    assert [name for kind, name in table if kind == "class"] == ["background", "foreground"]
    test = table[("split", "test")]  # the 2 val videos, and where they come from (issue 20)
    assert test.startswith("2 clips, 16 frames: the videos of split file ")
    assert test.endswith("val.txt (DAVIS publishes no test annotations in this layout)")
    assert "mask values -> class ids: {0: 0, 255: 1} (detected binary masks" in result.stdout
    assert "read as classes 0/1" in result.stderr

    result = rnnkit(
        "check-data", "--task", "seg-refine", "--data", f"davis:{root}", "--set",
        "data.mask_values={0: 0, 255: 1}", "--set", "data.clip_len=2",
    )  # fmt: skip
    assert result.returncode == 0 and "(data.mask_values)" in result.stdout
    assert "warning" not in result.stderr  # asked for: not announced


def test_check_data_suggests_a_mapping_where_most_classes_are_empty(
    tmp_path: Path, rnnkit: CliRunner
) -> None:
    root = make_davis(tmp_path, 2016)
    for path in root.glob("Annotations/480p/*/*.png"):  # 0/128/255: not detected as binary
        mask = np.asarray(Image.open(path)).copy()
        mask[0, :4] = 128
        Image.fromarray(mask).save(path)
    check = ["check-data", "--task", "seg-refine", "--data", f"davis:{root}"]
    result = rnnkit(*check, "--set", "data.clip_len=2")
    assert result.returncode == 0, result.stderr
    assert "only 3 of 256 class ids occur" in result.stdout
    assert "--set 'data.mask_values={0: 0, 128: 1, 255: 2}'" in result.stdout
    assert (
        "classes with no pixels: object1, object2," in result.stdout
        and "(253 in all)" in result.stdout
    )
    assert [name for kind, name in _table(result.stdout) if kind == "class"] == [
        "background",
        "object128",
        "object255",
    ]  # 256 classes: only those with pixels get a row
    result = rnnkit(
        *check, "--set", "data.clip_len=2", "--set", "data.mask_values={0: 0, 128: 1, 255: 2}"
    )
    assert (
        result.returncode == 0 and len([k for k in _table(result.stdout) if k[0] == "class"]) == 3
    )


def test_mask_values_setting_forms() -> None:
    """The int-keyed mapping comes through --set, YAML (also with quoted keys) and None."""
    from rnnkit_segrefine.config import SegDataConfig

    from rnnvision_kit.config import apply_overrides, set_value

    data = SegDataConfig()
    apply_overrides(data, ["mask_values={0: 0, 255: 1}"])
    assert data.mask_values == {0: 0, 255: 1}
    set_value(data, "mask_values", {"0": "0", "128": 1})  # as a YAML file may quote them
    assert data.mask_values == {0: 0, 128: 1}
    set_value(data, "mask_values", "{0: 1}")
    assert data.mask_values == {0: 1}
    apply_overrides(data, ["mask_values=null"])
    assert data.mask_values is None
    for bad, message in {
        "{0: [}": "is not a mapping like {a: b}",
        "{0: x}": "expected an integer, got 'x'",
    }.items():
        with pytest.raises(ConfigError, match=message):
            set_value(data, "mask_values", bad)


def test_check_data_on_davis_without_imagesets_names_the_carved_videos(
    tmp_path: Path, rnnkit: CliRunner
) -> None:
    """No ImageSets/: check-data says so and which videos went to each split (issue 20)."""
    root = make_davis(tmp_path / "DAVIS", 2016, frames=8, imagesets=False)
    result = rnnkit("check-data", "--task", "seg-refine", "--data", f"davis:{root}")
    assert result.returncode == 0, result.stderr
    table = _table(result.stdout)
    assert "(no ImageSets/ split files)" in table[("split", "test")]
    named = [table[("carved", split)].split(": ", 1)[1].split(", ") for split in SPLITS]
    assert sorted(name for names in named for name in names) == sorted(VIDEOS)
    assert "the 'carved' rows name what the fixed split seed put in each" in result.stdout
