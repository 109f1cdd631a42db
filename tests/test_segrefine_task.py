"""Task seg-refine end to end on tiny data: run folder, eval, predict masks, image mode, frozen
segmenter, data sources (and the settings they declare) and bad files, the size rule, settings
checks, the plugin check, and the registered metrics."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from PIL import Image
from rnnkit_segrefine.readers import read_mask, write_index_png
from rnnkit_segrefine.synthetic import CLASSES

from rnnvision_kit import SegmentationSpec
from rnnvision_kit.data import write_video
from tests.conftest import CliRunner, train_in_process
from tests.test_davis import make_davis

TINY = [
    "--task",
    "seg-refine",
    "--set",
    "data.videos=6",  # 6 train / 1 val / 1 test videos of 8 frames
    "--set",
    "data.batch_size=3",
    "--epochs",
    "1",
    "--set",
    "train.max_steps_per_epoch=2",
    "--set",
    "train.threads=1",
    "--seed",
    "1",
]


@pytest.fixture(scope="module")
def trained(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Path, dict]]:
    """One tiny ConvGRU run shared by this module's tests: (run folder, summary)."""
    yield train_in_process(tmp_path_factory.mktemp("segrefine-run"), *TINY)


def _weights(run_dir: Path) -> dict[str, torch.Tensor]:
    return torch.load(run_dir / "best.pt", weights_only=True)["model"]


# ----------------------------------------------------------------------------- run, eval


def test_run_folder_is_complete(trained: tuple[Path, dict]) -> None:
    run_dir, summary = trained
    names = {p.name for p in run_dir.iterdir()}
    assert {
        "config.yaml",
        "metrics.jsonl",
        "best.pt",
        "last.pt",
        "summary.json",
        "curves.png",
        "per_class_iou_test.json",
        "overlays",
    } <= names
    for key in ("miou", "dice", "pixel_acc", "flicker"):
        assert 0.0 <= summary["test"][f"test/{key}"] <= 1.0
    assert summary["test"]["test/samples"] == 1 and summary["skipped_files"] == 0
    per_class = json.loads((run_dir / "per_class_iou_test.json").read_text())
    assert list(per_class) == list(CLASSES)
    ious = [v for v in per_class.values() if v is not None]
    assert np.mean(ious) == pytest.approx(summary["test"]["test/miou"], abs=1e-6)
    overlay = Image.open(run_dir / "overlays" / "clip0.png")
    assert overlay.size == (8 * 128, 3 * 128)  # a column per frame; frames, truth, prediction
    with Image.open(run_dir / "overlays" / "clip0.gif") as gif:
        assert gif.n_frames == 8 and gif.size == (3 * 128, 128)


def test_eval_reproduces_the_test_metrics(trained: tuple[Path, dict], rnnkit: CliRunner) -> None:
    run_dir, summary = trained
    result = rnnkit("eval", str(run_dir), "--json")
    assert result.returncode == 0, result.stderr
    metrics = json.loads(result.stdout)["metrics"]
    for key in ("test/miou", "test/flicker", "test/pixel_acc"):
        assert metrics[key] == pytest.approx(summary["test"][key])


# ----------------------------------------------------------------------------- predict


