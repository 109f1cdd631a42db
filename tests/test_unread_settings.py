"""Settings that say they are unused: config.yaml marks the data.* settings the chosen data
source does not read, and setting one explicitly gives one warning line (issue 20, item 6)."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from rnnvision_kit.config import annotated_yaml, load_yaml
from rnnvision_kit.plugins import build_host
from rnnvision_kit.runconfig import configured, unread_settings


@pytest.fixture(scope="module")
def registries():  # type: ignore[no-untyped-def]
    return build_host().registries


def test_videofolder_does_not_read_fold_nor_videos_per_class(registries) -> None:  # type: ignore[no-untyped-def]
    config, _ = configured(registries, "video-action", {"data": "videofolder:/nowhere"})
    source, unread = unread_settings(registries, config)  # type: ignore[misc]
    assert source.endswith("videofolder")
    assert set(unread) == {"fold", "videos_per_class"}
    config, _ = configured(registries, "video-action", {})
    assert unread_settings(registries, config)[1] == ["fold", "val_fraction", "test_fraction"]  # type: ignore[index]


def test_setting_an_unread_setting_warns_once(registries, capsys, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    options = {"data": "videofolder:/nowhere", "overrides": ("data.fold=2", "data.size=16")}
    configured(registries, "video-action", options)
    lines = capsys.readouterr().err.splitlines()
    assert lines == [
        "rnnkit: warning: --set data.fold: data source videofolder does not read "
        "data.fold; it has no effect"
    ]
    # a config file (e.g. an earlier run's config.yaml) warns only for values changed from the
    # task's defaults
    file = tmp_path / "run.yaml"
    file.write_text("data:\n  fold: 1\n  videos_per_class: [3]\n")
    configured(registries, "video-action", {"data": "videofolder:/x", "config_file": str(file)})
    lines = capsys.readouterr().err.splitlines()
    assert (
        len(lines) == 1 and "data.videos_per_class in " in lines[0] and "data.fold" not in lines[0]
    )


def test_config_yaml_marks_unread_settings_and_loads_back(registries, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    from rnnvision_kit.runner.run import config_text

    config, _ = configured(registries, "video-action", {"data": "videofolder:/nowhere"})
    text = config_text(config.to_dict(), config, registries)
    marked = [line for line in text.splitlines() if "# not read by" in line]
    assert marked == [
        "  fold: 1  # not read by data source videofolder",
        "  videos_per_class:  # not read by data source videofolder",
    ]
    assert yaml.safe_load(text) == config.to_dict()
    path = tmp_path / "config.yaml"
    path.write_text(text)
    again, _ = configured(registries, "video-action", {"config_file": str(path)})
    assert again == config  # --config config.yaml: the same run, no warning


def test_annotation_left_out_where_a_value_spans_lines() -> None:
    values = {"data": {"path": "a " * 60, "fold": 1}}
    notes = {"data.path": "not read", "data.fold": "not read"}
    text = annotated_yaml(values, notes)
    assert "  fold: 1  # not read" in text
    assert yaml.safe_load(text) == values


@pytest.mark.slow
def test_run_folder_config_yaml_marks_unread(tmp_path: Path, rnnkit) -> None:  # type: ignore[no-untyped-def]
    """A real (tiny) moving-digits run: its config.yaml marks fold and the fractions."""
    pytest.importorskip("av")
    result = rnnkit(
        "run", "--task", "video-action", "--epochs", "1", "--out", str(tmp_path),
        "--set", "data.videos_per_class=[2,1,1]", "--set", "train.max_steps_per_epoch=1",
        "--set", "data.val_fraction=0.5",
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    assert "data.val_fraction: data source" in result.stderr
    # health notices known before training come at the start, once (issue 20, item 4)
    notice = "rnnkit: notice: the best checkpoint is chosen on 10 validation samples"
    assert result.stdout.count(notice) == 1
    assert result.stdout.index(notice) < result.stdout.index("epoch 1/1")
    assert notice not in result.stderr
    (config_file,) = tmp_path.glob("video-action/*/config.yaml")
    text = config_file.read_text()
    assert "  fold: 1  # not read by data source moving-digits" in text
    assert load_yaml(config_file)["data"]["fold"] == 1
