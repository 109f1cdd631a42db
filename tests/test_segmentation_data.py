"""seg-refine's segmentation readers (maskfolder, videomasks, camvid), mask values (0/255
detection, ``mask_values``, ``binary``), bad-input policies, synthetic data and the augmentation
of training clips (``rnnkit_segrefine.readers``, ``.synthetic``, ``.data``)."""

from __future__ import annotations

import re
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from PIL import Image
from rnnkit_segrefine.readers import (
    CAMVID_CLASSES,
    SegmentationClips,
    camvid,
    check_divisible,
    maskfolder,
    open_segmentation,
    read_mask,
    videomasks,
    write_index_png,
)
from rnnkit_segrefine.synthetic import ensure_synthetic_seg

from rnnvision_kit import ConfigError, DataError, UnreadableItem
from rnnvision_kit.data.cache import MARKER

H, W = 12, 16


def write_image(path: Path, seed: int = 0, size: tuple[int, int] = (H, W)) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    rgb = np.random.default_rng(seed).integers(0, 256, size=(*size, 3), dtype=np.uint8)
    Image.fromarray(rgb).save(path)


def write_mask(path: Path, value: int = 1, size: tuple[int, int] = (H, W)) -> np.ndarray:
    path.parent.mkdir(parents=True, exist_ok=True)
    mask = np.zeros(size, dtype=np.uint8)
    mask[: size[0] // 2] = value
    write_index_png(path, mask)
    return mask


def make_maskfolder(root: Path, n: int = 3, suffix: str = ".png") -> Path:
    for i in range(n):
        write_image(root / "images" / f"img{i}{suffix}", seed=i)
        write_mask(root / "masks" / f"img{i}.png", value=i % 3)
    return root


# ----------------------------------------------------------------------------- mask files


def test_index_png_round_trip_is_palette_mode(tmp_path: Path) -> None:
    mask = np.arange(H * W).reshape(H, W) % 7
    write_index_png(tmp_path / "m.png", mask)
    assert Image.open(tmp_path / "m.png").mode == "P"
    got = read_mask(tmp_path / "m.png")
    assert got.dtype == np.int64
    np.testing.assert_array_equal(got, mask)
    write_index_png(tmp_path / "t.png", torch.ones(2, 3, dtype=torch.long))
    np.testing.assert_array_equal(read_mask(tmp_path / "t.png"), np.ones((2, 3)))


def test_read_mask_grey_and_rgb_with_palette(tmp_path: Path) -> None:
    Image.fromarray(np.full((2, 2), 5, dtype=np.uint8)).save(tmp_path / "l.png")
    assert (read_mask(tmp_path / "l.png") == 5).all()
    rgb = np.zeros((2, 2, 3), dtype=np.uint8)
    rgb[0] = (255, 0, 0)
    Image.fromarray(rgb).save(tmp_path / "rgb.png")
    expected = np.array([[2, 2], [0, 0]])
    by_dict = read_mask(tmp_path / "rgb.png", palette={(0, 0, 0): 0, (255, 0, 0): 2})
    by_list = read_mask(tmp_path / "rgb.png", palette=[(0, 0, 0), (9, 9, 9), (255, 0, 0)])
    np.testing.assert_array_equal(by_dict, expected)
    np.testing.assert_array_equal(by_list, expected)
    with pytest.raises(DataError, match="needs a palette"):
        read_mask(tmp_path / "rgb.png")
    with pytest.raises(DataError, match=r"colour \(255, 0, 0\) is not in the palette"):
        read_mask(tmp_path / "rgb.png", palette=[(0, 0, 0)])


def test_check_divisible() -> None:
    assert check_divisible((64, 96)) == (64, 96)
    with pytest.raises(DataError, match=r"360x480 is not divisible by 32.*size=\(384, 480\)"):
        check_divisible((360, 480), 32)


# ----------------------------------------------------------------------------- maskfolder


def test_maskfolder_items(tmp_path: Path) -> None:
    root = make_maskfolder(tmp_path / "ds")
    write_image(root / "images" / "img3.jpg", seed=3)
    write_mask(root / "masks" / "img3.png", value=2)
    (root / "images" / "notes.txt").write_text("not an image, ignored")
    ds = maskfolder(root)
    assert isinstance(ds, SegmentationClips) and len(ds) == 4
    frames, masks = ds[0]
    assert frames.shape == (1, 3, H, W) and frames.dtype == torch.float32
    assert masks.shape == (1, H, W) and masks.dtype == torch.int64
    assert frames.min() >= 0.0 and frames.max() <= 1.0
    assert ds.num_classes == 3  # inferred: largest id + 1
    assert ds.frame_size == (H, W) and ds.skipped == []
    expected = np.asarray(Image.open(root / "images" / "img1.png"), dtype=np.float32) / 255
    np.testing.assert_allclose(ds[1][0][0].permute(1, 2, 0).numpy(), expected)


def test_maskfolder_resize_uses_nearest_for_masks(tmp_path: Path) -> None:
    ds = maskfolder(make_maskfolder(tmp_path), size=(32, 64))
    frames, masks = ds[2]
    assert frames.shape == (1, 3, 32, 64) and masks.shape == (1, 32, 64)
    assert set(masks.unique().tolist()) == {0, 2}
    assert ds.frame_size == (32, 64)
    assert ds.check_divisible(32) == (32, 64)
    with pytest.raises(DataError, match="not divisible by 32"):
        maskfolder(tmp_path).check_divisible(32)


def test_maskfolder_splits(tmp_path: Path) -> None:
    make_maskfolder(tmp_path / "train", n=3)
    make_maskfolder(tmp_path / "val", n=2)
    assert len(maskfolder(tmp_path, "train")) == 3
    assert len(open_segmentation(f"maskfolder:{tmp_path}", split="val")) == 2
    with pytest.raises(DataError, match="has splits train, val; pass split="):
        maskfolder(tmp_path)
    with pytest.raises(DataError, match="split 'test' does not exist"):
        maskfolder(tmp_path, "test")


def test_missing_folder_and_bad_options(tmp_path: Path) -> None:
    with pytest.raises(DataError, match="does not exist"):
        maskfolder(tmp_path / "nope")
    with pytest.raises(DataError, match="no images/ folder"):
        maskfolder(tmp_path)
    root = make_maskfolder(tmp_path / "ds")
    with pytest.raises(ConfigError, match="on_error"):
        maskfolder(root, on_error="ignore")
    with pytest.raises(ConfigError, match="KIND:PATH"):
        open_segmentation(str(root))


# ----------------------------------------------------------------------------- bad input


def mask_size_differs(root: Path) -> tuple[Path, str]:
    write_mask(root / "masks" / "img1.png", size=(H + 2, W))
    return (
        root / "masks" / "img1.png",
        "mask size 16x14 differs from its image img1.png (16x12, WxH)",
    )


def value_out_of_range(root: Path) -> tuple[Path, str]:
    write_mask(root / "masks" / "img1.png", value=7)
    return root / "masks" / "img1.png", "class id 7 outside 0..2, ignore_index 255"


def frame_without_mask(root: Path) -> tuple[Path, str]:
    write_image(root / "images" / "img9.png")
    return root / "images" / "img9.png", "no mask"


def corrupt_image(root: Path) -> tuple[Path, str]:
    (root / "images" / "img1.png").write_bytes(b"definitely not a PNG")
    return root / "images" / "img1.png", "not a readable image"


def truncated_image(root: Path) -> tuple[Path, str]:
    path = root / "images" / "img1.png"
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])
    return path, "not a readable image"


