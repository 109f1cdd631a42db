"""The shared progress helper: lines off a terminal, nothing when off, items passed through."""

from __future__ import annotations

import io

from rnnvision_kit.progress import Progress, track


def test_lines_off_a_terminal() -> None:
    stream = io.StringIO()  # not a terminal
    with Progress(4, "decoding", "file", every=0.0, stream=stream) as progress:
        assert progress.mode == "lines"
        progress.update(2)
    line = stream.getvalue().splitlines()[0]
    assert line.startswith("decoding: 2/4 file (50%), ")
    assert "left" in line


def test_no_line_before_the_interval_and_none_when_off() -> None:
    stream = io.StringIO()
    with Progress(4, "x", stream=stream) as progress:  # every 30 s: nothing yet
        progress.update(4)
    with Progress(4, "x", show=False, every=0.0, stream=stream) as progress:
        progress.update(4)
    assert stream.getvalue() == ""


def test_track_passes_items_through() -> None:
    stream = io.StringIO()
    assert list(track(range(3), 3, "epoch 1/1", "batch", every=0.0, stream=stream)) == [0, 1, 2]
    assert stream.getvalue().splitlines()[-1].startswith("epoch 1/1: 3/3 batch (100%)")
