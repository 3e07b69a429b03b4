"""Every code example of the docs site runs, so none goes stale (tests/docs_helpers.py says how).

Each example runs in a process of its own (as a reader would run it), with a timeout; ``fake`` examples
talk to the FakeAsterisk PBX of tests/docs_pbx.py, served from this process.
"""

from __future__ import annotations

import ast
import contextlib
import importlib
import importlib.util
import inspect
import os
import re
import signal
import subprocess
import sys
import textwrap
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import IO

import pytest

from asterisk_ami.testing import FakeAsterisk

from .docs_helpers import DOCS, ROOT, Example, all_examples, example_pages, page_examples
from .docs_pbx import SCRIPTS, pbx

EXAMPLES = all_examples()
TIMEOUT = 60.0
HOST = re.compile(r"""(?P<q>["'])host(?P=q)\s*:\s*(?P<v>["'])pbx(?P=v)|host\s*=\s*(?P<w>["'])pbx(?P=w)""")


def _with_server(code: str, host: str, port: int) -> str:
    """The example's ``host="pbx"`` (or ``'host': 'pbx'``) pointed at the fake PBX."""

    def sub(match: re.Match[str]) -> str:
        if match.group("q"):
            return f"'host': {host!r}, 'port': {port}"
        return f"host={host!r}, port={port}"

    out, n = HOST.subn(sub, code)
    # keyword style may also pass port=5038 itself: the fake's port wins (the first one given)
    out = re.sub(r"(port=\d+), port=5038\b", r"\1", out)
    out = re.sub(r"(port=\d+)(, username=[^,]+, password=[^,)]+)?, port=5038\b", r"\1\2", out)
    if n == 0:
        raise AssertionError('a "fake" example must connect with host="pbx" (the runner points it at FakeAsterisk)')
    return out


def _run(example: Example, code: str, tmp_path: Path, fake: FakeAsterisk | None = None) -> Result:
    """Run the example in its own process; play its script meanwhile; stop a service once it printed."""
    script = tmp_path / "example.py"
    script.write_text(code, encoding="utf-8")
    proc = subprocess.Popen(
        [sys.executable, str(script)],
        cwd=tmp_path,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env={**os.environ, "PYTHONUNBUFFERED": "1"},
    )
    out: list[str] = []
    err: list[str] = []
    readers = [threading.Thread(target=_collect, args=(s, to), daemon=True) for s, to in ((proc.stdout, out), (proc.stderr, err))]
    for reader in readers:
        reader.start()
    play = SCRIPTS[example.script] if example.script else None
    deadline = time.monotonic() + TIMEOUT
    step = 0
    try:
        while proc.poll() is None:
            if time.monotonic() > deadline:
                raise AssertionError(f"{example.id} did not finish within {TIMEOUT} s; it printed {''.join(out)!r}")
            if play is not None and fake is not None and fake.login_count >= 1:
                play(fake, step)
                step += 1
            if example.service and example.expect and example.expect in "".join(out):
                proc.send_signal(signal.SIGTERM)
                proc.wait(timeout=max(1.0, deadline - time.monotonic()))
                break
            with contextlib.suppress(subprocess.TimeoutExpired):
                proc.wait(timeout=0.2)  # the pace of the script, and how soon an ended example is seen
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        for reader in readers:
            reader.join(10)
    return Result(proc.returncode, "".join(out), "".join(err))


def _collect(stream: IO[str] | None, into: list[str]) -> None:
    assert stream is not None
    for line in stream:
        into.append(line)


@dataclass(frozen=True)
class Result:
    returncode: int
    stdout: str
    stderr: str


def _check(example: Example, result: Result) -> None:
    assert result.returncode == 0, (
        f"{example.id} exited {result.returncode}\n--- stdout\n{result.stdout}\n--- stderr\n{result.stderr}"
    )
    if example.expect:
        # whitespace aside: print() writes its parts one by one, and another thread's line can come between
        assert " ".join(example.expect.split()) in " ".join(result.stdout.split()), (
            f"{example.id} did not print {example.expect!r}:\n{result.stdout}"
        )


def _imports_resolve(code: str) -> None:
    """Every ``from asterisk_ami... import name`` and ``import asterisk_ami...`` of the code exists."""
    for node in ast.walk(ast.parse(code)):
        if isinstance(node, ast.ImportFrom) and node.module and node.module.split(".")[0] == "asterisk_ami":
            module = importlib.import_module(node.module)
            for alias in node.names:
                try:
                    present = hasattr(module, alias.name)
                except ImportError as exc:
                    # a name behind an extra (RemoteAmi needs nats-py): the version matrix installs 'test' only
                    missing = (getattr(exc.__cause__, "name", None) or "").split(".")[0]
                    if missing and importlib.util.find_spec(missing) is None:
                        pytest.skip(f"{node.module}.{alias.name} needs {missing}, not installed here")
                    raise
                assert present, f"{node.module} has no {alias.name}"
        elif isinstance(node, ast.Import):
            for alias in node.names:
                if alias.name.split(".")[0] == "asterisk_ami":
                    importlib.import_module(alias.name)


