"""Moving digits, the embedded data set of video-action: videos whose classes only temporal order
separates.

Handwritten digits (``sklearn.datasets.load_digits``) move over a textured background. The ten
classes come in pairs whose videos are the same frame sequences played backwards (left/right,
up/down, grow/shrink, rotate_cw/rotate_ccw, appear/disappear), so a single frame or an
order-less average of frames cannot tell the two classes of a pair apart.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path

import numpy as np
from PIL import Image

from rnnvision_kit import Progress
from rnnvision_kit.data import generate_once, write_video

__all__ = [
    "CLASSES",
    "DEFAULT_VIDEOS_PER_CLASS",
    "FPS",
    "PAIRS",
    "SPLITS",
    "VERSION",
    "ensure_moving_digits",
    "generate_moving_digits",
]

VERSION = 1
# The encoding's version, in the cache key only (VERSION also seeds the videos): 2 since
# write_video encodes byte-identically (issue 17), so that no cache keeps earlier files.
ENCODING = 2
# Pairs whose videos are each other's reversal in time.
PAIRS: tuple[tuple[str, str], ...] = (
    ("left", "right"),
    ("up", "down"),
    ("grow", "shrink"),
    ("rotate_cw", "rotate_ccw"),
    ("appear", "disappear"),
)
# Label order = sorted folder names, as ``list_videofolder`` assigns them.
CLASSES: tuple[str, ...] = tuple(sorted(name for pair in PAIRS for name in pair))
SPLITS: tuple[str, ...] = ("train", "val", "test")
DEFAULT_VIDEOS_PER_CLASS: tuple[int, int, int] = (60, 15, 20)
# Disjoint digit images per split (load_digits has 1797), so test digits are unseen.
_DIGIT_RANGES = {"train": (0, 1200), "val": (1200, 1500), "test": (1500, 1797)}
FPS = 10  # frames per second of the written videos

VideosPerClass = int | tuple[int, int, int] | Mapping[str, int]


def _split_counts(videos_per_class: VideosPerClass) -> dict[str, int]:
    if isinstance(videos_per_class, int):
        n = videos_per_class
        counts = {"train": n, "val": max(1, n // 4), "test": max(1, n // 3)}
    elif isinstance(videos_per_class, Mapping):
        counts = {s: int(videos_per_class.get(s, 0)) for s in SPLITS}
    else:
        counts = dict(zip(SPLITS, (int(v) for v in videos_per_class), strict=True))
    if any(v < 0 for v in counts.values()) or not any(counts.values()):
        raise ValueError(f"videos_per_class must give non-negative counts, got {videos_per_class}")
    return counts


def _load_digits() -> np.ndarray:
    from sklearn.datasets import load_digits

    return (load_digits().images * (255.0 / 16.0)).astype(np.float32)  # (1797, 8, 8)


def _background(rng: np.random.Generator, size: int) -> np.ndarray:
    """A dim, smooth random texture (float RGB in [0, 255])."""
    coarse = rng.uniform(10, 90, size=(6, 6, 3)).astype(np.uint8)
    smooth = Image.fromarray(coarse).resize((size, size), Image.Resampling.BICUBIC)
    return np.asarray(smooth, dtype=np.float32)


def _trajectory(kind: str, rng: np.random.Generator, t: np.ndarray, size: int) -> dict:
    """Per-frame centre, scale, angle and opacity of the "forward" member of a class pair."""
    n = len(t)
    base = 24.0 * size / 64.0
    ones = np.ones(n)
    cx, cy = rng.uniform(0.38, 0.62, size=2) * size
    params = {"cx": cx * ones, "cy": cy * ones, "scale": ones, "angle": 0 * ones, "alpha": ones}
    params["angle"] = rng.uniform(-15, 15) * ones
    if kind in ("right", "down"):
        travel = rng.uniform(0.3, 0.55) * size
        lo = base / 2 + 1
        start = rng.uniform(lo, size - lo - travel)
        along = start + travel * t
        across = rng.uniform(0.3, 0.7) * size * ones
        params["cx"], params["cy"] = (along, across) if kind == "right" else (across, along)
    elif kind == "grow":
        s0, s1 = rng.uniform(0.4, 0.6), rng.uniform(1.15, 1.45)
        params["scale"] = s0 + (s1 - s0) * t
    elif kind == "rotate_ccw":
        start, turn = rng.uniform(-180, 180), rng.uniform(120, 240)
        params["angle"] = start + turn * t
    elif kind == "appear":
        t0, t1 = rng.uniform(0.0, 0.25), rng.uniform(0.75, 1.0)
        params["alpha"] = np.clip((t - t0) / (t1 - t0), 0.0, 1.0)
    return params


# Each class is its partner's frames reversed in time; the first of a pair is generated forward.
_FORWARD = {
    "left": ("right", True),
    "right": ("right", False),
    "up": ("down", True),
    "down": ("down", False),
    "grow": ("grow", False),
    "shrink": ("grow", True),
    "rotate_cw": ("rotate_ccw", True),
    "rotate_ccw": ("rotate_ccw", False),
    "appear": ("appear", False),
    "disappear": ("appear", True),
}


def _render_video(
    digit: np.ndarray, kind: str, rng: np.random.Generator, num_frames: int, size: int
) -> np.ndarray:
    forward, reverse = _FORWARD[kind]
    t = np.linspace(0.0, 1.0, num_frames)
    p = _trajectory(forward, rng, t, size)
    background = _background(rng, size)
    colour = rng.uniform(170, 255, size=3).astype(np.float32)
    base = 24.0 * size / 64.0
    glyph = Image.fromarray(digit.astype(np.uint8))
    masks = np.zeros((num_frames, size, size), dtype=np.float32)
    for i in range(num_frames):
        side = max(2, int(round(base * p["scale"][i])))
        patch = glyph.resize((side, side), Image.Resampling.BILINEAR)
        patch = patch.rotate(p["angle"][i], resample=Image.Resampling.BILINEAR, expand=True)
        ph, pw = patch.height, patch.width
        x0 = int(round(p["cx"][i] - pw / 2))
        y0 = int(round(p["cy"][i] - ph / 2))
        xs, ys = max(x0, 0), max(y0, 0)
        xe, ye = min(x0 + pw, size), min(y0 + ph, size)
        if xe > xs and ye > ys:
            arr = np.asarray(patch, dtype=np.float32) * (p["alpha"][i] / 255.0)
            masks[i, ys:ye, xs:xe] = arr[ys - y0 : ye - y0, xs - x0 : xe - x0]
    masks = masks[..., None]
    noise = rng.standard_normal(size=(num_frames, size, size, 1), dtype=np.float32) * 4.0
    frames = background + (colour - background) * masks + noise
    frames = np.clip(frames, 0, 255, out=frames).astype(np.uint8)
    return frames[::-1].copy() if reverse else frames


def generate_moving_digits(
    root: str | os.PathLike[str],
    *,
    videos_per_class: VideosPerClass = DEFAULT_VIDEOS_PER_CLASS,
    num_frames: int = 16,
    size: int = 64,
    seed: int = 0,
    progress: bool | None = None,
) -> Path:
    """Write the data set as H.264 mp4 files in ``root/{train,val,test}/<class>/NNNN.mp4``.

    ``videos_per_class``: ``(train, val, test)``, a mapping by split, or an int ``n`` meaning
    ``(n, n // 4, n // 3)``. Every video depends only on ``(seed, split, class, number)``, and
    the same arguments write byte-identical files.
    Labels follow the sorted class names (:data:`CLASSES`): appear, disappear, down, grow, left,
    right, rotate_ccw, rotate_cw, shrink, up; :data:`PAIRS` lists the time-reversed pairs.
    ``progress``: as :class:`rnnvision_kit.Progress` (None: a bar on a terminal, else a
    line every 30 s; True: a bar; False: none).
    """
    if size % 2 or size < 16:
        raise ValueError(f"size must be even and >= 16, got {size}")
    if num_frames < 2:
        raise ValueError(f"num_frames must be >= 2, got {num_frames}")
    counts = _split_counts(videos_per_class)
    root = Path(root)
    digits = _load_digits()
    total = sum(counts.values()) * len(CLASSES)
    shown = Progress(total, "generating moving-digits", "video", show=progress)
    for split_id, split in enumerate(SPLITS):
        lo, hi = _DIGIT_RANGES[split]
        for class_id, kind in enumerate(CLASSES):
            folder = root / split / kind
            folder.mkdir(parents=True, exist_ok=True)
            for number in range(counts[split]):
                seq = np.random.SeedSequence([seed, VERSION, split_id, class_id, number])
                rng = np.random.default_rng(seq)
                digit = digits[rng.integers(lo, hi)]
                frames = _render_video(digit, kind, rng, num_frames, size)
                write_video(folder / f"{number:04d}.mp4", frames, fps=FPS)
                shown.update()
    shown.close()
    return root


def _key(counts: Mapping[str, int], num_frames: int, size: int, seed: int) -> str:
    n = "-".join(str(counts[s]) for s in SPLITS)
    return f"v{VERSION}e{ENCODING}-n{n}-t{num_frames}-s{size}-seed{seed}"


def ensure_moving_digits(
    videos_per_class: VideosPerClass = DEFAULT_VIDEOS_PER_CLASS,
    *,
    num_frames: int = 16,
    size: int = 64,
    seed: int = 0,
) -> Path:
    """Return the cached data set folder, generating it once.

    It lives in ``cache_dir("moving-digits", <key>)``; generation goes to a temporary folder that
    is renamed into place only when complete, so an interrupted run never leaves half a data set.
    """
    counts = _split_counts(videos_per_class)
    meta = {
        "version": VERSION,
        "classes": list(CLASSES),
        "pairs": [list(pair) for pair in PAIRS],
        "videos_per_class": counts,
        "num_frames": num_frames,
        "size": size,
        "seed": seed,
        "fps": FPS,
    }

    def generate(folder: Path) -> None:
        generate_moving_digits(
            folder, videos_per_class=counts, num_frames=num_frames, size=size, seed=seed
        )

    return generate_once("moving-digits", _key(counts, num_frames, size, seed), generate, meta)
