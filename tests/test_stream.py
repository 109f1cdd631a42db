"""``rnnkit stream``: per-step model APIs equal the offline forward pass (heads, ConvGRU/ConvLSTM,
video-action, seg-refine), frames decode as offline, refusals and bad input are one line, a
stalled pipe ends at --timeout, a corrupt frame is skipped and counted with the state carried
on, and Ctrl-C ends a live stream cleanly."""

from __future__ import annotations

import http.server
import json
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import av
import numpy as np
import pytest
import torch
from PIL import Image

from rnnvision_kit import ConfigError
from rnnvision_kit.data import probe_video, read_frame_folder, read_frames, write_video
from rnnvision_kit.nn import ConvGRU, ConvLSTM, build_head
from rnnvision_kit.plugins import build_host
from rnnvision_kit.runner.pipeline import build, load_run
from rnnvision_kit.runner.stream import open_frames, output_paths
from tests.bad_videos import write_hls
from tests.conftest import REPO, CliRunner, train_in_process

VIDEO_TINY = [
    *("--task", "video-action", "--set", "data.videos_per_class=2", "--epochs", "1"),
    *("--set", "train.max_steps_per_epoch=2", "--set", "data.batch_size=4", "--seed", "1"),
]
SEG_TINY = [
    *("--task", "seg-refine", "--set", "data.videos=6", "--set", "data.batch_size=3"),
    *("--epochs", "1", "--set", "train.max_steps_per_epoch=2", "--set", "train.threads=1"),
    *("--seed", "1"),
]
TOL = 1e-5


@pytest.fixture(autouse=True)
def _one_thread() -> Iterator[None]:
    previous = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(previous)


