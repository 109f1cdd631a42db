"""What decoding a whole video (or frame folder) found, worded alike by a run that meets a
damaged file and by ``check-data --deep``: :class:`DecodeResult` and :func:`decode_problem`.

The readers of each kind (``video``: files, ``frames``: frame folders) decode whole sources into
a :class:`DecodeResult`; this module knows no reader, so every reader can use it.
"""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["CUT_OFF", "ENDS_EARLY", "DecodeResult", "decode_problem", "error_line", "is_short"]

CUT_OFF = "the file is cut off or corrupt"
ENDS_EARLY = "file ends early"  # DecodeResult.reason of a source that decodes fewer frames


def decode_problem(frame: int, total: int, seconds: float, why: str | None = None) -> str:
    """Where and why a file breaks part-way, worded alike by a run and ``check-data --deep``:
    ``decoding fails at frame K of N (t=X s): WHY``, or with ``why=None`` (the stream just
    ends early) ``decoding stops at frame K of N (t=X s): the file is cut off or corrupt``.
    ``frame`` counts from 0: the first frame that could not be decoded, at ``seconds``."""
    verb = "stops" if why is None else "fails"
    return f"decoding {verb} at frame {frame} of {total} (t={seconds:.2f} s): {why or CUT_OFF}"


@dataclass(frozen=True)
class DecodeResult:
    """What decoding a whole file found: frames decoded against the probe's count, the time it
    took and, when decoding fails or stops early, where (frame index, seconds) and why."""

    path: str
    frames: int  # frames decoded
    expected: int  # frames the probe counts (0 when the probe failed)
    seconds: float  # wall time of the decode
    fail_frame: int | None = None  # first frame that could not be decoded
    fail_time: float | None = None  # its time, seconds from the stream start (pts * time_base)
    reason: str | None = None  # one line; None when every frame decoded

    @property
    def ok(self) -> bool:
        """True when the whole file decoded."""
        return self.reason is None

    @property
    def rate(self) -> float:
        """Frames decoded per second of wall time (0 when nothing was timed)."""
        return self.frames / self.seconds if self.seconds > 0 else 0.0

    def problem(self) -> str | None:
        """What a run reading the file says too (:func:`~rnnvision_kit.data.decode_problem`):
        ``"decoding fails at frame K of M (t=X s): reason"``, ``"decoding stops at frame K of M
        (t=X s): the file is cut off or corrupt"`` for a file that ends early, the probe's
        problem when it has no frame, or None when it decoded whole."""
        if self.reason is None:
            return None
        if self.fail_time is None or self.fail_frame is None:
            return self.reason
        why = None if self.reason == ENDS_EARLY else self.reason
        return decode_problem(self.fail_frame, self.expected, self.fail_time, why)


def is_short(frames: int, expected: int, exact: bool) -> bool:
    """Fewer frames than probed; a count estimated from duration x frame rate (WebM/MKV: no
    count in the header) gets the slack :func:`~rnnvision_kit.data.read_frames` allows."""
    return frames < expected - (0 if exact else max(2, expected // 20))


def error_line(error: BaseException) -> str:
    """``"TypeName: message"`` on one line, for errors that are not the readers' own."""
    return " ".join(f"{type(error).__name__}: {error}".split())
