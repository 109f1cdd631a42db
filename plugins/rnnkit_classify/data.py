"""Data sources of image-classify: digits (embedded), MNIST, Fashion-MNIST, CIFAR-10, image folders.

Every source returns a DataBundle of in-memory data sets yielding ``(image float C,H,W in [0,1],
label)`` and an ``ImageSpec`` holding the train set's per-channel mean and std (the model
normalises with them, so ``predict`` needs only the checkpoint).
"""

from __future__ import annotations

import gzip
import hashlib
import shutil
import struct
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch.utils.data import Dataset

from rnnkit_classify.config import ClassifyDataConfig
from rnnvision_kit import DataBundle, DataError, ImageSpec, RunConfig, require_classes, warn
from rnnvision_kit.data import cache_dir

IMAGE_SUFFIXES = {".png", ".jpg", ".jpeg", ".bmp", ".gif", ".tif", ".tiff", ".webp", ".pgm", ".ppm"}
# What PIL raises on damaged files besides DecompressionBombError (a header claiming a huge
# size): MemoryError (a size below PIL's limit), EOFError or struct.error (truncated data).
IMAGE_ERRORS = (OSError, SyntaxError, ValueError, EOFError, struct.error, MemoryError)
SPLITS = ("train", "val", "test")
SPLIT_SEED = 0  # the seed of every carved split (fixed: every run gets the same split)
# what these sources read: image-classify's data settings (ClassifyDataConfig)
ImageRunConfig = RunConfig[Any, ClassifyDataConfig]


class ImageTensors(Dataset):
    """Images kept in memory as uint8 ``N,C,H,W`` (or float in [0,1]); items are float in [0,1]."""

    def __init__(self, images: torch.Tensor, labels: torch.Tensor) -> None:
        self.images, self.labels = images, labels.long()
        self.scale = 255.0 if images.dtype == torch.uint8 else 1.0

    def __len__(self) -> int:
        return len(self.labels)

    def __getitem__(self, index: int) -> tuple[torch.Tensor, torch.Tensor]:
        return self.images[index].float() / self.scale, self.labels[index]


def _spec(train: ImageTensors, class_names: list[str]) -> ImageSpec:
    images = train.images.float() / train.scale
    _, c, h, w = images.shape
    mean = images.mean(dim=(0, 2, 3)).tolist()
    std = images.std(dim=(0, 2, 3)).clamp(min=1e-3).tolist()
    return ImageSpec(tuple(class_names), c, h, w, tuple(mean), tuple(std))