def test_predict_writes_a_mask_per_frame(
    trained: tuple[Path, dict], rnnkit: CliRunner, tmp_path: Path
) -> None:
    run_dir, _ = trained
    rng = np.random.default_rng(0)
    video = write_video(
        tmp_path / "clip.mp4", rng.integers(0, 256, (11, 48, 80, 3), dtype=np.uint8), fps=10
    )
    frames = tmp_path / "frames"
    frames.mkdir()
    for i in (1, 2, 10):  # natural order: 1, 2, 10
        Image.fromarray(rng.integers(0, 256, (40, 40, 3), dtype=np.uint8)).save(
            frames / f"f{i}.png"
        )
    image = tmp_path / "still.jpg"
    Image.fromarray(rng.integers(0, 256, (70, 90, 3), dtype=np.uint8)).save(image)
    out = tmp_path / "masks"
    result = rnnkit(
        "predict", str(run_dir), str(video), str(frames), str(image), "--out", str(out), "--json"
    )
    assert result.returncode == 0, result.stderr
    video_record, folder_record, image_record = json.loads(result.stdout)

    assert video_record["kind"] == "video" and video_record["frames"] == 11
    assert video_record["masks"] == str(out / "clip.mp4_masks")  # named with its extension
    masks = sorted((out / "clip.mp4_masks").iterdir())
    assert [p.name for p in masks] == [f"{i:05d}.png" for i in range(11)]
    for path in masks:
        with Image.open(path) as mask:
            assert mask.mode == "P" and mask.size == (80, 48)
        assert read_mask(path).max() < len(CLASSES)
    assert sum(video_record["class_fractions"].values()) == pytest.approx(1.0, abs=1e-4)

    assert folder_record["kind"] == "frames" and folder_record["frames"] == 3
    assert len(list((out / "frames_masks").glob("*.png"))) == 3
    assert image_record["kind"] == "image" and image_record["size"] == [90, 70]
    assert image_record["mask"] == str(out / "still.jpg_mask.png")
    assert read_mask(image_record["mask"]).shape == (70, 90)


def test_predict_outputs_of_inputs_sharing_a_stem_never_collide(
    trained: tuple[Path, dict], rnnkit: CliRunner, tmp_path: Path
) -> None:
    """a.mp4 and a.avi in one call, then two a.png in different folders: each input keeps its
    own masks (named by file name with extension, and by folders where names are shared)."""
    run_dir, _ = trained
    rng = np.random.default_rng(1)
    mp4 = write_video(tmp_path / "a.mp4", rng.integers(0, 256, (3, 32, 32, 3), dtype=np.uint8))
    avi = write_video(tmp_path / "a.avi", rng.integers(0, 256, (5, 32, 32, 3), dtype=np.uint8))
    out = tmp_path / "out"
    result = rnnkit("predict", str(run_dir), str(mp4), str(avi), "--out", str(out), "--json")
    assert result.returncode == 0, result.stderr
    records = json.loads(result.stdout)
    assert [r["masks"] for r in records] == [str(out / "a.mp4_masks"), str(out / "a.avi_masks")]
    assert len(list((out / "a.mp4_masks").glob("*.png"))) == 3
    assert len(list((out / "a.avi_masks").glob("*.png"))) == 5

    images = []
    for folder in ("left", "right"):
        (tmp_path / folder).mkdir()
        images.append(tmp_path / folder / "a.png")
        Image.fromarray(rng.integers(0, 256, (24, 40, 3), dtype=np.uint8)).save(images[-1])
    result = rnnkit("predict", str(run_dir), *map(str, images), "--out", str(out), "--json")
    assert result.returncode == 0, result.stderr
    assert [r["mask"] for r in json.loads(result.stdout)] == [
        str(out / "left-a.png_mask.png"),
        str(out / "right-a.png_mask.png"),
    ]
    assert sorted(p.name for p in out.iterdir()) == [
        "a.avi_masks",
        "a.mp4_masks",
        "left-a.png_mask.png",
        "right-a.png_mask.png",
    ]


# ----------------------------------------------------------------------------- model variants


def test_frozen_segmenter_is_loaded_and_kept(
    trained: tuple[Path, dict], tmp_path: Path, one_thread: None
) -> None:
    first, _ = trained
    run_dir, _ = train_in_process(
        tmp_path,
        *TINY,
        "--set",
        "model.freeze_segmenter=true",
        "--set",
        f"model.segmenter_checkpoint={first}",
    )
    before, after = _weights(first), _weights(run_dir)
    segmenter = [k for k in before if k.startswith("segmenter.")]
    assert segmenter and all(torch.equal(before[k], after[k]) for k in segmenter)
    assert after["refiner.head.weight"].abs().sum() > 0  # the refinement (zero at start) trained