@pytest.mark.parametrize("example", EXAMPLES, ids=[e.id for e in EXAMPLES])
def test_example(example: Example, tmp_path: Path) -> None:
    if example.kind == "compile":
        compile(example.code, example.id, "exec", flags=ast.PyCF_ALLOW_TOP_LEVEL_AWAIT)
        _imports_resolve(example.code)
        return
    if example.kind == "pytest":
        (tmp_path / "test_example.py").write_text(example.code, encoding="utf-8")
        proc = subprocess.run(
            [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "test_example.py"],
            cwd=tmp_path, capture_output=True, text=True, timeout=TIMEOUT,
        )
        assert proc.returncode == 0, f"{example.id}:\n{proc.stdout}\n{proc.stderr}"
        assert " passed" in proc.stdout and "failed" not in proc.stdout, proc.stdout
        return
    if example.kind == "run":
        _check(example, _run(example, example.code, tmp_path))
        return
    with pbx() as fake:
        code = _with_server(example.code, fake.host, fake.port)
        result = _run(example, code, tmp_path, fake)
        assert fake.login_count >= 1, f"{example.id} never logged in to the fake PBX"
        assert not fake.responder_errors, fake.responder_errors
    _check(example, result)


def test_every_page_has_examples_only_with_markers() -> None:
    """An unmarked python block, or a marker with no block under it, is an error of the page."""
    for path in example_pages():
        list(page_examples(path))  # raises ValueError naming the page and line


def test_an_unmarked_block_is_refused(tmp_path: Path) -> None:
    page = DOCS / "_unmarked_test_page.md"
    try:
        page.write_text("# t\n\n```python\nprint(1)\n```\n", encoding="utf-8")
        with pytest.raises(ValueError, match="without an <!-- example: KIND --> marker"):
            list(page_examples(page))
    finally:
        page.unlink()


def test_the_host_substitution_points_both_styles_at_the_server() -> None:
    code = 'AsteriskAmi(host="pbx", port=5038, username="a")\nAsteriskAmi({"host": "pbx", "username": "a"})\n'
    out = _with_server(code, "127.0.0.1", 4321)
    assert "host='127.0.0.1', port=4321, username" in out and "'host': '127.0.0.1', 'port': 4321" in out
    assert "5038" not in out
    assert ROOT.is_dir()


WIRE = re.compile(r"^[A-Z][\w-]*: \S")


def _docstring_blocks(text: str) -> list[str]:
    """The literal blocks of a docstring: the indented lines after a paragraph that ends in ``::``."""
    lines = inspect.cleandoc(text).splitlines()
    blocks = []
    for i, line in enumerate(lines):
        if not line.rstrip().endswith("::"):
            continue
        body: list[str] = []
        for follow in lines[i + 1 :]:
            if follow.strip() and not follow.startswith((" ", "\t")):
                break
            body.append(follow)
        if any(b.strip() for b in body):
            blocks.append(textwrap.dedent("\n".join(body)))
    return blocks


def _documented_objects() -> list[tuple[str, object]]:
    from .test_docs_reference import reference_modules

    out: list[tuple[str, object]] = []
    for name in reference_modules():
        module = importlib.import_module(name)
        out.append((name, module))
        for export in module.__all__:
            obj = getattr(module, export)
            out.append((f"{name}.{export}", obj))
            if inspect.isclass(obj):
                out += [(f"{name}.{export}.{k}", v) for k, v in vars(obj).items() if not k.startswith("_")]
    return out


def test_the_examples_in_docstrings_compile_and_import_what_exists() -> None:
    """What the API reference shows from docstrings: compiled (they are fragments), imports checked."""
    checked = 0
    for where, obj in _documented_objects():
        doc = getattr(obj, "__doc__", None) if not isinstance(obj, property) else obj.__doc__
        if not isinstance(doc, str):
            continue
        for block in _docstring_blocks(doc):
            if WIRE.match(block.lstrip()):  # AMI bytes as text ("Response: Success / ..."), not Python
                continue
            compile(block, where, "exec", flags=ast.PyCF_ALLOW_TOP_LEVEL_AWAIT)
            _imports_resolve(block)
            checked += 1
    assert checked >= 3
