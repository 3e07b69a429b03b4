"""Types a user can lean on, checked by running mypy --strict on user code (the expected errors marked):
typed options on both constructors, decorators that keep a handler typed, results typed like ``Frame``."""

from __future__ import annotations

import re
import textwrap
from pathlib import Path

import pytest

mypy_api = pytest.importorskip("mypy.api")

USER_CODE = """
from typing import Any

from asterisk_ami import ActionError, ActionResult, AsteriskAmi, Frame
from asterisk_ami import asyncio as ami_asyncio

ami = AsteriskAmi(host="pbx", username="admin", password="secret", reconnect=True)
legacy = AsteriskAmi({"host": "pbx", "username": "admin"})  # the seed's single dict still works
bad = AsteriskAmi(reconect=True)  # E: Unexpected keyword argument "reconect"
wrong = ami_asyncio.AsteriskAmi(ping_interval="soon")  # E: Argument "ping_interval" to "AsteriskAmi" has incompatible type "str"


@ami.on("Hangup")
def on_hangup(frame: dict[str, Any]) -> None:
    print(frame["channel"])


def check(frame: dict[str, Any]) -> int:
    return len(frame)


reveal_type(on_hangup)  # N: Revealed type is "def (frame: dict[str, Any])"
ami.on("Newchannel", check)
ami.once("FullyBooted", check)
ami.on_pattern("Queue*", check)


async def main() -> None:
    aami = ami_asyncio.AsteriskAmi(host="pbx")

    @aami.on("Hangup")
    async def on_async(frame: dict[str, Any]) -> None:
        pass

    result: ActionResult = await aami.request({"Action": "Ping"})
    value = result["ping"]
    reveal_type(value)  # N: Revealed type is "str | list[str]"


def errors(exc: ActionError) -> None:
    if exc.frame is not None:
        reveal_type(exc.frame)  # N: Revealed type is "dict[str, str | list[str]]"
"""


def expected(source: str) -> list[tuple[int, str, str]]:
    marks = []
    for number, line in enumerate(source.splitlines(), start=1):
        found = re.search(r"# ([EN]): (.*)$", line)
        if found:
            marks.append((number, "error" if found.group(1) == "E" else "note", found.group(2)))
    return marks


def test_user_code_type_checks_as_marked(tmp_path: Path) -> None:
    source = textwrap.dedent(USER_CODE)
    path = tmp_path / "user_code.py"
    path.write_text(source)
    out, _, _ = mypy_api.run(["--strict", "--no-incremental", "--cache-dir", str(tmp_path / ".mypy"), str(path)])
    got = []
    for line in out.splitlines():
        found = re.match(r".*?:(\d+): (error|note): (.*?)(  \[[a-z-]+\])?$", line)
        if found:
            got.append((int(found.group(1)), found.group(2), found.group(3)))
    for number, kind, text in expected(source):
        assert any(n == number and k == kind and t.startswith(text) for n, k, t in got), (number, text, out)
    unexpected = [g for g in got if not any(g[0] == n for n, _, _ in expected(source))]
    assert unexpected == [], out