def test_frozen_segmenter_checkpoint_must_match(
    trained: tuple[Path, dict], rnnkit: CliRunner, one_thread: None
) -> None:
    result = rnnkit(
        "run",
        *TINY,
        "--set",
        "model.freeze_segmenter=true",
        "--set",
        f"model.segmenter_checkpoint={trained[0]}",
        "--set",
        "model.encoder_depth=4",
    )
    assert result.returncode == 2
    assert "has model.encoder_depth=3 but this run sets 4" in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1


def _maskfolder(root: Path, n: int, size: tuple[int, int] = (64, 64)) -> Path:
    rng = np.random.default_rng(1)
    (root / "images").mkdir(parents=True)
    (root / "masks").mkdir()
    for i in range(n):
        mask = np.zeros(size, dtype=np.uint8)
        y, x = rng.integers(8, size[0] - 24), rng.integers(8, size[1] - 24)
        mask[y : y + 16, x : x + 16] = 1 + i % 2
        image = rng.integers(0, 80, (*size, 3), dtype=np.uint8)
        image[mask > 0] = 200
        Image.fromarray(image).save(root / "images" / f"im{i}.png")
        write_index_png(root / "masks" / f"im{i}.png", mask)
    return root


def test_image_mode_on_a_mask_folder(tmp_path: Path, one_thread: None) -> None:
    root = _maskfolder(tmp_path / "shapes", 10)
    run_dir, summary = train_in_process(
        tmp_path,
        *TINY,
        "--data",
        f"maskfolder:{root}",
        "--set",
        "model.mode=image",
        "--set",
        "model.iterations=2",
        "--set",
        "model.refine=convlstm",
    )
    assert summary["test"]["test/samples"] == 2  # 20% of 10 images held out for test
    assert summary["test"]["test/flicker"] == 0.0  # single images: nothing can flicker
    assert "refiner.cell.input_conv.weight" in _weights(run_dir)
    assert json.loads((run_dir / "per_class_iou_test.json").read_text()).keys() == {
        "class0",
        "class1",
        "class2",
    }


def _videomasks(root: Path, videos: int, frames: int) -> Path:
    rng = np.random.default_rng(2)
    for v in range(videos):
        for t in range(frames):
            for sub in ("frames", "masks"):
                (root / f"vid{v}" / sub).mkdir(parents=True, exist_ok=True)
            mask = np.zeros((32, 32), dtype=np.uint8)
            mask[4 + t : 16 + t, 8:20] = 1
            Image.fromarray(rng.integers(0, 256, (32, 32, 3), dtype=np.uint8)).save(
                root / f"vid{v}" / "frames" / f"{t}.png"
            )
            write_index_png(root / f"vid{v}" / "masks" / f"{t}.png", mask)
    return root


def test_videomasks_bad_files_stop_or_are_skipped_and_counted(
    tmp_path: Path, rnnkit: CliRunner, one_thread: None
) -> None:
    root = _videomasks(tmp_path / "videos", videos=10, frames=4)
    broken = root / "vid3" / "frames" / "2.png"
    broken.write_bytes(b"not a png")
    tiny = TINY[:2] + TINY[4:]  # less "--set data.videos=6": videomasks does not read it
    args = [*tiny, "--data", f"videomasks:{root}", "--set", "data.clip_len=2"]
    result = rnnkit("run", *args)
    assert result.returncode == 2
    assert result.stderr.startswith(f"rnnkit: error: {broken}: not a readable image")
    assert len(result.stderr.strip().splitlines()) == 1

    _, summary = train_in_process(tmp_path, *args, "--set", "data.on_error=skip")
    assert summary["skipped_files"] == 1 and summary["skipped"][0]["file"] == str(broken)
    assert summary["test"]["test/samples"] == 4  # 2 of 10 videos, 2 clips of 2 frames each


