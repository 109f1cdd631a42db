"""Synthetic video segmentation: moving textured shapes under per-frame corruption.

Circles, squares and triangles (classes 1, 2, 3; background 0) move smoothly (bouncing, turning)
over a textured background. Each class has its own colour family (reds, greens, blues) and
texture (stripes, checks, rings), varied per object, so that a small segmenter learns the classes
within a few minutes on a CPU. Each *frame* is then corrupted on its own: mild noise and
brightness/colour flicker always; a fifth of the frames *dropped* (a flat colour plus noise), a
fifth *bad* (strong noise, often blur and salt-and-pepper); brief occluders (bars or blobs) on a
third. The masks stay clean (the true shapes, also under occluders and in dropped frames). A
single-frame segmenter therefore fails on the corrupted frames, and temporal context pays: the
data set for ConvGRU refinement.

Stored once in the cache in the ``videomasks`` layout (PNG frames, index PNG masks), one
``num_frames``-frame video per clip, with ``train/``, ``val/`` and ``test/`` splits.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path

import numpy as np
from PIL import Image, ImageFilter

from rnnkit_segrefine.readers import write_index_png
from rnnvision_kit import Progress
from rnnvision_kit.data import generate_once

__all__ = [
    "CLASSES",
    "DEFAULT_VIDEOS",
    "SPLITS",
    "VERSION",
    "ensure_synthetic_seg",
    "generate_synthetic_seg",
]

VERSION = 2
CLASSES: tuple[str, ...] = ("background", "circle", "square", "triangle")
SPLITS: tuple[str, ...] = ("train", "val", "test")
DEFAULT_VIDEOS: tuple[int, int, int] = (240, 40, 40)

Videos = int | Sequence[int] | Mapping[str, int]


def _split_counts(videos: Videos) -> dict[str, int]:
    if isinstance(videos, int):
        counts = {"train": videos, "val": max(1, videos // 6), "test": max(1, videos // 6)}
    elif isinstance(videos, Mapping):
        counts = {s: int(videos.get(s, 0)) for s in SPLITS}
    else:
        counts = dict(zip(SPLITS, (int(v) for v in videos), strict=True))
    if any(v < 0 for v in counts.values()) or not any(counts.values()):
        raise ValueError(f"videos must give non-negative counts per split, got {videos!r}")
    return counts


def _check_size(size: int | Sequence[int]) -> tuple[int, int]:
    h, w = (size, size) if isinstance(size, int) else (int(size[0]), int(size[1]))
    if h < 32 or w < 32 or h % 32 or w % 32:
        raise ValueError(
            f"size must be multiples of 32 (segmentation encoders need it), got {size}"
        )
    return h, w


def _random_texture(rng: np.random.Generator) -> Callable[[np.ndarray, np.ndarray], np.ndarray]:
    """A random stripe or checker pattern in two random colours: ``paint(u, v) -> (..., 3)``."""
    c1, c2 = rng.uniform(0.05, 0.95, size=(2, 3)).astype(np.float32)
    freq = rng.uniform(0.25, 0.9)
    angle = rng.uniform(0, np.pi)
    ca, sa = np.cos(angle), np.sin(angle)
    stripes = rng.random() < 0.5

    def paint(u: np.ndarray, v: np.ndarray) -> np.ndarray:
        a = u * ca + v * sa
        if stripes:
            t = 0.5 + 0.5 * np.sin(freq * a)
        else:
            t = (np.floor(freq * a / 2) + np.floor(freq * (v * ca - u * sa) / 2)) % 2
        return c1 + (c2 - c1) * t[..., None].astype(np.float32)

    return paint


# Per class: a base colour (each object's varies around it) and a texture family.
_CLASS_COLOURS = {1: (0.9, 0.25, 0.2), 2: (0.2, 0.85, 0.3), 3: (0.25, 0.35, 0.95)}


def _class_texture(
    rng: np.random.Generator, kind: int
) -> Callable[[np.ndarray, np.ndarray], np.ndarray]:
    """The texture of an object of class ``kind`` (1 stripes, 2 checks, 3 rings) in a colour
    near the class's own and a darker shade of it: ``paint(u, v) -> (..., 3)``."""
    c1 = np.clip(np.array(_CLASS_COLOURS[kind]) + rng.uniform(-0.1, 0.1, 3), 0, 1)
    c1 = c1.astype(np.float32)
    c2 = (c1 * rng.uniform(0.3, 0.6)).astype(np.float32)
    freq = rng.uniform(0.5, 0.9)

    def paint(u: np.ndarray, v: np.ndarray) -> np.ndarray:
        if kind == 1:
            t = 0.5 + 0.5 * np.sin(freq * u)
        elif kind == 2:
            t = (np.floor(freq * u / 2) + np.floor(freq * v / 2)) % 2
        else:
            t = 0.5 + 0.5 * np.sin(freq * np.sqrt(u * u + v * v))
        return c1 + (c2 - c1) * t[..., None].astype(np.float32)

    return paint