def corrupt_mask(root: Path) -> tuple[Path, str]:
    (root / "masks" / "img1.png").write_bytes(b"\x89PNG garbage")
    return root / "masks" / "img1.png", "not a readable mask image"


BAD_INPUTS = [
    mask_size_differs,
    value_out_of_range,
    frame_without_mask,
    corrupt_image,
    truncated_image,
    corrupt_mask,
]


@pytest.mark.parametrize("breakage", BAD_INPUTS)
def test_bad_input_raises_one_line_error_naming_the_file(
    tmp_path: Path, breakage: Callable[[Path], tuple[Path, str]]
) -> None:
    root = make_maskfolder(tmp_path)
    write_mask(root / "masks" / "img2.png", value=255)  # ignore_index is allowed
    bad, reason = breakage(root)
    with pytest.raises(DataError) as info:
        maskfolder(root, num_classes=3, ignore_index=255)
    message = str(info.value)
    assert "\n" not in message
    assert message.startswith(f"{bad}: ")
    assert reason in message


@pytest.mark.parametrize("breakage", BAD_INPUTS)
def test_bad_input_skipped_with_one_warning(
    tmp_path: Path, breakage: Callable[[Path], tuple[Path, str]], capsys: pytest.CaptureFixture
) -> None:
    root = make_maskfolder(tmp_path)
    bad, reason = breakage(root)
    ds = maskfolder(root, num_classes=3, ignore_index=255, on_error="skip")
    assert len(ds) == (3 if breakage is frame_without_mask else 2)
    assert len(ds.skipped) == 1
    path, why = ds.skipped[0]
    assert path == str(bad) and reason in why
    err = capsys.readouterr().err
    assert err.count("warning") == 1 and str(bad) in err
    for i in range(len(ds)):
        assert ds[i][1].max() < 3