def test_davis_masks_0_255_train_a_two_class_model_with_augmentation(
    tmp_path: Path, one_thread: None
) -> None:
    root = make_davis(tmp_path / "DAVIS", 2016)
    run_dir, summary = train_in_process(
        tmp_path,
        *TINY,
        "--data",
        f"davis:{root}",
        "--set",
        "data.clip_len=2",
        "--set",
        "data.augment=true",
        "--set",
        "data.hflip=true",
        "--epochs",
        "2",
    )
    assert summary["test"]["test/samples"] == 4  # the 2 DAVIS val videos, 2 clips each
    head = [w for k, w in _weights(run_dir).items() if k.endswith("segmentation_head.0.weight")]
    assert head and head[0].shape[0] == 2  # background, foreground: not 256 classes
    iou = json.loads((run_dir / "per_class_iou_test.json").read_text())
    assert iou.keys() == {"background", "foreground"}


def test_check_data_lists_splits_class_pixels_and_bad_files(
    tmp_path: Path, rnnkit: CliRunner
) -> None:
    root = _videomasks(tmp_path / "videos", videos=10, frames=4)
    broken = root / "vid3" / "masks" / "1.png"
    broken.write_text("not a mask")
    check = ["check-data", "--task", "seg-refine", "--data", f"videomasks:{root}"]
    result = rnnkit(*check, "--set", "data.clip_len=2")
    assert result.returncode == 0, result.stderr
    rows = [line.split(None, 2) for line in result.stdout.splitlines()[2:] if line.strip()]
    table = {(kind, name): detail for kind, name, *detail in (r for r in rows if len(r) == 3)}
    clips = [int(table[("split", s)][0].split()[0]) for s in ("train", "val", "test")]
    assert sum(clips) > 0 and table[("skipped", str(broken))][0].startswith("not a readable")
    classes = [name for kind, name in table if kind == "class"]
    assert classes and "1 file(s) skipped" in result.stdout

    for mask in root.glob("*/masks/*.png"):
        mask.write_text("not a mask")
    result = rnnkit(*check, "--set", "data.clip_len=2")
    assert result.returncode == 1 and "nothing to train on" in result.stdout


def test_a_size_the_architecture_cannot_take_is_one_line(
    rnnkit: CliRunner, one_thread: None
) -> None:
    result = rnnkit("run", *TINY, "--set", "model.arch=FPN", "--set", "data.size=[60,60]")
    assert result.returncode == 2
    assert result.stderr.startswith(
        "rnnkit: error: data.size: frames are 60x60 (HxW) but model.arch=FPN"
    )
    assert "divisible by 8; set e.g. --set data.size=[64,64]" in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1


def test_a_wrong_data_kind_and_unknown_arch_are_one_line(
    rnnkit: CliRunner, one_thread: None
) -> None:
    result = rnnkit("run", *TINY, "--data", "digits")
    assert result.returncode == 2 and "task seg-refine needs segmentation data" in result.stderr
    result = rnnkit("run", *TINY, "--set", "model.arch=NoSuchNet")
    assert result.returncode == 2
    assert result.stderr.startswith("rnnkit: error: model.arch=NoSuchNet, model.encoder=resnet18")
    assert len(result.stderr.strip().splitlines()) == 1


