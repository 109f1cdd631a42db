"""Files and folders the project writes follow the umask (issue 17): a teammate who shares a run
folder or a data cache can read it. Before, every file written through ``mkstemp`` was 0600 and
a generated data set's folder 0700."""

from __future__ import annotations

import os
import stat
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
from rnnkit_segrefine.synthetic import ensure_synthetic_seg
from rnnkit_video.moving_digits import ensure_moving_digits

from rnnvision_kit.data import FrameCache, ProbeCache, write_video
from tests.conftest import CliRunner, run_dirs

UMASKS = [0o022, 0o002]


@pytest.fixture(params=UMASKS, ids=lambda mask: f"umask-{mask:03o}")
def umask(request: pytest.FixtureRequest) -> Iterator[int]:
    previous = os.umask(request.param)
    yield request.param
    os.umask(previous)


def _modes(root: Path) -> dict[str, int]:
    """Permission bits of ``root`` and of everything under it, by path relative to ``root``."""
    paths = [root, *sorted(root.rglob("*"))]
    return {p.relative_to(root).as_posix(): stat.S_IMODE(p.stat().st_mode) for p in paths}


def _expected(root: Path, mask: int) -> dict[str, int]:
    return {name: (0o777 if (root / name).is_dir() else 0o666) & ~mask for name in _modes(root)}


def test_run_eval_and_export_files_follow_the_umask(
    umask: int, rnnkit: CliRunner, tmp_path: Path, one_thread: None
) -> None:
    """Checkpoints, summary.json, eval-test.json, model.onnx and its sidecar, and everything
    else of a real (one-step) run."""
    tiny = ["--set", "model.hidden_size=8", "--set", "train.max_steps_per_epoch=1"]
    rnnkit("run", "--task", "image-classify", "--epochs", "1", *tiny, "--quiet", check=True)
    (run_dir,) = run_dirs(tmp_path, "image-classify")
    rnnkit("eval", str(run_dir), check=True)
    rnnkit("export", str(run_dir), check=True)
    written = _modes(run_dir)
    for name in ("last.pt", "best.pt", "summary.json", "eval-test.json", "export/model.onnx"):
        assert written[name] == 0o666 & ~umask, name
    assert written == _expected(run_dir, umask)


def test_generated_data_and_caches_follow_the_umask(
    umask: int, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("RNNKIT_CACHE", str(tmp_path / "cache"))
    for root in (
        ensure_moving_digits((1, 1, 1), num_frames=2, size=32),
        ensure_synthetic_seg((1, 1, 1), num_frames=1, size=32),
    ):
        assert _modes(root)["."] == 0o777 & ~umask  # the folder renamed into place
        assert _modes(root) == _expected(root, umask)
    video = write_video(tmp_path / "v.mp4", np.zeros((2, 16, 16, 3), dtype=np.uint8))
    with ProbeCache(tmp_path / "cache" / "probe") as probes:
        probes.get(video)
    cache = FrameCache(tmp_path / "frames")
    assert cache.directory is not None
    for root in (tmp_path / "cache" / "probe", cache.directory):
        assert len(_modes(root)) == 2 and _modes(root) == _expected(root, umask)


def test_generation_never_replaces_a_folder_it_did_not_write(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A folder at the generated data set's place without its marker is the user's: one line,
    and every file in it is kept (issue 17: nothing is deleted that the project did not write)."""
    from rnnvision_kit.data import generate_once
    from rnnvision_kit.errors import DataError

    monkeypatch.setenv("RNNKIT_CACHE", str(tmp_path))
    foreign = tmp_path / "toy" / "k1"
    foreign.mkdir(parents=True)
    (foreign / "notes.txt").write_text("mine")

    def generate(folder: Path) -> None:
        (folder / "a.bin").write_bytes(b"x")

    with pytest.raises(DataError, match="k1: in the way of the generated data set"):
        generate_once("toy", "k1", generate, {})
    assert (foreign / "notes.txt").read_text() == "mine"
    assert sorted(p.name for p in (tmp_path / "toy").iterdir()) == ["k1"]  # no temp folder left
    made = generate_once("toy", "k2", generate, {})
    assert (made / "a.bin").read_bytes() == b"x" and (made / "COMPLETE.json").is_file()
