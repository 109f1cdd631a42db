"""Long-range memory on a CPU budget: sequential and permuted-sequential MNIST (784 steps of one
pixel) per layer, through ``rnnkit run`` (issue 18, Goals).

Usage::

    python benchmarks/long_range.py --data mnist:PATH [--task psmnist|smnist]
        [--layers gru,lstm,mingru,lru,mamba,transformer] [--budget-minutes 4] [--threads 1]
        [--config YAML] [--set KEY=VALUE ...] [--out runs/long_range] [--dry-run] [--quick]
        [--json PATH]

For each layer:

1. **settings**: the preset (``examples/configs/psmnist.yaml`` or ``smnist.yaml``, or
   ``--config``); a layer other than the preset's head gets its own settings from
   :data:`LAYER_SETTINGS` (``model.layer`` reset, then e.g. one layer for ``gru``/``lstm``, a
   784-step window for ``transformer``); ``--set`` overrides both;
2. **probe**: the same head (``build_head(name, 1, 10, ...)``) on random ``B,784,1`` batches in
   this process: the seconds of one training step (forward, backward, AdamW; median of two after
   a warm-up) and of one evaluation batch;
3. **plan**: the optimizer steps that fit the budget (the budget is the training's: the one
   validation pass at the end, 5,000 images, and the test pass, 10,000, come on top, estimated
   and reported): ``train.max_steps_per_epoch`` and ``train.epochs`` (one epoch of 55,000 images
   while the steps fit in it; ``train.val_every`` = epochs), the cosine schedule spans those
   steps, warm-up 5%. A layer whose evaluation alone would take more than ``--max-eval-ratio``
   (2) budgets is skipped with a note (``--max-eval-ratio 0``: never);
4. **run**: ``rnnkit run --task image-classify --data mnist:PATH --config PRESET --set
   model.head=NAME ...`` (``python -m rnnvision_kit``), one thread (``train.threads``); its run
   folder goes under ``--out``.

Prints a Markdown table: layer, parameters, optimizer steps (and images seen), the run's
``train_seconds`` (training and validation), its wall time and CPU minutes (the child process's
user + system time), the test and validation accuracy. The budget is wall-clock, timed by the
probe: on a shared machine a layer gets fewer steps, not more time. ``--dry-run`` probes and prints the plans and
commands without training; ``--quick`` (a smoke test) probes at ``B=4`` with a 0.2-minute budget.

Measured (2026-12-06, psMNIST, the preset, 4 min per layer, 1 thread, 2-core CPU shared with
other jobs at load ~3): gru (1 layer) 370 steps 40.6% test; mingru (2 layers) 267 steps 31.9%;
lru (2 layers, r in [0.9, 0.999], phase <= 0.314) 127 steps 76.5%; mamba skipped (14.7 s per
step; its evaluation alone ~15 min).
"""

from __future__ import annotations

import argparse
import json
import math
import os
import resource
import shlex
import statistics
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

import torch  # noqa: E402
import yaml  # noqa: E402
from torch import nn  # noqa: E402

from rnnvision_kit.nn import build_head  # noqa: E402

STEPS = 784  # 28 x 28 pixels, one per step
TRAIN_IMAGES = 55_000  # MNIST's 60,000 less the 5,000 image-classify validates on
EVAL_IMAGES = (5_000, 10_000)  # validation (once, at the end), test
WARMUP = 0.05  # of the planned steps

# Settings of a layer that is not the preset's head: model.* keys, ``layer`` its own settings.
LAYER_SETTINGS: dict[str, dict[str, Any]] = {
    "gru": {"num_layers": 1},
    "lstm": {"num_layers": 1},
    "rnn": {"num_layers": 1},
    "lru": {"layer": {"r_min": 0.9, "r_max": 0.999, "max_phase": 0.314}},
    "transformer": {"layer": {"window": STEPS}},  # attends to the whole image
    "tcn": {"layer": {"levels": 8}},  # receptive field 1,021 steps >= 784
}


@dataclass(frozen=True)
class Plan:
    """How long a layer trains: ``epochs`` of ``steps_per_epoch`` optimizer steps."""

    epochs: int
    steps_per_epoch: int
    step_s: float
    eval_s: float

    @property
    def steps(self) -> int:
        return self.epochs * self.steps_per_epoch


def plan(budget_s: float, step_s: float, eval_s: float, batch: int, min_steps: int = 10) -> Plan:
    """The steps of ``step_s`` seconds that fit ``budget_s`` (at least ``min_steps``), as epochs
    of at most one pass over the training images each."""
    steps = max(min_steps, int(budget_s / step_s))
    per_epoch = math.ceil(TRAIN_IMAGES / batch)
    epochs = math.ceil(steps / per_epoch)
    return Plan(epochs, math.ceil(steps / epochs), step_s, eval_s)


# ----------------------------------------------------------------------------- settings


