"""``rnnkit export``: ONNX (and torch.export) models of the built-in tasks, checked against PyTorch.

Run folders are made from randomly initialised models (every parameter random and non-zero,
biases included, so that a wrong GRU variant shows), their states random and non-zero. The
GRU pitfall (``linear_before_reset``, pytorch #189225) and the dynamic-length freeze (pytorch
#191855) are reproduced on purpose, and the export's own check must catch both.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np
import onnx
import onnxruntime as ort
import pytest
import torch
from torch import nn

from rnnvision_kit import Exportable, RnnkitError
from rnnvision_kit.config import save_yaml, validate
from rnnvision_kit.data import write_video
from rnnvision_kit.dataspec import DataSpec, ImageSpec, SegmentationSpec, VideoSpec
from rnnvision_kit.nn import ConvGRU
from rnnvision_kit.plugins import build_host
from rnnvision_kit.runner.checkpoint import save_checkpoint
from rnnvision_kit.runner.export import (
    FixedAdaptiveAvgPool2d,
    check_onnx,
    export_onnx,
    export_run,
)
from rnnvision_kit.runner.pipeline import configure, open_task
from rnnvision_kit.task import ModelContext
from tests.conftest import REPO, CliRunner

pytestmark = pytest.mark.usefixtures("one_thread")

IMAGE = ImageSpec(
    class_names=("zero", "one", "two"), channels=1, height=8, width=8, mean=(0.5,), std=(0.25,)
)
VIDEO = VideoSpec(
    class_names=("run", "jump", "sit", "wave"),
    channels=3,
    height=32,
    width=32,
    mean=(0.45, 0.45, 0.4),
    std=(0.25, 0.25, 0.3),
    num_frames=8,
    stride=2,
    fps=10.0,
)
SEG = SegmentationSpec(
    class_names=("bg", "car", "road"),
    channels=3,
    height=32,
    width=32,
    mean=(0.5, 0.5, 0.5),
    std=(0.25, 0.25, 0.25),
    clip_len=4,
)
TINY_VIDEO = ["model.backbone=small-cnn", "model.hidden_size=16", "model.feature_dim=32"]
TINY_SEG = ["model.hidden_channels=4"]


def randomise(module: nn.Module, seed: int = 0) -> None:
    """Every parameter uniform in [-0.3, 0.3]: non-zero biases and gates that matter."""
    generator = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for parameter in module.parameters():
            parameter.copy_(torch.rand(parameter.shape, generator=generator) * 0.6 - 0.3)


def make_run(
    root: Path, task_name: str, spec: DataSpec, overrides: list[str] = (), checkpoint: bool = True
) -> tuple[Path, nn.Module]:
    """A run folder (config.yaml, best.pt) of a randomly initialised model, without training."""
    registries = build_host().registries
    task = open_task(registries, task_name)
    config = configure(task, overrides=list(overrides))
    validate(config)
    model = task.build_model(
        ModelContext(config, spec, registries, task.name, task.plugin, "check")
    )
    randomise(model)
    model.eval()
    root.mkdir(parents=True, exist_ok=True)
    save_yaml(config, root / "config.yaml")
    if checkpoint:
        state = {
            "model": model.state_dict(),
            "epoch": 1,
            "config": config.to_dict(),
            "spec": spec.to_dict(),
        }
        save_checkpoint(state, root / "best.pt")
    return root, model


def session(path: Path) -> ort.InferenceSession:
    return ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])


# ------------------------------------------------------------- the GRU and the time axis


class GRUStep(nn.Module):
    """A plain ``nn.GRU`` with explicit state: ``(x B,T,F, h L,B,H) -> (y, h_out)``."""

    def __init__(self) -> None:
        super().__init__()
        self.gru = nn.GRU(5, 7, num_layers=2, batch_first=True)
        randomise(self)

    def forward(self, x: torch.Tensor, h: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        return self.gru(x, h)


def gru_exportable(module: nn.Module) -> Exportable:
    def sample(n: int, generator: torch.Generator) -> tuple[torch.Tensor, ...]:
        x = torch.randn(1, n, 5, generator=generator)
        h = torch.rand(2, 1, 7, generator=generator) * 1.8 - 0.9  # a non-zero initial state
        return x, h

    return Exportable(
        module=module,
        inputs=("x", "h"),
        outputs=("y", "h_out"),
        sample=sample,
        dynamic_axes={"x": {1: "time"}, "y": {1: "time"}},
        states={"h": "h_out"},
    )


def test_gru_is_exported_with_linear_before_reset_and_matches_pytorch(tmp_path: Path) -> None:
    exportable = gru_exportable(GRUStep().eval())
    path = tmp_path / "gru.onnx"
    export_onnx(exportable, path)
    grus = [n for n in onnx.load(str(path)).graph.node if n.op_type == "GRU"]
    assert len(grus) == 2
    for node in grus:
        attributes = {a.name: onnx.helper.get_attribute_value(a) for a in node.attribute}
        assert attributes["linear_before_reset"] == 1  # PyTorch's GRU variant
    _, differences = check_onnx(exportable, path, tolerance=1e-5)
    assert sorted(differences) == [1, 3, 17] and max(differences.values()) < 1e-5


def test_the_check_fails_a_gru_written_with_linear_before_reset_0(tmp_path: Path) -> None:
    """What the dynamo-based exporter writes (pytorch #189225): the numbers differ, no error."""
    exportable = gru_exportable(GRUStep().eval())
    path = tmp_path / "gru.onnx"
    export_onnx(exportable, path)
    model = onnx.load(str(path))
    for node in model.graph.node:
        for attribute in node.attribute:
            if node.op_type == "GRU" and attribute.name == "linear_before_reset":
                attribute.i = 0
    onnx.save(model, str(path))
    session(path)  # a valid model that onnxruntime runs without complaint
    with pytest.raises(RnnkitError, match=r"differs from PyTorch by .* on output y at time=1"):
        check_onnx(exportable, path, tolerance=1e-4)


class UnrolledConvGRU(nn.Module):
    """ConvGRU's own forward: a Python loop over time, which tracing unrolls."""

    def __init__(self) -> None:
        super().__init__()
        self.rnn = ConvGRU(3, 4)
        randomise(self)

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor]:
        return (self.rnn(x)[0],)


