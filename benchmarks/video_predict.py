"""video-predict's models on Moving MNIST at a stated CPU budget: MSE, MAE, SSIM, PSNR against
copy-last, seconds per epoch and parameters; the parallel layer (mingru) against convlstm.

Each model trains in this process for ``--minutes`` of wall time (whole epochs: the last one
that starts before the budget runs out is finished) on epochs of ``--train-sequences`` fresh
sequences (the task's ``moving-mnist`` generator: 2 digits, 64x64, 10 in, 10 out; load_digits
digits, or MNIST's with ``--mnist PATH``), batch ``--batch-size``, Adam at ``--lr`` (2e-3, the
task's) with a cosine
decay over the time budget, the task's loss (the MSE of every next-frame prediction, rolled out
over the horizon; ``--feed teacher``: teacher-forced; a model's ``feed=reverse-ss``: PredRNN-V2's
reverse scheduled sampling over the ``--epochs``). Then it is tested on ``--test-sequences``
sequences: the task's test set (fixed seed 2, the rnnkit cache), the same sequences as
``rnnkit run --task video-predict --set data.test_sequences=N``. copy-last is not trained.

Metrics as the task reports them: MSE and MAE summed over a frame's pixels (values in [0, 1]),
SSIM, PSNR, averaged over the 10 predicted frames and the sequences.

    python benchmarks/video_predict.py [--minutes 1 | --epochs N]
        [--models copy-last convlstm mingru mingru:layers=1] [--seeds 0 1 2]
        [--train-sequences 480] [--test-sequences 300] [--threads 1] [--quick] [--json]

A model is ``NAME[:KEY=N,...]``: its own ``layers``, ``hidden``, ``kernel``, ``out_kernel`` or
``shift`` (mingru's layers whose gates read ``x_t - x_{t-1}``; ``--shift``, default 1 as the
task's), and ``feed`` (``rollout``, ``teacher``, ``reverse-ss``), the others from the flags;
``mingru-k1`` is ``mingru:out_kernel=1``. With several
``--seeds`` (each seeds the weights and the training sequences) the figures are the means.
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
from rnnkit_videopredict.models import STEPPED, FramePredictor, build_predictor  # noqa: E402
from torch.utils.data import DataLoader  # noqa: E402

DEFAULT_MODELS = ["copy-last", "convlstm", "convgru", "predrnn", "mingru"]
LR = 2e-3  # the task's default


ALIASES = {"mingru-k1": "mingru:out_kernel=1"}
OPTIONS = ("layers", "hidden", "kernel", "out_kernel", "shift")  # per-model sizes
FEEDS = ("rollout", "teacher", "reverse-ss")  # per-model feed=


def parse_model(text: str) -> tuple[str, dict[str, Any]]:
    """``NAME[:key=value,...]`` (keys: :data:`OPTIONS`, integers, and ``feed``, one of
    :data:`FEEDS`) -> (NAME, settings); ``mingru-k1`` is ``mingru:out_kernel=1``."""
    name, _, rest = ALIASES.get(text, text).partition(":")
    if name not in MODELS[:5]:
        raise argparse.ArgumentTypeError(f"unknown model {name!r} (known: {', '.join(MODELS[:5])})")
    settings: dict[str, Any] = {}
    for item in filter(None, rest.split(",")):
        key, _, value = item.partition("=")
        if key == "feed" and value in FEEDS:
            settings[key] = value
        elif key in OPTIONS and value.isdigit():
            settings[key] = int(value)
        else:
            raise argparse.ArgumentTypeError(
                f"{text}: expected KEY=INT with KEY in {', '.join(OPTIONS)}, or feed={'|'.join(FEEDS)}"
            )
    if settings.get("feed") == "reverse-ss" and name not in STEPPED:
        raise argparse.ArgumentTypeError(f"{text}: reverse-ss needs one of {', '.join(STEPPED)}")
    return name, settings


def model_of(text: str, args: argparse.Namespace, seed: int) -> tuple[FramePredictor, str]:
    """The model ``text`` names (:func:`parse_model`), other settings from ``args``, and its
    feed. reverse-ss's schedule spans the ``--epochs`` of training."""
    name, own = parse_model(text)
    torch.manual_seed(seed)
    patch = 1 if name == "copy-last" else args.patch
    s = {key: getattr(args, key, None) for key in (*OPTIONS, "feed")} | own
    steps = 0
    if s["feed"] == "reverse-ss":
        if not args.epochs:
            raise SystemExit(f"{text}: reverse-ss needs --epochs (its schedule spans them)")
        steps = args.epochs * (args.train_sequences // args.batch_size)
    model = build_predictor(
        name, 1, 1, patch, s["hidden"], s["layers"], s["kernel"], reverse_ss_steps=steps,
        out_kernel=s["out_kernel"], shift=min(s["shift"], s["layers"]),
    )  # fmt: skip
    return model, s["feed"]


def train(
    model: FramePredictor, data: FreshSequences, args: argparse.Namespace, feed: str
) -> list[float]:
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
            preds = model(frames, args.context, args.horizon, feed == "teacher")
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


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument(
        "--models",
        nargs="+",
        default=DEFAULT_MODELS,
        type=lambda text: parse_model(text) and text,  # checked here, parsed again later
        metavar="NAME[:KEY=N,...]",
        help=f"models ({', '.join(MODELS[:5])}, mingru-k1), each with its own {', '.join(OPTIONS)}",
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
    parser.add_argument(
        "--feed", choices=FEEDS[:2], default="rollout", help="a model's own feed= overrides it"
    )
    parser.add_argument("--mnist", help="a folder of MNIST's idx files (default: load_digits)")
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--seeds", type=int, nargs="+", default=[0], help="figures: the mean")
    parser.add_argument("--quick", action="store_true", help="smoke run: seconds, not minutes")
    parser.add_argument("--json", action="store_true", help="also print the rows as JSON")
    args = parser.parse_args(argv)
    if args.quick:
        args.minutes, args.train_sequences, args.test_sequences = 0.05, 16, 16
        args.hidden, args.layers = 8, 1
    args.context, args.horizon = 10, 10
    torch.set_num_threads(args.threads)

    d = PredictDataConfig(path=args.mnist, test_sequences=args.test_sequences)
    key, folder = _digit_source(d)
    length = d.context + d.horizon
    train_data = FreshSequences(
        digits_of("train", folder), args.train_sequences, length, d.size, d.digits, 1, args.seeds[0]
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
        runs, later = [], []
        for seed in [0] if name == "copy-last" else args.seeds:
            model, feed = model_of(name, args, seed)
            train_data.seed = seed
            epochs = [] if name == "copy-last" else train(model, train_data, args, feed)
            runs.append((len(epochs), test(model, test_data, args)))
            later += epochs[1:] or epochs  # the first epoch pays for warm-up
            print(f"  {name}, seed {seed}: {len(epochs)} epoch(s), test MSE "
                  f"{runs[-1][1]['mse']:.1f}", flush=True)  # fmt: skip
        params = sum(p.numel() for p in model.parameters() if p.requires_grad and p.dim() > 0)
        later.sort()
        figures = {key: sum(r[1][key] for r in runs) / len(runs) for key in NAMES}
        rows.append({"model": name, "parameters": params,
                     "epochs": sum(r[0] for r in runs) / len(runs),
                     "seconds_per_epoch": later[len(later) // 2] if later else 0.0,
                     **figures, "mse_seeds": [r[1]["mse"] for r in runs]})  # fmt: skip

    base = next((r for r in rows if r["model"] == "copy-last"), None)
    print()
    width = max(10, *(len(r["model"]) for r in rows))
    print(f"{'model':<{width}}  parameters  epochs  s/epoch    MSE    MAE   SSIM   PSNR  "
          "MSE / copy-last")  # fmt: skip
    for r in rows:
        ratio = f"{r['mse'] / base['mse']:.2f}" if base else "-"
        print(
            f"{r['model']:<{width}}  {r['parameters']:>10,}  {r['epochs']:>6g}  "
            f"{r['seconds_per_epoch']:>7.1f}  {r['mse']:>5.1f}  {r['mae']:>5.1f}  "
            f"{r['ssim']:>5.3f}  {r['psnr']:>5.2f}  {ratio:>15}"
        )
    if len(args.seeds) > 1:
        print(f"(means over seeds {', '.join(map(str, args.seeds))}; s/epoch: the median epoch)")
        for r in rows:
            if r["model"] != "copy-last":
                print(
                    f"{r['model']}: test MSE per seed {', '.join(f'{m:.1f}' for m in r['mse_seeds'])}"
                )
    slow = next((r for r in rows if r["model"] == "convlstm"), None)
    for fast in rows:
        if slow and parse_model(fast["model"])[0] == "mingru":
            speed = slow["seconds_per_epoch"] / max(fast["seconds_per_epoch"], 1e-9)
            print(
                f"{fast['model']} against convlstm: {speed:.2f}x faster per epoch (goal >= 3x); "
                f"test MSE {fast['mse']:.1f} against {slow['mse']:.1f} at the same {budget} "
                f"({fast['epochs']:g} against {slow['epochs']:g} epochs)"
            )
    if args.json:
        print(json.dumps(rows, indent=1))


if __name__ == "__main__":
    main()
