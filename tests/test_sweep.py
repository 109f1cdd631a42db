"""``rnnkit sweep``: a real tiny sweep of video-action (2 heads x 2 seeds, 2 runs at a time),
its folders, table, CSV and plot; a second invocation that runs nothing; settings refused before
anything runs; a run that fails while the sweep goes on."""

from __future__ import annotations

import contextlib
import csv
import io
import json
import re
import shutil
import statistics
from collections.abc import Iterator
from pathlib import Path

import pytest
import torch
from layer_checks import one_thread  # noqa: F401

from rnnvision_kit.sweep import (
    Point,
    Slot,
    fmt_mean_std,
    parse_grid,
    parse_seeds,
    split_values,
    state_bytes,
    sweep_command,
)

# The smallest video-action that trains: 40 clips of 2 frames of 16 x 16, one epoch (~1 s; a
# run's subprocess is mostly its imports).
TINY = [
    "--task",
    "video-action",
    "--epochs",
    "1",
    *("--set", "data.videos_per_class=[4]"),
    *("--set", "data.num_frames=2"),
    *("--set", "data.size=16"),
    *("--set", "data.frame_cache=false"),
    *("--set", "model.hidden_size=8"),
    *("--set", "model.feature_dim=8"),
]
GRID = ["--grid", "model.head=gru,mean", "--seeds", "0,1", "--jobs", "2"]
HIDDEN = 8


def sweep(cwd: Path, *args: str) -> tuple[int, str, str]:
    """``rnnkit sweep ARGS`` through the real entry point in this process (its runs are
    subprocesses), in ``cwd``; the sweep command is added for the call. (exit code, out, err)."""
    from rnnvision_kit.cli import cli, main

    out, err = io.StringIO(), io.StringIO()
    code, threads = 0, torch.get_num_threads()
    with pytest.MonkeyPatch.context() as mp:
        mp.chdir(cwd)
        mp.setitem(cli.commands, "sweep", sweep_command)
        with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
            try:
                main(["sweep", *args])
            except SystemExit as done:
                code = done.code if isinstance(done.code, int) else int(done.code is not None)
            finally:
                torch.set_num_threads(threads)
    return code, out.getvalue(), err.getvalue()


@pytest.fixture(scope="module")
def finished(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Path, str]]:
    """A finished sweep folder and the sweep's output."""
    cwd = tmp_path_factory.mktemp("sweep")
    code, out, err = sweep(cwd, *TINY, *GRID, "--out", "out")
    assert code == 0, out + err
    yield cwd / "out", out


def run_dirs(out: Path) -> dict[tuple[str, int], Path]:
    found = {}
    for head in ("gru", "mean"):
        for seed in (0, 1):
            dirs = list((out / f"model.head={head}" / f"seed{seed}").glob("video-action/*"))
            assert len(dirs) == 1, dirs
            found[head, seed] = dirs[0]
    return found


@pytest.mark.slow  # real runs in subprocesses (~5 s of imports each)
def test_each_run_is_a_normal_run_folder(finished: tuple[Path, str]) -> None:
    out, output = finished
    import yaml

    for (head, seed), run_dir in run_dirs(out).items():
        config = yaml.safe_load((run_dir / "config.yaml").read_text())
        assert (config["model"]["head"], config["seed"]) == (head, seed)
        assert config["train"]["threads"] == 1  # the task's own default, at most 2 // 2
        for name in ("summary.json", "best.pt", "last.pt", "metrics.jsonl", "splits.json"):
            assert (run_dir / name).is_file(), name
        cost = json.loads((run_dir.parents[1] / "stream-cost.json").read_text())
        assert cost["run_dir"] == f"video-action/{run_dir.name}"  # inside its seed folder
        if head == "gru":
            assert cost["frames"] == 100 and cost["threads"] == 1 and cost["note"] is None
        else:
            assert cost["ms_per_frame"] is None and cost["note"].startswith("cannot stream")
    done = re.findall(
        r"^\[\d/4\] model\.head=(gru|mean) seed=(\d) \.\.\. done in [\d.]+ s "
        r"\(test acc \d\.\d{3}\)$",
        output,
        re.M,
    )
    assert sorted(done) == [("gru", "0"), ("gru", "1"), ("mean", "0"), ("mean", "1")]
    settings = json.loads((out / "sweep.json").read_text())
    assert settings["task"] == "video-action"
    assert settings["grid"] == {"model.head": ["gru", "mean"]}
    assert settings["seeds"] == [0, 1]
    assert [c["slug"] for c in settings["configurations"]] == ["model.head=gru", "model.head=mean"]