def test_the_check_fails_a_time_axis_frozen_to_the_example(tmp_path: Path) -> None:
    """The dynamic-length freeze (pytorch #191855): the model only takes the traced length."""
    exportable = Exportable(
        module=UnrolledConvGRU().eval(),
        inputs=("frames",),
        outputs=("hidden",),
        sample=lambda n, g: (torch.rand(1, n, 3, 6, 6, generator=g),),
        dynamic_axes={"frames": {1: "time"}, "hidden": {1: "time"}},
    )
    path = tmp_path / "frozen.onnx"
    export_onnx(exportable, path)
    with pytest.raises(RnnkitError, match=r"fails on time=1 \(exported with time=2\).*frozen"):
        check_onnx(exportable, path, tolerance=1e-4)


@pytest.mark.parametrize(("size", "out"), [((14, 14), (4, 4)), ((7, 9), (3, 4)), ((4, 4), (4, 4))])
def test_fixed_adaptive_pool_is_the_adaptive_pool(size: tuple[int, int], out: tuple) -> None:
    x = torch.randn(2, 5, *size)
    expected = nn.AdaptiveAvgPool2d(out)(x)
    torch.testing.assert_close(FixedAdaptiveAvgPool2d(size, out)(x), expected)


# ------------------------------------------------------------------- the three tasks