def _background(rng: np.random.Generator, h: int, w: int) -> np.ndarray:
    """Smooth colour blobs plus a faint pattern, darker and flatter than the shapes."""
    coarse = rng.uniform(0.1, 0.7, size=(5, 5, 3))
    img = Image.fromarray((coarse * 255).astype(np.uint8)).resize((w, h), Image.Resampling.BICUBIC)
    smooth = np.asarray(img, dtype=np.float32) / 255
    y, x = np.mgrid[0:h, 0:w].astype(np.float32)
    return 0.8 * smooth + 0.2 * _random_texture(rng)(x, y)


def _inside(kind: int, dx: np.ndarray, dy: np.ndarray, r: float, theta: float) -> np.ndarray:
    """Pixels inside a circle (1), square (2) or triangle (3) of radius ``r`` turned by theta."""
    if kind == 1:
        return dx * dx + dy * dy <= r * r
    c, s = np.cos(theta), np.sin(theta)
    u, v = c * dx + s * dy, -s * dx + c * dy
    if kind == 2:
        half = 0.8 * r
        return (np.abs(u) <= half) & (np.abs(v) <= half)
    # equilateral triangle with circumradius 1.15 r: inside all three edges' half-planes
    inside = np.ones(dx.shape, dtype=bool)
    for k in range(3):
        a = theta + 2 * np.pi * k / 3 + np.pi / 3  # outward normal of the edge opposite vertex k
        inside &= dx * np.cos(a) + dy * np.sin(a) <= 0.575 * r
    return inside


def _trajectories(rng: np.random.Generator, n_obj: int, frames: int, h: int, w: int) -> list:
    objects = []
    for _ in range(n_obj):
        r = rng.uniform(0.16, 0.25) * min(h, w)
        pos = np.array([rng.uniform(r, w - r), rng.uniform(r, h - r)])
        speed = rng.uniform(0.75, 2.25) * min(h, w) / 64
        heading = rng.uniform(0, 2 * np.pi)
        vel = speed * np.array([np.cos(heading), np.sin(heading)])
        theta, spin = rng.uniform(0, 2 * np.pi), rng.uniform(-0.25, 0.25)
        path = []
        for _ in range(frames):
            path.append((pos[0], pos[1], theta))
            pos = pos + vel
            for axis, limit in ((0, w), (1, h)):  # bounce off the borders
                if pos[axis] < r * 0.6 or pos[axis] > limit - r * 0.6:
                    vel[axis] = -vel[axis]
                    pos[axis] = np.clip(pos[axis], r * 0.6, limit - r * 0.6)
            vel = vel @ _rotation(rng.normal(0, 0.08))  # smooth wandering
            theta += spin
        objects.append({"kind": int(rng.integers(1, 4)), "r": r, "path": path})
    return objects


def _rotation(angle: float) -> np.ndarray:
    c, s = np.cos(angle), np.sin(angle)
    return np.array([[c, -s], [s, c]])


def _corrupt(rng: np.random.Generator, clean: np.ndarray) -> np.ndarray:
    """One frame's corruption; returns uint8 ``H,W,3``.

    Every frame gets brightness/colour flicker and mild pixel noise. About a fifth are *dropped*
    (a flat random colour plus noise: nothing of the scene left), a fifth are *bad* (strong
    noise, often blur, salt-and-pepper); about a third of the others get an occluder.
    """
    h, w, _ = clean.shape
    roll = rng.random()
    gain = rng.uniform(0.85, 1.15) * rng.uniform(0.92, 1.08, size=3).astype(np.float32)
    img = clean * gain + np.float32(rng.uniform(-0.05, 0.05))
    if roll < 0.2:  # a dropped frame
        img = np.ones_like(clean) * rng.uniform(0.2, 0.8, size=3).astype(np.float32)
        img = img + 0.1 * rng.standard_normal(img.shape, dtype=np.float32)
        return (np.clip(img, 0, 1) * 255 + 0.5).astype(np.uint8)
    bad = roll < 0.4
    if rng.random() < 0.3:  # a brief occluder: a bar or a blob
        y, x = np.mgrid[0:h, 0:w].astype(np.float32)
        cx, cy = rng.uniform(0, w), rng.uniform(0, h)
        if rng.random() < 0.5:
            a = rng.uniform(0, np.pi)
            occ = np.abs((x - cx) * np.cos(a) + (y - cy) * np.sin(a)) < rng.uniform(0.05, 0.12) * w
        else:
            rx, ry = rng.uniform(0.12, 0.25, size=2) * (w, h)
            occ = ((x - cx) / rx) ** 2 + ((y - cy) / ry) ** 2 <= 1
        img[occ] = _random_texture(rng)(x[occ], y[occ])
    if bad and rng.random() < 0.5:
        pil = Image.fromarray((np.clip(img, 0, 1) * 255).astype(np.uint8))
        pil = pil.filter(ImageFilter.GaussianBlur(rng.uniform(1.0, 2.0) * min(h, w) / 64))
        img = np.asarray(pil, dtype=np.float32) / 255
    sigma = rng.uniform(0.25, 0.4) if bad else rng.uniform(0.02, 0.08)
    img = img + sigma * rng.standard_normal(img.shape, dtype=np.float32)
    if bad and rng.random() < 0.5:  # salt and pepper
        hit = rng.random((h, w)) < rng.uniform(0.03, 0.1)
        img[hit] = rng.integers(0, 2, size=(int(hit.sum()), 1))
    return (np.clip(img, 0, 1) * 255 + 0.5).astype(np.uint8)