@pytest.fixture(scope="module")
def video_run(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A tiny video-action run (gru head, last pooling, unidirectional: the defaults)."""
    return train_in_process(tmp_path_factory.mktemp("va"), *VIDEO_TINY)[0]


@pytest.fixture(scope="module")
def seg_run(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A tiny seg-refine run with a unidirectional ConvGRU refinement (streamable)."""
    args = [*SEG_TINY, "--set", "model.bidirectional=false"]
    return train_in_process(tmp_path_factory.mktemp("sr"), *args)[0]


@pytest.fixture(scope="module")
def clip(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """30 frames of 64x48 noise with a moving bright square, 10 fps, H.264."""
    rng = np.random.default_rng(0)
    frames = rng.integers(0, 120, (30, 48, 64, 3), dtype=np.uint8)
    for t in range(30):
        frames[t, 10:26, t : t + 16] = 250
    return write_video(tmp_path_factory.mktemp("clip") / "clip.mp4", frames, fps=10)


def _model(run_dir: Path) -> tuple[torch.nn.Module, object]:
    registries = build_host().registries
    saved = load_run(registries, run_dir)
    built = build(
        saved.task, registries, saved.config, "predict", spec=saved.spec,
        weights=saved.checkpoint["model"],
    )  # fmt: skip
    return built.model.eval(), built.spec


def _records(text: str) -> list[dict]:
    return [json.loads(line) for line in text.splitlines() if line.strip()]


def _mjpeg_with_garbage(path: Path, count: int, bad: set[int]) -> list[np.ndarray]:
    """An MJPEG .mkv of ``count`` frames whose packets in ``bad`` are garbage; returns the
    frames as written (RGB)."""
    rng = np.random.default_rng(3)
    images = [rng.integers(0, 256, (48, 64, 3), dtype=np.uint8) for _ in range(count)]
    with av.open(str(path), "w") as out:
        stream = out.add_stream("mjpeg", rate=10)
        stream.width, stream.height, stream.pix_fmt = 64, 48, "yuvj420p"
        k = 0
        for image in images:
            for packet in stream.encode(av.VideoFrame.from_ndarray(image, format="rgb24")):
                if k in bad:
                    junk = av.Packet(b"\xff\xd8junk" + rng.bytes(400))
                    junk.pts, junk.dts, junk.time_base = packet.pts, packet.dts, packet.time_base
                    junk.stream = stream
                    packet = junk
                out.mux(packet)
                k += 1
        out.mux(stream.encode(None))
    return images


def _decode_good(path: Path, size: tuple[int, int], resize: str = "stretch") -> list[torch.Tensor]:
    """The frames of ``path`` that decode, as the stream reads them (3,H,W float)."""
    from av.video.reformatter import VideoReformatter

    from rnnvision_kit.data.geometry import fit, fit_array

    frames, reformat = [], VideoReformatter()
    with av.open(str(path)) as container:
        stream = container.streams.video[0]
        for packet in container.demux(stream):
            try:
                decoded = packet.decode()
            except av.FFmpegError:
                continue
            for frame in decoded:
                geometry = fit((frame.height, frame.width), size, resize)
                height, width = geometry.scaled
                rgb = reformat.reformat(frame, width=width, height=height, format="rgb24")
                array = fit_array(rgb.to_ndarray(), geometry).copy()
                frames.append(torch.from_numpy(array).permute(2, 0, 1).float() / 255)
    return frames


# ------------------------------------------------------------------ per-step APIs (unit)


@pytest.mark.parametrize("cell", ["gru", "lstm", "rnn"])
def test_head_step_gives_the_logits_of_forward_on_the_frames_so_far(cell: str) -> None:
    torch.manual_seed(0)
    head = build_head(cell, 12, 4, hidden_size=8, num_layers=2).eval()
    x = torch.randn(3, 7, 12)
    state = head.initial_state(3)  # per layer: h (and c for the LSTM), each B,H
    assert [tuple(t.shape) for t in state] == [(3, 8)] * (4 if cell == "lstm" else 2)
    chunk, _ = head.scan(x)
    for t in range(7):
        logits, state = head.step(x[:, t], state)
        offline = head(x[:, : t + 1])
        assert (logits - offline).abs().max() < TOL
        assert (chunk[:, t] - offline).abs().max() < TOL


@pytest.mark.parametrize(
    ("options", "hint"),
    [
        ({"cell": "gru", "bidirectional": True}, "model.bidirectional=false"),
        ({"cell": "lstm", "pooling": "mean"}, "model.pooling=last"),
        ({"cell": "gru", "pooling": "attention"}, "model.pooling=last"),
        ({"cell": "mean"}, "model.head=gru"),
    ],
)
def test_heads_that_need_the_whole_clip_refuse_in_one_line(options: dict, hint: str) -> None:
    from rnnkit_video.model import ClipClassifier
    from rnnkit_video.stream import streamable

    cell = options.pop("cell")
    head = build_head(cell, 8, 3, **options)
    model = ClipClassifier(torch.nn.Flatten(), head, [0.5] * 3, [0.25] * 3)
    with pytest.raises(ConfigError, match="cannot stream") as error:
        streamable(model)
    assert hint in str(error.value) and "\n" not in str(error.value)


@pytest.mark.parametrize("layer", [ConvGRU, ConvLSTM])
@pytest.mark.parametrize("init_state", ["zero", "learned"])
def test_convrnn_step_gives_the_outputs_of_forward(layer: type, init_state: str) -> None:
    torch.manual_seed(0)
    rnn = layer(4, [5, 6], num_layers=2, init_state=init_state)
    for p in rnn.initial_states:
        torch.nn.init.normal_(p)
    x = torch.rand(2, 6, 4, 7, 9)
    outputs, finals = rnn(x)
    for start in (None, rnn.initial_state(x[:, 0])):
        state = start
        for t in range(6):
            out, state = rnn.step(x[:, t], state)
            assert (out - outputs[:, t]).abs().max() < TOL
    last = state[-1][0] if layer is ConvLSTM else state[-1]
    final = finals[-1][0] if layer is ConvLSTM else finals[-1]
    assert (last - final).abs().max() < TOL
    bidirectional = layer(4, 5, bidirectional=True)
    assert "bidirectional" in bidirectional.stream_blocker
    with pytest.raises(ValueError, match="bidirectional"):
        bidirectional.step(x[:, 0])


# ------------------------------------------------------------------ frames


def test_frames_decode_as_the_offline_readers_do(clip: Path, tmp_path: Path) -> None:
    frames = list(open_frames(str(clip), (32, 40)))
    offline = read_frames(clip, range(30), size=(32, 40)).float() / 255
    assert [f.index for f in frames] == list(range(30))
    assert frames[10].time_s == pytest.approx(1.0)
    assert torch.equal(torch.stack([f.image for f in frames]), offline)
    folder = tmp_path / "frames"
    folder.mkdir()
    for t, image in enumerate(read_frames(clip, range(5)).permute(0, 2, 3, 1).numpy()):
        Image.fromarray(image).save(folder / f"{t:03d}.png")
    stream = open_frames(str(folder), (32, 40))
    images = torch.stack([f.image for f in stream])
    assert stream.size == (48, 64) and stream.fps == 25.0
    assert torch.equal(images, read_frame_folder(folder, range(5), size=(32, 40)).float() / 255)


def test_output_paths() -> None:
    run = Path("run")
    assert output_paths(None, run, "clip") == (None, run / "stream" / "clip", None)
    assert output_paths(Path("a/r.jsonl"), run, "clip") == (Path("a/r.jsonl"), Path("a/r"), None)
    assert output_paths(Path("a/o.mp4"), run, "clip") == (None, Path("a/o"), Path("a/o.mp4"))
    assert output_paths(Path("d"), run, "clip") == (Path("d/stream.jsonl"), Path("d"), None)


# ------------------------------------------------------------------ equivalence (deliverable 2)


@pytest.fixture(scope="module", params=["gru", "transformer", "s5"])
def layer_run(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """video_run, or a tiny run of another layer (an attention and a complex-state layer)."""
    if request.param == "gru":
        return request.getfixturevalue("video_run")
    args = [*VIDEO_TINY, "--set", f"model.head={request.param}", "--set", "model.hidden_size=16"]
    return train_in_process(tmp_path_factory.mktemp(request.param), *args)[0]


def test_video_action_stream_equals_the_offline_pass(
    layer_run: Path, clip: Path, rnnkit: CliRunner, tmp_path: Path
) -> None:
    video_run = layer_run
    model, spec = _model(video_run)
    stride, size = spec.stride, (spec.height, spec.width)
    read = list(range(0, 30, stride))
    assert spec.resize == "crop"  # the default: frames fitted as in training, in both
    offline_clip = read_frames(clip, read, size=size, resize=spec.resize).float() / 255
    with torch.inference_mode():
        offline = [model(offline_clip[None, : k + 1])[0] for k in range(len(read))]
        # the per-step API on the core's frames
        state, streamed = None, []
        for frame in open_frames(str(clip), size, resize=spec.resize):
            if frame.index % stride == 0:
                logits, state = model.step(model.encode_frame(frame.image[None]), state)
                streamed.append(logits[0])
    assert len(streamed) == len(offline)
    assert max((a - b).abs().max().item() for a, b in zip(streamed, offline, strict=True)) < TOL
    # end to end: the records' probabilities
    k = spec.num_classes
    result = rnnkit("stream", str(video_run), str(clip), "--top-k", str(k), "--out", "r.jsonl")
    assert result.returncode == 0, result.stderr
    records = _records((tmp_path / "r.jsonl").read_text())
    *frames, last = records
    assert [r["frame"] for r in frames] == read
    for record, logits in zip(frames, offline, strict=True):
        probs = torch.softmax(logits, -1)
        for entry in record["top"]:
            assert abs(entry["score"] - probs[spec.class_names.index(entry["label"])]) < TOL
    assert sum(s["steps"] for s in last["timeline"]) == last["steps"] == len(read)
    assert last["frames_read"] == 30
    line = result.stderr.strip().splitlines()[-1]
    # frames read and processed apart: the model reads every stride-th frame
    assert stride == 3
    processed = f"{len(read)} processed (every 3rd frame: the model's stride)"
    assert f"end of stream; 30 frames read, {processed}, 11 records to r.jsonl" in line
    assert "processed frames/s" in line and "real-time factor" in line and "(of 10 fps)" in line


def test_seg_refine_stream_equals_the_offline_pass(
    seg_run: Path, clip: Path, rnnkit: CliRunner, tmp_path: Path
) -> None:
    model, spec = _model(seg_run)
    size = (spec.height, spec.width)
    frames = read_frames(clip, range(30), size=size).float() / 255
    with torch.inference_mode():
        refined, per_frame = model(frames[None])
        state, streamed = None, []
        for frame in open_frames(str(clip), size):
            out, state = model.step(model.encode_frame(frame.image[None]), state)
            streamed.append(out[0])
    assert not torch.allclose(refined, per_frame, atol=1e-4)  # the refinement does something
    # float32: the segmenter's logits reach ~15, and one frame vs 30 in a batch round apart
    # by ~1 ulp of that; relative to their scale the two agree within 1e-5
    scale = max(1.0, refined.abs().max().item())
    assert (torch.stack(streamed) - refined[0]).abs().max() < TOL * scale
    # float64: the same computation, to rounding
    double, frames64 = model.double(), frames.double()
    with torch.inference_mode():
        refined64, _ = double(frames64[None])
        state, streamed64 = None, []
        for t in range(30):
            out, state = double.step(double.encode_frame(frames64[None, t]), state)
            streamed64.append(out[0])
    assert (torch.stack(streamed64) - refined64[0]).abs().max() < 1e-9
    model.float()
    result = rnnkit("stream", str(seg_run), str(clip), "--every", "4", "--out", "masks")
    assert result.returncode == 0, result.stderr
    *records, last = _records((tmp_path / "masks" / "stream.jsonl").read_text())
    assert [r["frame"] for r in records] == list(range(3, 30, 4))
    assert last == {"frames": 30, "masks": "masks"}
    up = torch.nn.functional.interpolate(refined[0], size=(48, 64), mode="bilinear")
    for record in records:
        mask = np.asarray(Image.open(tmp_path / record["mask"]))
        assert mask.shape == (48, 64)
        same = (torch.from_numpy(mask.astype(np.int64)) == up[record["frame"]].argmax(0)).float()
        assert same.mean() > 0.999
        assert sum(record["class_fractions"].values()) == pytest.approx(1.0, abs=1e-4)


def test_seg_refine_writes_an_overlay_video(seg_run: Path, clip: Path, rnnkit: CliRunner) -> None:
    result = rnnkit("stream", str(seg_run), str(clip), "--every", "2", "--out", "overlay.mp4")
    assert result.returncode == 0, result.stderr
    *records, last = _records(result.stdout)
    assert len(records) == 15 and last["video"] == "overlay.mp4"
    info = probe_video(Path(result.args[0]).parent / "overlay.mp4")  # cwd: tmp_path
    assert info.num_frames == 15


def test_bidirectional_refinement_is_refused_in_one_line(
    tmp_path_factory: pytest.TempPathFactory, clip: Path, rnnkit: CliRunner
) -> None:
    run = train_in_process(tmp_path_factory.mktemp("sr-bi"), *SEG_TINY)[0]  # default: bidirectional
    result = rnnkit("stream", str(run), str(clip))
    assert result.returncode == 2 and result.stdout == ""
    line = result.stderr.strip()
    assert "\n" not in line and "bidirectional" in line
    assert "--set model.bidirectional=false" in line


def test_every_and_max_frames(video_run: Path, clip: Path, rnnkit: CliRunner) -> None:
    result = rnnkit("stream", str(video_run), str(clip), "--every", "2", "--max-frames", "13")
    assert result.returncode == 0, result.stderr
    *records, last = _records(result.stdout)
    assert [r["frame"] for r in records] == [3, 9]  # steps on frames 0, 3, 6, 9, 12
    assert last["steps"] == 5
    assert "--max-frames reached; 13 frames read" in result.stderr


def test_realtime_paces_a_file_and_drops_what_a_busy_model_misses(
    video_run: Path, clip: Path, rnnkit: CliRunner, tmp_path: Path
) -> None:
    result = rnnkit("stream", str(video_run), str(clip), "--realtime", "--max-frames", "10")
    assert result.returncode == 0, result.stderr
    factor = float(result.stderr.split("real-time factor ")[1].split()[0])
    assert factor <= 1.12  # 1 s of video (10 frames at 10 fps) takes at least 0.9 s
    stream = open_frames(str(clip), (16, 16), realtime=True)
    for _ in stream:
        time.sleep(0.35)  # a model slower than the 10 fps the clip comes at
    assert stream.dropped > 0 and stream.read + stream.dropped == 30


# ------------------------------------------------------------------ bad input


@pytest.mark.parametrize(
    ("source", "message"),
    [
        ("/dev/video99", "/dev/video99: no such device"),
        ("http://127.0.0.1:9/x", "http://127.0.0.1:9/x: cannot open ("),
        ("missing.mp4", "missing.mp4: no such file, folder, device or URL"),
    ],
)
def test_a_source_that_cannot_be_opened_is_one_line(
    video_run: Path, rnnkit: CliRunner, source: str, message: str
) -> None:
    result = rnnkit("stream", str(video_run), source, "--timeout", "5")
    assert result.returncode == 2 and result.stdout == ""
    assert result.stderr.strip().count("\n") == 0 and message in result.stderr


@contextmanager
def _serve(folder: Path) -> Iterator[tuple[int, list[str]]]:
    """An HTTP server of ``folder`` on a free local port: ``(port, paths requested)``."""
    requested: list[str] = []

    class Handler(http.server.SimpleHTTPRequestHandler):
        def __init__(self, *args: Any, **kwargs: Any) -> None:
            super().__init__(*args, directory=str(folder), **kwargs)

        def log_message(self, format: str, *args: Any) -> None:
            requested.append(self.path)

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield server.server_address[1], requested
    finally:
        server.shutdown()
        server.server_close()


def test_a_playlist_opens_only_its_own_protocols_unless_widened(
    video_run: Path, rnnkit: CliRunner, tmp_path: Path
) -> None:
    """A local HLS playlist naming a segment on a local web server, and one served over http
    naming a local file: each is one line, and plays with --allow-protocols."""
    served = tmp_path / "served"
    served.mkdir()
    (served / "seg.ts").write_bytes(_mpegts(12))
    (tmp_path / "local.ts").write_bytes(_mpegts(12))
    run, playlist = str(video_run), tmp_path / "live.m3u8"
    with _serve(served) as (port, requested):
        write_hls(playlist, f"http://127.0.0.1:{port}/seg.ts")
        refused = rnnkit("stream", run, str(playlist), "--timeout", "5")
        assert refused.returncode == 2 and refused.stdout == "" and not requested
        assert refused.stderr.strip() == (
            f"rnnkit: error: {playlist}: not a video file (an HLS playlist); "
            "stream opens one only with --allow-protocols"
        )
        widened = rnnkit("stream", run, str(playlist), "--allow-protocols", "http,tcp")
        assert widened.returncode == 0, widened.stderr
        assert "end of stream; 12 frames read" in widened.stderr and "/seg.ts" in requested

        url = f"http://127.0.0.1:{port}/remote.m3u8"
        write_hls(served / "remote.m3u8", (tmp_path / "local.ts").as_uri())
        refused = rnnkit("stream", run, url, "--timeout", "5")
        assert refused.returncode == 2 and refused.stderr.strip().count("\n") == 0
        assert f"{url}: cannot open (" in refused.stderr
        assert "protocols allowed: http,tcp, --allow-protocols widens" in refused.stderr
        widened = rnnkit("stream", run, url, "--allow-protocols", "file")
        assert widened.returncode == 0, widened.stderr
        assert "end of stream; 12 frames read" in widened.stderr


def test_a_corrupt_frame_is_skipped_and_counted_and_the_state_carries_on(
    video_run: Path, rnnkit: CliRunner, tmp_path: Path
) -> None:
    path = tmp_path / "corrupt.mkv"
    _mjpeg_with_garbage(path, 12, bad={3})
    model, spec = _model(video_run)
    result = rnnkit("stream", str(video_run), str(path), "--top-k", str(spec.num_classes))
    assert result.returncode == 0, result.stderr
    assert "11 frames read, 1 skipped as undecodable" in result.stderr
    *records, last = _records(result.stdout)
    assert [r["frame"] for r in records] == [0, 6, 9]  # frame 3 is gone; the model read on
    good = _decode_good(path, (spec.height, spec.width), spec.resize)  # frames 0-2, 4-11
    clip = torch.stack([good[0], good[5], good[8]])
    with torch.inference_mode():
        for k, record in enumerate(records):
            probs = torch.softmax(model(clip[None, : k + 1])[0], -1)
            for entry in record["top"]:
                assert abs(entry["score"] - probs[spec.class_names.index(entry["label"])]) < TOL


def test_an_unreadable_image_in_a_frame_folder_is_skipped(
    video_run: Path, clip: Path, rnnkit: CliRunner, tmp_path: Path
) -> None:
    folder = tmp_path / "frames"
    folder.mkdir()
    for t, image in enumerate(read_frames(clip, range(7)).permute(0, 2, 3, 1).numpy()):
        Image.fromarray(image).save(folder / f"{t:03d}.jpg")
    data = (folder / "003.jpg").read_bytes()
    (folder / "003.jpg").write_bytes(data[: len(data) // 3])  # truncated
    result = rnnkit("stream", str(video_run), str(folder))
    assert result.returncode == 0, result.stderr
    assert "6 frames read, 1 skipped as undecodable" in result.stderr
    *records, _ = _records(result.stdout)
    assert [r["frame"] for r in records] == [0, 6]


def _mpegts(frames: int) -> bytes:
    """An MPEG-TS stream of ``frames`` 64x48 MPEG-2 frames at 10 fps, as bytes."""
    import io

    rng = np.random.default_rng(5)
    buffer = io.BytesIO()
    with av.open(buffer, "w", format="mpegts") as out:
        stream = out.add_stream("mpeg2video", rate=10)
        stream.width, stream.height, stream.pix_fmt = 64, 48, "yuv420p"
        for _ in range(frames):
            image = rng.integers(0, 256, (48, 64, 3), dtype=np.uint8)
            out.mux(stream.encode(av.VideoFrame.from_ndarray(image, format="rgb24")))
        out.mux(stream.encode(None))
    return buffer.getvalue()


class _Feeder:
    """Writes ``data`` into a named pipe in ``pieces`` (``pause`` seconds apart), then keeps it
    open (the stream stalls) until ``release``."""

    def __init__(self, pipe: Path, data: bytes, pieces: int = 1, pause: float = 0.0) -> None:
        self.pipe, self.data, self.pieces, self.pause = pipe, data, pieces, pause
        self.released = threading.Event()
        self.thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        try:
            with open(self.pipe, "wb") as sink:
                step = -(-len(self.data) // self.pieces)
                for start in range(0, len(self.data), step):
                    sink.write(self.data[start : start + step])
                    sink.flush()
                    if self.released.wait(self.pause):
                        return
                self.released.wait(60)
        except BrokenPipeError:  # the reader has gone (Ctrl-C)
            pass

    def __enter__(self) -> _Feeder:
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.released.set()
        self.thread.join(10)


def test_a_stalled_stream_ends_at_the_timeout_saying_how_many_frames_it_read(
    video_run: Path, rnnkit: CliRunner, tmp_path: Path
) -> None:
    pipe = tmp_path / "live.ts"
    os.mkfifo(pipe)
    with _Feeder(pipe, _mpegts(20)):
        result = rnnkit("stream", str(video_run), str(pipe), "--timeout", "1")
    assert result.returncode == 1
    line = result.stderr.strip().splitlines()[-1]
    assert "no frame for 1 s (--timeout): the stream stalled" in line
    read = int(line.split(" frames read")[0].rsplit(" ", 1)[1])
    assert 10 <= read <= 20  # the decoder may hold back the last few frames
    *records, last = _records(result.stdout)
    assert last["steps"] == len(records) == len(range(0, read, 3))


def test_a_stream_that_stops_ends_saying_how_many_frames_it_read(
    video_run: Path, rnnkit: CliRunner, tmp_path: Path
) -> None:
    pipe = tmp_path / "short.ts"
    os.mkfifo(pipe)
    feeder = _Feeder(pipe, _mpegts(20))
    feeder.released.set()  # the writer closes the pipe once it has written
    with feeder:
        result = rnnkit("stream", str(video_run), str(pipe), "--timeout", "5")
    assert result.returncode == 0, result.stderr
    assert "end of stream; 20 frames read, 7 processed (every 3rd" in result.stderr
    assert "8 records" in result.stderr


def test_a_pipe_nobody_writes_is_one_line_after_the_timeout(
    video_run: Path, rnnkit: CliRunner, tmp_path: Path
) -> None:
    pipe = tmp_path / "silent.ts"
    os.mkfifo(pipe)
    result = rnnkit("stream", str(video_run), str(pipe), "--timeout", "0.5")
    with open(pipe, "wb"):  # let the blocked opener go
        pass
    assert result.returncode == 2
    assert "no answer within 0.5 s (--timeout); cannot open the stream" in result.stderr


def test_ctrl_c_ends_a_live_stream_cleanly(video_run: Path, tmp_path: Path) -> None:
    pipe = tmp_path / "camera.ts"
    os.mkfifo(pipe)
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONPATH": str(REPO)}
    command = [sys.executable, "-m", "rnnvision_kit", "stream", str(video_run), str(pipe)]
    with _Feeder(pipe, _mpegts(200), pieces=100, pause=0.1):
        process = subprocess.Popen(
            [*command, "--timeout", "30"], cwd=tmp_path, env=env, text=True,
            stdout=subprocess.PIPE, stderr=subprocess.PIPE,
        )  # fmt: skip
        assert process.stdout is not None
        first = process.stdout.readline()  # the first record: the stream is running
        assert json.loads(first)["frame"] == 0
        time.sleep(0.3)
        process.send_signal(signal.SIGINT)
        out, err = process.communicate(timeout=60)
    assert process.returncode == 0, err
    assert "stopped by Ctrl-C" in err
    last = json.loads(out.strip().splitlines()[-1])
    assert "timeline" in last and last["steps"] >= 1
