"""``rnnkit check-data --deep``: files that probe fine but fail to decode part-way (media data
corrupt behind an index at the front, a file cut off at two thirds, a truncated JPEG in a frame
folder) are called readable by a probe and listed, with the frame and time of the failure, by a
deep scan; good files pass with their frame counts; the decode rate is a note."""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from rnnvision_kit import DataError
from rnnvision_kit.data import (
    ProbeCache,
    decode_file,
    decode_files,
    probe_frame_folder,
    read_frame_folder,
    read_frames,
    scan_videos,
    write_video,
)
from tests.bad_videos import cut_off, damage_media, write_moov_first
from tests.conftest import CliRunner

FRAMES = 30  # every test video: 30 frames of 32x32 at 10 fps
FAIL = re.compile(r"decoding fails at frame (\d+) of 30 \(t=([\d.]+) s\): \S")
STOP = re.compile(r"decoding stops at frame (\d+) of 30 \(t=([\d.]+) s\): the file is cut off or")
RATE = re.compile(r"decoded (\d+) frames of (\d+) files in [\d.]+ s: (\d+) frames/s")


@pytest.fixture(scope="module")
def videos(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict[str, Path]]:
    """``root/{a,b}/good*.mp4`` (4 per class) plus ``a/damaged.mp4`` (moov first, media data
    overwritten from half way) and ``b/cut.mp4`` (moov first, cut off at two thirds)."""
    root = tmp_path_factory.mktemp("deep") / "videos"
    for k, name in enumerate("ab"):
        (root / name).mkdir(parents=True)
        for i in range(4):
            write_moov_first(root / name / f"good{i}.mp4", frames=FRAMES, seed=10 * k + i)
    bad = {
        "damaged": damage_media(write_moov_first(root / "a" / "damaged.mp4", seed=7)),
        "cut": cut_off(write_moov_first(root / "b" / "cut.mp4", seed=8)),
    }
    return root, bad


def _rows(stdout: str, kind: str) -> dict[str, str]:
    """``name -> detail`` of the table rows of ``kind``."""
    rows = [line.split(None, 2) for line in stdout.splitlines() if line.startswith(f"{kind} ")]
    return {name: detail for _, name, detail in rows}


def test_probe_calls_them_readable_deep_lists_where_they_fail(
    videos: tuple[Path, dict[str, Path]], rnnkit: CliRunner
) -> None:
    root, bad = videos
    check = ["check-data", "--task", "video-action", "--data", f"videofolder:{root}"]
    shallow = rnnkit(*check)
    assert shallow.returncode == 0, shallow.stderr
    assert not _rows(shallow.stdout, "corrupt") and not _rows(shallow.stdout, "unreadable")
    assert "10 of 10 videos readable" in shallow.stdout
    assert "--deep decodes every frame" in shallow.stdout
    run: dict[str, str] = {}
    for path in bad.values():  # what a run reading their later frames meets
        with pytest.raises(DataError) as caught:
            read_frames(path, [FRAMES - 1], ProbeCache().get(path))
        run[str(path)] = str(caught.value).removeprefix(f"{path}: ")

    deep = rnnkit(*check, "--deep")
    assert deep.returncode == 0, deep.stderr  # some videos are readable
    corrupt = _rows(deep.stdout, "corrupt")
    assert corrupt == run  # the same frame, time and words as a run's
    decoded = 0
    for path, detail in corrupt.items():
        match = FAIL.match(detail)
        assert match, detail
        frame, seconds = int(match[1]), float(match[2])
        frames = decode_file(path).frames
        assert 0 < frames <= frame < FRAMES and frame == round(seconds * 10)  # 10 fps
        decoded += frames
    assert "8 of 10 videos readable" in deep.stdout
    assert "2 file(s): mid-file corruption" in deep.stdout
    (rate,) = [m for line in deep.stdout.splitlines() if (m := RATE.match(line))]
    assert int(rate[1]) == 8 * FRAMES + decoded and int(rate[2]) == 10 and int(rate[3]) > 0
    assert "decoding" not in deep.stderr  # no progress bar when stderr is not a terminal


def test_deep_scan_of_a_frame_folder_opens_every_image(tmp_path: Path, rnnkit: CliRunner) -> None:
    rng = np.random.default_rng(0)
    for name in ("a", "b"):
        for v in range(3):
            folder = tmp_path / "frames" / name / f"v{v}"
            folder.mkdir(parents=True)
            for t in range(8):
                pixels = rng.integers(0, 256, (32, 32, 3), dtype=np.uint8)
                Image.fromarray(pixels).save(folder / f"{t:03d}.jpg", quality=90)
    broken = tmp_path / "frames" / "b" / "v1" / "005.jpg"
    broken.write_bytes(broken.read_bytes()[:200])
    check = ["check-data", "--task", "video-action", "--data", f"framefolder:{tmp_path / 'frames'}"]
    assert "6 of 6 videos readable" in rnnkit(*check).stdout
    deep = rnnkit(*check, "--deep")
    assert deep.returncode == 0, deep.stderr
    (detail,) = _rows(deep.stdout, "corrupt").values()
    assert detail.startswith("decoding fails at frame 5 of 8 (t=0.20 s): 005.jpg:")
    folder = broken.parent
    with pytest.raises(DataError) as caught:  # a run reading it says the same
        read_frame_folder(folder, [2, 5], probe_frame_folder(folder))
    assert str(caught.value) == f"{folder}: {detail}"
    assert "5 of 6 videos readable" in deep.stdout


