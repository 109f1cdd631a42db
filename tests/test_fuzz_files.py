"""Fuzzing the file readers of the built-in sources with damaged files written by the tests.

Images and masks (every mode PIL writes, odd sizes, then truncated, bytes flipped, zeroed,
replaced by random bytes): image-classify's image loader and imagefolder source, seg-refine's
mask reader and its maskfolder/videomasks/camvid/davis layouts, the frame folders of
video-action. Videos (real mp4, webm and avi files, truncated and with bytes flipped): probe,
the probe cache, frame reads and a clip data set behind a DataLoader worker. Every case is a
correct read, a one-line DataError naming the file, or a counted skip; never another
exception, a hang or a crashed worker.
"""

from __future__ import annotations

import functools
import io
import shutil
import struct
import zlib
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch
from hypothesis import given
from hypothesis import strategies as st
from PIL import Image

from rnnvision_kit.data import (
    ProbeCache,
    SkipUnreadable,
    VideoClipDataset,
    collate_readable,
    probe_frame_folder,
    probe_video,
    read_frame_folder,
    read_frames,
    write_video,
)
from rnnvision_kit.errors import DataError
from tests.fuzzing import BUDGETS, assert_one_line, budget, no_hang

# Damaged headers claim huge sizes: warnings, and PIL's decompression-bomb limit lowered to 4
# megapixels (errors above 8) so that no case decodes for seconds.
pytestmark = [
    pytest.mark.filterwarnings("ignore::PIL.Image.DecompressionBombWarning"),
    pytest.mark.filterwarnings("ignore::UserWarning:PIL.TiffImagePlugin"),
]


@pytest.fixture(autouse=True, scope="module")
def _small_bomb_limit() -> Any:
    previous, Image.MAX_IMAGE_PIXELS = Image.MAX_IMAGE_PIXELS, 4_000_000
    yield
    Image.MAX_IMAGE_PIXELS = previous


# ------------------------------------------------------------------------------ image files

# The modes PIL writes in each format (PNG keeps 16-bit grey as I;16; BMP writes RGBA as RGB).
FORMATS: dict[str, tuple[str, tuple[str, ...]]] = {
    "PNG": (".png", ("1", "L", "LA", "P", "I;16", "RGB", "RGBA")),
    "JPEG": (".jpg", ("L", "RGB", "CMYK")),
    "TIFF": (".tif", ("1", "L", "LA", "P", "I", "I;16", "F", "RGB", "RGBA", "CMYK")),
    "BMP": (".bmp", ("1", "L", "P", "RGB")),
    "GIF": (".gif", ("L", "P")),
    "WEBP": (".webp", ("RGB", "RGBA")),
    "PPM": (".ppm", ("L", "RGB")),
}
BYTES_PER_PIXEL = {"L": 1, "LA": 2, "P": 1, "I": 4, "I;16": 2, "F": 4, "RGB": 3, "RGBA": 4}
BYTES_PER_PIXEL["CMYK"] = 4
SIZES = [(1, 1), (1, 9), (9, 1), (1, 300), (300, 1), (2, 3), (8, 8), (31, 17)]
DAMAGE = ("none", "none", "truncate", "flip", "flip", "zeros", "random", "empty", "head", "tail")


def encode(fmt: str, mode: str, size: tuple[int, int], seed: int) -> bytes:
    """An image of random pixels (``size`` = W, H) in ``mode``, saved as ``fmt``."""
    rng = np.random.default_rng(seed)
    w, h = size
    count = (w + 7) // 8 * h if mode == "1" else w * h * BYTES_PER_PIXEL[mode]
    image = Image.frombytes(mode, size, rng.bytes(count))
    if mode == "P":
        image.putpalette(rng.bytes(768))
    out = io.BytesIO()
    image.save(out, fmt)
    return out.getvalue()


@st.composite
def image_files(draw: st.DrawFn, formats: tuple[str, ...] = tuple(FORMATS)) -> tuple[str, bytes]:
    """``(how it was damaged, file content)``: an encoded image, maybe damaged."""
    fmt = draw(st.sampled_from(formats))
    mode = draw(st.sampled_from(FORMATS[fmt][1]))
    size = draw(st.sampled_from(SIZES) | st.tuples(st.integers(1, 40), st.integers(1, 40)))
    data = encode(fmt, mode, size, draw(st.integers(0, 2**16)))
    return draw(damaged(data, f"{fmt} {mode} {size[0]}x{size[1]}"))


