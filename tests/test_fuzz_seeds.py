"""Keep the fuzz target alive without atheris: run it over its seed corpus and deterministic mutations."""

from __future__ import annotations

import importlib.util
import random
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from types import ModuleType

import pytest

from asterisk_ami.protocol import AmiProtocol

ROOT = Path(__file__).resolve().parent.parent
TARGET = ROOT / "fuzz" / "fuzz_protocol.py"
SEEDS = sorted((ROOT / "fuzz" / "seed").iterdir())
MUTATIONS_PER_SEED = 150


def load_target() -> ModuleType:
    spec = importlib.util.spec_from_file_location("fuzz_protocol", TARGET)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="module")
def target() -> Callable[[bytes], None]:
    module = load_target()
    assert module.SPLIT_CHECK == "all"
    run: Callable[[bytes], None] = module.test_one_input
    return run


TOKENS = (
    b"\r",
    b"\n",
    b"\r\n",
    b"\r\n\r\n",
    b"\n\n",
    b"\x00",
    b": ",
    b":",
    b"\xff",
    b"\xc3",
    b"--END COMMAND--",
    b"Response: Follows\r\n",
    b"Event: ",
    b"EventList: Complete\r\n",
    b"Asterisk Call Manager/1.1\n",
    b"\r\n\n",
    b"\n\r\n",
    b"PBX Call Manager/5.0.0\r\n",
)


def mutate(data: bytes, rng: random.Random) -> bytes:
    """A few libFuzzer-like edits: flip, insert a protocol token, delete, duplicate, truncate."""
    buf = bytearray(data)
    for _ in range(rng.randint(1, 4)):
        op = rng.randrange(5)
        pos = rng.randrange(len(buf) + 1)
        if op == 0 and buf:
            buf[min(pos, len(buf) - 1)] ^= 1 << rng.randrange(8)
        elif op == 1:
            buf[pos:pos] = rng.choice(TOKENS)
        elif op == 2:
            del buf[pos : pos + rng.randint(1, 16)]
        elif op == 3:
            buf[pos:pos] = buf[pos : pos + rng.randint(1, 64)]
        else:
            del buf[pos:]
    return bytes(buf)


def test_seed_corpus_is_small_and_present() -> None:
    assert len(SEEDS) >= 5
    assert all(0 < p.stat().st_size <= 4096 for p in SEEDS)


@pytest.mark.parametrize("seed", SEEDS, ids=lambda p: p.name)
def test_target_over_seed_and_its_mutations(target: Callable[[bytes], None], seed: Path) -> None:
    data = seed.read_bytes()
    target(data)
    rng = random.Random(seed.name)  # deterministic per seed
    for _ in range(MUTATIONS_PER_SEED):
        target(mutate(data, rng))


def test_target_on_edge_inputs(target: Callable[[bytes], None]) -> None:
    for data in (b"", b"\x00", b"\x03" * 5, b"\x00\x00\x00\x00\x00" + b"A" * 100, bytes(range(256))):
        target(data)


def test_replay_mode_runs_without_atheris() -> None:
    proc = subprocess.run(
        [sys.executable, str(TARGET), "--replay"],
        capture_output=True,
        text=True,
        timeout=60,
        cwd=ROOT,
    )
    assert proc.returncode == 0, proc.stderr
    assert f"replayed {len(SEEDS)} input(s)" in proc.stdout


def test_lenient_stream_frames_do_not_depend_on_the_cut() -> None:
    """Regression found by fuzz/run: in lenient (bare-LF) mode a CRLF line followed by the blank LF line
    keeps a stray CR when a read ends right after the frame."""
    data = b"Asterisk Call Manager/1.1\nEvent: A\r\n\nEvent: B\n\n"
    whole = AmiProtocol().receive_data(data)
    cut = data.index(b"\r\n\n") + 3
    proto = AmiProtocol()
    chunked = proto.receive_data(data[:cut]) + proto.receive_data(data[cut:])
    assert whole == [{"event": "A"}, {"event": "B"}]
    assert chunked == whole


def test_blank_line_after_legacy_command_output_does_not_depend_on_the_cut() -> None:
    """Regression found by fuzz/run: an extra CRLF after a ``Response: Follows`` frame, with a read ending
    right after it, put the ``--END COMMAND--`` marker and an empty line into ``output``."""
    data = (
        b"Asterisk Call Manager/11.0.0\r\n"
        b"Response: Follows\r\nPrivilege: Command\r\nActionID: 1\r\nfoo\n--END COMMAND--\r\n\r\n\r\n"
        b"Event: B\r\n\r\n"
    )
    whole = AmiProtocol().receive_data(data)
    assert whole[0]["output"] == ["foo"] and whole[1] == {"event": "B"}
    for cut in range(len(data) + 1):
        proto = AmiProtocol()
        chunked = proto.receive_data(data[:cut]) + proto.receive_data(data[cut:])
        assert chunked == whole, f"cut at {cut}: {chunked!r}"
