"""Typed events under ``mypy --strict``, on user code with the expected errors marked (``# E: ...``):
a handler annotated with an event's TypedDict type-checks under that event's name, on both clients and
in every registration form; under a misspelt name, or another event's, it is an error; a handler that
takes a plain ``dict[str, Any]`` (or a ``Frame``) stays valid under every name, and the library's own
``ami_*`` events keep handlers of their own shape."""

from __future__ import annotations

from pathlib import Path

import pytest

from ..mypy_marks import assert_type_checks_as_marked

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


def test_typed_handlers_type_check_as_marked(tmp_path: Path) -> None:
    assert_type_checks_as_marked(USER_CODE, tmp_path)