@pytest.mark.parametrize(
    ("override", "message"),
    [
        ("model.freeze_segmenter=true", "model.freeze_segmenter: needs model.segmenter_checkpoint"),
        ("model.kernel_size=4", "model.kernel_size: must be odd (got 4)"),
        ("model.encoder_depth=6", "model.encoder_depth: must be in [1, 5] (got 6)"),
        ("data.size=[64]", "data.size: needs 2 value(s) (got [64])"),
        ("data.size=[64,0]", "data.size: must be in [1, 8192] (got [64, 0])"),
        ("data.val_fraction=1", "data.val_fraction: must be in [0, 1) (got 1.0)"),
        ("data.clip_len=0", "data.clip_len: must be >= 1 (got 0)"),
        ("data.num_classes=1", "data.num_classes: must be in [2, 65536] (got 1)"),
        ("data.mask_values=5", "data.mask_values: expected a mapping, got 5"),
        ("data.mask_values={0:0,255:1}", "data.mask_values: {'0:0': None, 15301: None}: write a"),
        ("data.mask_values={0: -1}", "data.mask_values: stored values must be in 0..2147483647"),
        ("data.crop_scale=[0.9,0.5]", "data.crop_scale: needs [min, max] with min <= max"),
        ("data.crop_scale=[0,1]", "data.crop_scale: must be in (0, 1] (got [0.0, 1.0])"),
        ("data.jitter=-1", "data.jitter: must be >= 0 (got -1.0)"),
        ("model.class_weights=[1,2]", "model.class_weights: 2 weights for 4 classes"),
        ("model.class_weights=[1,-2,1,1]", "model.class_weights: must be >= 0"),
    ],
)
def test_bad_settings_are_one_line(rnnkit: CliRunner, override: str, message: str) -> None:
    result = rnnkit("run", *TINY, "--set", override)
    assert result.returncode == 2
    assert result.stderr.startswith(f"rnnkit: error: {message}"), result.stderr
    assert len(result.stderr.strip().splitlines()) == 1


def test_frozen_refinement_rules() -> None:
    from rnnkit_segrefine.config import SegModelConfig

    from rnnvision_kit import ConfigError
    from rnnvision_kit.config import validate

    validate(SegModelConfig(freeze_segmenter=True, segmenter_weights="w.pt"))
    bad = {
        "model.freeze_segmenter: nothing to train with model.refine=none": SegModelConfig(
            freeze_segmenter=True, segmenter_weights="w.pt", refine="none"
        ),
        "model.segmenter_checkpoint: model.segmenter_weights is set too": SegModelConfig(
            segmenter_checkpoint="run", segmenter_weights="w.pt"
        ),
    }
    for message, settings in bad.items():
        with pytest.raises(ConfigError, match=message):
            validate(settings, "model.")


def _camvid(root: Path) -> Path:
    rng = np.random.default_rng(3)
    for split in ("train", "val", "test"):
        for sub in (split, f"{split}annot"):
            (root / sub).mkdir(parents=True)
        for i in range(2):
            mask = rng.integers(0, 12, (32, 32)).astype(np.uint8)
            image = rng.integers(0, 256, (32, 32, 3), dtype=np.uint8)
            Image.fromarray(image).save(root / split / f"f{i}.png")
            write_index_png(root / f"{split}annot" / f"f{i}.png", mask)
    return root


def test_each_source_reads_exactly_the_settings_it_declares(
    tmp_path: Path, one_thread: None
) -> None:
    import dataclasses

    from rnnkit_segrefine import plugin
    from rnnkit_segrefine.config import SegDataConfig

    from rnnvision_kit import DataConfig, SegmentationSpec
    from rnnvision_kit.testing import plugin_host

    class Recording(SegDataConfig):
        """Records which settings are read."""

        def __getattribute__(self, name: str) -> object:
            if not name.startswith("_"):
                object.__getattribute__(self, "_seen").add(name)
            return object.__getattribute__(self, name)

    host = plugin_host(segrefine=plugin)
    task = host.registries.tasks.get("seg-refine").factory()
    own = {f.name for f in dataclasses.fields(DataConfig)}
    settings = {f.name for f in dataclasses.fields(SegDataConfig)}
    paths = {
        "synthetic-seg": None,
        "maskfolder": _maskfolder(tmp_path / "shapes", 10),
        "videomasks": _videomasks(tmp_path / "videos", videos=10, frames=4),
        "camvid": _camvid(tmp_path / "camvid"),
        "davis": make_davis(tmp_path / "davis", 2016),
    }
    assert set(paths) == set(plugin.SOURCES)
    for name, path in paths.items():
        config = task.default_config()
        data = Recording(source=name, path=None if path is None else str(path))
        data.videos, data.clip_len = 6, 2
        object.__setattr__(data, "_seen", set())
        config.data = data
        entry = host.registries.datasets.get(f"segrefine:{name}")
        bundle = entry.factory(config)
        assert isinstance(bundle.spec, SegmentationSpec)
        read = (object.__getattribute__(data, "_seen") & settings) - own
        assert read == set(entry.meta["reads"]), name