def test_every_file_bad_is_an_error_even_when_skipping(tmp_path: Path) -> None:
    root = make_maskfolder(tmp_path, n=1)
    (root / "images" / "img0.png").write_bytes(b"junk")
    with pytest.raises(DataError, match="no usable clips; first skipped: .*img0.png"):
        maskfolder(root, on_error="skip")


def test_mask_without_image_and_jpeg_mask(tmp_path: Path) -> None:
    root = make_maskfolder(tmp_path)
    write_mask(root / "masks" / "orphan.png")
    with pytest.raises(DataError, match="orphan.png: mask has no image"):
        maskfolder(root)
    (root / "masks" / "orphan.png").unlink()
    write_image(root / "images" / "j.png")
    Image.fromarray(np.zeros((H, W), dtype=np.uint8)).save(root / "masks" / "j.jpg")
    with pytest.raises(DataError, match="j.jpg: mask is not a PNG"):
        maskfolder(root)


def test_undecodable_jpeg_found_at_load_time_raises_data_error(tmp_path: Path) -> None:
    path = tmp_path / "images" / "big.jpg"
    write_image(path, size=(128, 128))
    write_mask(tmp_path / "masks" / "big.png", size=(128, 128))
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])  # JPEG headers pass the scan; pixels do not
    ds = maskfolder(tmp_path)
    with pytest.raises(DataError, match=r"big.jpg: cannot decode image"):
        ds[0]


# ----------------------------------------------------------------------------- mask values


def write_grey_mask(path: Path, values: tuple[int, ...], size: tuple[int, int] = (H, W)) -> None:
    """A mode-L mask whose rows cycle through ``values``."""
    path.parent.mkdir(parents=True, exist_ok=True)
    rows = np.array(values, dtype=np.uint8)[np.arange(size[0]) % len(values)]
    Image.fromarray(np.repeat(rows[:, None], size[1], axis=1)).save(path)


def grey_maskfolder(root: Path, *values: tuple[int, ...]) -> Path:
    for i, vals in enumerate(values):
        write_image(root / "images" / f"img{i}.png", seed=i)
        write_grey_mask(root / "masks" / f"img{i}.png", vals)
    return root


