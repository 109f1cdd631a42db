"""docs/plugins.md agrees with the code: its hook and contract references are generated from it
and up to date, and every public name is documented; every hook is exercised: register hooks,
commands, and the runner events of a real run."""

from __future__ import annotations

import inspect
import re
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest
from plugins_fixtures import FIXTURES, PLUGIN_ENV, fixture, one_thread, read_events

from rnnvision_kit.plugins import build_host
from rnnvision_kit.reference import (
    SECTIONS,
    hook_reference,
    hook_signature,
    hook_specs,
    markers,
    public_api,
    section_text,
    write_reference,
)

if TYPE_CHECKING:
    from tests.conftest import CliRunner

DOCS = Path(__file__).resolve().parents[1] / "docs" / "plugins.md"
SPECS = hook_specs()


@pytest.fixture(autouse=True)
def _no_plugin_env(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in PLUGIN_ENV:
        monkeypatch.delenv(name, raising=False)


# ---------------------------------------------------------------------------------- docs


def test_all_eleven_hooks_are_found() -> None:
    assert [s.__name__ for s in SPECS] == [
        "rnnkit_register_tasks",
        "rnnkit_register_datasets",
        "rnnkit_register_backbones",
        "rnnkit_register_heads",
        "rnnkit_register_layers",
        "rnnkit_register_metrics",
        "rnnkit_register_commands",
        "rnnkit_on_run_start",
        "rnnkit_on_epoch_end",
        "rnnkit_on_run_end",
        "rnnkit_on_exception",
    ]


@pytest.mark.parametrize("spec", SPECS, ids=lambda s: s.__name__)
def test_hook_is_documented_with_its_signature_and_docstring(spec: Any) -> None:
    text = DOCS.read_text()
    assert f"```python\n{hook_signature(spec)}\n```" in text
    assert inspect.getdoc(spec) in text


@pytest.mark.parametrize("section", SECTIONS)
def test_generated_section_is_up_to_date(section: str) -> None:
    text = DOCS.read_text()
    begin, end = markers(section)
    found = text[text.index(begin) + len(begin) : text.index(end)]
    assert found.strip() == section_text(section).strip(), (
        "regenerate it: python -m rnnvision_kit.reference --write docs/plugins.md"
    )


def test_every_public_name_is_documented() -> None:
    import rnnvision_kit

    text = DOCS.read_text()
    missing = [n for n in rnnvision_kit.__all__ if n != "__version__" and f"`{n}" not in text]
    assert not missing, f"docs/plugins.md does not mention {missing}"


def test_signature_keeps_annotations_as_written() -> None:
    by_name = {s.__name__: s for s in SPECS}
    assert hook_signature(by_name["rnnkit_on_epoch_end"]) == (
        "def rnnkit_on_epoch_end(run: Run, epoch: int, metrics: dict[str, float]) -> None"
    )
    assert "register(name: str, factory: Callable[[], Any], *, kind: str" in hook_reference()


def test_write_reference_replaces_only_the_marked_sections(tmp_path: Path) -> None:
    page = tmp_path / "page.md"
    (b0, e0), (b1, e1), (b2, e2) = (markers(s) for s in SECTIONS)
    page.write_text(
        f"intro\n{b0}\nSTALE-API\n{e0}\nthen\n{b1}\nSTALE-ONE\n{e1}\nmiddle\n{b2}\n"
        f"STALE-TWO\n{e2}\noutro\n"
    )
    write_reference(page)
    text = page.read_text()
    assert text.startswith(f"intro\n{b0}\n") and text.endswith(f"{e2}\noutro\n")
    assert f"{e0}\nthen\n{b1}" in text and f"{e1}\nmiddle\n{b2}" in text
    assert "STALE" not in text and hook_reference() in text and public_api() in text


def test_the_public_api_table_names_every_public_name() -> None:
    """Issue 19: the table had left out ModelConfig, StreamContext, ExportContext, Exportable."""
    import rnnvision_kit

    table = public_api()
    row = next(line for line in table.splitlines() if line.startswith("| `rnnvision_kit` |"))
    missing = [n for n in rnnvision_kit.__all__ if n != "__version__" and f"`{n}`" not in row]
    assert not missing, f"the public-API table leaves out {missing}"
    for name in ("ModelConfig", "StreamContext", "ExportContext", "Exportable"):
        assert f"`{name}`" in row
    for package in ("data", "nn", "classification", "runner", "testing"):
        assert f"| `rnnvision_kit.{package}` |" in table


def test_the_video_source_contract_is_documented_with_its_signatures() -> None:
    text = DOCS.read_text()
    assert "### Video sources" in text
    for line in (
        "def set_epoch(self, epoch: int) -> None",
        "def list_samples(config: Any) -> Listing",
        "def build_clip_bundle(listing: Listing, config: RunConfig) -> DataBundle",
        "samples: Sequence[tuple[str, int]]",
        "#### `VideoDataConfig`",
    ):
        assert line in text, line


@pytest.mark.parametrize("spec", SPECS, ids=lambda s: s.__name__)
def test_hook_is_implemented_by_a_test_plugin(spec: Any) -> None:
    pattern = re.compile(rf"@hookimpl\s+def {spec.__name__}\(")
    assert any(pattern.search(p.read_text()) for p in FIXTURES.glob("*.py")), spec.__name__


# ------------------------------------------------------------------------- register hooks


def test_register_hooks_fill_every_registry_with_provenance() -> None:
    import torch

    registries = build_host([fixture("registers_all")]).registries
    for kind, name in [
        ("tasks", "all-task"),
        ("datasets", "all-data"),
        ("backbones", "all-conv"),
        ("heads", "all-head"),
        ("layers", "all-layer"),
        ("metrics", "all-acc"),
    ]:
        entry = registries[kind].get(name)
        assert entry.plugin == "registers_all"
        assert registries[kind].get(f"registers_all:{name}") is entry
    assert registries.datasets.get("all-data").meta == {
        "kind": "image",
        "description": "a data source",
    }
    from rnnkit_classify.task import ImageClassifyTask

    assert isinstance(registries.tasks.create("all-task"), ImageClassifyTask)
    features = registries.backbones.create("all-conv", channels=1)(torch.zeros(2, 1, 5, 5))
    assert features.shape == (2, 4, 5, 5)
    logits = registries.heads.create("all-head", 4, 3)(torch.zeros(2, 7, 4))
    assert logits.shape == (2, 3)
    from rnnvision_kit import HeadConfig, ImageSpec, build_sequence_head

    model = HeadConfig(head="all-layer", hidden_size=6, num_layers=2, layer={"scale": 0.5})
    head = build_sequence_head(registries, model, 4, 3).eval()
    x = torch.randn(2, 7, 4)
    logits, _ = head.scan(x)
    assert head(x).shape == (2, 3) and torch.allclose(logits[:, -1], head(x), atol=1e-6)
    assert [s.name for s in head.state_spec()] == ["layer0_total", "layer1_total"]

    spec = ImageSpec(("a", "b", "c"), 1, 2, 2, (0.0,), (1.0,))
    metric = registries.metrics.create("all-acc", spec)
    metric.update(torch.tensor([0, 1, 2]), torch.tensor([0, 1, 1]))
    assert metric.compute().item() == pytest.approx(2 / 3)


def test_plugins_lists_what_each_kind_of_hook_registered(rnnkit_process: CliRunner) -> None:
    result = rnnkit_process("--plugin", fixture("registers_all"), "plugins")
    row = next(line for line in result.stdout.splitlines() if line.startswith("registers_all "))
    assert (
        "tasks: all-task; datasets: all-data; backbones: all-conv; heads: all-head; layers: all-layer; "
        "metrics: all-acc" in row
    )


# ------------------------------------------------------------------------------- commands


def test_register_commands_adds_a_working_command(rnnkit_process: CliRunner) -> None:
    hello = rnnkit_process("--plugin", fixture("commands"), "hello", "you")
    assert (hello.returncode, hello.stdout) == (0, "hello you from a plugin\n")
    listed = rnnkit_process("--plugin", fixture("commands"), "--help")
    assert re.search(r"^\s+hello\s+Say hello \(added by a plugin\)\.", listed.stdout, re.M)
    assert "hello" not in rnnkit_process("--help").stdout


# ------------------------------------------------------------------------------ run events


def test_runner_events_of_a_run(
    rnnkit: CliRunner, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    events = tmp_path / "events.jsonl"
    monkeypatch.setenv("RNNKIT_TEST_EVENTS", str(events))
    with one_thread():
        result = rnnkit(
            "--plugin",
            fixture("recorder"),
            "run",
            "--task",
            "image-classify",
            "--epochs",
            "1",
            "--set",
            "train.max_steps_per_epoch=2",
            "--set",
            "model.hidden_size=16",
            "--quiet",
        )
    assert result.returncode == 0, result.stderr
    start, epoch_end, end = read_events(events)
    assert start["event"] == "run_start" and start["task"] == "image-classify"
    assert start["epochs"] == 1 and Path(start["run_dir"]).is_dir()
    assert epoch_end["event"] == "epoch_end" and epoch_end["epoch"] == 0
    assert {"train/loss", "val/loss", "val/acc", "lr"} <= set(epoch_end["metrics"])
    assert end["event"] == "run_end" and end["run_dir"] == start["run_dir"]
    assert 0.0 <= end["test"]["test/acc"] <= 1.0


def test_on_exception_event_when_a_run_fails(
    rnnkit: CliRunner, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    events = tmp_path / "events.jsonl"
    monkeypatch.setenv("RNNKIT_TEST_EVENTS", str(events))
    result = rnnkit(
        "--plugin", fixture("recorder"), "--plugin", fixture("explode"), "run", "--task", "explode"
    )
    assert result.returncode == 2
    message = "task 'explode' (plugin 'explode') failed in step: RuntimeError: exploded in step"
    assert result.stderr.strip() == f"rnnkit: error: {message}"
    assert [e["event"] for e in read_events(events)] == ["run_start", "exception"]
    assert read_events(events)[-1] == {
        "event": "exception",
        "error": "TaskError",
        "message": message,
    }


@pytest.mark.parametrize("task", ["image-classify", "video-action", "seg-refine", "video-predict"])
def test_documented_data_settings_of_each_built_in_task(task: str) -> None:
    import dataclasses

    from rnnvision_kit.config import DataConfig
    from rnnvision_kit.runner.pipeline import open_task

    config = open_task(build_host().registries, task).default_config()
    base = {f.name for f in dataclasses.fields(DataConfig)}
    names = [f.name for f in dataclasses.fields(config.data) if f.name not in base]
    row = f"| `{task}` | " + ", ".join(f"`{n}`" for n in names) + " |"
    assert row in DOCS.read_text(), f"docs/plugins.md should list: {row}"