def test_plugin_check_passes(one_thread: None) -> None:
    from rnnkit_segrefine import plugin

    from rnnvision_kit.testing import check_plugin, plugin_host

    results = check_plugin(plugin_host(segrefine=plugin), "segrefine", overrides=["data.videos=6"])
    assert [(r.task, r.ok, r.error) for r in results] == [("segrefine:seg-refine", True, None)]


# ----------------------------------------------------------------------------- metrics


def _spec(num_classes: int, ignore_index: int | None = None) -> SegmentationSpec:
    return SegmentationSpec(
        class_names=tuple(f"c{i}" for i in range(num_classes)),
        channels=3,
        height=2,
        width=2,
        mean=(0.5,) * 3,
        std=(0.25,) * 3,
        clip_len=3,
        ignore_index=ignore_index,
    )


def _metrics(spec: SegmentationSpec) -> torch.nn.Module:
    """The task's metrics as ``metrics(ctx)`` builds them: from the registry, for ``spec``."""
    from rnnkit_segrefine import plugin

    from rnnvision_kit import MetricsContext
    from rnnvision_kit.runner.pipeline import open_task
    from rnnvision_kit.testing import plugin_host

    host = plugin_host(segrefine=plugin)
    task = open_task(host.registries, "seg-refine")
    ctx = MetricsContext(
        task.default_config(), spec, host.registries, "seg-refine", "segrefine", "segmentation"
    )
    return task.metrics(ctx)


def _logits(labels: torch.Tensor, num_classes: int) -> torch.Tensor:
    """``B,T,K,H,W`` logits whose argmax over K is ``labels B,T,H,W``."""
    return torch.nn.functional.one_hot(labels, num_classes).permute(0, 1, 4, 2, 3).float() * 3 - 1


def test_metrics_by_hand() -> None:
    target = torch.tensor([[[[0, 0], [1, 1]], [[0, 0], [1, 1]], [[0, 0], [1, 1]]]])  # B,T,H,W
    preds = target.clone()
    preds[0, 1, 0, 0] = 1  # frame 1 wrong at one pixel: it flickers 0 -> 1 -> 0
    preds[0, :, 1, 1] = 2  # a pixel always predicted as class 2: wrong, but steady
    for given in (preds, _logits(preds, 3)):  # label maps, or logits B,T,K,H,W (argmax over K)
        metrics = _metrics(_spec(3))
        metrics.update(given, target)
        got = metrics.compute()
        # class 0: tp 5, fn 1 -> 5/6; class 1: tp 3, fn 3, fp 1 -> 3/7; class 2: tp 0, fp 3 -> 0
        assert got["per_class_iou"].tolist() == pytest.approx([5 / 6, 3 / 7, 0.0])
        assert got["miou"].item() == pytest.approx((5 / 6 + 3 / 7) / 3)
        assert got["pixel_acc"].item() == pytest.approx(8 / 12)
        assert got["dice"].item() == pytest.approx((10 / 11 + 6 / 10 + 0) / 3)
        assert got["flicker"].item() == pytest.approx(2 / 8)  # 2 changes in 2 x 4 steady pixels


def test_metrics_leave_out_ignored_pixels_and_absent_classes() -> None:
    target = torch.tensor([[[[0, 1, 3]], [[0, 3, 3]]]])  # class 2 absent, 3 ignored
    preds = torch.tensor([[[[0, 1, 0]], [[0, 1, 1]]]])
    metrics = _metrics(_spec(4, ignore_index=3))  # ignore_index comes from the spec
    metrics.update(_logits(preds, 4), target)
    got = metrics.compute()
    iou = got["per_class_iou"].tolist()
    assert iou[:2] == [1.0, 1.0] and np.isnan(iou[2]) and np.isnan(iou[3])
    assert got["miou"].item() == 1.0 and got["pixel_acc"].item() == 1.0
    assert got["flicker"].item() == 0.0  # the only steady valid pixel (class 0) does not change


