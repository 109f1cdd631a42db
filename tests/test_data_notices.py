"""Notices about a data set (0/255 masks read as 0/1, sparse mask values) are shown once per data
set and cache, remembered in the rnnkit cache (never in the data folder); check-data shows them
every time."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from rnnvision_kit.data.cache import NOTICES, every_notice, notice_once
from tests.conftest import CliRunner
from tests.test_data_errors import mask_folder, open_masks, warnings

BINARY = "masks store only 0 and 255: read as classes 0/1"


@pytest.fixture
def cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A cache of this test's own: no notice shown before."""
    folder = tmp_path / "cache"
    monkeypatch.setenv("RNNKIT_CACHE", str(folder))
    return folder


def _files(root: Path) -> list[Path]:
    return sorted(root.rglob("*"))


def test_0_255_notice_is_shown_once_per_data_set(
    tmp_path: Path, cache: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    root = mask_folder(tmp_path / "shapes", (0, 255))
    files = _files(root)
    assert open_masks(root).spec.num_classes == 2
    shown = warnings(capsys)
    assert len(shown) == 1 and BINARY in shown[0] and str(root) in shown[0]
    for _ in range(2):  # later runs and evals over the same data: quiet, same reading
        assert open_masks(root).spec.num_classes == 2
        assert warnings(capsys) == []
    assert _files(root) == files  # nothing written into the data folder
    assert len(list((cache / NOTICES).glob("*.json"))) == 1

    copy = Path(shutil.copytree(root, tmp_path / "other"))  # another data set: its own notice
    open_masks(copy)
    assert [str(copy) in line for line in warnings(capsys)] == [True]


def test_a_new_cache_or_a_replaced_data_set_shows_it_again(
    tmp_path: Path, cache: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture
) -> None:
    root = mask_folder(tmp_path / "shapes", (0, 255))
    open_masks(root)
    assert len(warnings(capsys)) == 1
    monkeypatch.setenv("RNNKIT_CACHE", str(tmp_path / "fresh"))
    open_masks(root)
    assert len(warnings(capsys)) == 1
    shutil.rmtree(root)  # the same path, another data set
    mask_folder(root, (0, 255))
    open_masks(root)
    assert len(warnings(capsys)) == 1


def test_sparse_values_notice_is_shown_once(
    tmp_path: Path, cache: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    root = mask_folder(tmp_path / "shapes", (0, 128, 255))
    open_masks(root)
    assert len(warnings(capsys)) == 1
    open_masks(root)
    assert warnings(capsys) == []


def test_check_data_shows_the_notice_every_time(
    tmp_path: Path, cache: Path, rnnkit: CliRunner
) -> None:
    root = mask_folder(tmp_path / "shapes", (0, 255))
    open_masks(root)  # shown once already, by a run
    for _ in range(2):
        result = rnnkit("check-data", "--task", "seg-refine", "--data", f"maskfolder:{root}")
        assert result.returncode == 0, result.stderr
        assert result.stderr.count(BINARY) == 1
    assert "detected binary masks stored as 0/255" in result.stdout


def test_notice_once_without_a_writable_cache_shows_it_every_time(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("not a folder")
    monkeypatch.setenv("RNNKIT_CACHE", str(blocker / "cache"))
    assert notice_once("data: a notice", [tmp_path]) and notice_once("data: a notice", [tmp_path])
    assert warnings(capsys) == ["rnnkit: warning: data: a notice"] * 2


def test_every_notice_shows_it_again(
    tmp_path: Path, cache: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    data = tmp_path / "data"
    data.mkdir()
    assert notice_once("data: a notice", [data])
    assert not notice_once("data: a notice", [data])
    assert not notice_once("data: a notice", [tmp_path / "data" / "."])  # the same folder
    with every_notice():
        assert notice_once("data: a notice", [data])
    assert notice_once("data: another notice", [data])
    assert len(warnings(capsys)) == 3
