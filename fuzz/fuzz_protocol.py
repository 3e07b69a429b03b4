"""Fuzz target: ``AmiProtocol.receive_data`` over arbitrary bytes, cut into arbitrary chunks.

A crash is any exception other than ``asterisk_ami.ProtocolError`` (``FrameTooLargeError`` included),
or a broken invariant: frames must be dicts of str to str/list-of-str, buffered bytes stay within
``max_frame_bytes``, a failed parser keeps failing with ``ProtocolError``, and the frames must not
depend on how the bytes were cut (chunked feeding gives what one single feed gives), nor on whether
the C fast path (``asterisk_ami._speedups``) or the pure-Python parser made them.

Input layout: byte 0 picks ``max_frame_bytes`` and the codec, bytes 1-4 the chunk sizes (cycled), the
rest is the stream from the server.

    python fuzz/fuzz_protocol.py fuzz/seed -max_total_time=60   # with atheris (pip install atheris)
    python fuzz/fuzz_protocol.py --replay [FILE_OR_DIR ...]       # without atheris: run the inputs once
"""

from __future__ import annotations

import os
import sys
from collections.abc import Iterable, Iterator
from pathlib import Path

from asterisk_ami.errors import ProtocolError
from asterisk_ami.protocol import DEFAULT_MAX_FRAME_BYTES, SPEEDUPS, AmiProtocol, Frame

SEED_DIR = Path(__file__).parent / "seed"
HEADER_BYTES = 5
_MAX_FRAME = (64, 512, 4096, DEFAULT_MAX_FRAME_BYTES)
_ENCODINGS = ("utf-8", "latin-1")
#: FUZZ_SPLIT_CHECK: "all" (default) compares chunked with whole feeding; "strict" only for CRLF streams;
#: "off" looks for exceptions and broken invariants only (to fuzz past a known split bug)
SPLIT_CHECK = os.environ.get("FUZZ_SPLIT_CHECK", "all")


def _chunks(payload: bytes, sizes: bytes) -> Iterator[bytes]:
    steps = [s + 1 for s in sizes] or [len(payload) or 1]
    pos = i = 0
    while pos < len(payload):
        step = steps[i % len(steps)]
        yield payload[pos : pos + step]
        pos += step
        i += 1


def _check_frames(frames: object) -> None:
    assert isinstance(frames, list), type(frames)
    for frame in frames:
        assert isinstance(frame, dict), type(frame)
        for key, value in frame.items():
            assert isinstance(key, str), key
            if isinstance(value, list):
                # a repeated header gives 2+ values; Command output may be empty (no output lines)
                assert (value or key == "output") and all(isinstance(v, str) for v in value), (key, value)
            else:
                assert isinstance(value, str), value


def _feed(proto: AmiProtocol, pieces: Iterable[bytes]) -> tuple[list[Frame], ProtocolError | None]:
    frames: list[Frame] = []
    for piece in pieces:
        try:
            got = proto.receive_data(piece)
        except ProtocolError as exc:
            # spent: every later call must fail the same typed way
            try:
                proto.receive_data(b"Event: After\r\n\r\n")
            except ProtocolError:
                return frames, exc
            raise AssertionError("receive_data after a ProtocolError did not raise ProtocolError") from exc
        _check_frames(got)
        assert proto.pending_bytes <= proto.max_frame_bytes, (proto.pending_bytes, proto.max_frame_bytes)
        frames.extend(got)
    return frames, None


def test_one_input(data: bytes) -> None:
    """One fuzz input; raises (a crash) on anything but a clean parse or a ``ProtocolError``."""
    if not data:
        return
    flags = data[0]
    max_frame = _MAX_FRAME[flags & 3]
    encoding = _ENCODINGS[(flags >> 2) & 1]
    sizes, payload = data[1:HEADER_BYTES], data[HEADER_BYTES:]
    proto = AmiProtocol(encoding, max_frame)
    chunked, chunked_error = _feed(proto, _chunks(payload, sizes))
    if SPEEDUPS:
        pure, pure_error = _feed(AmiProtocol(encoding, max_frame, speedups=False), _chunks(payload, sizes))
        assert type(pure_error) is type(chunked_error), (pure_error, chunked_error)
        assert pure == chunked, f"the C fast path and the Python parser differ:\n{chunked!r}\n!=\n{pure!r}"
    if SPLIT_CHECK == "off" or (SPLIT_CHECK == "strict" and proto.lenient):
        return
    whole, whole_error = _feed(AmiProtocol(encoding, max_frame), [payload])
    if chunked_error is None and whole_error is None:
        assert chunked == whole, f"frames depend on how the bytes were cut:\n{chunked!r}\n!=\n{whole!r}"


def inputs(paths: Iterable[str | Path]) -> Iterator[tuple[Path, bytes]]:
    for path in map(Path, paths):
        files = sorted(p for p in path.rglob("*") if p.is_file()) if path.is_dir() else [path]
        for file in files:
            yield file, file.read_bytes()


def replay(paths: list[str]) -> int:
    """Run the target once over every file (default: the seed corpus); 0 when none crashed."""
    count = 0
    for file, data in inputs(paths or [SEED_DIR]):
        try:
            test_one_input(data)
        except Exception:
            print(f"crash on {file}", file=sys.stderr)
            raise
        count += 1
    print(f"replayed {count} input(s): no crash")
    return 0


def main() -> None:
    if len(sys.argv) > 1 and sys.argv[1] == "--replay":
        sys.exit(replay(sys.argv[2:]))
    import atheris  # type: ignore[import-untyped,import-not-found,unused-ignore]  # only for real fuzzing

    atheris.instrument_all()
    atheris.Setup(sys.argv, test_one_input)
    atheris.Fuzz()


if __name__ == "__main__":
    main()
