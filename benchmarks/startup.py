"""Startup cost of ``rnnkit``: ``rnnkit tasks``, ``rnnkit --help`` and ``rnnkit predict`` on a
short clip against ``python -c "import torch"``, and how soon a config error is reported,
measured in the same run.

``rnnkit predict RUN clip.mp4`` (a 16-frame clip; the run is a tiny video-action run the script
trains first, in a temporary folder, not timed) should take at most about twice ``import torch``
(goal: ratio <= 2.0; issue 20). ``--no-predict`` leaves it out.

``rnnkit tasks`` imports every installed plugin's hook module; it must not import torch, so it
should take no longer than importing torch alone (goal: ratio <= 1.2). A config typo
(``rnnkit run --task video-action --set train.lrr=1``, exit code 2) is reported before torch is
imported: goal under 1 s and 200 MB of peak memory (before issue 17: about 12 s and 937 MB).
Each command runs in a fresh subprocess, alternating between them, after one unmeasured
warm-up run of each; the medians are compared (peak memory: the largest of the runs).

    python benchmarks/startup.py [--runs 7] [--json] [--no-predict]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import NamedTuple

GOAL = 1.2  # rnnkit tasks / import torch
PREDICT_GOAL = 2.0  # rnnkit predict on a short clip / import torch
TINY_RUN = [
    *("run", "--task", "video-action", "--set", "data.videos_per_class=2", "--epochs", "1"),
    *("--set", "train.max_steps_per_epoch=1", "--set", "data.batch_size=4", "--quiet"),
]
ERROR_GOAL_S = 1.0  # a config error, seconds
ERROR_GOAL_MB = 200.0  # a config error, peak resident memory


class Command(NamedTuple):
    args: list[str]
    returncode: int = 0  # what a correct run exits with


def rnnkit_command() -> list[str]:
    """The installed console script next to this interpreter, else ``python -m rnnvision_kit``."""
    script = Path(sys.executable).parent / "rnnkit"
    return [str(script)] if script.is_file() else [sys.executable, "-m", "rnnvision_kit"]


def run_once(command: Command) -> tuple[float, float]:
    """Seconds and peak resident MB of one run of ``command``; another exit code is an error."""
    started = time.perf_counter()
    process = subprocess.Popen(
        command.args, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True
    )
    assert process.stderr is not None
    stderr = process.stderr.read()
    _, status, usage = os.wait4(process.pid, 0)
    elapsed = time.perf_counter() - started
    process.returncode = os.waitstatus_to_exitcode(status)
    if process.returncode != command.returncode:
        raise SystemExit(
            f"{' '.join(command.args)} exited {process.returncode}, not {command.returncode}:\n"
            f"{stderr}"
        )
    return elapsed, usage.ru_maxrss / 1024  # ru_maxrss is in KiB on Linux


def measure(commands: dict[str, Command], runs: int) -> dict[str, list[tuple[float, float]]]:
    """Run each command ``runs`` times, interleaved, after one warm-up run each."""
    for command in commands.values():
        run_once(command)
    results: dict[str, list[tuple[float, float]]] = {name: [] for name in commands}
    for _ in range(runs):
        for name, command in commands.items():
            results[name].append(run_once(command))
    return results


def predict_command(folder: Path) -> Command:
    """``rnnkit predict RUN clip.mp4`` on a tiny video-action run trained in ``folder`` (in
    subprocesses: this process imports no torch, whose memory its children would inherit)."""
    env = {**os.environ, "RNNKIT_CACHE": os.environ.get("RNNKIT_CACHE", str(folder / "cache"))}
    os.environ["RNNKIT_CACHE"] = env["RNNKIT_CACHE"]
    done = subprocess.run(
        [*rnnkit_command(), *TINY_RUN, "--json"],
        cwd=folder,
        env=env,
        capture_output=True,
        text=True,
    )
    if done.returncode != 0:
        raise SystemExit(f"training the tiny run failed:\n{done.stderr}")
    run_dir = json.loads(done.stdout)["run_dir"]
    clip = folder / "clip.mp4"
    write = (
        "import sys, numpy as np; from rnnvision_kit.data import write_video; "
        "write_video(sys.argv[1], np.random.default_rng(0).integers(0, 256, (16, 48, 64, 3), "
        "dtype=np.uint8), fps=10)"
    )
    subprocess.run([sys.executable, "-c", write, str(clip)], check=True)
    return Command([*rnnkit_command(), "predict", str(folder / run_dir), str(clip)])


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=7, help="measured runs of each command")
    parser.add_argument("--json", action="store_true", help="print the figures as JSON")
    parser.add_argument("--no-predict", action="store_true", help="leave rnnkit predict out")
    args = parser.parse_args(argv)
    typo = ["run", "--task", "video-action", "--set", "train.lrr=1"]
    commands = {
        "rnnkit tasks": Command([*rnnkit_command(), "tasks"]),
        "rnnkit --help": Command([*rnnkit_command(), "--help"]),
        "import torch": Command([sys.executable, "-c", "import torch"]),
        "config error": Command([*rnnkit_command(), *typo], returncode=2),
    }
    with tempfile.TemporaryDirectory(prefix="rnnkit-startup-") as folder:
        if not args.no_predict:
            commands["rnnkit predict"] = predict_command(Path(folder))
        results = measure(commands, args.runs)
    medians = {name: statistics.median(t for t, _ in values) for name, values in results.items()}
    peaks = {name: max(mb for _, mb in values) for name, values in results.items()}
    ratio = medians["rnnkit tasks"] / medians["import torch"]
    predict_ratio = medians.get("rnnkit predict", float("nan")) / medians["import torch"]
    error_ok = medians["config error"] < ERROR_GOAL_S and peaks["config error"] < ERROR_GOAL_MB
    if args.json:
        figures = {"runs": args.runs, "median_s": medians, "peak_mb": peaks, "ratio": ratio}
        if "rnnkit predict" in medians:
            figures["predict_ratio"] = predict_ratio
        goals = {
            "ratio": GOAL,
            "predict_ratio": PREDICT_GOAL,
            "config_error_s": ERROR_GOAL_S,
            "config_error_mb": ERROR_GOAL_MB,
        }
        print(json.dumps({**figures, "goal": goals}))
        return
    for name, command in commands.items():
        times = [t for t, _ in results[name]]
        spread = f"min {min(times):.3f} s, max {max(times):.3f} s"
        print(
            f"{name:<13} median {medians[name]:.3f} s ({spread}), peak {peaks[name]:.0f} MB"
            f"  [{' '.join(command.args)}]"
        )
    verdict = "meets" if ratio <= GOAL else "misses"
    print(f"ratio rnnkit tasks / import torch = {ratio:.2f} ({verdict} the goal <= {GOAL})")
    if "rnnkit predict" in medians:
        verdict = "meets" if predict_ratio <= PREDICT_GOAL else "misses"
        print(
            f"ratio rnnkit predict / import torch = {predict_ratio:.2f} "
            f"({verdict} the goal <= {PREDICT_GOAL})"
        )
    verdict = "meets" if error_ok else "misses"
    print(
        f"config error: {medians['config error']:.3f} s, {peaks['config error']:.0f} MB "
        f"({verdict} the goal < {ERROR_GOAL_S:g} s and < {ERROR_GOAL_MB:.0f} MB)"
    )


if __name__ == "__main__":
    main()
