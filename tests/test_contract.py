"""The plugin contract 2.0: a third party's data sources feed the built-in tasks, its metric is
added to any task of its kind, and contract breaches are one-line errors naming who broke what."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import TYPE_CHECKING

import pytest
from plugins_fixtures import PLUGIN_ENV, fixture, one_thread

from rnnvision_kit import ImageSpec, RegistryError, VideoSpec
from rnnvision_kit.dataspec import DataSpec, check_item
from rnnvision_kit.registry import Registry

if TYPE_CHECKING:
    from tests.conftest import CliRunner

THIRD_PARTY = ("--plugin", fixture("third_party"))
BREAKERS = ("--plugin", fixture("contract_breakers"))
VIDEO_SOURCES = ("--plugin", fixture("video_sources"))


@pytest.fixture(autouse=True)
def _no_plugin_env(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in PLUGIN_ENV:
        monkeypatch.delenv(name, raising=False)


def _summary(stdout: str) -> dict:
    return json.loads(stdout)


def test_third_party_image_source_feeds_image_classify(rnnkit: CliRunner) -> None:
    with one_thread():
        result = rnnkit(
            *THIRD_PARTY,
            "run",
            "--task",
            "image-classify",
            "--data",
            "third_party:bars",  # a qualified source name, no path
            "--epochs",
            "6",
            "--set",
            "data.batch_size=16",
            "--set",
            "model.hidden_size=16",
            "--json",
        )
    assert result.returncode == 0, result.stderr
    summary = _summary(result.stdout)
    assert summary["test"]["test/samples"] == 32
    assert summary["test"]["test/acc"] >= 0.9  # a bar left or right: easy once rows are read


def test_third_party_video_source_and_metric_feed_video_action(
    rnnkit: CliRunner, tmp_path: Path
) -> None:
    """A video source that keeps the video-source contract (``video_sources:dots``; the
    ``dots`` of ``third_party`` lacks it: tests/test_video_source_contract.py)."""
    with one_thread():
        result = rnnkit(
            *THIRD_PARTY,
            *VIDEO_SOURCES,
            "run",
            "--task",
            "video-action",
            "--data",
            "video_sources:dots",
            "--epochs",
            "2",
            "--set",
            "data.num_frames=4",
            "--set",
            "data.size=16",
            "--set",
            "data.batch_size=8",
            "--set",
            "eval.metrics=[third_party:brier]",
            "--json",
        )
    assert result.returncode == 0, result.stderr
    summary = _summary(result.stdout)
    assert summary["test"]["test/samples"] == 8
    assert 0.0 <= summary["test"]["test/brier"] <= 2.0
    lines = Path(summary["run_dir"], "metrics.jsonl").read_text().splitlines()
    rows = [json.loads(line) for line in lines]
    assert all("val/brier" in row for row in rows) and len(rows) == 2
    saved = json.loads(Path(summary["run_dir"], "summary.json").read_text())
    assert saved["test"]["test/brier"] == summary["test"]["test/brier"]


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (
            ("--data", "normalised-bars"),
            "rnnkit: error: data source 'third_party:normalised-bars': train image values lie in "
            "[-0.599, 3.4]; sources return [0, 1] and never normalise (the model normalises with "
            "spec.mean/spec.std)",
        ),
        (
            ("--data", "patches"),
            "rnnkit: error: data source 'third_party:patches' reads data.patch_size, which task "
            "image-classify's settings (ClassifyDataConfig) lack",
        ),
        (
            ("--data", "dots"),
            "rnnkit: error: data source 'dots' provides video data; task image-classify needs "
            "image data",
        ),
        (
            ("--set", "eval.metrics=[seg-only]"),
            "rnnkit: error: metric 'third_party:seg-only' is for segmentation data; task "
            "image-classify reads image data",
        ),
        (
            ("--set", "eval.metrics=[core:acc]"),
            "rnnkit: error: eval.metrics: 'core:acc' clashes with a metric named 'acc'",
        ),
        (
            ("--data", "broken"),
            "rnnkit: error: data source 'third_party:broken' (plugin 'third_party') failed: "
            "OSError: share not mounted",
        ),
        (
            ("--set", "eval.metrics=[explodes]", "--set", "train.max_steps_per_epoch=1"),
            "rnnkit: error: eval.metrics: a metric of [explodes] failed: ValueError: bad shapes",
        ),
    ],
    ids=["normalised", "missing-setting", "wrong-kind", "metric-kind", "metric-clash"]
    + ["source-raises", "metric-raises"],
)
def test_contract_breaches_are_one_line_errors(
    rnnkit: CliRunner, args: tuple[str, ...], message: str
) -> None:
    result = rnnkit(*THIRD_PARTY, "run", "--task", "image-classify", *args, "--epochs", "1")
    assert result.returncode == 2
    assert result.stderr.strip().splitlines()[-1] == message


@pytest.mark.parametrize(
    ("task", "message"),
    [
        (
            "undeclared",
            "task 'undeclared' has a predict() method but does not declare capability 'predict'",
        ),
        ("overclaims", "task 'overclaims' declares check-data but has no check_data() method"),
    ],
)
def test_capabilities_must_match_the_methods(rnnkit: CliRunner, task: str, message: str) -> None:
    result = rnnkit(*BREAKERS, "run", "--task", task, "--epochs", "1")
    assert result.returncode == 2
    assert result.stderr.strip() == f"rnnkit: error: plugin 'contract_breakers': {message}"


def test_tasks_lists_kind_and_capabilities(rnnkit: CliRunner) -> None:
    lines = rnnkit("tasks").stdout.splitlines()
    assert lines[0].split() == ["task", "plugin", "kind", "supports", "description"]
    rows = {line.split()[0]: re.split(r"\s{2,}", line) for line in lines[2:]}
    both = "predict, check-data, report, stream, export"
    assert rows["video-action"][1:4] == ["video", "video", both]
    assert rows["image-classify"][1:4] == ["classify", "image", "predict, report, export"]
    assert rows["seg-refine"][1:4] == ["segrefine", "segmentation", both]


def test_an_exception_in_predict_is_one_line_naming_task_plugin_and_method(
    rnnkit: CliRunner, tmp_path: Path
) -> None:
    with one_thread():
        trained = rnnkit(
            *BREAKERS,
            "run",
            "--task",
            "predict-raises",
            "--epochs",
            "1",
            "--set",
            "train.max_steps_per_epoch=1",
            "--json",
        )
    assert trained.returncode == 0, trained.stderr
    run_dir = _summary(trained.stdout)["run_dir"]
    image = tmp_path / "digit.png"
    from PIL import Image

    Image.new("L", (16, 16)).save(image)
    result = rnnkit(*BREAKERS, "predict", run_dir, str(image))
    assert result.returncode == 2
    assert result.stderr.strip() == (
        "rnnkit: error: task 'predict-raises' (plugin 'contract_breakers') failed in predict: "
        "KeyError: 'no such label table'"
    )


def test_a_task_without_a_capability_says_what_it_supports(rnnkit: CliRunner) -> None:
    result = rnnkit("check-data", "--task", "image-classify")
    assert result.returncode == 2
    assert result.stderr.strip() == (
        "rnnkit: error: task 'image-classify' (plugin 'classify') does not support check-data "
        "(it supports: predict, report, export)"
    )


# ------------------------------------------------------------------------- registration meta


@pytest.mark.parametrize(
    ("kind", "meta", "message"),
    [
        ("tasks", {}, "plugin 'p': task 't' needs kind=... when registered"),
        (
            "datasets",
            {"description": "x"},
            "plugin 'p': dataset 't' needs kind=... when registered",
        ),
        ("metrics", {"kinds": ()}, "plugin 'p': metric 't' needs kinds=... when registered"),
        (
            "tasks",
            {"kind": "image", "capabilities": ["stream-ish"]},
            "plugin 'p': task 't': unknown capabilities ['stream-ish'] (known: predict, "
            "check-data, report, stream, export)",
        ),
        ("datasets", {"kind": "image", "reads": [3]}, "plugin 'p': dataset 't': reads: expected"),
    ],
)
def test_registration_meta_is_checked(kind: str, meta: dict, message: str) -> None:
    with pytest.raises(RegistryError) as caught:
        Registry(kind).add("t", lambda: None, "p", **meta)
    assert str(caught.value).startswith(message)


# ------------------------------------------------------------------------------ data specs


def test_specs_round_trip_through_plain_values() -> None:
    video = VideoSpec(("a", "b"), 3, 32, 32, [0.5] * 3, [0.2] * 3, num_frames=5, stride=3)
    values = video.to_dict()
    assert values["kind"] == "video" and values["class_names"] == ["a", "b"]
    assert json.loads(json.dumps(values)) == values
    assert DataSpec.from_dict(values) == video
    with pytest.raises(Exception, match="mean and std need 1 value"):
        ImageSpec(("a",), 1, 4, 4, (0.5, 0.5), (0.2,))


def test_item_checks_of_each_kind() -> None:
    import torch

    image = ImageSpec(("a", "b"), 1, 4, 4, (0.5,), (0.2,))
    assert check_item("image", (torch.rand(1, 4, 4), torch.tensor(1)), image, "train") is None
    assert "must be an integer class id" in check_item(
        "image", (torch.rand(1, 4, 4), torch.tensor(0.5)), image, "train"
    )
    assert "is not a class id in 0..1" in check_item(
        "image", (torch.rand(1, 4, 4), 2), image, "train"
    )
    assert "the spec says C,H,W = 1,4,4" in check_item(
        "image", (torch.rand(3, 4, 4), 0), image, "val"
    )
    video = VideoSpec(("a", "b"), 3, 4, 4, (0.5,) * 3, (0.2,) * 3, num_frames=2)
    clips = torch.rand(2, 2, 3, 4, 4)
    assert check_item("video", (clips, 0, 7), video, "val") is None
    assert "expected 4 dimensions" in check_item("video", (clips, 0), video, "train")
    assert "must be a float tensor" in check_item(
        "video", ((clips * 255).to(torch.uint8), 0), video, "val"
    )
    assert check_item("levels", object(), video, "train") is None  # a plugin's own kind


def test_sources_and_metrics_list_kinds_and_settings(rnnkit: CliRunner) -> None:
    lines = rnnkit(*THIRD_PARTY, "sources", "--kind", "image").stdout.splitlines()
    rows = {line.split()[0]: re.split(r"\s{2,}", line) for line in lines[2:]}
    assert rows["digits"][1:4] == ["classify", "image", "image_size, val_fraction, test_fraction"]
    assert rows["patches"][1:4] == ["third_party", "image", "patch_size"]
    assert "moving-digits" not in rows and "dots" not in rows  # video sources
    lines = rnnkit(*THIRD_PARTY, "metrics", "--kind", "video").stdout.splitlines()
    rows = {line.split()[0]: re.split(r"\s{2,}", line) for line in lines[2:]}
    assert rows["brier"][1:3] == ["third_party", "image, video"]
    assert rows["clip_acc"][1:3] == ["video", "video"] and "seg-only" not in rows


def test_eval_reads_a_qualified_source_name_as_run_does(rnnkit: CliRunner) -> None:
    with one_thread():
        trained = rnnkit(
            *THIRD_PARTY, "run", "--task", "image-classify", "--data", "third_party:bars",
            "--epochs", "1", "--set", "model.hidden_size=8", "--json",
        )  # fmt: skip
    assert trained.returncode == 0, trained.stderr
    run_dir = _summary(trained.stdout)["run_dir"]
    result = rnnkit(*THIRD_PARTY, "eval", run_dir, "--data", "third_party:bars", "--json")
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout)["metrics"]["test/samples"] == 32


def test_plugin_host_with_builtins_holds_their_tasks_and_sources() -> None:
    from rnnvision_kit.testing import check_plugin, plugin_host
    from tests.plugins_fixtures import contract_breakers

    alone = plugin_host(breakers=contract_breakers)
    assert "digits" not in alone.registries.datasets
    (result,) = [r for r in check_plugin(alone, "breakers") if r.task == "breakers:predict-raises"]
    assert result.error.startswith("RegistryError: unknown dataset 'digits'")
    assert result.error.endswith("plugin_host(..., builtins=True) adds the built-in ones)")
    host = plugin_host(builtins=True, breakers=contract_breakers)
    assert {"digits", "moving-digits", "synthetic-seg"} <= set(host.registries.datasets.names())
    names = {r.name for r in host.records.values()}
    assert names == {"core", "classify", "segrefine", "video", "videopredict", "breakers"}
