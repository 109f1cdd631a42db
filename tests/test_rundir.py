"""Issue 19: the run folder has one owner (``RunDir``), ``--resume`` reads last.pt once, a task's
model builder returns its normalisation (the runner records it; the config is never written
to), ``rnnkit export`` on a task without export says so first, and data a task builds itself is
checked against its kind's item format."""

from __future__ import annotations

import json
import re
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import torch
from plugins_fixtures import fixture, tiny_runs

from rnnvision_kit import BuiltModel, CheckpointError, DataError, Normalisation, RnnkitError
from rnnvision_kit.runner.checkpoint import load_checkpoint, save_checkpoint
from rnnvision_kit.runner.pipeline import build, configure, load_for_inference, open_task
from rnnvision_kit.runner.run import train
from rnnvision_kit.runner.rundir import RunDir, checkpoint_source
from rnnvision_kit.testing import plugin_host
from tests.conftest import REPO, CliRunner

# --------------------------------------------------------------------------- names, resolution


def test_run_dir_names_the_files_of_a_run_folder(tmp_path: Path) -> None:
    run = RunDir.create(tmp_path / "runs", "tiny")
    assert run.path.parent == tmp_path / "runs" / "tiny" and run.path.is_dir()
    names = [run.config, run.splits, run.metrics, run.summary, run.best, run.last, run.curves]
    assert [p.name for p in names] == [
        "config.yaml", "splits.json", "metrics.jsonl", "summary.json", "best.pt", "last.pt",
        "curves.png",
    ]  # fmt: skip
    assert run.eval_file("val").name == "eval-val.json" and run.export_dir.name == "export"
    assert RunDir(run) == run and Path(run) == run.path  # os.PathLike
    assert RunDir.create(tmp_path / "runs", "tiny").path != run.path  # -2 when the second is taken
    with pytest.raises(RnnkitError, match="checkpoint 'middle': choose best or last"):
        run.checkpoint("middle")  # type: ignore[arg-type]
    assert not run.is_run() and not run.resumable() and run.checkpoint_file() is None


def _checkpoint(path: Path, epoch: int, validated: bool) -> None:
    save_checkpoint(
        {
            "model": {"w": torch.zeros(1)},
            "epoch": epoch,
            "batch_in_epoch": 0,
            "config": {},
            "spec": {},
            "early_stopping": {"best_epoch": 0 if validated else -1},
        },
        path,
    )