def _render_video(
    rng: np.random.Generator, frames: int, h: int, w: int
) -> tuple[list[np.ndarray], list[np.ndarray]]:
    """``frames`` corrupted ``uint8 H,W,3`` images and clean ``uint8 H,W`` masks."""
    background = _background(rng, h, w)
    objects = _trajectories(rng, int(rng.integers(2, 4)), frames, h, w)
    y, x = np.mgrid[0:h, 0:w].astype(np.float32)
    # each object's texture is painted in its own coordinates, so it moves and turns with it
    paints = [_class_texture(rng, obj["kind"]) for obj in objects]
    images, masks = [], []
    for t in range(frames):
        img = background.copy()
        mask = np.zeros((h, w), dtype=np.uint8)
        for obj, paint in zip(objects, paints, strict=True):
            cx, cy, theta = obj["path"][t]
            dx, dy = x - np.float32(cx), y - np.float32(cy)
            inside = _inside(obj["kind"], dx, dy, obj["r"], theta)
            dx, dy = dx[inside], dy[inside]
            c, s = np.float32(np.cos(theta)), np.float32(np.sin(theta))
            img[inside] = paint(c * dx + s * dy, c * dy - s * dx)
            mask[inside] = obj["kind"]
        images.append(_corrupt(rng, img))
        masks.append(mask)
    return images, masks


def generate_synthetic_seg(
    root: str | os.PathLike[str],
    videos: Videos = DEFAULT_VIDEOS,
    *,
    num_frames: int = 8,
    size: int | Sequence[int] = 64,
    seed: int = 0,
    progress: bool | None = None,
) -> Path:
    """Write the data set under ``root/<split>/<video>/{frames,masks}/NNNN.png``; return root.
    ``progress``: as :class:`rnnvision_kit.Progress` (None: a bar on a terminal, else a
    line every 30 s; True: a bar; False: none)."""
    counts = _split_counts(videos)
    h, w = _check_size(size)
    root = Path(root)
    shown = Progress(sum(counts.values()), "generating synthetic-seg", "video", show=progress)
    for split_index, split in enumerate(SPLITS):
        for number in range(counts[split]):
            rng = np.random.default_rng([seed, split_index, number])
            images, masks = _render_video(rng, num_frames, h, w)
            video = root / split / f"v{number:04d}"
            (video / "frames").mkdir(parents=True)
            (video / "masks").mkdir()
            for t, (image, mask) in enumerate(zip(images, masks, strict=True)):
                Image.fromarray(image).save(video / "frames" / f"{t:04d}.png", compress_level=0)
                write_index_png(video / "masks" / f"{t:04d}.png", mask)
            shown.update()
    shown.close()
    return root


def _key(counts: Mapping[str, int], num_frames: int, size: tuple[int, int], seed: int) -> str:
    n = "-".join(str(counts[s]) for s in SPLITS)
    return f"v{VERSION}-n{n}-t{num_frames}-s{size[0]}x{size[1]}-seed{seed}"


def ensure_synthetic_seg(
    videos: Videos = DEFAULT_VIDEOS,
    *,
    num_frames: int = 8,
    size: int | Sequence[int] = 64,
    seed: int = 0,
) -> Path:
    """Return the cached data set root (``train/``, ``val/``, ``test/`` in videomasks layout).

    ``videos``: videos (= clips of ``num_frames``) per split, as ``(train, val, test)``, a
    mapping or a train count. Generated once into ``cache_dir("synthetic-seg", <key>)`` via a
    temporary folder renamed into place when complete; deterministic from ``seed``.
    """
    counts = _split_counts(videos)
    hw = _check_size(size)
    if num_frames < 1:
        raise ValueError(f"num_frames must be positive, got {num_frames}")
    meta = {
        "version": VERSION,
        "classes": list(CLASSES),
        "videos": counts,
        "num_frames": num_frames,
        "size": list(hw),
        "seed": seed,
        "layout": "videomasks",
    }

    def generate(folder: Path) -> None:
        generate_synthetic_seg(folder, counts, num_frames=num_frames, size=hw, seed=seed)

    return generate_once("synthetic-seg", _key(counts, num_frames, hw, seed), generate, meta)
