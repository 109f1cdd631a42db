"""Videos that probe fine but fail part-way through decoding, met while a run trains and
evaluates: each counted once across epochs and DataLoader workers, left out of val/test metrics
(never replaced), listed in summary.json and under the final table."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch

from rnnvision_kit.plugins import build_host
from rnnvision_kit.runner.pipeline import configure, open_task
from tests.bad_videos import cut_off, write_moov_first
from tests.conftest import CliRunner

SETTINGS = [
    "data.size=32",
    "data.num_frames=4",
    "data.batch_size=4",
    "data.val_fraction=0.25",
    "data.test_fraction=0.25",
    "data.frame_cache=false",
    "model.backbone=small-cnn",
    "train.threads=1",
]


@pytest.fixture(scope="module")
def damaged_folder(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict[str, Path]]:
    """Two classes of 8 moov-first videos; one train, one val and one test video then cut off at
    two thirds (they still probe fine). Returns (root, split -> damaged file)."""
    root = tmp_path_factory.mktemp("damaged")
    for c, name in enumerate(("left", "right")):
        (root / name).mkdir()
        for i in range(8):
            write_moov_first(root / name / f"{i}.mp4", frames=30, seed=10 * c + i)
    host = build_host()
    task = open_task(host.registries, "video-action")
    config = configure(task, data=f"videofolder:{root}", overrides=SETTINGS)
    lister = host.registries.datasets.get("videofolder").meta["list_samples"]
    splits = lister(config).splits
    damaged = {split: Path(splits[split][0].path) for split in ("train", "val", "test")}
    for path in damaged.values():
        cut_off(path)
    return root, damaged


@pytest.mark.parametrize("workers", [0, 2])
def test_run_counts_each_damaged_video_once_and_never_replaces_it_in_evaluation(
    damaged_folder: tuple[Path, dict[str, Path]], rnnkit: CliRunner, workers: int
) -> None:
    root, damaged = damaged_folder
    sets = [f"--set={s}" for s in [*SETTINGS, f"data.num_workers={workers}"]]
    result = rnnkit(
        "run",
        "--task",
        "video-action",
        "--data",
        f"videofolder:{root}",
        "--epochs",
        "3",
        "--seed",
        "0",
        *sets,
    )
    assert result.returncode == 0, result.stderr
    for path in damaged.values():  # one warning per file over 3 epochs of train and val reads
        assert result.stderr.count(f"skipping {path}:") == 1, result.stderr
        assert str(path) in result.stdout  # listed under the final table
    (run_dir,) = (Path.cwd() / "runs" / "video-action").iterdir()
    summary = json.loads((run_dir / "summary.json").read_text())
    assert summary["skipped_files"] == 3
    assert sorted(s["file"] for s in summary["skipped"]) == sorted(map(str, damaged.values()))
    assert all("decoding" in s["reason"] for s in summary["skipped"])  # where it stops
    # 4 test videos, one unreadable: metrics over the 3 readable ones, the count in the result
    assert summary["test"]["test/unreadable"] == 1
    assert summary["test"]["test/samples"] == 3
    rows = [json.loads(line) for line in (run_dir / "metrics.jsonl").read_text().splitlines()]
    assert [(r["val/samples"], r["val/unreadable"]) for r in rows] == [(3, 1)] * 3
    # the checkpoint remembers those met while training, so a resumed run does not read or
    # report them again (the test split is read after the last checkpoint)
    saved = torch.load(run_dir / "last.pt", weights_only=True)["unreadable"]
    assert sorted((split, path) for split, path, _, _ in saved) == [
        (split, str(damaged[split])) for split in ("train", "val")
    ]
    # per-video predictions name only the readable files, each once
    records = (run_dir / "predictions_test.jsonl").read_text().splitlines()
    files = [json.loads(line)["file"] for line in records]
    assert str(damaged["test"]) not in files and len(files) == len(set(files)) == 3
