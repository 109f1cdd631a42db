"""The run folder's splits.json, and ``--resume`` on changed data (issue 17): one line naming
what changed, before anything is trained or written; unchanged data resumes."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest

from rnnvision_kit.data import write_video
from rnnvision_kit.errors import DataError
from rnnvision_kit.runner.splits import changes, check_resume, items_hash, record_splits
from tests.conftest import CliRunner

CLASSES = ("jump", "wave")
# 6 videos per class: 4 train / 1 val / 1 test each; one step per epoch, tiny clips
TINY = [
    *("--task", "video-action", "--epochs", "1", "--seed", "0"),
    *("--set", "train.max_steps_per_epoch=1", "--set", "data.batch_size=4"),
    *("--set", "data.num_frames=2", "--set", "data.size=16", "--set", "data.test_clips=1"),
    *("--set", "data.val_fraction=0.2", "--set", "data.test_fraction=0.2"),
    *("--set", "model.hidden_size=8", "--set", "train.threads=1"),
]


def video_folder(root: Path, classes: tuple[str, ...] = CLASSES) -> Path:
    """``root/<class>/<i>.mp4``: 6 tiny real videos (4 frames of 16x16 noise) per class."""
    rng = np.random.default_rng(0)
    for name in classes:
        (root / name).mkdir(parents=True)
        for i in range(6):
            frames = rng.integers(0, 256, (4, 16, 16, 3), dtype=np.uint8)
            write_video(root / name / f"{i}.mp4", frames, fps=10)
    return root


@pytest.fixture
def folder(tmp_path: Path) -> Path:
    return video_folder(tmp_path / "videos")


def _train(rnnkit: CliRunner, folder: Path, *more: str) -> tuple[Path, dict]:
    result = rnnkit("run", *TINY, "--data", f"videofolder:{folder}", *more, "--json")
    assert result.returncode == 0, result.stderr
    summary = json.loads(result.stdout)
    return Path.cwd() / summary["run_dir"], summary


def test_run_records_its_splits_and_resume_refuses_changed_data(
    rnnkit: CliRunner, folder: Path
) -> None:
    run_dir, _ = _train(rnnkit, folder)
    record = json.loads((run_dir / "splits.json").read_text())
    assert record["source"] == "videofolder" and record["path"] == str(folder)
    splits = record["splits"]
    assert {s: splits[s]["count"] for s in splits} == {"train": 8, "val": 2, "test": 2}
    listed = [Path(p) for s in splits.values() for p in s["items"]]
    assert sorted(listed) == sorted(folder.glob("*/*.mp4"))  # every video, in one split only
    assert splits["test"]["sha256"] == items_hash(splits["test"]["items"])

    gone = Path(splits["train"]["items"][0])
    gone.unlink()
    before = {p.name: p.read_bytes() for p in run_dir.iterdir() if p.is_file()}
    result = rnnkit("run", "--resume", str(run_dir), "--epochs", "2")
    assert result.returncode != 0
    errors = [line for line in result.stderr.splitlines() if "resume: train.epochs" not in line]
    assert len(errors) == 1, result.stderr
    assert errors[0].startswith(
        f"rnnkit: error: {run_dir / 'splits.json'}: the data in {folder} changed since the run "
        f"started: train lost 1 file ({gone.relative_to(folder)})"
    )
    assert "moved to" in errors[0]  # the carving moved videos between splits: named too
    assert errors[0].endswith("(start a new run, or restore the data)")
    assert {p.name: p.read_bytes() for p in run_dir.iterdir() if p.is_file()} == before


def test_resume_on_unchanged_data_trains_on(rnnkit: CliRunner, folder: Path) -> None:
    run_dir, _ = _train(rnnkit, folder)
    recorded = (run_dir / "splits.json").read_text()
    result = rnnkit("run", "--resume", str(run_dir), "--epochs", "2", "--json")
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout)["epochs"] == 2
    assert (run_dir / "splits.json").read_text() == recorded


def test_changes_name_lost_gained_and_moved_items(tmp_path: Path) -> None:
    def record(train: list[str], val: list[str], test: list[str]) -> dict:
        return {
            s: {"count": len(items), "items": items}
            for s, items in (("train", train), ("val", val), ("test", test))
        }

    old = record(["/d/a.mp4", "/d/b.mp4", "/d/c.mp4"], ["/d/v.mp4"], ["/d/t.mp4", "/d/u.mp4"])
    new = record(
        ["/d/b.mp4", "/d/c.mp4", "/d/n.mp4"], ["/d/v.mp4", "/d/t.mp4", "/d/u.mp4"], ["/e/x.mp4"]
    )
    assert changes(old, new, "/d") == [
        "train lost 1 file (a.mp4)",
        "train gained 1 file (n.mp4)",
        "test gained 1 file (/e/x.mp4)",
        "test: 2 files (t.mp4, u.mp4) moved to val",
    ]
    ids = record(["0:aa", "1:bb"], ["2:cc"], ["3:dd", "4:ee"])  # data without files
    assert changes(ids, record(["0:aa", "1:bb"], ["2:cc"], ["3:dd"]), "/d") == [
        "test lost 1 item (4:ee)"
    ]
    reordered = record(["/d/c.mp4", "/d/b.mp4", "/d/a.mp4"], ["/d/v.mp4"], ["/d/t.mp4", "/d/u.mp4"])
    assert changes(old, reordered) == ["train holds its 3 items in another order"]
    assert changes(old, old) == []
    # a source that names no items: counts only
    counted = {s: {"count": v["count"]} for s, v in old.items()}
    fewer = {**counted, "test": {"count": 1}}
    assert changes(counted, fewer) == ["test held 2 items, now 1"]
    assert changes(old, fewer) == ["test held 2 items, now 1"]

    # a run without splits.json (from before it was recorded) resumes unchecked
    check_resume(tmp_path, {"splits": new})
    record_splits(tmp_path, {"source": "s", "path": None, "splits": old})
    with pytest.raises(DataError, match=r"splits\.json: the data changed .*train lost 1 file"):
        check_resume(tmp_path, {"splits": new})
    (tmp_path / "splits.json").write_text("{not json")
    with pytest.raises(DataError, match=r"splits\.json: not a readable splits record"):
        check_resume(tmp_path, {"splits": new})


def test_built_in_sources_name_their_items(tmp_path: Path) -> None:
    """digits (no files): index and content hash; image folders: the files read."""
    from PIL import Image
    from rnnkit_classify.data import digits, imagefolder
    from rnnkit_classify.task import ImageClassifyTask

    from rnnvision_kit.runner.splits import split_record

    config = ImageClassifyTask().default_config()
    bundle = digits(config)
    again = digits(config)
    record = split_record(bundle, config)["splits"]
    assert record == split_record(again, config)["splits"]  # stable identities
    assert sum(v["count"] for v in record.values()) == 1797
    first = record["train"]["items"][0]
    assert first.split(":")[0].isdigit() and len(first.split(":")[1]) == 10

    root = tmp_path / "pics"
    for c, name in enumerate(("a", "b")):
        (root / name).mkdir(parents=True)
        for i in range(5):
            Image.new("L", (8, 8), color=40 * i + c).save(root / name / f"{i}.png")
    (root / "b" / "bad.png").write_text("not an image")
    config.data.source, config.data.path = "imagefolder", str(root)
    bundle = imagefolder(config)
    items = [Path(p) for s in ("train", "val", "test") for p in bundle.items[s]]
    assert sorted(items) == sorted(p for p in root.glob("*/*.png") if p.name != "bad.png")
    labels = [int(bundle.train[i][1]) for i in range(len(bundle.train))]
    assert [Path(p).parent.name for p in bundle.items["train"]] == ["ab"[k] for k in labels]
    shutil.rmtree(root)


def test_seg_refine_clips_are_named_by_their_first_frame(tmp_path: Path) -> None:
    from rnnkit_segrefine.data import videomasks
    from rnnkit_segrefine.task import SegRefineTask

    from tests.test_segmentation_data import make_videos

    root = make_videos(tmp_path / "seg", {f"v{i}": 4 for i in range(5)})
    config = SegRefineTask().default_config()
    config.data.source, config.data.path, config.data.clip_len = "videomasks", str(root), 2
    bundle = videomasks(config)
    items = [item for s in ("train", "val", "test") for item in bundle.items[s]]
    assert sorted(items) == sorted(
        str(root / f"v{i}/frames/f{t}.jpg") for i in range(5) for t in (0, 2)
    )
    assert {Path(item).parts[-3] for item in bundle.items["test"]}.isdisjoint(
        Path(item).parts[-3] for item in bundle.items["train"]
    )  # carved by video