@st.composite
def damaged(draw: st.DrawFn, data: bytes, what: str) -> tuple[str, bytes]:
    kind = draw(st.sampled_from(DAMAGE))
    out = bytearray(data)
    if kind == "truncate":
        del out[draw(st.integers(0, len(out) - 1)) :]
    elif kind == "flip":  # mostly in the header, where sizes and chunk lengths are
        for _ in range(draw(st.integers(1, 8))):
            top = draw(st.sampled_from([min(64, len(out)), len(out)]))
            out[draw(st.integers(0, top - 1))] ^= draw(st.integers(1, 255))
    elif kind == "zeros":
        start = draw(st.integers(0, len(out) - 1))
        out[start : start + draw(st.integers(1, 64))] = bytes(min(64, len(out) - start))
    elif kind == "random":
        out = bytearray(draw(st.binary(min_size=1, max_size=300)))
    elif kind == "empty":
        out = bytearray()
    elif kind == "head":
        out = out[: draw(st.integers(1, 40))]
    elif kind == "tail":
        out += draw(st.binary(min_size=1, max_size=64))
    return f"{what}, {kind}", bytes(out)


_SCRATCH: list[Path] = []


@pytest.fixture(autouse=True, scope="module")
def _scratch_folder(tmp_path_factory: pytest.TempPathFactory) -> None:
    _SCRATCH[:] = [tmp_path_factory.mktemp("fuzz-files")]


def scratch() -> Path:
    """The folder the cases of this module write their files in (pytest's, kept 3 runs)."""
    return _SCRATCH[0]


def fresh(name: str) -> Path:
    """An empty folder ``name`` under the scratch folder (emptied for every case)."""
    folder = scratch() / name
    shutil.rmtree(folder, ignore_errors=True)
    folder.mkdir(parents=True)
    return folder


def read_or_error(read: Callable[[], Any], *names: Path) -> Any:
    """``read()``'s result, or None after a one-line DataError naming one of ``names``."""
    try:
        return read()
    except DataError as error:
        assert_one_line(error, *map(str, names))
        return None


@pytest.mark.parametrize("name", BUDGETS)
def test_image_loader_of_image_classify(name: str) -> None:
    from rnnkit_classify.data import load_image

    @budget(name, 120)
    @given(image_files(), st.sampled_from([1, 3]), st.sampled_from([(8, 8), (28, 28), (5, 1)]))
    def check(file: tuple[str, bytes], channels: int, size: tuple[int, int]) -> None:
        how, content = file
        path = fresh("classify") / "image.png"
        path.write_bytes(content)
        tensor = read_or_error(lambda: load_image(path, channels, size), path)
        if tensor is not None:
            assert tensor.dtype == torch.uint8 and tensor.shape == (channels, *size)
        elif how.endswith(", none"):
            raise AssertionError(f"an undamaged image ({how}) was not read")

    check()


MASK_MODES = ("1", "L", "P", "I", "I;16")  # read as their stored values


@pytest.mark.parametrize("name", BUDGETS)
def test_mask_reader_of_seg_refine(name: str) -> None:
    from rnnkit_segrefine.readers import read_mask

    @budget(name, 100)
    @given(image_files())
    def check(file: tuple[str, bytes]) -> None:
        how, content = file
        path = fresh("masks") / "mask.png"
        path.write_bytes(content)
        mask = read_or_error(lambda: read_mask(path), path)
        if mask is not None:
            assert mask.dtype == np.int64 and mask.ndim == 2 and min(mask.shape) >= 1
        elif how.endswith(", none") and how.split()[1] in MASK_MODES:
            raise AssertionError(f"an undamaged {how} mask was not read")

    check()


@pytest.mark.parametrize("name", BUDGETS)
def test_frame_folders_of_video_action(name: str) -> None:
    @budget(name, 40)
    @given(image_files(("PNG", "JPEG")), st.integers(0, 2))
    def check(file: tuple[str, bytes], position: int) -> None:
        how, content = file
        folder = fresh("framefolder")
        names = [f"{i:04d}.png" for i in range(3)]
        for i, frame in enumerate(names):
            if i != position:
                Image.new("RGB", (8, 6), (i * 40, 0, 0)).save(folder / frame)
        (folder / names[position]).write_bytes(content)
        bad = folder / names[position]
        info = read_or_error(lambda: probe_frame_folder(folder), bad, folder)
        frames = read_or_error(lambda: read_frame_folder(folder, [0, 1, 2, 5], info), bad)
        if frames is not None:
            assert frames.dtype == torch.uint8 and frames.shape[:2] == (4, 3)
        sized = read_or_error(lambda: read_frame_folder(folder, [2, 0], size=(4, 4)), bad)
        if sized is not None:
            assert sized.shape == (2, 3, 4, 4)

    check()


