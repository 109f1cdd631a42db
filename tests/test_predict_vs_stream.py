"""video-action ``predict --json`` gives both whole-video answers: the clip-averaged one (``top``)
and the streamed last-state one (``stream``), the latter equal to what ``rnnkit stream`` ends on
for the same file."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import torch
from rnnkit_video.predict import streamed

from rnnvision_kit import PredictContext, VideoSpec
from rnnvision_kit.config import RunConfig
from rnnvision_kit.data import write_video
from tests.conftest import CliRunner
from tests.test_stream import _one_thread, clip, video_run  # noqa: F401 (fixtures)


def _stream_end(rnnkit: CliRunner, run_dir: Path, video: Path, k: int, out: str) -> list[dict]:
    result = rnnkit("stream", str(run_dir), str(video), "--top-k", str(k), "--out", out)
    assert result.returncode == 0, result.stderr
    records = [json.loads(line) for line in Path(out).read_text().splitlines()]
    return records


def test_predict_json_holds_the_clip_and_the_streamed_answer(
    video_run: Path,  # noqa: F811
    clip: Path,  # noqa: F811
    rnnkit: CliRunner,
    tmp_path: Path,
) -> None:
    rng = np.random.default_rng(3)
    short = write_video(  # within one clip's span: uniform clips averaged
        tmp_path / "short.mp4", rng.integers(0, 256, (7, 48, 64, 3), dtype=np.uint8), fps=10
    )
    k = 2
    result = rnnkit("predict", str(video_run), str(clip), str(short), "--top-k", str(k), "--json")
    assert result.returncode == 0, result.stderr
    long_record, short_record = json.loads(result.stdout)
    assert "timeline" in long_record and "timeline" not in short_record
    for record, video in ((long_record, clip), (short_record, short)):
        assert len(record["top"]) == k
        *frames, closing = _stream_end(rnnkit, video_run, video, k, f"{video.stem}.jsonl")
        assert record["stream"] == {
            "top": frames[-1]["top"],
            "time_s": frames[-1]["time_s"],
            "steps": closing["steps"],
            "frames_read": closing["frames_read"],
        }
    assert long_record["stream"]["frames_read"] == 30
    # the text output stays the clip-averaged answer
    text = rnnkit("predict", str(video_run), str(short), "--top-k", str(k))
    label = short_record["top"][0]["label"]
    assert text.stdout.startswith(f"{short}: {label} {short_record['top'][0]['score']:.3f}")


def test_a_model_that_cannot_stream_gives_no_streamed_answer(tmp_path: Path) -> None:
    spec = VideoSpec(("a", "b"), 3, 8, 8, (0.5,) * 3, (0.25,) * 3, num_frames=2)
    ctx = PredictContext(
        torch.nn.Linear(2, 2),  # no per-step API
        (tmp_path / "x.mp4",),
        RunConfig("video-action"),
        spec,
        torch.device("cpu"),
        2,
        tmp_path,
    )
    assert streamed(ctx, tmp_path / "x.mp4") is None
