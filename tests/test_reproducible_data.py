"""Generated data sets are byte-identical across generations with the same seed (issue 17): the
same frames written twice give the same file, and a generation in another process, whose heap
holds other bytes (``MALLOC_PERTURB_``), gives the same files as one in this process."""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from rnnkit_segrefine.synthetic import ensure_synthetic_seg
from rnnkit_video.moving_digits import ensure_moving_digits

from rnnvision_kit.data import read_frames, write_video

# Small instances of the two generated data sets (moving-digits at its default frame size: the
# encoder's run-to-run differences showed there).
MOVING_DIGITS = "ensure_moving_digits((2, 1, 1), seed=4)"
SYNTHETIC_SEG = "ensure_synthetic_seg((2, 1, 1), num_frames=3, size=32, seed=4)"


def _hashes(root: Path) -> dict[str, str]:
    return {
        p.relative_to(root).as_posix(): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(root.rglob("*"))
        if p.is_file()
    }


@pytest.mark.parametrize("suffix", [".mp4", ".mkv", ".avi", ".webm"])
def test_the_same_frames_give_the_same_bytes(tmp_path: Path, suffix: str) -> None:
    frames = np.random.default_rng(0).integers(0, 256, (8, 64, 48, 3), dtype=np.uint8)
    one = write_video(tmp_path / f"one{suffix}", frames).read_bytes()
    two = write_video(tmp_path / f"two{suffix}", frames).read_bytes()
    assert one == two
    assert read_frames(tmp_path / f"two{suffix}", range(8)).shape == (8, 3, 64, 48)


def test_generations_in_two_processes_are_byte_identical(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("RNNKIT_CACHE", str(tmp_path / "here"))
    here = [ensure_moving_digits((2, 1, 1), seed=4)]
    here.append(ensure_synthetic_seg((2, 1, 1), num_frames=3, size=32, seed=4))
    code = (
        "import json\n"
        "from rnnkit_segrefine.synthetic import ensure_synthetic_seg\n"
        "from rnnkit_video.moving_digits import ensure_moving_digits\n"
        f"print(json.dumps([str({MOVING_DIGITS}), str({SYNTHETIC_SEG})]))\n"
    )
    env = {
        **os.environ,
        "RNNKIT_CACHE": str(tmp_path / "there"),
        "MALLOC_PERTURB_": "77",  # fresh heap memory holds other bytes than in this process
        "OMP_NUM_THREADS": "1",
    }
    done = subprocess.run(
        [sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=300
    )
    assert done.returncode == 0, done.stderr
    there = [Path(p) for p in json.loads(done.stdout)]
    for mine, theirs in zip(here, there, strict=True):
        assert mine.name == theirs.name and mine != theirs
        hashes = _hashes(mine)
        assert len(hashes) > 10 and hashes == _hashes(theirs)