def stratified_split(
    labels: np.ndarray, val_fraction: float, test_fraction: float, seed: int = SPLIT_SEED
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Train/val/test indices with each class split in the same proportions (fixed seed); a
    ``test_fraction`` of 0 leaves the test part empty (a source whose test split is a folder)."""
    if not (0 <= val_fraction < 1 and 0 <= test_fraction < 1 and val_fraction + test_fraction < 1):
        raise DataError(
            f"data.val_fraction={val_fraction} and data.test_fraction={test_fraction} must be in "
            "[0, 1) and sum to less than 1"
        )
    rng = np.random.default_rng(seed)
    parts: list[list[int]] = [[], [], []]
    for label in np.unique(labels):
        idx = rng.permutation(np.flatnonzero(labels == label))
        n_test = max(1, round(len(idx) * test_fraction)) if test_fraction > 0 else 0
        n_val = round(len(idx) * val_fraction)
        parts[2] += idx[:n_test].tolist()
        parts[1] += idx[n_test : n_test + n_val].tolist()
        parts[0] += idx[n_test + n_val :].tolist()
    train, val, test = (np.sort(np.array(p, dtype=np.int64)) for p in parts)
    return train, val, test


def _bundle(
    images: torch.Tensor,
    labels: torch.Tensor,
    splits: tuple[np.ndarray, ...],
    class_names: list[str],
    skipped: list[tuple[str, str]] | None = None,
    ids: list[str] | None = None,
    origins: dict[str, str] | None = None,
) -> DataBundle:
    train, val, test = (
        ImageTensors(images[torch.from_numpy(s)], labels[torch.from_numpy(s)]) for s in splits
    )
    ids = ids if ids is not None else _content_ids(images)  # items: each split's identities
    items = {name: [ids[i] for i in s] for name, s in zip(SPLITS, splits, strict=True)}
    spec = _spec(train, class_names)
    return DataBundle(train, val, test, spec, skipped or [], items, origins)


def carved_from(where: str, fraction: float) -> str:
    """The origin of a split carved by :func:`stratified_split` (``DataBundle.origins``)."""
    return f"carved from {where} ({fraction:.0%} per class, split seed {SPLIT_SEED})"


def _carved_origins(where: str, val_fraction: float, test_fraction: float) -> dict[str, str]:
    return {
        "train": f"{where}, less the images carved for val and test",
        "val": carved_from(where, val_fraction),
        "test": carved_from(where, test_fraction),
    }


def _content_ids(images: torch.Tensor) -> list[str]:
    """``"index:hash"`` of each image: the identity of items without files (splits.json)."""
    rows = images.reshape(len(images), -1).numpy()
    return [f"{i}:{hashlib.sha1(row.tobytes()).hexdigest()[:10]}" for i, row in enumerate(rows)]


def digits(config: ImageRunConfig) -> DataBundle:
    """scikit-learn's bundled handwritten digits (1,797 8x8 images), fixed stratified split."""
    from sklearn.datasets import load_digits

    bunch = load_digits()
    images = torch.from_numpy(bunch.images / 16.0).float().unsqueeze(1)
    size = config.data.image_size or 16  # upsampled: smoother rows, measurably more accurate
    if size != 8:
        images = torch.nn.functional.interpolate(images, size=(size, size), mode="bilinear")
        images = images.clamp(0, 1)
    labels = torch.from_numpy(bunch.target)
    d = config.data
    splits = stratified_split(bunch.target, d.val_fraction, d.test_fraction)
    origins = _carved_origins("scikit-learn's 1,797 digits", d.val_fraction, d.test_fraction)
    return _bundle(images, labels, splits, [str(i) for i in range(10)], origins=origins)


# ----------------------------------------------------------------------------- torchvision sets

MNIST_FILES = (
    "train-images-idx3-ubyte",
    "train-labels-idx1-ubyte",
    "t10k-images-idx3-ubyte",
    "t10k-labels-idx1-ubyte",
)


def _idx_root(path: Path, folder: str) -> Path:
    """A root that torchvision's MNIST-style classes accept: ``root/<folder>/raw/*-ubyte``.

    Accepts PATH, PATH/<folder> or PATH/<folder>/raw, unpacked or gzipped; gzipped files are
    unpacked into the cache, never next to the user's files.
    """
    for raw in (path / folder / "raw", path / "raw", path):
        if all((raw / name).is_file() for name in MNIST_FILES):
            if raw == path / folder / "raw":
                return path
            return _link_root(raw, folder)
        if all((raw / f"{name}.gz").is_file() for name in MNIST_FILES):
            key = hashlib.sha1(str(raw.resolve()).encode()).hexdigest()[:12]
            root = cache_dir("unpacked", f"{folder.lower()}-{key}")
            target = root / folder / "raw"
            target.mkdir(parents=True, exist_ok=True)
            for name in MNIST_FILES:
                if not (target / name).is_file():
                    tmp = target / f".{name}.tmp"
                    with gzip.open(raw / f"{name}.gz", "rb") as src, tmp.open("wb") as dst:
                        shutil.copyfileobj(src, dst)
                    tmp.replace(target / name)
            return root
    expected = ", ".join(MNIST_FILES)
    raise DataError(f"{path}: expected {expected} (or .gz) in {path / folder / 'raw'}")


def _link_root(raw: Path, folder: str) -> Path:
    key = hashlib.sha1(str(raw.resolve()).encode()).hexdigest()[:12]
    root = cache_dir("linked", f"{folder.lower()}-{key}")
    target = root / folder / "raw"
    target.mkdir(parents=True, exist_ok=True)
    for name in MNIST_FILES:
        if not (target / name).exists():
            (target / name).symlink_to((raw / name).resolve())
    return root


def _mnist_like(config: ImageRunConfig, source: str, folder: str, cls_name: str) -> DataBundle:
    import torchvision.datasets as tvd

    root = _idx_root(config.data.require_path("~/data"), folder)
    cls = getattr(tvd, cls_name)
    try:
        train = cls(str(root), train=True, download=False)
        test = cls(str(root), train=False, download=False)
    except RuntimeError as error:
        raise DataError(f"{root / folder / 'raw'}: {error}") from None
    images = torch.cat([train.data, test.data]).unsqueeze(1)
    labels = torch.cat([train.targets, test.targets])
    n_train = len(train.data)
    order = np.random.default_rng(SPLIT_SEED).permutation(n_train)
    n_val = n_train // 12  # 5,000 of MNIST's 60,000 training images validate
    splits = (np.sort(order[n_val:]), np.sort(order[:n_val]), np.arange(n_train, len(labels)))
    files = f"{folder}'s train-*-ubyte files"
    origins = {
        "train": f"{files}, less the {n_val:,} images carved for val",
        "val": f"{n_val:,} images carved at random from {files} (split seed {SPLIT_SEED})",
        "test": f"{folder}'s t10k-*-ubyte files (its test set)",
    }
    return _bundle(images, labels, splits, list(train.classes), origins=origins)


def mnist(config: ImageRunConfig) -> DataBundle:
    """MNIST from ``PATH`` (torchvision layout ``PATH/MNIST/raw``; download disabled)."""
    return _mnist_like(config, "mnist", "MNIST", "MNIST")


def fashion_mnist(config: ImageRunConfig) -> DataBundle:
    """Fashion-MNIST from ``PATH`` (torchvision layout ``PATH/FashionMNIST/raw``)."""
    return _mnist_like(config, "fashion-mnist", "FashionMNIST", "FashionMNIST")


def cifar10(config: ImageRunConfig) -> DataBundle:
    """CIFAR-10 from ``PATH`` (``PATH/cifar-10-batches-py``; download disabled)."""
    import torchvision.datasets as tvd

    path = config.data.require_path("~/data")
    root = path.parent if path.name == "cifar-10-batches-py" else path
    try:
        train = tvd.CIFAR10(str(root), train=True, download=False)
        test = tvd.CIFAR10(str(root), train=False, download=False)
    except RuntimeError:
        raise DataError(
            f"{root / 'cifar-10-batches-py'}: expected data_batch_1..5, test_batch and batches.meta "
            "(the python version of CIFAR-10)"
        ) from None
    images = (
        torch.from_numpy(np.concatenate([train.data, test.data])).permute(0, 3, 1, 2).contiguous()
    )
    labels = torch.tensor(list(train.targets) + list(test.targets))
    n_train = len(train.data)
    order = np.random.default_rng(SPLIT_SEED).permutation(n_train)
    splits = (np.sort(order[5000:]), np.sort(order[:5000]), np.arange(n_train, len(labels)))
    files = "cifar-10-batches-py/data_batch_1..5"
    origins = {
        "train": f"{files}, less the 5,000 images carved for val",
        "val": f"5,000 images carved at random from {files} (split seed {SPLIT_SEED})",
        "test": "cifar-10-batches-py/test_batch (its test set)",
    }
    return _bundle(images, labels, splits, list(train.classes), origins=origins)


# ------------------------------------------------------------------------------- image folders


def load_image(path: Path, channels: int, size: tuple[int, int]) -> torch.Tensor:
    """Read an image file as uint8 ``C,H,W``, converted to 1 or 3 channels and resized."""
    from PIL import Image, UnidentifiedImageError

    try:
        with Image.open(path) as image:
            image = image.convert("L" if channels == 1 else "RGB")
            image = image.resize((size[1], size[0]), Image.Resampling.BILINEAR)
            array = np.asarray(image, dtype=np.uint8)
    except FileNotFoundError:
        raise DataError(f"{path}: file not found") from None
    except (UnidentifiedImageError, Image.DecompressionBombError, *IMAGE_ERRORS) as error:
        problem = " ".join(str(error).split())[:80] or type(error).__name__
        raise DataError(f"{path}: not a readable image ({problem})") from None
    tensor = torch.from_numpy(array.copy())
    return tensor.unsqueeze(0) if channels == 1 else tensor.permute(2, 0, 1)


def _scan_class_folders(root: Path) -> tuple[list[tuple[Path, int]], list[str]]:
    if not root.is_dir():
        raise DataError(f"{root}: not a folder")
    classes = sorted(p.name for p in root.iterdir() if p.is_dir() and not p.name.startswith("."))
    if not classes:
        raise DataError(f"{root}: no class folders (expected {root}/<class>/<image>)")
    require_classes(classes, str(root))
    files = [
        (f, label)
        for label, name in enumerate(classes)
        for f in sorted((root / name).rglob("*"))
        if f.is_file() and not f.name.startswith(".")
    ]
    if not files:
        raise DataError(f"{root}: the class folders hold no files")
    return files, classes


def _load_folder(
    root: Path,
    classes: list[str] | None,
    channels: int,
    size: int,
    skipped: list[tuple[str, str]],
    loaded: list[str],  # the files read, in order (DataBundle.items)
) -> tuple[torch.Tensor, torch.Tensor, list[str]]:
    files, found = _scan_class_folders(root)
    if classes is not None and found != classes:
        raise DataError(f"{root}: class folders {found} differ from the training classes {classes}")
    images, labels = [], []
    for file, label in files:
        try:
            images.append(load_image(file, channels, (size, size)))
            labels.append(label)
            loaded.append(str(file))
        except DataError as error:
            warn(f"skipping {error}")
            skipped.append((str(file), str(error).split(": ", 1)[-1]))
    if not images:
        raise DataError(f"{root}: no readable images (skipped {len(skipped)} files)")
    return torch.stack(images), torch.tensor(labels), found


def imagefolder(config: ImageRunConfig) -> DataBundle:
    """``PATH/<class>/<image>``; or ``PATH/train``, ``PATH/test`` (and ``PATH/val``) each so laid out.

    Unreadable files are skipped with a warning naming them and counted in the run summary.
    """
    root = config.data.require_path("~/pictures")
    channels = config.data.channels or 1
    size = config.data.image_size or 28
    if channels not in (1, 3):
        raise DataError(f"data.channels: must be 1 or 3 (got {channels})")
    skipped: list[tuple[str, str]] = []
    files: list[str] = []
    if (root / "train").is_dir() and (root / "test").is_dir():
        parts: dict[str, tuple[torch.Tensor, torch.Tensor, list[str]]] = {}
        for split in ("train", "val", "test"):
            if (root / split).is_dir():
                known = parts["train"][2] if "train" in parts else None
                parts[split] = _load_folder(root / split, known, channels, size, skipped, files)
        images = torch.cat([parts[s][0] for s in parts])
        labels = torch.cat([parts[s][1] for s in parts])
        bounds = np.cumsum([0] + [len(parts[s][1]) for s in parts])
        ranges = {s: np.arange(bounds[i], bounds[i + 1]) for i, s in enumerate(parts)}
        origins = {s: f"the {root / s}/ folder" for s in parts}
        if "val" not in ranges:  # carve a validation split out of train
            train_labels = labels[ranges["train"]].numpy()
            fraction = config.data.val_fraction or 0.1
            tr, va, _ = stratified_split(train_labels, fraction, 0.0)
            ranges["val"], ranges["train"] = ranges["train"][va], ranges["train"][tr]
            origins["val"] = carved_from(f"{root / 'train'}/", fraction)
            origins["train"] += ", less the images carved for val"
        splits = (ranges["train"], ranges["val"], ranges["test"])
        origins = {s: origins[s] for s in SPLITS}
        return _bundle(images, labels, splits, parts["train"][2], skipped, files, origins)
    images, labels, classes = _load_folder(root, None, channels, size, skipped, files)
    d = config.data
    splits = stratified_split(labels.numpy(), d.val_fraction, d.test_fraction)
    where = f"{root}/<class>/ (no train/ and test/ folders)"
    origins = _carved_origins(where, d.val_fraction, d.test_fraction)
    return _bundle(images, labels, splits, classes, skipped, files, origins)
