"""video-predict's models on Moving MNIST at a stated CPU budget: MSE, MAE, SSIM, PSNR against
copy-last, seconds per epoch and parameters; the parallel layer (mingru) against convlstm.

Each model trains in this process for ``--minutes`` of wall time (whole epochs: the last one
that starts before the budget runs out is finished) on epochs of ``--train-sequences`` fresh
sequences (the task's ``moving-mnist`` generator: 2 digits, 64x64, 10 in, 10 out; load_digits
digits, or MNIST's with ``--mnist PATH``), batch ``--batch-size``, Adam at 2e-3 with a cosine
decay over the time budget, the task's loss (the MSE of every next-frame prediction, rolled out
over the horizon; ``--feed teacher``: teacher-forced). Then it is tested on ``--test-sequences``
sequences: the task's test set (fixed seed 2, the rnnkit cache), the same sequences as
``rnnkit run --task video-predict --set data.test_sequences=N``. copy-last is not trained.

Metrics as the task reports them: MSE and MAE summed over a frame's pixels (values in [0, 1]),
SSIM, PSNR, averaged over the 10 predicted frames and the sequences.

    python benchmarks/video_predict.py [--minutes 1 | --epochs N]
        [--models copy-last convlstm mingru mingru-k1] [--train-sequences 480]
        [--test-sequences 300] [--threads 1] [--quick] [--json]

``mingru-k1`` is mingru with ``model.out_kernel=1`` (pointwise output convolutions).
"""

from __future__ import annotations

import argparse
import json
import math
import sys
import time
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(REPO / "plugins"))

import torch  # noqa: E402
import torch.nn.functional as F  # noqa: E402
from rnnkit_videopredict.config import MODELS, PredictDataConfig  # noqa: E402
from rnnkit_videopredict.data import (  # noqa: E402
    SEEDS,
    FreshSequences,
    StoredSequences,
    _digit_source,
    digits_of,
    stored,
)
from rnnkit_videopredict.metrics import NAMES, per_frame  # noqa: E402
from rnnkit_videopredict.models import FramePredictor, build_predictor  # noqa: E402
from torch.utils.data import DataLoader  # noqa: E402

DEFAULT_MODELS = ["copy-last", "convlstm", "convgru", "predrnn", "mingru"]
LR = 2e-3  # the task's default


def model_of(name: str, args: argparse.Namespace) -> FramePredictor:
    """``name``: a task model, or ``mingru-k1`` (mingru with ``model.out_kernel=1``)."""
    torch.manual_seed(args.seed)
    patch = 1 if name == "copy-last" else args.patch
    base, out_kernel = ("mingru", 1) if name == "mingru-k1" else (name, None)
    return build_predictor(
        base, 1, 1, patch, args.hidden, args.layers, args.kernel, out_kernel=out_kernel,
        shift=min(args.shift, args.layers),
    )  # fmt: skip


def train(model: FramePredictor, data: FreshSequences, args: argparse.Namespace) -> list[float]:
    """Whole epochs until ``--minutes`` have passed (or ``--epochs`` of them); the seconds of
    each epoch. The cosine decays over the budget: the time, or the epochs."""
    budget = args.minutes * 60
    optimizer = torch.optim.Adam(model.parameters(), lr=args.lr)
    loader = DataLoader(data, batch_size=args.batch_size, shuffle=True, drop_last=True)
    start, epochs, total = time.perf_counter(), [], 0.0
    model.train()
    while (len(epochs) < args.epochs) if args.epochs else (time.perf_counter() - start < budget):
        data.set_epoch(len(epochs))
        began = time.perf_counter()
        for step, (frames, _) in enumerate(loader):
            if args.epochs:
                done = (len(epochs) + step / len(loader)) / args.epochs
            else:
                done = min(1.0, (time.perf_counter() - start) / budget)
            for group in optimizer.param_groups:
                group["lr"] = args.lr * 0.5 * (1 + math.cos(math.pi * done))
            frames = frames[:, : args.context + args.horizon]
            preds = model(frames, args.context, args.horizon, args.feed == "teacher")
            loss = F.mse_loss(preds, frames[:, 1:])
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            total += float(loss.detach())
        epochs.append(time.perf_counter() - began)
        if getattr(args, "log_every", 0) and len(epochs) % args.log_every == 0:
            mean, total = total / (args.log_every * len(loader)), 0.0
            elapsed = (time.perf_counter() - start) / 60
            print(f"    epoch {len(epochs)}: train loss {mean:.5f}, {elapsed:.1f} min", flush=True)
    return epochs