@pytest.mark.slow  # real runs in subprocesses (~5 s of imports each)
def test_results_table_csv_and_plot(finished: tuple[Path, str]) -> None:
    out, output = finished
    runs = run_dirs(out)
    summaries = {key: json.loads((d / "summary.json").read_text()) for key, d in runs.items()}
    md = (out / "results.md").read_text().splitlines()
    headers = [c.strip() for c in md[0].strip("|").split("|")]
    assert headers[:2] == ["model.head", "test/acc"]
    assert "test/samples" not in headers  # counts, not metrics
    for name in ("seeds", "parameters", "train s", "ms/frame", "state bytes", "failed", "notes"):
        assert name in headers
    rows = {
        r[0]: dict(zip(headers, r, strict=True))
        for r in ([c.strip() for c in line.strip("|").split("|")] for line in md[2:])
    }
    assert set(rows) == {"gru", "mean"}
    for head, row in rows.items():
        accs = [summaries[head, seed]["test"]["test/acc"] for seed in (0, 1)]
        assert row["test/acc"] == f"{statistics.fmean(accs):.4f} ± {statistics.stdev(accs):.4f}"
        assert re.fullmatch(r"\d+\.\d{4} ± \d+\.\d{4}", row["test/loss"])
        assert row["seeds"] == "2" and row["failed"] == "0"
        assert row["parameters"] == f"{summaries[head, 0]['parameters']:,}"
    assert float(rows["gru"]["ms/frame"]) > 0
    assert rows["gru"]["state bytes"] == str(HIDDEN * 4)  # one float32 hidden state
    assert rows["mean"]["ms/frame"] == "-" and rows["mean"]["state bytes"] == "-"
    assert "cannot stream: its head (model.head=mean)" in rows["mean"]["notes"]
    assert "test/acc" in output and "ms/frame" in output  # the table on the terminal

    table = list(csv.DictReader((out / "results.csv").open()))
    assert [r["model.head"] for r in table] == ["gru", "mean"]
    losses = [summaries["gru", seed]["test"]["test/loss"] for seed in (0, 1)]
    assert float(table[0]["test/loss_mean"]) == pytest.approx(statistics.fmean(losses), rel=1e-5)
    assert float(table[0]["test/loss_std"]) == pytest.approx(statistics.stdev(losses), rel=1e-5)
    assert int(table[0]["state_bytes"]) == HIDDEN * 4 and table[1]["ms_per_frame"] == ""
    assert (out / "results.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


@pytest.mark.slow  # real runs in subprocesses (~5 s of imports each)
def test_same_command_again_runs_nothing(finished: tuple[Path, str]) -> None:
    out, _ = finished
    before = {key: (d / "summary.json").stat().st_mtime_ns for key, d in run_dirs(out).items()}
    code, output, err = sweep(out.parent, *TINY, *GRID, "--out", "out")
    assert code == 0, err
    assert "4 finished (skipped), 0 to run" in output
    assert "nothing to run: every run of this sweep has finished" in output
    assert "started" not in output and "done in" not in output
    after = {key: (d / "summary.json").stat().st_mtime_ns for key, d in run_dirs(out).items()}
    assert after == before
    assert "| gru |" in (out / "results.md").read_text()


@pytest.mark.slow  # real runs in subprocesses (~5 s of imports each)
def test_other_settings_are_refused_in_a_sweep_folder(finished: tuple[Path, str]) -> None:
    out, _ = finished
    code, _, err = sweep(out.parent, *TINY, *GRID, "--epochs", "2", "--out", "out")
    assert code == 2
    assert err.strip().splitlines() == [
        "rnnkit: error: out/sweep.json: the "
        "sweep there has train.epochs=1, this command train.epochs=2; choose another --out for "
        "a different sweep (or sweep train.epochs with --grid)"
    ]
    code, _, err = sweep(out.parent, "--task", "image-classify", "--out", "out")
    assert code == 2
    assert "a sweep of task 'video-action', not 'image-classify'" in err


@pytest.mark.slow  # uses the finished sweep's runs
def test_an_interrupted_run_is_resumed_and_a_fresh_start_supersedes_it(
    finished: tuple[Path, str], tmp_path: Path
) -> None:
    run_dir = run_dirs(finished[0])["gru", 0]
    slot = Slot(Point((("model.head", "gru"),)), 0, tmp_path / "seed0")
    copy = tmp_path / "seed0" / "video-action" / run_dir.name
    shutil.copytree(run_dir, copy)
    assert slot.finished() == copy and slot.resumable() is None
    (copy / "summary.json").unlink()  # killed before its summary: resumed from last.pt
    assert slot.finished() is None and slot.resumable() == copy
    (copy.parent / f"{run_dir.name}-2").mkdir()  # a later fresh start (no last.pt yet)
    (copy.parent / f"{run_dir.name}-2" / "config.yaml").write_text("task: video-action\n")
    assert slot.resumable() is None


def test_a_bad_grid_value_stops_before_any_run(tmp_path: Path) -> None:
    code, out, err = sweep(tmp_path, *TINY, "--grid", "data.size=16,4", "--out", "out")
    assert code == 2
    assert err.strip().splitlines() == ["rnnkit: error: data.size: must be in [8, 1024] (got 4)"]
    assert out == "" and not (tmp_path / "out").exists()
    code, _, err = sweep(tmp_path, *TINY, "--grid", "seed=1,2")
    assert code == 2 and "seed: the sweep sets it; use --seeds" in err


@pytest.mark.slow  # real runs in subprocesses (~5 s of imports each)
def test_a_failing_run_is_recorded_and_the_sweep_goes_on(tmp_path: Path) -> None:
    # passes validation (any name may be a torchvision model) and fails when the model is built
    args = [*TINY, "--grid", "model.backbone=tv:nosuch_net,small-cnn", "--seeds", "0"]
    code, out, err = sweep(tmp_path, *args, "--jobs", "2", "--out", "out")
    assert code == 1
    assert re.search(r"tv:nosuch_net seed=0 \.\.\. FAILED in [\d.]+ s: unknown backbone", out)
    assert re.search(r"small-cnn seed=0 \.\.\. done in", out)
    # (the tiny run that trains is flagged too: one epoch leaves it at the majority class)
    assert (
        err.strip().splitlines()[-1]
        == "rnnkit: error: 1 of 2 run(s) failed (see sweep-error.txt in their folders)"
    )
    (failed,) = (tmp_path / "out").glob("model.backbone=tv_nosuch_net-*/seed0")
    assert "unknown backbone 'tv:nosuch_net'" in (failed / "sweep-error.txt").read_text()
    rows = list(csv.DictReader((tmp_path / "out" / "results.csv").open()))
    assert [(r["model.backbone"], r["failed"], r["seeds"]) for r in rows] == [
        ("tv:nosuch_net", "1", "0"),
        ("small-cnn", "0", "1"),
    ]
    assert rows[0]["notes"].startswith("failed: unknown backbone 'tv:nosuch_net'")
    assert re.fullmatch(r"\d\.\d{4} \(n=1\)", _md_cell(tmp_path / "out", "small-cnn", "test/acc"))


def _md_cell(out: Path, first: str, column: str) -> str:
    lines = (out / "results.md").read_text().splitlines()
    headers = [c.strip() for c in lines[0].strip("|").split("|")]
    for line in lines[2:]:
        cells = [c.strip() for c in line.strip("|").split("|")]
        if cells[0] == first:
            return cells[headers.index(column)]
    raise AssertionError(f"no row {first}")


# ------------------------------------------------------------------------ small pieces


def test_grid_values_split_at_top_level_commas() -> None:
    assert split_values("gru,lstm") == ["gru", "lstm"]
    assert split_values("[8],[16,4]") == ["[8]", "[16,4]"]
    assert split_values("'a,b',c") == ["'a,b'", "c"]
    assert parse_grid(["model.head=gru,lstm,gru", "data.size=16"]) == [
        ("model.head", ["gru", "lstm"]),
        ("data.size", ["16"]),
    ]
    assert parse_seeds("0,1,4-6") == [0, 1, 4, 5, 6]


@pytest.mark.parametrize("bad", ["model.head", "model.head=", "=gru", "model.head=gru,"])
def test_malformed_grid_is_a_usage_error(bad: str) -> None:
    import click

    with pytest.raises(click.BadParameter, match="expected KEY=V1,V2"):
        parse_grid([bad])


def test_folder_names_are_readable_and_distinct() -> None:
    assert Point((("model.head", "gru"), ("model.hidden_size", "8"))).slug == (
        "model.head=gru,model.hidden_size=8"
    )
    odd = [Point((("data.videos_per_class", v),)).slug for v in ("[8,4]", "[8_4]", "[8 4]")]
    assert len(set(odd)) == 3 and all(re.fullmatch(r"[\w.=,+-]+", s) for s in odd)
    assert Point(()).slug == "base"


def test_mean_std_shows_a_single_seed_as_such() -> None:
    assert fmt_mean_std([0.5, 0.7]) == "0.6000 ± 0.1414"
    assert fmt_mean_std([0.5]) == "0.5000 (n=1)"
    assert fmt_mean_std([]) == "-"


def test_state_bytes_of_a_tensor_or_a_tuple_of_tensors() -> None:
    assert state_bytes(torch.zeros(2, 1, 8)) == 64
    assert state_bytes((torch.zeros(1, 8), torch.zeros(1, 4, dtype=torch.float64))) == 64
    assert state_bytes(None) == 0


def test_a_run_that_does_not_beat_its_baseline_is_flagged(tmp_path: Path) -> None:
    """A configuration with a seed that collapsed to the majority class is marked in the
    table's notes and named in one line under it, from the runs' summary.json."""
    from rnnvision_kit.baselines import Baseline
    from rnnvision_kit.sweep.report import RunResult, build_rows, collapse_lines, table

    base = Baseline("classification", "left", "train", {"acc": 0.5, "mean_class_acc": 0.5})

    def summary(acc: float) -> dict:
        return {
            "test": {"test/acc": acc},
            "test_details": {"test/baseline": base.to_dict()},
        }

    good, bad = Point((("model.head", "gru"),)), Point((("model.head", "mean"),))
    results = {
        good: [RunResult(Slot(good, 0, tmp_path), summary(0.9))],
        bad: [
            RunResult(Slot(bad, 0, tmp_path), summary(0.5)),
            RunResult(Slot(bad, 1, tmp_path), summary(0.8)),
        ],
    }
    rows = build_rows([good, bad], results, ["test/acc"])
    _, cells = table(rows, ["model.head"], ["test/acc"])
    assert cells[0][-1] == "-" and cells[1][-1] == "COLLAPSED (1/2 seeds)"
    assert collapse_lines(rows, results) == [
        "model.head=mean: 1 of 2 seed(s) collapsed (the model does no better than always "
        "predicting class 'left': accuracy 0.500 = the majority-class baseline)"
    ]