# every streaming layer of the core besides gru/lstm (their cases are above): export, the check at
# T = 1, 3, 17 and the exported model streamed in chunks against the offline forward pass
STREAMING_LAYERS = ("rnn", "mingru", "minlstm", "lru", "s5", "mamba", "mlstm", "transformer", "tcn")
CASES: dict[str, tuple[str, DataSpec, list[str], str]] = {
    "image-gru-both": (
        "image-classify",
        IMAGE,
        ["model.head=gru", "model.scan=both", "model.bidirectional=true"],
        "image",
    ),
    "image-lstm-attention": (
        "image-classify",
        IMAGE,
        ["model.head=lstm", "model.pooling=attention", "model.num_layers=2"],
        "image",
    ),
    "image-mingru-pixels": (
        "image-classify",
        IMAGE,
        ["data.sequence=pixels", "data.permute=true", "model.head=mingru", "model.scan=rows"],
        "image",
    ),
    "video-gru": ("video-action", VIDEO, [*TINY_VIDEO, "model.num_layers=2"], "stream"),
    "video-lstm": ("video-action", VIDEO, [*TINY_VIDEO, "model.head=lstm"], "stream"),
    "video-bidirectional": (
        "video-action",
        VIDEO,
        [*TINY_VIDEO, "model.bidirectional=true"],
        "clip",
    ),
    "video-mean": ("video-action", VIDEO, [*TINY_VIDEO, "model.head=mean"], "clip"),
    **{
        f"video-{layer}": ("video-action", VIDEO, [*TINY_VIDEO, f"model.head={layer}"], "stream")
        for layer in STREAMING_LAYERS
    },
    "seg-convgru": (
        "seg-refine",
        SEG,
        [*TINY_SEG, "model.bidirectional=false", "model.num_layers=2"],
        "stream",
    ),
    "seg-convlstm": (
        "seg-refine",
        SEG,
        [*TINY_SEG, "model.bidirectional=false", "model.refine=convlstm"],
        "stream",
    ),
    "seg-bidirectional": ("seg-refine", SEG, [*TINY_SEG, "model.bidirectional=true"], "clip"),
    "seg-image-mode": ("seg-refine", SEG, [*TINY_SEG, "model.mode=image"], "stream"),
    "seg-none": ("seg-refine", SEG, [*TINY_SEG, "model.refine=none"], "stream"),
}


# the per-layer video cases are exported and checked by the streaming test below
@pytest.mark.parametrize(
    "case", [c for c in CASES if c.removeprefix("video-") not in STREAMING_LAYERS]
)
def test_rnnkit_export_onnx(case: str, rnnkit: CliRunner, tmp_path: Path) -> None:
    task, spec, overrides, mode = CASES[case]
    run_dir, _ = make_run(tmp_path / "run", task, spec, overrides)
    result = rnnkit("export", str(run_dir), check=True)
    lines = result.stdout.splitlines()
    path = run_dir / "export" / "model.onnx"
    assert lines[0] == f"exported {task} ({mode}) to {path}"
    vary = "batch" if task == "image-classify" else "time"
    assert f"{vary}=1: " in lines[1] and f"{vary}=17: " in lines[1]
    assert "largest difference" in lines[1] and "tolerance 1e-04" in lines[1]
    meta = json.loads((run_dir / "export" / "model.onnx.json").read_text())
    assert meta["task"] == task and meta["mode"] == mode and meta["file"] == "model.onnx"
    assert meta["class_names"] == list(spec.class_names)
    assert meta["preprocessing"]["frame_size"] == [spec.height, spec.width]
    assert meta["preprocessing"]["mean"] == pytest.approx(list(spec.mean))
    assert meta["preprocessing"]["std"] == pytest.approx(list(spec.std))
    assert meta["preprocessing"]["resize"] == getattr(spec, "resize", "stretch")
    assert max(meta["check"]["largest_difference"].values()) < 1e-4
    sess = session(path)
    assert [i.name for i in sess.get_inputs()] == [i["name"] for i in meta["inputs"]]
    assert [o.name for o in sess.get_outputs()] == [o["name"] for o in meta["outputs"]]
    frames = meta["inputs"][0]
    assert frames["name"] in ("images", "frames") and frames["dtype"] == "float32"
    if task != "image-classify":
        assert frames["shape"][:2] == ["batch", "time"]
    if mode == "stream" and case not in ("seg-image-mode", "seg-none"):
        assert meta["states"], "a streaming recurrent model carries its state explicitly"
        for state in meta["states"]:
            assert state["initial"] == "zeros" and "batch" in state["shape"]
    else:
        assert meta["states"] == []
    if mode == "clip":
        assert "cannot stream" in meta["why_not_stream"]


