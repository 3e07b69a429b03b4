"""Types a user can lean on, checked by running mypy --strict on user code (the expected errors marked):
typed options on both constructors, decorators that keep a handler typed, results typed like ``Frame``."""

from __future__ import annotations

from pathlib import Path

import pytest

from ..mypy_marks import assert_type_checks_as_marked

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


def test_user_code_type_checks_as_marked(tmp_path: Path) -> None:
    assert_type_checks_as_marked(USER_CODE, tmp_path)