def test_masks_storing_0_and_255_are_read_as_0_and_1(tmp_path: Path) -> None:
    ds = maskfolder(grey_maskfolder(tmp_path, (0, 255), (0,)))
    assert ds.mask_values == {0: 0, 255: 1} and ds.mask_how == "detected 0/255"
    assert ds.stored_values == (0, 255) and ds.num_classes == 2
    assert ds[0][1][0, :2, 0].tolist() == [0, 1] and ds[1][1].eq(0).all()
    # 255 as the ignore index is not a class: no detection
    ignoring = maskfolder(tmp_path, ignore_index=255)
    assert ignoring.mask_values is None and ignoring[0][1].max() == 255
    assert ignoring.num_classes == 1  # ids 0..0; the data source makes it at least 2
    # other values too: read as stored
    write_grey_mask(tmp_path / "masks" / "img1.png", (0, 128))
    assert maskfolder(tmp_path).mask_values is None and maskfolder(tmp_path).num_classes == 256


def test_mask_values_map_stored_values_and_name_a_file_with_another(tmp_path: Path) -> None:
    root = grey_maskfolder(tmp_path, (0, 10, 20), (0, 20))
    ds = maskfolder(root, mask_values={0: 0, 10: 2, 20: 1})
    assert ds.mask_how == "mask_values" and ds.num_classes == 3
    assert ds[0][1][0, :3, 0].tolist() == [0, 2, 1]
    with pytest.raises(DataError) as info:
        maskfolder(root, mask_values={0: 0, 20: 1})
    assert (
        str(info.value)
        == f"{root / 'masks' / 'img0.png'}: value 10 is not in data.mask_values (0, 20)"
    )
    skipped = maskfolder(root, mask_values={0: 0, 20: 1}, on_error="skip")
    assert len(skipped) == 1 and "value 10 is not in data.mask_values" in skipped.skipped[0][1]
    # the ignore index may stay unmapped; mapped ids are checked against num_classes
    kept = maskfolder(root, mask_values={0: 0, 20: 1}, ignore_index=10)
    assert kept[0][1][0, :3, 0].tolist() == [0, 10, 1]
    with pytest.raises(DataError, match=r"class id 5 outside 0..1, after data.mask_values"):
        maskfolder(root, mask_values={0: 0, 10: 5, 20: 1}, num_classes=2)


def test_binary_makes_every_value_but_0_class_1(tmp_path: Path) -> None:
    root = grey_maskfolder(tmp_path, (0, 1, 2, 3), (0, 7))
    ds = maskfolder(root, binary=True)
    assert ds.mask_values == {0: 0, 1: 1, 2: 1, 3: 1, 7: 1} and ds.num_classes == 2
    assert ds[0][1][0, :4, 0].tolist() == [0, 1, 1, 1]
    assert maskfolder(root, binary=True, ignore_index=7)[1][1][0, :2, 0].tolist() == [0, 7]
    with pytest.raises(ConfigError, match="only one of mask_values and binary"):
        maskfolder(root, binary=True, mask_values={0: 0})