def _zeros(meta: dict[str, Any], batch: int = 1) -> dict[str, np.ndarray]:
    return {
        s["input"]: np.zeros([batch if d == "batch" else d for d in s["shape"]], s["dtype"])
        for s in meta["states"]
    }


def _stream(sess: ort.InferenceSession, meta: dict, clip: np.ndarray, chunk: int) -> np.ndarray:
    """The exported model fed ``chunk`` frames per call from zero states; logits B,T,..."""
    names = [o["name"] for o in meta["outputs"]]
    states, logits = _zeros(meta, clip.shape[0]), []
    for start in range(0, clip.shape[1], chunk):
        feed = {"frames": clip[:, start : start + chunk], **states}
        outputs = dict(zip(names, sess.run(names, feed), strict=True))
        states = {s["input"]: outputs[s["output"]] for s in meta["states"]}
        logits.append(outputs["logits"])
    return np.concatenate(logits, 1)


@pytest.mark.parametrize(
    "case",
    ["video-gru", "video-lstm", *(f"video-{layer}" for layer in STREAMING_LAYERS)]
    + ["seg-convgru", "seg-convlstm"],
)
def test_the_exported_model_streams_as_the_offline_model_runs(case: str, tmp_path: Path) -> None:
    """Fed frame by frame (or in chunks), its state passed back, the exported model gives the
    offline forward pass's outputs on the whole clip."""
    task, spec, overrides, _ = CASES[case]
    run_dir, model = make_run(tmp_path / "run", task, spec, overrides)
    result = export_run(build_host().registries, run_dir)
    meta = json.loads(result.sidecar.read_text())
    sess = session(result.path)
    clip = torch.rand(2, 9, 3, spec.height, spec.width, generator=torch.Generator().manual_seed(5))
    with torch.no_grad():
        offline = model(clip)
    offline = offline[0] if isinstance(offline, tuple) else offline  # seg: refined logits
    for chunk in (1, 4, 9):
        streamed = _stream(sess, meta, clip.numpy(), chunk)
        if task == "video-action":  # logits after each frame; the last one is the clip's
            np.testing.assert_allclose(streamed[:, -1], offline.numpy(), atol=1e-4)
        else:
            np.testing.assert_allclose(streamed, offline.numpy(), atol=1e-4)


@pytest.mark.parametrize(
    "case", ["image-gru-both", "video-gru", "video-bidirectional", "seg-convgru"]
)
def test_rnnkit_export_exported_program(case: str, rnnkit: CliRunner, tmp_path: Path) -> None:
    task, spec, overrides, mode = CASES[case]
    run_dir, _ = make_run(tmp_path / "run", task, spec, overrides)
    out = tmp_path / "model.pt2"
    result = rnnkit("export", str(run_dir), "--format", "exported-program", "--out", str(out))
    assert result.returncode == 0, result.stderr
    assert "checked with torch.export" in result.stdout
    meta = json.loads((tmp_path / "model.pt2.json").read_text())
    assert meta["format"] == "exported-program" and meta["mode"] == mode
    program = torch.export.load(str(out)).module()
    shape = meta["inputs"][0]["shape"]
    frames = torch.rand([3 if d == "batch" else d for d in shape])
    states = [torch.zeros([3 if d == "batch" else d for d in s["shape"]]) for s in meta["states"]]
    outputs = program(frames, *states)
    assert outputs[0].shape[0] == 3  # a dynamic batch


# ------------------------------------------------------------------------ bad input


def test_a_run_folder_without_a_checkpoint_is_one_line(rnnkit: CliRunner, tmp_path: Path) -> None:
    run_dir, _ = make_run(tmp_path / "run", "image-classify", IMAGE, checkpoint=False)
    result = rnnkit("export", str(run_dir))
    assert result.returncode == 2
    assert result.stderr.strip().splitlines() == [
        f"rnnkit: error: {run_dir}: no checkpoint to export (best.pt or last.pt missing; "
        "did the run finish an epoch?)"
    ]
    assert not (run_dir / "export").exists()