def huge_png() -> bytes:
    """A valid 1x1 PNG whose header (CRC fixed) claims 60000x60000 pixels."""
    data = bytearray(encode("PNG", "L", (1, 1), 0))
    data[16:24] = struct.pack(">II", 60000, 60000)
    data[29:33] = struct.pack(">I", zlib.crc32(bytes(data[12:29])))
    return bytes(data)


def test_what_fuzzing_found(tmp_path: Path) -> None:
    """Each raised a traceback: a header claiming a huge size (DecompressionBombError, not
    caught by image-classify's loader nor by frame folders), frames of another size in a frame
    folder (numpy's ValueError from stacking them)."""
    from rnnkit_classify.data import load_image
    from rnnkit_segrefine.readers import read_mask

    bomb = tmp_path / "bomb.png"
    bomb.write_bytes(huge_png())
    for read in (lambda: load_image(bomb, 1, (8, 8)), lambda: read_mask(bomb)):
        with pytest.raises(DataError, match="bomb.png: not a readable"):
            read()
    folder = tmp_path / "frames"
    folder.mkdir()
    for i, size in enumerate([(8, 6), (1, 1), (8, 6)]):
        Image.new("RGB", size).save(folder / f"{i}.png")
    assert read_frame_folder(folder, [0, 1, 2], probe_frame_folder(folder)).shape == (3, 3, 6, 8)
    shutil.copy(bomb, folder / "1.png")
    with pytest.raises(DataError, match="1.png: not a readable image"):
        read_frame_folder(folder, [0, 1, 2])


# Seg-refine layouts: good 8x8 pairs and one pair whose image or mask is the fuzzed file.
GOOD_PAIRS = 5
LAYOUTS = ("maskfolder", "maskfolder-source", "videomasks", "camvid", "davis")


def good_pair(image: Path, mask: Path, value: int) -> None:
    Image.new("RGB", (8, 8), (value * 30, 60, 90)).save(image)
    array = np.zeros((8, 8), np.uint8)
    array[: value + 1] = 1
    Image.fromarray(array).save(mask)


def write_layout(root: Path, layout: str, target: str, content: bytes) -> tuple[Path, Path]:
    """Write ``layout`` under ``root``; returns the fuzzed pair (image, mask)."""
    if layout.startswith("maskfolder"):
        images, masks, image_suffix = root / "images", root / "masks", ".png"
    elif layout == "videomasks":
        images, masks, image_suffix = root / "v1" / "frames", root / "v1" / "masks", ".png"
    elif layout == "camvid":
        images, masks, image_suffix = root / "train", root / "trainannot", ".png"
    else:
        images = root / "JPEGImages" / "480p" / "bear"
        masks, image_suffix = root / "Annotations" / "480p" / "bear", ".jpg"
    images.mkdir(parents=True)
    masks.mkdir(parents=True)
    pairs = [(images / f"{i:05d}{image_suffix}", masks / f"{i:05d}.png") for i in range(6)]
    for i, (image, mask) in enumerate(pairs):
        good_pair(image, mask, i)
    fuzzed = pairs[2]  # in the middle: a bad frame of a video cuts it in two
    (fuzzed[0] if target == "image" else fuzzed[1]).write_bytes(content)
    return fuzzed


def open_layout(root: Path, layout: str, on_error: str) -> tuple[list[Any], list[Any]]:
    """The data sets of ``layout`` and what was skipped, through the reader (or the source)."""
    from rnnkit_segrefine import readers

    if layout == "maskfolder-source":
        from rnnkit_segrefine.data import maskfolder

        from tests.test_fuzz_config import handle

        config = handle("seg-refine").default_config()
        config.data.source, config.data.path, config.data.on_error = (
            "maskfolder",
            str(root),
            on_error,
        )
        config.data.size = [8, 8]
        bundle = maskfolder(config)
        return [bundle.train, bundle.val, bundle.test], list(bundle.skipped)
    if layout == "maskfolder":
        dataset = readers.maskfolder(root, on_error=on_error)
    elif layout == "videomasks":
        dataset = readers.videomasks(root, clip_len=2, on_error=on_error)
    elif layout == "camvid":
        dataset = readers.camvid(root, "train", num_classes=2, ignore_index=None, on_error=on_error)
    else:
        dataset = readers.davis(root, clip_len=2, on_error=on_error)
    return [dataset], dataset.skipped