def test_a_grey_mask_saved_as_rgb_is_read_as_grey(tmp_path: Path) -> None:
    grey = np.zeros((H, W), dtype=np.uint8)
    grey[: H // 2] = 255
    Image.fromarray(np.stack([grey] * 3, axis=-1)).save(tmp_path / "rgb.png")
    np.testing.assert_array_equal(read_mask(tmp_path / "rgb.png"), grey)


# ----------------------------------------------------------------------------- videomasks


def make_videos(root: Path, lengths: dict[str, int]) -> Path:
    for video, n in lengths.items():
        for t in range(n):
            write_image(root / video / "frames" / f"f{t}.jpg", seed=t)
            write_mask(root / video / "masks" / f"f{t}.png", value=t % 2)
    return root


def test_videomasks_clips_and_stride(tmp_path: Path) -> None:
    # natural order: f2 before f10
    root = make_videos(tmp_path, {"a": 11, "b": 4, "short": 2})
    ds = videomasks(root, clip_len=4)
    assert len(ds) == 3  # a: 0-3, 4-7; b: 0-3; short: none
    frames, masks = ds[0]
    assert frames.shape == (4, 3, H, W) and masks.shape == (4, H, W)
    assert [p.name for p, _ in ds.clips[1]] == ["f4.jpg", "f5.jpg", "f6.jpg", "f7.jpg"]
    assert masks[:, 0, 0].tolist() == [0, 1, 0, 1]
    assert len(videomasks(root, clip_len=4, stride=1)) == 8 + 1
    with pytest.raises(DataError, match="no video has 20 frames"):
        videomasks(root, clip_len=20)


def test_videomasks_skipped_frame_cuts_the_video(tmp_path: Path) -> None:
    root = make_videos(tmp_path, {"a": 7})
    (root / "a" / "masks" / "f3.png").unlink()
    with pytest.raises(DataError, match="f3.jpg: no mask"):
        videomasks(root, clip_len=3)
    ds = videomasks(root, clip_len=3, stride=1, on_error="skip")
    assert [[p.name for p, _ in clip] for clip in ds.clips] == [
        ["f0.jpg", "f1.jpg", "f2.jpg"],
        ["f4.jpg", "f5.jpg", "f6.jpg"],
    ]


def test_videomasks_frame_size_change_needs_resize(tmp_path: Path) -> None:
    root = make_videos(tmp_path, {"a": 3})
    write_image(root / "a" / "frames" / "f2.jpg", size=(H, W + 4))
    write_mask(root / "a" / "masks" / "f2.png", size=(H, W + 4))
    with pytest.raises(DataError, match="f2.jpg: frame is 20x12 but the video's first frame"):
        videomasks(root, clip_len=3)
    assert videomasks(root, clip_len=3, size=(H, W))[0][0].shape == (3, 3, H, W)


# ----------------------------------------------------------------------------- camvid


def test_camvid_layout_and_ignore_index(tmp_path: Path) -> None:
    for split in ("train", "val"):
        for i in range(2):
            write_image(tmp_path / split / f"0001TP_{i:06d}.png", seed=i)
            write_mask(tmp_path / f"{split}annot" / f"0001TP_{i:06d}.png", value=11 - i)
    ds = open_segmentation(f"camvid:{tmp_path}", split="val")
    assert len(ds) == 2 and ds.num_classes == 12 and ds.ignore_index == 11
    assert ds.class_names == list(CAMVID_CLASSES)
    assert ds[0][1].max() == 11
    write_mask(tmp_path / "trainannot" / "0001TP_000001.png", value=12)
    with pytest.raises(DataError, match=r"0001TP_000001.png: class id 12 outside 0..11"):
        camvid(tmp_path)
    with pytest.raises(DataError, match="test: image folder does not exist"):
        camvid(tmp_path, "test")


# ----------------------------------------------------------------------------- synthetic


def test_synthetic_seg_generates_once_deterministically(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("RNNKIT_CACHE", str(tmp_path / "a"))
    root = ensure_synthetic_seg((3, 1, 1), num_frames=4, size=32, seed=5)
    assert root.parent == tmp_path / "a" / "synthetic-seg"
    assert (root / MARKER).is_file()
    assert not [p for p in root.parent.iterdir() if p.name.startswith(".tmp")]
    first = root / "train" / "v0000" / "frames" / "0000.png"
    stamp = first.stat().st_mtime_ns
    assert ensure_synthetic_seg((3, 1, 1), num_frames=4, size=32, seed=5) == root
    assert first.stat().st_mtime_ns == stamp  # reused, not regenerated

    ds = videomasks(root, "train", clip_len=4)
    assert len(ds) == 3 and len(videomasks(root, "test", clip_len=4)) == 1
    frames, masks = ds[0]
    assert frames.shape == (4, 3, 32, 32) and masks.shape == (4, 32, 32)
    assert ds.num_classes <= 4 and (masks > 0).any() and (masks == 0).any()

    monkeypatch.setenv("RNNKIT_CACHE", str(tmp_path / "b"))
    again = ensure_synthetic_seg((3, 1, 1), num_frames=4, size=32, seed=5)
    for path in sorted(root.rglob("*.png")):
        assert path.read_bytes() == (again / path.relative_to(root)).read_bytes()
    other = ensure_synthetic_seg((3, 1, 1), num_frames=4, size=32, seed=6)
    assert first.read_bytes() != (other / first.relative_to(root)).read_bytes()


def test_synthetic_seg_frames_are_corrupted_masks_clean(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("RNNKIT_CACHE", str(tmp_path))
    root = ensure_synthetic_seg((6, 1, 1), num_frames=8, size=32)
    ds = videomasks(root, "train", clip_len=8)
    frames = torch.stack([ds[i][0] for i in range(len(ds))])
    masks = torch.stack([ds[i][1] for i in range(len(ds))])
    assert set(masks.unique().tolist()) <= {0, 1, 2, 3}
    # pixel noise: neighbouring pixels of one frame differ a lot, masks are piecewise constant
    assert (frames[..., 1:] - frames[..., :-1]).abs().mean() > 0.05
    assert (masks[..., 1:] != masks[..., :-1]).float().mean() < 0.1
    with pytest.raises(ValueError, match="multiples of 32"):
        ensure_synthetic_seg((1, 1, 1), size=48)


# ----------------------------------------------------------------------------- augmentation


def static_videos(root: Path, videos: int = 10, frames: int = 3) -> Path:
    """Videos whose frames are their mask drawn white on black (a rectangle that stays put), so
    frame and mask must stay aligned, and frames of a clip stay equal, under augmentation."""
    for v in range(videos):
        mask = np.zeros((32, 48), dtype=np.uint8)
        mask[4 + v : 20 + v, 6 + 2 * v : 30 + 2 * v] = 1
        for t in range(frames):
            for sub in ("frames", "masks"):
                (root / f"v{v}" / sub).mkdir(parents=True, exist_ok=True)
            Image.fromarray(np.stack([mask * 255] * 3, axis=-1)).save(
                root / f"v{v}" / "frames" / f"{t}.png"
            )
            write_index_png(root / f"v{v}" / "masks" / f"{t}.png", mask)
    return root


def seg_config(path: Path, *overrides: str) -> object:
    from rnnkit_segrefine import plugin

    from rnnvision_kit.config import apply_overrides, validate
    from rnnvision_kit.runner.pipeline import open_task
    from rnnvision_kit.testing import plugin_host

    config = open_task(plugin_host(segrefine=plugin).registries, "seg-refine").default_config()
    config.data.source, config.data.path, config.data.clip_len = "videomasks", str(path), 3
    apply_overrides(config, overrides)
    validate(config)
    return config


def test_training_clips_are_augmented_frames_and_masks_together(tmp_path: Path) -> None:
    from rnnkit_segrefine.data import AugmentedClips
    from rnnkit_segrefine.data import videomasks as source

    root = static_videos(tmp_path)
    on = ["data.augment=true", "data.crop_scale=[0.3,1]", "data.hflip=true", "data.jitter=0.3"]
    plain, bundle = source(seg_config(root)), source(seg_config(root, *on))
    train = bundle.train
    assert isinstance(train, AugmentedClips) and not isinstance(bundle.val, AugmentedClips)
    assert bundle.spec == plain.spec  # normalisation statistics from the clips as stored
    for split in ("val", "test"):  # evaluation data is never augmented
        for a, b in zip(getattr(plain, split)[0], getattr(bundle, split)[0], strict=True):
            assert torch.equal(a, b)
    changed = 0
    for epoch in range(3):
        train.set_epoch(epoch)
        for i in range(len(train)):
            frames, masks = train[i]
            raw_frames, raw_masks = plain.train[i]
            assert frames.shape == raw_frames.shape and masks.dtype == torch.int64
            assert set(masks.unique().tolist()) <= {0, 1}
            for t in range(1, frames.shape[0]):  # one draw for every frame of a clip
                assert torch.equal(frames[t], frames[0]) and torch.equal(masks[t], masks[0])
            # the mask is still where its frame shows it (but for resampling at the edges)
            grey = frames.mean(1)
            middle = (grey.amax((1, 2), keepdim=True) + grey.amin((1, 2), keepdim=True)) / 2
            wrong = (grey > middle) != masks.bool()
            edges = masks.float()[:, None]
            edges = F.max_pool2d(edges, 5, 1, 2) != -F.max_pool2d(-edges, 5, 1, 2)
            # (a small crop blown up 2x on these 32x48 frames widens the edge band to 6%)
            assert not (wrong & ~edges[:, 0]).any() and wrong.float().mean() < 0.08
            changed += not torch.equal(masks, raw_masks)
    assert changed > len(train)  # most draws move the shape
    # seeded by (run seed, epoch, index): the same item again is the same draw
    train.set_epoch(1)
    first = train[2]
    assert all(torch.equal(a, b) for a, b in zip(first, train[2], strict=True))
    train.set_epoch(2)
    assert not torch.equal(first[0], train[2][0])
    reseeded = source(seg_config(root, *on, "seed=5")).train
    reseeded.set_epoch(1)
    assert not torch.equal(first[0], reseeded[2][0])


def test_hflip_alone_flips_frames_and_masks_together(tmp_path: Path) -> None:
    from rnnkit_segrefine.data import videomasks as source

    root = static_videos(tmp_path)
    plain = source(seg_config(root)).train
    train = source(
        seg_config(
            root, "data.augment=true", "data.crop_scale=[1,1]", "data.hflip=true", "data.jitter=0"
        )
    ).train
    outcomes = set()
    for i in range(len(train)):
        (frames, masks), (raw_frames, raw_masks) = train[i], plain[i]
        if torch.equal(masks, raw_masks):
            assert torch.equal(frames, raw_frames)
            outcomes.add("kept")
        else:
            assert torch.equal(masks, raw_masks.flip(-1)) and torch.equal(
                frames, raw_frames.flip(-1)
            )
            outcomes.add("flipped")
    assert outcomes == {"kept", "flipped"}


def test_augmentation_that_does_nothing_leaves_the_data_unwrapped(tmp_path: Path) -> None:
    from rnnkit_segrefine.data import AugmentedClips
    from rnnkit_segrefine.data import videomasks as source

    root = static_videos(tmp_path)
    idle = ["data.augment=true", "data.crop_scale=[1,1]", "data.jitter=0"]
    assert not isinstance(source(seg_config(root, *idle)).train, AugmentedClips)
    assert not isinstance(source(seg_config(root, "data.hflip=true")).train, AugmentedClips)


@pytest.mark.parametrize("on_error", ["skip", "error"])
def test_an_image_that_fails_after_the_scan(tmp_path: Path, on_error: str) -> None:
    root = make_maskfolder(tmp_path / "ds", n=3, suffix=".jpg")
    ds = maskfolder(root, on_error=on_error)
    victim = root / "images" / "img1.jpg"
    data = victim.read_bytes()
    victim.write_bytes(data[: len(data) // 2])  # cut short after the scan (a copy in progress)
    assert len(ds) == 3 and ds.skipped == []
    ds[0]
    with pytest.raises(DataError, match=re.escape(str(victim))) as caught:
        ds[1]
    # skip: the runner's to count (UnreadableItem); error: the run stops on it
    assert isinstance(caught.value, UnreadableItem) == (on_error == "skip")
    assert "\n" not in str(caught.value)