def parse_sets(pairs: list[str]) -> dict[str, Any]:
    """``KEY=VALUE`` pairs, values read as YAML (``2``, ``true``, ``{}``)."""
    out: dict[str, Any] = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep:
            raise SystemExit(f"--set {pair!r}: expected KEY=VALUE")
        out[key] = yaml.safe_load(value)
    return out


def layer_overrides(name: str, preset: dict[str, Any]) -> dict[str, Any]:
    """The ``--set`` keys that make the preset train layer ``name``."""
    sets: dict[str, Any] = {"model.head": name}
    if name == preset.get("model", {}).get("head"):
        return sets
    sets["model.layer"] = {}
    for key, value in LAYER_SETTINGS.get(name, {}).items():
        if key == "layer":
            sets.update({f"model.layer.{k}": v for k, v in value.items()})
        else:
            sets[f"model.{key}"] = value
    return sets


def effective(preset: dict[str, Any], sets: dict[str, Any]) -> dict[str, Any]:
    """The preset's ``model``/``data``/``train`` sections with ``sets`` applied."""
    config = json.loads(json.dumps(preset))
    for key, value in sets.items():
        *parents, leaf = key.split(".")
        node = config
        for part in parents:
            node = node.setdefault(part, {})
        node[leaf] = json.loads(json.dumps(value))
    return config


# -------------------------------------------------------------------------------- probe


def probe(config: dict[str, Any], batch: int | None = None) -> tuple[float, float, int]:
    """Seconds of one training step of the head ``config`` describes, on random pixel
    sequences, and of evaluating the validation and test images (one forward pass of a training
    batch, scaled); and its parameter count."""
    model_cfg, data_cfg = config.get("model", {}), config.get("data", {})
    batch = batch or int(data_cfg.get("batch_size", 64))
    head = build_head(
        model_cfg["head"],
        1,
        10,
        hidden_size=int(model_cfg.get("hidden_size", 128)),
        num_layers=int(model_cfg.get("num_layers", 1)),
        pooling=model_cfg.get("pooling", "last"),
        dropout=float(model_cfg.get("dropout", 0.0)),
        **(model_cfg.get("layer") or {}),
    )
    optimizer = torch.optim.AdamW(head.parameters(), lr=1e-3)
    x, y = torch.rand(batch, STEPS, 1), torch.randint(0, 10, (batch,))

    def step() -> float:
        start = time.perf_counter()
        loss = nn.functional.cross_entropy(head(x), y)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        return time.perf_counter() - start

    first = step()
    step_s = first if first > 5.0 else statistics.median([step(), step()])
    with torch.no_grad():
        start = time.perf_counter()
        head.eval()(x)
        eval_s = (time.perf_counter() - start) * sum(EVAL_IMAGES) / batch
    return step_s, eval_s, sum(p.numel() for p in head.parameters())


# ---------------------------------------------------------------------------------- run


def command(args: argparse.Namespace, sets: dict[str, Any], the_plan: Plan) -> list[str]:
    """The ``rnnkit run`` command line of one layer."""
    sets = {
        **sets,
        "train.epochs": the_plan.epochs,
        "train.max_steps_per_epoch": the_plan.steps_per_epoch,
        "train.val_every": the_plan.epochs,
        "train.warmup_epochs": round(WARMUP * the_plan.epochs, 4),
        "train.threads": args.threads,
        **parse_sets(args.set),
    }
    cmd = [sys.executable, "-m", "rnnvision_kit", "run", "--task", "image-classify"]
    cmd += ["--data", args.data, "--config", str(args.config), "--out", str(args.out)]
    cmd += ["--seed", str(args.seed), "--quiet", "--json"]
    for key, value in sets.items():
        if isinstance(value, bool):
            text = str(value).lower()
        elif isinstance(value, dict | list):
            text = json.dumps(value)
        else:
            text = str(value)
        cmd += ["--set", f"{key}={text}"]
    return cmd