@pytest.mark.parametrize("name", BUDGETS)
def test_segmentation_layouts(name: str) -> None:
    @budget(name, 80)
    @given(
        image_files(("PNG", "JPEG", "TIFF")),
        st.sampled_from(LAYOUTS),
        st.sampled_from(["image", "mask"]),
        st.sampled_from(["error", "skip"]),
    )
    def check(file: tuple[str, bytes], layout: str, target: str, on_error: str) -> None:
        how, content = file
        root = fresh("segmentation")
        fuzzed = write_layout(root, layout, target, content)
        opened = read_or_error(lambda: open_layout(root, layout, on_error), *fuzzed, root)
        if opened is None:
            assert on_error == "error" or layout == "maskfolder-source", how
            return
        datasets, skipped = opened
        assert {path for path, _ in skipped} <= {str(p) for p in fuzzed}, skipped
        for dataset in datasets:
            for index in range(len(dataset)):
                item = read_or_error(lambda d=dataset, i=index: d[i], *fuzzed)
                if item is not None:
                    frames, masks = item
                    assert frames.dtype == torch.float32 and masks.dtype == torch.int64
                    assert frames.shape[0] == masks.shape[0] and frames.shape[1] == 3
                    assert frames.shape[-2:] == masks.shape[-2:]

    check()


def write_maskfolder(root: Path, mask: np.ndarray | None = None) -> Path:
    """Six good 8x8 pairs under ``root/images``, ``root/masks``; ``mask`` (int32, saved as a
    32-bit TIFF named .png) replaces the third mask. Returns that mask's path."""
    write_layout(root, "maskfolder", "mask", b"")
    bad = root / "masks" / "00002.png"
    if mask is None:
        good_pair(root / "images" / "00002.png", bad, 2)
    else:
        Image.fromarray(mask.astype(np.int32)).save(bad, "TIFF")
    return bad


@pytest.mark.parametrize("name", BUDGETS)
def test_masks_storing_huge_values(name: str) -> None:
    """A 32-bit mask storing values up to 2^31: read as stored, binary or through mask_values,
    it is a bad file (or a few classes), never a lookup table or a model of 2^31 classes."""
    from rnnkit_segrefine import readers

    @budget(name, 20)
    @given(
        st.lists(st.integers(0, 2**31 - 1) | st.integers(0, 3), min_size=64, max_size=64),
        st.sampled_from(["stored", "binary", "mask_values"]),
        st.sampled_from(["error", "skip"]),
    )
    def check(values: list[int], how: str, on_error: str) -> None:
        root = fresh("huge")
        bad = write_maskfolder(root, np.array(values).reshape(8, 8))
        options: dict[str, Any] = {"on_error": on_error, "binary": how == "binary"}
        if how == "mask_values":
            options["mask_values"] = {0: 0, 1: 1, **{v: 1 for v in values[:3]}}
        dataset = read_or_error(lambda: readers.maskfolder(root, **options), bad)
        if dataset is None:
            return
        assert dataset.num_classes <= readers.MAX_INFERRED_CLASSES
        assert {path for path, _ in dataset.skipped} <= {str(bad)}
        for index in range(len(dataset)):
            assert int(dataset[index][1].max()) < dataset.num_classes

    check()


def huge(*values: int) -> st.SearchStrategy[int]:
    return st.sampled_from([2**16, 2**31, 2**63, 10**20, *values])


# Plausible values of seg-refine's data.* settings, with huge and wrong ones among them.
SEG_SETTINGS: dict[str, st.SearchStrategy[Any]] = {
    "num_classes": st.none() | st.integers(-1, 8) | huge(2**16 + 1),
    "ignore_index": st.none() | st.integers(-1, 6) | huge(255),
    "mask_values": st.none()
    | st.dictionaries(st.integers(-1, 6) | huge(255), st.integers(-1, 6) | huge(), max_size=4),
    "binary": st.booleans(),
    "class_names": st.none() | st.lists(st.text(max_size=4), max_size=6),
    "on_error": st.sampled_from(["error", "skip"]),
    "val_fraction": st.floats(0, 0.6) | st.sampled_from([0.99, -0.1, float("nan")]),
    "test_fraction": st.floats(0, 0.6) | st.sampled_from([0.99, -0.1, float("nan")]),
}
GARBAGE = st.one_of(st.text(max_size=4), st.lists(st.integers(), max_size=2), st.floats())


