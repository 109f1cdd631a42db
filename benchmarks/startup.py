"""Startup time of ``rnnkit tasks`` against ``python -c "import torch"``, measured in the same run.

``rnnkit tasks`` imports every installed plugin's hook module; it must not import torch, so it
should take no longer than importing torch alone (goal: ratio <= 1.2). Each command runs in a
fresh subprocess, alternating between the two, after one unmeasured warm-up run of each; the
medians are compared.

    python benchmarks/startup.py [--runs 7] [--json]
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import time
from pathlib import Path

GOAL = 1.2


def rnnkit_command() -> list[str]:
    """The installed console script next to this interpreter, else ``python -m rnnvision_kit``."""
    script = Path(sys.executable).parent / "rnnkit"
    return [str(script)] if script.is_file() else [sys.executable, "-m", "rnnvision_kit"]


def wall_time(command: list[str]) -> float:
    """Seconds one run of ``command`` takes; a failing command is an error."""
    started = time.perf_counter()
    result = subprocess.run(command, capture_output=True, text=True)
    elapsed = time.perf_counter() - started
    if result.returncode != 0:
        raise SystemExit(f"{' '.join(command)} failed:\n{result.stderr}")
    return elapsed


def measure(commands: dict[str, list[str]], runs: int) -> dict[str, list[float]]:
    """Run each command ``runs`` times, interleaved, after one warm-up run each."""
    for command in commands.values():
        wall_time(command)
    times: dict[str, list[float]] = {name: [] for name in commands}
    for _ in range(runs):
        for name, command in commands.items():
            times[name].append(wall_time(command))
    return times


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=7, help="measured runs of each command")
    parser.add_argument("--json", action="store_true", help="print the figures as JSON")
    args = parser.parse_args(argv)
    commands = {
        "rnnkit tasks": [*rnnkit_command(), "tasks"],
        "import torch": [sys.executable, "-c", "import torch"],
    }
    times = measure(commands, args.runs)
    medians = {name: statistics.median(values) for name, values in times.items()}
    ratio = medians["rnnkit tasks"] / medians["import torch"]
    if args.json:
        print(json.dumps({"runs": args.runs, "median_s": medians, "ratio": ratio, "goal": GOAL}))
        return
    for name, command in commands.items():
        spread = f"min {min(times[name]):.3f} s, max {max(times[name]):.3f} s"
        print(f"{name:<13} median {medians[name]:.3f} s ({spread})  [{' '.join(command)}]")
    verdict = "meets" if ratio <= GOAL else "misses"
    print(f"ratio rnnkit tasks / import torch = {ratio:.2f} ({verdict} the goal <= {GOAL})")


if __name__ == "__main__":
    main()