def test_metrics_are_registered_for_segmentation_data() -> None:
    from rnnkit_segrefine import plugin
    from rnnkit_segrefine.metrics import create_metric

    from rnnvision_kit.testing import plugin_host

    host = plugin_host(segrefine=plugin)
    for name in ("miou", "per_class_iou", "dice", "pixel_acc", "flicker"):
        entry = host.registries.metrics.get(f"segrefine:{name}")
        assert entry.meta["kinds"] == ("segmentation",) and entry.description
    metric = create_metric("miou", _spec(3), ignore_index=0)  # options override the spec
    assert metric.ignore_index == 0 and metric.num_classes == 3
    with pytest.raises(ValueError, match="fit neither target"):
        metric.update(torch.zeros(1, 2, 2), torch.zeros(1, 3, 2, 2, dtype=torch.long))


def test_the_metrics_are_refused_to_a_task_of_another_kind() -> None:
    from rnnkit_segrefine import plugin

    from rnnvision_kit import MetricsContext, RegistryError
    from rnnvision_kit.testing import plugin_host

    host = plugin_host(segrefine=plugin)
    config = host.registries.tasks.get("seg-refine").factory().default_config()
    ctx = MetricsContext(config, _spec(3), host.registries, "other", "other", "video")
    with pytest.raises(RegistryError, match="'segrefine:miou' is for segmentation data"):
        ctx.metric("miou")


# ----------------------------------------------------------------------------- weights


def test_segmenter_weights_from_a_local_file(tmp_path: Path) -> None:
    import torchvision
    from rnnkit_segrefine.config import SegModelConfig
    from rnnkit_segrefine.model import create_segmenter
    from rnnkit_segrefine.weights import load_segmenter_weights

    from rnnvision_kit import CheckpointError

    m = SegModelConfig()
    source = create_segmenter(m, num_classes=4)
    torch.save(source.state_dict(), tmp_path / "unet.pt")
    target = create_segmenter(m, num_classes=4)
    load_segmenter_weights(target, str(tmp_path / "unet.pt"))
    expected, loaded = source.state_dict(), target.state_dict()
    assert all(torch.equal(expected[k], loaded[k]) for k in expected)

    resnet = torchvision.models.resnet18(weights=None)  # an encoder's weights: fc.* is dropped
    torch.save({"state_dict": resnet.state_dict()}, tmp_path / "resnet18.pth")
    load_segmenter_weights(target, str(tmp_path / "resnet18.pth"))
    assert torch.equal(target.encoder.conv1.weight, resnet.conv1.weight)

    other = create_segmenter(SegModelConfig(encoder="resnet34"), num_classes=4)
    with pytest.raises(CheckpointError, match=r"unet.pt: weights do not fit the segmenter: "):
        load_segmenter_weights(other, str(tmp_path / "unet.pt"))
    (tmp_path / "junk.pt").write_text("junk")
    with pytest.raises(CheckpointError, match=r"junk.pt: not a readable weights file"):
        load_segmenter_weights(target, str(tmp_path / "junk.pt"))


def test_class_weights_weigh_the_cross_entropy() -> None:
    from rnnkit_segrefine.model import SegLoss

    logits = torch.randn(1, 2, 3, 4, 4, generator=torch.Generator().manual_seed(0))
    masks = torch.randint(0, 3, (1, 2, 4, 4), generator=torch.Generator().manual_seed(1))
    plain = SegLoss(0.0, None)(logits, masks)
    assert torch.isclose(SegLoss(0.0, None, [1.0, 1.0, 1.0])(logits, masks), plain)
    only_class_2 = SegLoss(0.0, None, [0.0, 0.0, 1.0])(logits, masks)
    picked = masks.flatten() == 2
    expected = F.cross_entropy(logits.flatten(0, 1), masks.flatten(0, 1), reduction="none")
    assert torch.isclose(only_class_2, expected.flatten()[picked].mean())