@torch.no_grad()
def test(
    model: FramePredictor, data: StoredSequences, args: argparse.Namespace
) -> dict[str, float]:
    """Mean of each metric over the horizon and the sequences."""
    model.eval()
    sums = dict.fromkeys(NAMES, 0.0)
    count = 0
    for frames, _ in DataLoader(data, batch_size=32):
        preds = model(frames, args.context, args.horizon)[:, args.context - 1 :].clamp(0, 1)
        truth = frames[:, args.context :]
        for name in NAMES:
            sums[name] += float(per_frame(name, preds, truth).mean(1).sum())
        count += frames.shape[0]
    return {name: value / count for name, value in sums.items()}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument(
        "--models", nargs="+", default=DEFAULT_MODELS, choices=[*MODELS[:5], "mingru-k1"]
    )
    parser.add_argument("--minutes", type=float, default=1.0, help="training budget per model")
    parser.add_argument("--epochs", type=int, help="train this many epochs instead of --minutes")
    parser.add_argument("--train-sequences", type=int, default=480, help="per epoch")
    parser.add_argument("--test-sequences", type=int, default=300)
    parser.add_argument("--batch-size", type=int, default=16)
    parser.add_argument("--patch", type=int, default=4)
    parser.add_argument("--hidden", type=int, default=32)
    parser.add_argument("--layers", type=int, default=2)
    parser.add_argument("--kernel", type=int, default=3)
    parser.add_argument(
        "--shift", type=int, default=1, help="mingru's layers that read x_t - x_{t-1} (0: plain)"
    )
    parser.add_argument("--lr", type=float, default=LR)
    parser.add_argument(
        "--log-every", type=int, default=0, help="print the train loss every N epochs"
    )
    parser.add_argument("--feed", choices=["rollout", "teacher"], default="rollout")
    parser.add_argument("--mnist", help="a folder of MNIST's idx files (default: load_digits)")
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--quick", action="store_true", help="smoke run: seconds, not minutes")
    parser.add_argument("--json", action="store_true", help="also print the rows as JSON")
    args = parser.parse_args()
    if args.quick:
        args.minutes, args.train_sequences, args.test_sequences = 0.05, 16, 16
        args.hidden, args.layers = 8, 1
    args.context, args.horizon = 10, 10
    torch.set_num_threads(args.threads)

    d = PredictDataConfig(path=args.mnist, test_sequences=args.test_sequences)
    key, folder = _digit_source(d)
    length = d.context + d.horizon
    train_data = FreshSequences(
        digits_of("train", folder), args.train_sequences, length, d.size, d.digits, 1, args.seed
    )
    test_data = StoredSequences(
        stored("test", d, args.test_sequences, length, SEEDS["test"], folder, key), 1
    )
    budget = f"{args.epochs} epochs" if args.epochs else f"{args.minutes:g} min"
    print(
        f"Moving MNIST ({'MNIST' if folder else 'load_digits'} digits), 64x64, 10 in, 10 out; "
        f"{budget} per model on {args.threads} thread(s), epochs of "
        f"{args.train_sequences} fresh sequences, batch {args.batch_size}, feed {args.feed}; "
        f"patch {args.patch}, {args.layers} layers of {args.hidden}, kernel {args.kernel}, "
        f"mingru shift {min(args.shift, args.layers)}, lr {args.lr:g}; "
        f"{args.test_sequences} test sequences"
    )
    rows: list[dict[str, Any]] = []
    for name in args.models:
        model = model_of(name, args)
        params = sum(p.numel() for p in model.parameters() if p.requires_grad and p.dim() > 0)
        epochs = [] if name == "copy-last" else train(model, train_data, args)
        figures = test(model, test_data, args)
        # the first epoch pays for warm-up: the later ones' median when there are any
        later = sorted(epochs[1:] or epochs)
        per_epoch = later[len(later) // 2] if later else 0.0
        rows.append({"model": name, "parameters": params, "epochs": len(epochs),
                     "seconds_per_epoch": per_epoch, **figures})  # fmt: skip
        print(f"  {name}: {len(epochs)} epoch(s), test MSE {figures['mse']:.1f}", flush=True)

    base = next((r for r in rows if r["model"] == "copy-last"), None)
    print()
    print("model       parameters  epochs  s/epoch    MSE    MAE   SSIM   PSNR  MSE / copy-last")
    for r in rows:
        ratio = f"{r['mse'] / base['mse']:.2f}" if base else "-"
        print(
            f"{r['model']:<10}  {r['parameters']:>10,}  {r['epochs']:>6}  "
            f"{r['seconds_per_epoch']:>7.1f}  {r['mse']:>5.1f}  {r['mae']:>5.1f}  "
            f"{r['ssim']:>5.3f}  {r['psnr']:>5.2f}  {ratio:>15}"
        )
    by = {r["model"]: r for r in rows}
    for name in ("mingru", "mingru-k1"):
        if name in by and "convlstm" in by:
            fast, slow = by[name], by["convlstm"]
            speed = slow["seconds_per_epoch"] / max(fast["seconds_per_epoch"], 1e-9)
            print(
                f"{name} against convlstm: {speed:.2f}x faster per epoch (goal >= 3x); test MSE "
                f"{fast['mse']:.1f} against {slow['mse']:.1f} at the same {budget} "
                f"({fast['epochs']} against {slow['epochs']} epochs)"
            )
    if args.json:
        print(json.dumps(rows, indent=1))


if __name__ == "__main__":
    main()