def test_best_else_last_with_the_fallback_note(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    run = RunDir(tmp_path)
    with pytest.raises(CheckpointError) as caught:
        run.read_checkpoint("best", "evaluate")
    assert str(caught.value) == (
        f"{tmp_path}: no checkpoint to evaluate (best.pt or last.pt missing; did the run "
        "finish an epoch?)"
    )
    _checkpoint(run.last, 2, validated=True)
    assert run.checkpoint_file("best") == run.last and run.resumable()
    found = run.read_checkpoint("best")
    assert found.path == run.last and found.state["epoch"] == 2
    note = f"rnnkit: warning: {run.best} not found; using last.pt (after epoch 2)\n"
    assert capsys.readouterr().err == note
    _checkpoint(run.last, 0, validated=False)
    run.read_checkpoint("best")
    assert "has no best.pt (no epoch validated yet); using last.pt" in capsys.readouterr().err
    _checkpoint(run.best, 1, validated=True)
    assert run.read_checkpoint("best").path == run.best and capsys.readouterr().err == ""
    assert run.read_checkpoint("last").path == run.last
    run.best.unlink()
    run.last.unlink()
    with pytest.raises(CheckpointError, match=r"no checkpoint to use \(last.pt missing"):
        run.read_checkpoint("last")


def test_a_setting_names_a_run_folder_or_a_file(tmp_path: Path) -> None:
    run = RunDir(tmp_path / "run")
    run.path.mkdir()
    with pytest.raises(CheckpointError, match=r"run: model.init_from folder has no best.pt or"):
        checkpoint_source(run.path, "model.init_from")
    _checkpoint(run.last, 1, validated=True)
    assert checkpoint_source(str(run.path), "model.init_from") == run.last
    _checkpoint(run.best, 1, validated=True)
    assert checkpoint_source(run.path, "model.init_from") == run.best
    assert checkpoint_source(run.last, "model.init_from") == run.last
    with pytest.raises(CheckpointError, match=r"nope: model.x not found \(a run folder or"):
        checkpoint_source(tmp_path / "nope", "model.x")


def test_no_checkpoint_name_is_written_outside_run_dir() -> None:
    """Only ``runner/rundir.py`` spells the checkpoints' file names (issue 19)."""
    literal = re.compile(r"""["'](best|last)\.pt["']""")
    found = [
        f"{path.relative_to(REPO)}:{n}"
        for root in ("rnnvision_kit", "plugins")
        for path in sorted((REPO / root).rglob("*.py"))
        if path.name != "rundir.py"
        for n, line in enumerate(path.read_text().splitlines(), 1)
        if literal.search(line)
    ]
    assert not found


# -------------------------------------------------------------------------------- tiny runs


@pytest.fixture(scope="module")
def host() -> Any:
    return plugin_host(tiny_runs=tiny_runs)


def _train(host: Any, out: Path, task: str = "tiny", *settings: str) -> tuple[Any, dict]:
    handle = open_task(host.registries, task)
    config = configure(handle, overrides=[f"out_dir={out}", "train.threads=1", *settings])
    summary = train(host.registries, config, task=handle, quiet=True)
    return config, summary


@pytest.fixture(scope="module")
def fake_weights_run(host: Any, tmp_path_factory: pytest.TempPathFactory) -> tuple[Any, RunDir]:
    """A run whose model normalised as its (fake) pretrained weights asked: (config, folder)."""
    config, summary = _train(host, tmp_path_factory.mktemp("runs"), "tiny", "model.weights=fake")
    return config, RunDir(summary["run_dir"])


def test_the_normalisation_is_recorded_and_the_config_not_written_to(
    fake_weights_run: tuple[Any, RunDir],
) -> None:
    config, run = fake_weights_run
    assert config.model.mean is None and config.model.std is None  # the caller's config
    recorded = {"mean": [0.25], "std": [0.5], "source": "fake weights"}
    for checkpoint in (run.best, run.last):
        state = load_checkpoint(checkpoint)
        assert state["normalisation"] == recorded
        assert state["config"]["model"]["mean"] == [0.25]
    import yaml

    saved = yaml.safe_load(run.config.read_text())["model"]
    assert (saved["mean"], saved["std"], saved["weights"]) == ([0.25], [0.5], "fake")


def test_a_rebuilt_model_gets_the_recorded_normalisation(
    host: Any, fake_weights_run: tuple[Any, RunDir]
) -> None:
    saved, built = load_for_inference(
        host.registries, run_dir=fake_weights_run[1], capability="x", require=False
    )
    assert saved.normalisation == Normalisation((0.25,), (0.5,), "fake weights")
    assert built.normalisation == saved.normalisation
    assert float(built.model.mean) == 0.25 and float(built.model.std) == 0.5


def test_a_checkpoint_written_before_the_normalisation_was_recorded_still_loads(
    host: Any, fake_weights_run: tuple[Any, RunDir], tmp_path: Path
) -> None:
    """Older runs wrote the weights' mean/std into config.yaml and nothing into checkpoints."""
    import shutil

    old = RunDir(tmp_path / "old")
    shutil.copytree(fake_weights_run[1].path, old.path)
    for checkpoint in (old.best, old.last):
        state = load_checkpoint(checkpoint)
        del state["normalisation"]
        save_checkpoint(state, checkpoint)
    saved, built = load_for_inference(host.registries, old.path, "x", require=False)
    assert saved.normalisation is None
    assert built.normalisation == Normalisation((0.25,), (0.5,), "model.mean/std")
    assert float(built.model.mean) == 0.25


def test_a_bare_module_from_build_model_still_works(host: Any, tmp_path: Path) -> None:
    handle = open_task(host.registries, "tiny-module")
    made = handle.make_model(
        _model_context(host, configure(handle), handle)
    )  # a bare nn.Module becomes a BuiltModel without a normalisation
    assert isinstance(made, BuiltModel) and made.normalisation is None
    _, summary = _train(host, tmp_path, "tiny-module")
    assert "normalisation" not in load_checkpoint(RunDir(summary["run_dir"]).best)


def _model_context(host: Any, config: Any, handle: Any) -> Any:
    from rnnvision_kit.task import ModelContext

    spec = tiny_runs._bundle().spec
    return ModelContext(config, spec, host.registries, handle.name, handle.plugin, "train")


# ---------------------------------------------------------------------- resume reads it once


@pytest.fixture
def reads() -> Iterator[list[str]]:
    """Paths opened for reading while the test runs (an audit hook: no mock)."""
    opened: list[str] = []
    active = [True]

    def hook(event: str, args: tuple[Any, ...]) -> None:
        if active[0] and event == "open" and isinstance(args[0], str | Path):
            mode = args[1] if len(args) > 1 and isinstance(args[1], str) else "r"
            if "r" in mode and "+" not in mode:
                opened.append(str(args[0]))

    sys.addaudithook(hook)  # (hooks cannot be removed; this one goes quiet after the test)
    yield opened
    active[0] = False


def test_resume_reads_last_pt_once(rnnkit: CliRunner, tmp_path: Path, reads: list[str]) -> None:
    plugin = ("--plugin", fixture("tiny_runs"))
    first = rnnkit(
        *plugin, "run", "--task", "tiny", "--quiet", "--json", "--set", "train.threads=1"
    )
    assert first.returncode == 0, first.stderr
    run = RunDir(tmp_path / json.loads(first.stdout)["run_dir"])
    reads.clear()
    result = rnnkit(*plugin, "run", "--resume", str(run.path), "--epochs", "2", "--quiet")
    assert result.returncode == 0, result.stderr
    assert reads.count(str(run.last)) == 1, reads
    assert json.loads(run.summary.read_text())["epochs"] == 2


# ---------------------------------------------------------------------------- the findings


def test_export_of_a_task_without_export_says_so_before_naming_a_module(
    rnnkit: CliRunner, fake_weights_run: tuple[Any, RunDir], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setitem(sys.modules, "onnx", None)  # as if the export extra were not installed
    result = rnnkit("--plugin", fixture("tiny_runs"), "export", str(fake_weights_run[1].path))
    assert result.returncode == 2
    assert result.stderr.splitlines() == [
        "rnnkit: error: task 'tiny' (plugin 'tiny_runs') does not support export (it supports: "
        "training and evaluation only)"
    ]


def test_data_a_task_builds_is_checked_against_its_kinds_item_format(host: Any) -> None:
    handle = open_task(host.registries, "tiny-built")
    with pytest.raises(DataError) as caught:
        build(handle, host.registries, configure(handle, overrides=["data.scale=3"]), "eval")
    message = str(caught.value)
    assert message.startswith(
        "task 'tiny-built' (plugin 'tiny_runs'): the data its build_data returned does not fit "
        "image data: train image values lie in [0."
    ), message
    assert "\n" not in message
    built = build(handle, host.registries, configure(handle), "eval")  # [0, 1]: fine
    assert built.data is not None and len(built.data.train) == 32