def test_training_on_crops_evaluates_whole_frames_every_other_epoch(
    tmp_path: Path, rnnkit: CliRunner
) -> None:
    """``data.crop_size``: training clips are crops (32x32 of the 64x64 frames, at native scale),
    val/test/eval whole frames; ``train.val_every=2`` validates after epochs 2 and 3 (the last)
    only, and best.pt is one of those."""
    run_dir, summary = train_in_process(
        tmp_path,
        *TINY,
        "--set",
        "data.augment=true",
        "--set",
        "data.crop_size=[32,32]",
        "--set",
        "data.crop_scale=[0.25,0.25]",
        "--set",
        "train.val_every=2",
        "--epochs",
        "3",
    )
    checkpoint = torch.load(run_dir / "best.pt", weights_only=True)
    assert checkpoint["spec"]["train_size"] == [32, 32]
    assert (checkpoint["spec"]["height"], checkpoint["spec"]["width"]) == (64, 64)
    spec = SegmentationSpec.from_dict(checkpoint["spec"])
    assert spec.split_size("train") == (32, 32) and spec.split_size("test") == (64, 64)
    rows = [json.loads(line) for line in (run_dir / "metrics.jsonl").read_text().splitlines()]
    assert [("val/miou" in row) for row in rows] == [False, True, True]
    assert summary["best_epoch"] in (2, 3) and summary["test"]["test/samples"] == 1  # 1 video
    result = rnnkit("eval", str(run_dir), "--json")  # the saved spec loads with train_size
    assert result.returncode == 0, result.stderr
    metrics = json.loads(result.stdout)["metrics"]
    assert metrics["test/miou"] == pytest.approx(summary["test"]["test/miou"])


def test_crop_size_needs_augmentation(tmp_path: Path, rnnkit: CliRunner) -> None:
    result = rnnkit("run", *TINY, "--set", "data.crop_size=[32,32]", cwd=tmp_path)
    assert result.returncode == 2
    assert "data.crop_size" in result.stderr and "data.augment=true" in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1


def test_hflip_tta_is_mirror_equivariant_and_only_outside_training() -> None:
    """``model.tta=hflip``: eval output of mirrored frames is the mirrored output (exactly what
    averaging with the mirror image guarantees), probabilities stay normalised, training
    ignores it."""
    from rnnkit_segrefine.config import SegModelConfig
    from rnnkit_segrefine.model import SegRefiner, TemporalRefiner, create_segmenter

    torch.manual_seed(0)
    m = SegModelConfig(mode="image", tta="hflip")
    model = SegRefiner(
        create_segmenter(m, 4), TemporalRefiner(4, m), [0.5] * 3, [0.25] * 3, tta=m.tta
    ).eval()
    frames = torch.rand(2, 3, 3, 32, 48)
    with torch.no_grad():
        refined, per_frame = model(frames)
        mirrored, _ = model(frames.flip(-1))
        model.tta = "none"
        plain, _ = model(frames)
    assert torch.allclose(mirrored.flip(-1), refined, atol=1e-5)
    assert not torch.allclose(plain, refined, atol=1e-3)  # the model itself is not symmetric
    assert torch.allclose(refined.exp().sum(2), torch.ones(()), atol=1e-5)
    assert torch.allclose(per_frame.exp().sum(2), torch.ones(()), atol=1e-5)
    model.tta = "hflip"
    model.train()
    torch.manual_seed(1)
    trained, _ = model(frames)
    model.tta = "none"
    torch.manual_seed(1)
    assert torch.equal(trained, model(frames)[0])


def test_eval_with_hflip_tta(trained: tuple[Path, dict], rnnkit: CliRunner) -> None:
    run_dir, summary = trained
    result = rnnkit("eval", str(run_dir), "--json", "--set", "model.tta=hflip")
    assert result.returncode == 0, result.stderr
    metrics = json.loads(result.stdout)["metrics"]
    assert 0.0 <= metrics["test/miou"] <= 1.0
    assert metrics["test/miou"] != summary["test"]["test/miou"]