BLOCK_ONNX = """\
import sys
from importlib.machinery import PathFinder


class NotInstalled(PathFinder):
    \"\"\"Finds what PathFinder finds, except onnx and onnxruntime: as if not installed.\"\"\"

    @classmethod
    def find_spec(cls, name, path=None, target=None):
        if name.partition(".")[0] in ("onnx", "onnxruntime"):
            return None
        return PathFinder.find_spec(name, path, target)


sys.meta_path[:] = [NotInstalled if f is PathFinder else f for f in sys.meta_path]
"""


def test_without_onnx_export_names_the_extra(rnnkit_process: CliRunner, tmp_path: Path) -> None:
    run_dir, _ = make_run(tmp_path / "run", "image-classify", IMAGE)
    shim = tmp_path / "shim"
    shim.mkdir()
    (shim / "sitecustomize.py").write_text(BLOCK_ONNX)
    path = os.pathsep.join([str(shim), str(REPO), os.environ.get("PYTHONPATH", "")])
    result = rnnkit_process("export", str(run_dir), env={"PYTHONPATH": path})
    assert result.returncode == 2
    assert result.stderr.strip().splitlines() == [
        "rnnkit: error: rnnkit export --format onnx needs onnx and onnxruntime, which are not "
        "installed: pip install 'rnnvision-kit[export]'"
    ]
    assert not (run_dir / "export").exists()


# ----------------------------------------------------------------- docs/deploy.md example

EXAMPLE = REPO / "examples" / "deploy" / "onnx_video_action.py"


def test_the_sidecar_says_how_frames_were_fitted_in_training(
    rnnkit: CliRunner, tmp_path: Path
) -> None:
    task, spec, overrides, _ = CASES["video-gru"]
    run_dir, _ = make_run(tmp_path / "run", task, replace(spec, resize="crop"), overrides)
    rnnkit("export", str(run_dir), "--out", str(tmp_path / "model.onnx"), check=True)
    meta = json.loads((tmp_path / "model.onnx.json").read_text())
    assert meta["preprocessing"]["resize"] == meta["spec"]["resize"] == "crop"
    assert "the short side fits" in meta["preprocessing"]["note"]


def test_docs_include_the_deploy_example_verbatim() -> None:
    assert EXAMPLE.read_text().strip() in (REPO / "docs" / "deploy.md").read_text()


def test_the_deploy_example_labels_a_video_as_rnnkit_stream_does(
    rnnkit: CliRunner, tmp_path: Path
) -> None:
    """The example (onnxruntime and PyAV only) on a real video that is not square, for a run
    trained on centre crops: the labels and probabilities that ``rnnkit stream`` gives with
    PyTorch, frame for frame."""
    task, spec, overrides, _ = CASES["video-gru"]
    run_dir, _ = make_run(tmp_path / "run", task, replace(spec, resize="crop"), overrides)
    rng = np.random.default_rng(3)
    video = write_video(
        tmp_path / "clip.mp4", rng.integers(0, 256, (15, 40, 48, 3), dtype=np.uint8), fps=10
    )
    rnnkit("export", str(run_dir), "--out", str(tmp_path / "model.onnx"), check=True)
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    command = [sys.executable, str(EXAMPLE), str(tmp_path / "model.onnx"), str(video)]
    example = subprocess.run(command, capture_output=True, text=True, env=env, timeout=120)
    assert example.returncode == 0, example.stderr
    lines = [line.split() for line in example.stdout.splitlines()]
    streamed = rnnkit("stream", str(run_dir), str(video), check=True)
    records = [json.loads(line) for line in streamed.stdout.splitlines()]
    records = [r for r in records if "top" in r]
    assert len(lines) == len(records) == 8  # every 2nd of 15 frames (spec.stride = 2)
    for (frame, seconds, label, probability), record in zip(lines, records, strict=True):
        assert int(frame) == record["frame"]
        assert float(seconds) == pytest.approx(record["time_s"], abs=1e-3)
        assert label == record["top"][0]["label"]
        assert float(probability) == pytest.approx(record["top"][0]["score"], abs=1e-4)