def run(cmd: list[str]) -> dict[str, Any]:
    """Run one training; its summary plus wall seconds, CPU minutes and the steps done."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    start = time.perf_counter()
    done = subprocess.run(cmd, capture_output=True, text=True, cwd=REPO)
    wall = time.perf_counter() - start
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = (after.ru_utime - before.ru_utime + after.ru_stime - before.ru_stime) / 60
    if done.returncode != 0:
        lines = (done.stderr or done.stdout).strip().splitlines()
        return {"error": lines[-1] if lines else f"exit {done.returncode}", "wall_s": wall}
    summary = json.loads(done.stdout[done.stdout.index("{") :])
    steps = 0
    metrics = Path(summary["run_dir"]) / "metrics.jsonl"
    if metrics.exists():
        rows = [json.loads(line) for line in metrics.read_text().splitlines() if line.strip()]
        steps = max((row.get("step", 0) for row in rows), default=0)
    summary.update(wall_s=wall, cpu_min=cpu, steps=steps)
    return summary


# --------------------------------------------------------------------------------- main


def parse(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", default="mnist:~/data", help="mnist:PATH")
    parser.add_argument("--task", choices=("psmnist", "smnist"), default="psmnist")
    parser.add_argument("--layers", default="gru,lstm,mingru,lru,mamba,transformer")
    parser.add_argument("--budget-minutes", type=float, default=4.0, help="per layer, wall")
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--config", type=Path, default=None, help="default: the task's preset")
    parser.add_argument("--set", action="append", default=[], help="KEY=VALUE, all layers")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", type=Path, default=REPO / "runs" / "long_range")
    parser.add_argument("--max-eval-ratio", type=float, default=2.0)
    parser.add_argument("--dry-run", action="store_true", help="probe and plan only")
    parser.add_argument("--quick", action="store_true", help="smoke test: B=4, 0.2 minutes")
    parser.add_argument("--json", type=Path, default=None, help="also write the results here")
    args = parser.parse_args(argv)
    if args.config is None:
        args.config = REPO / "examples" / "configs" / f"{args.task}.yaml"
    if args.quick:
        args.budget_minutes = 0.2
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse(argv)
    torch.set_num_threads(args.threads)
    os.environ.setdefault("OMP_NUM_THREADS", str(args.threads))
    torch.manual_seed(args.seed)
    preset = yaml.safe_load(args.config.read_text()) or {}
    budget_s = args.budget_minutes * 60
    print(
        f"{args.task} from {args.data}, preset {args.config.name}, budget {args.budget_minutes:g} "
        f"min per layer (wall), threads={args.threads}",
        flush=True,
    )
    results: list[dict[str, Any]] = []
    for name in [n.strip() for n in args.layers.split(",") if n.strip()]:
        sets = layer_overrides(name, preset)
        config = effective(preset, {**sets, **parse_sets(args.set)})
        try:
            step_s, eval_s, params = probe(config, 4 if args.quick else None)
        except Exception as error:  # noqa: BLE001 - a layer that cannot be built: say why
            print(f"note: {name} skipped ({type(error).__name__}: {error})", flush=True)
            continue
        batch = int(config.get("data", {}).get("batch_size", 64))
        the_plan = plan(budget_s, step_s, eval_s, batch)
        cmd = command(args, sets, the_plan)
        if args.max_eval_ratio and eval_s > args.max_eval_ratio * budget_s:
            print(
                f"note: {name} skipped: its evaluation alone would take ~{eval_s / 60:.0f} min "
                f"({step_s:.1f} s per training step; --max-eval-ratio 0 runs it anyway)",
                flush=True,
            )
            continue
        print(
            f"{name}: {params} parameters, {step_s:.2f} s/step -> "
            f"{the_plan.epochs} x {the_plan.steps_per_epoch} steps, then evaluation "
            f"~{eval_s:.0f} s\n  " + " ".join(shlex.quote(part) for part in cmd[1:]),
            flush=True,
        )
        row: dict[str, Any] = {"layer": name, "params": params, "plan": the_plan.__dict__}
        row["settings"] = config.get("model", {})
        if not args.dry_run:
            row.update(run(cmd))
            done = row.get("error") or f"test acc {row['test']['test/acc']:.4f}"
            print(f"  {name}: {done} ({row['wall_s']:.0f} s)", flush=True)
        results.append(row)
    if not args.dry_run:
        print(table(args, batch_of(preset, args), results))
    if args.json is not None:
        args.json.write_text(json.dumps(results, indent=2, default=str))
    return 0


def batch_of(preset: dict[str, Any], args: argparse.Namespace) -> int:
    sets = parse_sets(args.set)
    return int(sets.get("data.batch_size", preset.get("data", {}).get("batch_size", 64)))


def table(args: argparse.Namespace, batch: int, results: list[dict[str, Any]]) -> str:
    """The Markdown table of the runs."""
    lines = [
        f"\n### {args.task}, {args.budget_minutes:g} min per layer (wall), "
        f"{args.threads} thread(s), batch {batch}\n",
        "| layer | params | steps | images | train s | wall s | CPU min | test acc | val acc |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for row in results:
        if "error" in row:
            lines.append(f"| {row['layer']} | {row['params']} | failed: {row['error']} |")
            continue
        val = row.get("last_val", {}).get("val/acc")
        lines.append(
            f"| {row['layer']} | {row['params']} | {row['steps']} | {row['steps'] * batch} | "
            f"{row['train_seconds']:.0f} | {row['wall_s']:.0f} | {row['cpu_min']:.1f} | "
            f"{row['test']['test/acc']:.4f} | {'-' if val is None else f'{val:.4f}'} |"
        )
    return "\n".join(lines)


if __name__ == "__main__":
    raise SystemExit(main())