@pytest.mark.parametrize("name", BUDGETS)
def test_seg_refine_data_settings_on_a_maskfolder(name: str) -> None:
    """data.* settings of seg-refine (fuzzed values) that validate, then the maskfolder source
    with them: a DataBundle, or one line naming the setting or the data; nothing else."""
    from rnnkit_segrefine.data import maskfolder

    from rnnvision_kit.config import apply_mapping, validate
    from rnnvision_kit.errors import RnnkitError
    from tests.test_fuzz_config import handle

    @budget(name, 40)
    @given(st.data(), st.booleans())
    def check(data: st.DataObject, damaged_mask: bool) -> None:
        keys = data.draw(st.lists(st.sampled_from(sorted(SEG_SETTINGS)), max_size=3, unique=True))
        garbage = data.draw(st.integers(0, 4)) == 0  # one case in 5: one wrong-typed value
        settings = {k: data.draw(SEG_SETTINGS[k]) for k in keys}
        if garbage and keys:
            settings[keys[0]] = data.draw(GARBAGE)
        root = fresh("seg-settings")
        bad = write_maskfolder(root, np.arange(64).reshape(8, 8) % 5 if damaged_mask else None)
        config = handle("seg-refine").default_config()
        try:
            apply_mapping(config, {"data": {"source": "maskfolder", "path": str(root), **settings}})
            validate(config)
            bundle = maskfolder(config)
        except RnnkitError as error:
            assert_one_line(error, *(f"data.{k}" for k in settings), root, bad)
            return
        assert 2 <= bundle.spec.num_classes <= 65536
        assert {path for path, _ in bundle.skipped} <= {str(bad)}
        frames, masks = bundle.train[0]
        assert frames.shape == (1, 3, 8, 8) and masks.shape == (1, 8, 8)

    check()


@pytest.mark.parametrize("name", BUDGETS)
def test_imagefolder_source_counts_skips(name: str) -> None:
    from rnnkit_classify.data import imagefolder

    from tests.test_fuzz_config import handle

    @budget(name, 30)
    @given(image_files(), st.sampled_from(["a", "b"]))
    def check(file: tuple[str, bytes], label: str) -> None:
        _, content = file
        root = fresh("imagefolder")
        for cls in "ab":
            (root / cls).mkdir()
            for i in range(5):
                Image.new("L", (6, 6), i * 40).save(root / cls / f"{i}.png")
        bad = root / label / "bad.jpg"
        bad.write_bytes(content)
        config = handle("image-classify").default_config()
        config.data.source, config.data.path, config.data.image_size = "imagefolder", str(root), 8
        bundle = imagefolder(config)
        assert [path for path, _ in bundle.skipped] in ([], [str(bad)])
        total = len(bundle.train) + len(bundle.val) + len(bundle.test)
        assert total + len(bundle.skipped) == 11
        assert bundle.train[0][0].shape == (1, 8, 8)

    check()


# ------------------------------------------------------------------------------ video files

VIDEO_SIZE, VIDEO_FRAMES = 32, 16


