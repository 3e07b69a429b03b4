"""``originate()``'s options against a real Asterisk 22, on both shells: variables (a mapping with a None
left out, or ``NAME=value`` strings), codecs as the one comma-separated header, and a failed originate.

Dialplan (scripts/asterisk_sandbox/config.py): ``Local/200@default`` answers and waits.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

import pytest

from asterisk_ami import AsteriskAmi, InvalidMessageError

from ..helpers import wait_until
from ..shells import SHELLS, AsyncioClient, LoopThread

if TYPE_CHECKING:
    from .conftest import AsteriskServer

TIMEOUT = 20.0


@pytest.fixture(params=SHELLS)
def ami(request: pytest.FixtureRequest, asterisk_server: AsteriskServer) -> Iterator[Any]:
    loop = LoopThread() if request.param == "asyncio" else None
    options = asterisk_server.options(connect_timeout=10)
    client: Any = AsteriskAmi(**options) if loop is None else AsyncioClient(loop, **options)
    client.connect()
    wait_until(lambda: client.connected, TIMEOUT, "the login")
    try:
        yield client
    finally:
        client.destroy()
        if loop is not None:
            loop.stop()


def getvar(ami: Any, channel: str, name: str) -> str:
    return str(ami.request({"Action": "Getvar", "Channel": channel, "Variable": name}, timeout=TIMEOUT)["value"])


def test_variables_and_codecs_reach_the_channel(ami: Any) -> None:
    result = ami.originate(
        "Local/200@default", application="Wait", data="5", variables={"A": 1, "B": None}, codecs=["gsm", "ulaw"]
    ).result(TIMEOUT)
    assert result.success and result.uniqueid
    assert getvar(ami, result.channel, "A") == "1"
    assert getvar(ami, result.channel, "B") == ""  # left out, not the text 'None'
    assert getvar(ami, result.channel, "CHANNEL(audionativeformat)") == "(gsm)"  # Asterisk read the list
    listed = ami.originate(
        "Local/200@default", application="Wait", data="5", variables=["C=3", "D=x=y"], codecs="alaw"
    ).result(TIMEOUT)
    assert listed.success
    assert (getvar(ami, listed.channel, "C"), getvar(ami, listed.channel, "D")) == ("3", "x=y")
    assert getvar(ami, listed.channel, "CHANNEL(audionativeformat)") == "(alaw)"
    for channel in (result.channel, listed.channel):
        ami.request({"Action": "Hangup", "Channel": channel}, timeout=TIMEOUT)


def test_a_failed_originate_has_no_uniqueid(ami: Any) -> None:
    failed = ami.originate("Local/999@nowhere", application="Wait", data="1").result(TIMEOUT)
    assert (failed.success, failed.reason_name, failed.uniqueid) == (False, "failure", None)
    assert failed.event["uniqueid"] == "<unknown>"  # what Asterisk sent is still there
    with pytest.raises(InvalidMessageError):
        ami.originate("Local/200@default", application="Wait", variables=["A"]).result(TIMEOUT)
