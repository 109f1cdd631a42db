"""``rnnkit eval`` checks the class names of the data against the run's and records the data it
measured in ``eval-<split>.json`` (issue 17)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from rnnvision_kit.errors import DataError
from rnnvision_kit.runner.splits import check_class_names
from tests.conftest import CliRunner, train_in_process
from tests.test_splits import TINY, video_folder


@pytest.fixture(scope="module")
def trained(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """A tiny run on classes jump/wave: (run folder, its data folder)."""
    root = tmp_path_factory.mktemp("eval-data")
    data = video_folder(root / "videos")
    run_dir, _ = train_in_process(root, *TINY, "--data", f"videofolder:{data}")
    return run_dir, data


def _eval(rnnkit: CliRunner, run_dir: Path, data: Path) -> tuple[int, str, str]:
    result = rnnkit("eval", str(run_dir), "--data", f"videofolder:{data}", "--json")
    return result.returncode, result.stdout, result.stderr


def test_eval_records_the_data_it_measured(trained: tuple[Path, Path], rnnkit: CliRunner) -> None:
    run_dir, data = trained
    code, out, err = _eval(rnnkit, run_dir, data)
    assert code == 0, err
    assert "warning" not in err
    saved = json.loads((run_dir / "eval-test.json").read_text())
    assert saved["data"] == json.loads(out)["data"]
    test = json.loads((run_dir / "splits.json").read_text())["splits"]["test"]
    assert saved["data"] == {
        "source": "videofolder",
        "path": str(data),
        "split": "test",
        "items": test["count"],
        "class_names": ["jump", "wave"],
        "sha256": test["sha256"],  # the run's own test split, as splits.json records it
    }


def test_eval_on_another_number_of_classes_is_one_line(
    trained: tuple[Path, Path], rnnkit: CliRunner, tmp_path: Path
) -> None:
    run_dir, _ = trained
    (run_dir / "eval-test.json").unlink(missing_ok=True)
    other = video_folder(tmp_path / "three", ("jump", "run", "wave"))
    code, out, err = _eval(rnnkit, run_dir, other)
    assert code != 0 and out == ""
    assert err.strip() == (
        f"rnnkit: error: {other}: 3 classes (jump, run, wave), the run was trained on 2 "
        "(jump, wave); evaluate on data with the run's classes"
    )
    assert not (run_dir / "eval-test.json").exists()


def test_eval_on_other_class_names_warns_and_records_them(
    trained: tuple[Path, Path], rnnkit: CliRunner, tmp_path: Path
) -> None:
    run_dir, _ = trained
    other = video_folder(tmp_path / "renamed", ("hop", "wave"))
    code, out, err = _eval(rnnkit, run_dir, other)
    assert code == 0, err
    assert err.strip() == (
        f"rnnkit: warning: {other}: 1 of 2 class names differ from the run's (class 0 is 'hop' "
        "here, 'jump' in the run); metrics take class i here for class i of the run"
    )
    data = json.loads(out)["data"]
    assert data["path"] == str(other) and data["class_names"] == ["hop", "wave"]


def test_the_run_s_classes_in_another_order_are_an_error() -> None:
    with pytest.raises(DataError, match=r"^d: the run's classes in another order \(class 0 is "):
        check_class_names(["a", "b", "c"], ["b", "a", "c"], "d")
    check_class_names(("a", "b"), ["a", "b"], "d")  # the same: nothing to say
