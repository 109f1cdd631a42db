"""Prediction as pretraining: label-efficient video-action on moving-digits, from scratch against
from a video-predict run, at the same fine-tuning budget.

1. Pretrain (no labels): video-predict, ``model.name=encoder-rnn`` (video-action's small-cnn frame
   encoder and GRU head, and a frame decoder), on the training videos of a generated
   moving-digits set (``--unlabelled`` videos per class, 32x32 RGB) read through the
   ``videoframes`` source, which ignores the class folders: ``--context`` frames in,
   ``--horizon`` out.
2. Fine-tune: video-action on moving-digits with ``--labelled`` videos per class for training
   (each count in turn; validation and test sets as the default's, 15 and 20 per class), once
   from scratch and once with ``model.init_from=<the pretraining run>``: same settings, epochs
   and seed. Both read frames unnormalised (``model.mean=[0,0,0] model.std=[1,1,1]``), as the
   pretraining did.

Prints the test accuracy of each and the difference (goal of issue 21: >= 10 points with 5
labelled videos per class). Every run is ``python -m rnnvision_kit run ... --json`` in a
subprocess, its run folder under ``--out`` (a temporary folder by default).

    python benchmarks/pretrain_video.py [--labelled 5 20] [--pretrain-epochs 6]
        [--finetune-epochs 12] [--seeds 0] [--threads 1] [--quick]
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
from typing import Any

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(REPO / "plugins"))

EVAL_PER_CLASS = (15, 20)  # validation and test videos per class (video-action's default)


def rnnkit(args: list[str], cwd: Path, threads: int) -> tuple[dict[str, Any], float]:
    """``rnnkit run ARGS --json`` in a subprocess: its summary and wall seconds."""
    env = {**os.environ, "OMP_NUM_THREADS": str(threads)}
    command = [sys.executable, "-m", "rnnvision_kit", "run", *args, "--json"]
    start = time.perf_counter()
    done = subprocess.run(command, cwd=cwd, env=env, capture_output=True, text=True)
    seconds = time.perf_counter() - start
    if done.returncode != 0:
        raise SystemExit(f"failed: {' '.join(command)}\n{done.stderr[-3000:]}")
    for line in done.stderr.splitlines():
        if "model.init_from:" in line:
            print(f"    {line.removeprefix('rnnkit: warning: ')[:160]}")
    return json.loads(done.stdout), seconds


def settings(**values: object) -> list[str]:
    out: list[str] = []
    for key, value in values.items():
        out += ["--set", f"{key.replace('__', '.')}={value}"]
    return out


def pretrain(args: argparse.Namespace, out: Path) -> tuple[Path, dict[str, Any], float]:
    """The video-predict run on unlabelled moving-digits training videos."""
    from rnnkit_video.moving_digits import ensure_moving_digits

    root = ensure_moving_digits((args.unlabelled, *EVAL_PER_CLASS), size=32)
    run = [
        "--task", "video-predict", "--data", f"videoframes:{root}",
        *settings(
            model__name="encoder-rnn", data__size=32, data__channels=3,
            data__context=args.context, data__horizon=args.horizon,
            data__sequence_length=args.context + args.horizon, data__batch_size=16,
            train__epochs=args.pretrain_epochs, train__threads=args.threads, seed=0,
        ),
    ]  # fmt: skip
    summary, seconds = rnnkit(run, out, args.threads)
    return out / summary["run_dir"], summary, seconds


def finetune(
    args: argparse.Namespace,
    out: Path,
    labelled: int,
    seed: int,
    source: Path | None,
    epochs: int | None = None,
) -> tuple[float, float]:
    """Test accuracy and wall seconds of one video-action run."""
    run = [
        "--task", "video-action",
        *settings(
            data__videos_per_class=f"[{labelled},{EVAL_PER_CLASS[0]},{EVAL_PER_CLASS[1]}]",
            model__mean="[0,0,0]", model__std="[1,1,1]",
            train__epochs=epochs or args.finetune_epochs, train__threads=args.threads,
            seed=seed,
        ),
    ]  # fmt: skip
    if source is not None:
        run += ["--set", f"model.init_from={source}"]
    summary, seconds = rnnkit(run, out, args.threads)
    return float(summary["test"]["test/acc"]), seconds


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--labelled", type=int, nargs="+", default=[5, 20])
    parser.add_argument("--unlabelled", type=int, default=60, help="pretraining videos per class")
    parser.add_argument("--pretrain-epochs", type=int, default=6)
    parser.add_argument("--finetune-epochs", type=int, default=12)
    parser.add_argument("--context", type=int, default=4)
    parser.add_argument("--horizon", type=int, default=4)
    parser.add_argument("--seeds", type=int, nargs="+", default=[0])
    parser.add_argument(
        "--long-scratch-epochs",
        type=int,
        default=0,
        help="also train from scratch this many epochs (pretraining's extra time spent on labels)",
    )
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--out", type=Path, help="run folders here (default: a temporary one)")
    parser.add_argument("--quick", action="store_true", help="smoke run: 1 epoch each, 5 only")
    args = parser.parse_args()
    if args.quick:
        args.labelled, args.pretrain_epochs, args.finetune_epochs = [5], 1, 1
        args.unlabelled = 10
    out = args.out or Path(tempfile.mkdtemp(prefix="pretrain_video_"))
    out.mkdir(parents=True, exist_ok=True)

    print(
        f"pretraining: video-predict encoder-rnn, {args.unlabelled} unlabelled moving-digits "
        f"videos per class (10 classes, labels unused), {args.context} frames in, "
        f"{args.horizon} out, {args.pretrain_epochs} epochs, {args.threads} thread(s)"
    )
    source, summary, seconds = pretrain(args, out)
    test = summary["test"]
    print(
        f"  {seconds:.0f} s; test MSE {test['test/mse']:.1f} per frame "
        f"(copy-last {summary['test_details']['test/baseline']['metrics']['mse']:.1f})"
        if "test_details" in summary
        else f"  {seconds:.0f} s; test MSE {test['test/mse']:.1f} per frame"
    )
    print(
        f"fine-tuning: video-action (small-cnn + GRU), {args.finetune_epochs} epochs each, "
        f"seeds {args.seeds}; test: {EVAL_PER_CLASS[1]} videos per class"
    )
    rows = []
    for labelled in args.labelled:
        scratch, pretrained, long, times = [], [], [], []
        for seed in args.seeds:
            if args.long_scratch_epochs:
                acc, _ = finetune(args, out, labelled, seed, None, args.long_scratch_epochs)
                long.append(acc)
            acc, t1 = finetune(args, out, labelled, seed, None)
            scratch.append(acc)
            acc, t2 = finetune(args, out, labelled, seed, source)
            pretrained.append(acc)
            times += [t1, t2]
        rows.append((labelled, scratch, pretrained, long, statistics.mean(times)))
        shown = [f"{a:.3f}" for a in scratch], [f"{a:.3f}" for a in pretrained]
        print(f"  {labelled} per class: scratch {shown[0]}, pretrained {shown[1]}", end="")
        longer = [f"{a:.3f}" for a in long]
        print(f", scratch {args.long_scratch_epochs} epochs {longer}" if long else "")

    print()
    print("labelled/class  scratch acc  pretrained acc  difference (points)  s per run")
    for labelled, scratch, pretrained, long, secs in rows:
        a, b = statistics.mean(scratch), statistics.mean(pretrained)
        print(f"{labelled:>14}  {a:>11.3f}  {b:>14.3f}  {100 * (b - a):>+19.1f}  {secs:>9.0f}")
        if long:
            c = statistics.mean(long)
            print(f"{'':>14}  from scratch, {args.long_scratch_epochs} epochs: {c:.3f}")
    print(f"run folders: {out}")


if __name__ == "__main__":
    main()