@functools.cache
def good_videos() -> dict[str, bytes]:
    """Tiny real videos: mp4 (H.264), webm (VP8/VP9), avi (MPEG-4), as bytes."""
    rng = np.random.default_rng(0)
    frames = np.zeros((VIDEO_FRAMES, VIDEO_SIZE, VIDEO_SIZE, 3), np.uint8)
    for t in range(VIDEO_FRAMES):
        frames[t, :, :, 0] = t * 15
        frames[t, 8 + t // 2 : 16 + t // 2, 4:12] = rng.integers(0, 256, 3)
    out = {}
    for suffix in (".mp4", ".webm", ".avi"):
        path = scratch() / f"good{suffix}"
        write_video(path, frames, fps=8)
        out[suffix] = path.read_bytes()
    return out


@st.composite
def video_files(draw: st.DrawFn) -> tuple[str, str, bytes]:
    """``(suffix, how it was damaged, content)`` of a real video: the image damages, or damage
    that a probe does not see (cut part-way, noise or flips over the media data)."""
    suffix = draw(st.sampled_from([".mp4", ".webm", ".avi"]))
    data = good_videos()[suffix]
    kind = draw(st.sampled_from(["file", "file", "cut", "noise", "flips"]))
    if kind == "file":
        how, content = draw(damaged(data, suffix))
        return suffix, how, content
    out = bytearray(data)
    start = int(len(out) * draw(st.floats(0.3, 0.97)))
    if kind == "cut":
        del out[start:]
    elif kind == "noise":
        seed = draw(st.integers(0, 2**16))
        out[start:] = np.random.default_rng(seed).bytes(len(out) - start)
    else:
        for _ in range(draw(st.integers(1, 32))):
            out[draw(st.integers(start, len(out) - 1))] ^= draw(st.integers(1, 255))
    return suffix, f"{suffix}, {kind} from byte {start}", bytes(out)


def check_frames(frames: torch.Tensor, count: int, size: tuple[int, int] | None) -> None:
    assert frames.dtype == torch.uint8 and frames.ndim == 4
    assert frames.shape[:2] == (count, 3) and min(frames.shape[2:]) >= 1
    if size is not None:
        assert tuple(frames.shape[2:]) == size


@pytest.mark.parametrize("name", BUDGETS)
def test_video_probe_and_reads(name: str) -> None:
    @budget(name, 100, deadline_s=20)
    @given(
        video_files(),
        st.lists(st.integers(0, 40), min_size=1, max_size=6),
        st.sampled_from([None, (16, 16), (7, 33)]),
    )
    def check(
        file: tuple[str, str, bytes], indices: list[int], size: tuple[int, int] | None
    ) -> None:
        suffix, how, content = file
        folder = fresh("videos")
        path = folder / f"clip{suffix}"
        path.write_bytes(content)
        with no_hang(60):
            info = read_or_error(lambda: probe_video(path), path)
            cache = ProbeCache(folder / "cache")
            cached = read_or_error(lambda: cache.get(path), path)
            assert (info is None) == (cached is None)  # the same verdict
            if info is None:
                assert not how.endswith(", none"), "an undamaged video was refused"
            else:
                assert info.num_frames >= 1 and info.fps > 0 and info.width >= 1
            frames = read_or_error(lambda: read_frames(path, indices, info, size=size), path)
            if frames is not None:
                check_frames(frames, len(indices), size)
            elif how.endswith(", none"):
                raise AssertionError("an undamaged video was not read")

    check()


@pytest.mark.parametrize("name", BUDGETS)
def test_clip_dataset_in_a_dataloader_worker(name: str) -> None:
    @budget(name, 8, deadline_s=60)
    @given(st.lists(video_files(), min_size=2, max_size=3))
    def check(files: list[tuple[str, str, bytes]]) -> None:
        folder = fresh("loader")
        samples = []
        for i, (suffix, _, content) in enumerate(files):
            path = folder / f"video{i}{suffix}"
            path.write_bytes(content)
            samples.append((str(path), i % 2))
        good = folder / "good.mp4"
        good.write_bytes(good_videos()[".mp4"])
        samples.append((str(good), 0))
        dataset = VideoClipDataset(
            samples,
            num_frames=4,
            stride=3,
            mode="uniform",
            num_clips=2,
            size=(16, 16),
            seed=None,
            probe_cache=ProbeCache(folder / "cache"),
        )
        names = [p for p, _ in samples]
        for path, reason in dataset.skipped:
            assert path in names and len(reason.splitlines()) == 1
        loader = torch.utils.data.DataLoader(
            SkipUnreadable(dataset, replace=False),
            batch_size=2,
            num_workers=1,
            collate_fn=collate_readable,
            timeout=120,
        )
        readable = failed = 0
        for batch in loader:
            for failure in batch.failures:
                assert failure.path in names and len(failure.reason.splitlines()) == 1
            failed += len(batch.failures)
            if batch.batch is not None:
                clips, _ = batch.batch
                assert clips.dtype == torch.float32 and clips.shape[1:] == (2, 4, 3, 16, 16)
                readable += len(clips)
        assert readable + failed == len(dataset) and readable >= 1  # the good video
        assert len(dataset) + len(dataset.skipped) == len(samples)

    check()
