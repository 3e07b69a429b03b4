"""Typed events under ``mypy --strict``, on user code with the expected errors marked (``# E: ...``):
a handler annotated with an event's TypedDict type-checks under that event's name, on both clients and
in every registration form; under a misspelt name, or another event's, it is an error; a handler that
takes a plain ``dict[str, Any]`` (or a ``Frame``) stays valid under every name, and the library's own
``ami_*`` events keep handlers of their own shape."""

from __future__ import annotations

import re
import textwrap
from pathlib import Path

import pytest

mypy_api = pytest.importorskip("mypy.api")

USER_CODE = """
from typing import Any

from asterisk_ami import AsteriskAmi, Frame
from asterisk_ami import asyncio as ami_asyncio
from asterisk_ami.events import DialBeginEvent, HangupEvent, NewextenEvent

ami = AsteriskAmi(host="pbx")


def on_hangup(event: HangupEvent) -> None:
    cause: str = event["cause"]
    print(cause, event.get("causetxt"), event.get("channel"))


def on_dial(event: DialBeginEvent) -> None:
    print(event["destchannel"], event.get("dialstring"))


def legacy(frame: dict[str, Any]) -> None:
    print(frame["anything"])


def plain(frame: Frame) -> None:
    print(frame)


def on_error(error: Exception) -> None:
    print(error)


ami.on("Hangup", on_hangup)
ami.once("Hangup", on_hangup)
ami.on("DialBegin", on_dial)
ami.on("Newexten", lambda event: print(event["extension"]))
ami.on("Hnagup", on_hangup)  # E: Value of type variable "DictHandler" of "on"
ami.on("DialBegin", on_hangup)  # E: Value of type variable "DictHandler" of "on"
ami.once("NewExten", on_hangup)  # E: Value of type variable "DictHandler" of "once"
ami.on("Hangup", legacy)
ami.on("Hnagup", legacy)
ami.on("MyOwnUserEvent", plain)
ami.on_pattern("Queue*", legacy)
ami.on("ami_socket_error", on_error)
ami.on("ami_login", lambda ok, frame: None)


@ami.on("Hangup")
def decorated(event: HangupEvent) -> None:
    print(event["uniqueid"])


reveal_type(decorated)  # N: Revealed type is "def (TypedDict(asterisk_ami.events.HangupEvent


@ami.on("Hangup")
def decorated_legacy(frame: dict[str, Any]) -> None:
    print(frame["uniqueid"])


reveal_type(decorated_legacy)  # N: Revealed type is "def (frame: dict[str, Any])"


@ami.on("Hnagup")  # E: Value of type variable "DictHandler" of function cannot be
def misspelt(event: HangupEvent) -> None:
    print(event["uniqueid"])


@ami.once("DialBegin")  # E: Argument 1 to "__call__" of "EventDecorator" has incompatible type
def other_event(event: HangupEvent) -> None:
    print(event["uniqueid"])


@ami.on("ami_socket_error")
def library_event(error: Exception) -> None:
    print(error)


@ami.on("Queue*")
def pattern(frame: dict[str, Any]) -> None:
    print(frame)


def bad_key(event: HangupEvent) -> None:
    print(event["destchannel"])  # E: TypedDict "HangupEvent" has no key "destchannel"


def bad_value(event: NewextenEvent) -> None:
    number: int = event["priority"]  # E: Incompatible types in assignment


async def main() -> None:
    aami = ami_asyncio.AsteriskAmi(host="pbx")

    async def on_async(event: HangupEvent) -> None:
        print(event["cause"])

    aami.on("Hangup", on_async)
    aami.on("Hnagup", on_async)  # E: Value of type variable "DictHandler" of "on"
    aami.on("Hangup", legacy)
"""


def expected(source: str) -> list[tuple[int, str, str]]:
    marks = []
    for number, line in enumerate(source.splitlines(), start=1):
        found = re.search(r"# ([EN]): (.*)$", line)
        if found:
            marks.append((number, "error" if found.group(1) == "E" else "note", found.group(2)))
    return marks


def test_typed_handlers_type_check_as_marked(tmp_path: Path) -> None:
    source = textwrap.dedent(USER_CODE)
    path = tmp_path / "user_code.py"
    path.write_text(source)
    out, _, _ = mypy_api.run(["--strict", "--no-incremental", "--cache-dir", str(tmp_path / ".mypy"), str(path)])
    got = []
    for line in out.splitlines():
        found = re.match(r".*?:(\d+): (error|note): (.*?)(  \[[a-z-]+\])?$", line)
        if found:
            got.append((int(found.group(1)), found.group(2), found.group(3)))
    marks = expected(source)
    for number, kind, text in marks:
        assert any(n == number and k == kind and t.startswith(text) for n, k, t in got), (number, text, out)
    # only the marked lines have errors (notes that explain a marked error are on its line too)
    unexpected = [g for g in got if g[1] == "error" and not any(g[0] == n for n, _, _ in marks)]
    assert not unexpected, out