def test_decode_file_records_frames_time_and_where_it_fails(
    videos: tuple[Path, dict[str, Path]], tmp_path: Path
) -> None:
    root, bad = videos
    good = decode_file(root / "a" / "good0.mp4")
    assert good.ok and good.problem() is None
    assert (good.frames, good.expected, good.fail_frame) == (FRAMES, FRAMES, None)
    assert good.seconds > 0 and good.rate > 0

    damaged = decode_file(bad["damaged"])
    assert not damaged.ok and damaged.fail_frame is not None and damaged.fail_time is not None
    assert damaged.frames < FRAMES and damaged.fail_frame == round(damaged.fail_time * 10)
    assert "Invalid data" in (damaged.reason or "")

    # an AVI cut off at two thirds demuxes to a clean end: fewer frames than its header counts
    avi = tmp_path / "cut.avi"
    write_video(avi, np.random.default_rng(3).integers(0, 256, (FRAMES, 32, 32, 3), np.uint8))
    stopped = decode_file(cut_off(avi))
    match = STOP.match(stopped.problem() or "")
    assert match and int(match[1]) == stopped.frames < FRAMES
    assert float(match[2]) == pytest.approx(stopped.frames / 10, abs=0.01)
    with pytest.raises(DataError) as caught:  # a run reading it says the same
        read_frames(avi, [FRAMES - 1], ProbeCache().get(avi))
    assert str(caught.value) == f"{avi}: {stopped.problem()}"

    text = tmp_path / "text.mp4"
    text.write_text("not a video\n" * 20)
    junk = decode_file(text)  # a probe failure is a result, not an exception
    assert not junk.ok and junk.frames == 0 and "not a readable video" in (junk.reason or "")


def test_decode_files_keeps_the_input_order_and_progress_goes_to_stderr(
    videos: tuple[Path, dict[str, Path]], capsys: pytest.CaptureFixture[str]
) -> None:
    root, _ = videos
    paths = sorted(root.glob("*/*.mp4"))
    one = decode_files(paths, workers=1, progress=False)
    two = decode_files(paths, workers=2, progress=True)
    assert [r.path for r in two] == [str(p) for p in paths]
    fields = [(r.path, r.frames, r.expected, r.fail_frame, r.fail_time, r.reason) for r in one]
    assert fields == [
        (r.path, r.frames, r.expected, r.fail_frame, r.fail_time, r.reason) for r in two
    ]
    assert "decoding" in capsys.readouterr().err


def test_scan_videos_deep_report(videos: tuple[Path, dict[str, Path]]) -> None:
    root, bad = videos
    samples = [(str(p), int(p.parent.name == "b")) for p in sorted(root.glob("*/*.mp4"))]
    shallow = scan_videos(samples, class_names=["a", "b"], probe_cache=ProbeCache())
    assert shallow.ok and not shallow.deep and shallow.decode_note() is None
    assert shallow.num_ok == 10 and not shallow.decoded

    report = scan_videos(samples, class_names=["a", "b"], probe_cache=ProbeCache(), deep=True)
    assert report.deep and not report.ok and report.num_ok == 8
    assert {path for path, _ in report.corrupt} == {str(p) for p in bad.values()}
    assert report.class_counts == {"a": 4, "b": 4}
    assert all(report.frames[str(p)] == FRAMES for p in root.glob("*/good*.mp4"))
    assert str(bad["cut"]) not in report.frames
    assert len(report.decoded) == 10 and report.decode_rate > 0
    assert ("corrupt", str(bad["damaged"])) in [row[:2] for row in report.rows()]


def test_seg_refine_deep_says_every_frame_is_read_and_lists_a_bad_jpeg(
    tmp_path: Path, rnnkit: CliRunner
) -> None:
    from rnnkit_segrefine.readers import write_index_png

    rng = np.random.default_rng(2)
    for split, videos in (("train", 3), ("val", 1), ("test", 2)):
        for v in range(videos):
            for sub in ("frames", "masks"):
                (tmp_path / "seg" / split / f"vid{v}" / sub).mkdir(parents=True)
            for t in range(4):
                mask = np.zeros((32, 32), dtype=np.uint8)
                mask[4 + t : 16 + t, 8:20] = 1
                pixels = rng.integers(0, 256, (32, 32, 3), dtype=np.uint8)
                folder = tmp_path / "seg" / split / f"vid{v}"
                Image.fromarray(pixels).save(folder / "frames" / f"{t}.jpg", quality=90)
                write_index_png(folder / "masks" / f"{t}.png", mask)
    broken = tmp_path / "seg" / "test" / "vid1" / "frames" / "2.jpg"
    data = broken.read_bytes()
    broken.write_bytes(data[: len(data) // 2])  # the header scan passes, decoding does not
    check = ["check-data", "--task", "seg-refine", "--data", f"videomasks:{tmp_path / 'seg'}"]
    result = rnnkit(*check, "--set", "data.clip_len=2", "--deep")
    assert result.returncode == 0, result.stderr
    assert _rows(result.stdout, "unreadable")[str(broken)].startswith("cannot decode image")
    assert "1 file(s) pass the scan but fail to decode" in result.stdout
    assert "--deep: every frame image and mask was decoded in full" in result.stdout
