"""The clients and the catalogue, on both shells: ``on()`` warns once about an event name no release
knows, naming the right one; actions are checked against the release the server's banner names (or the
``catalogue`` option's), a warning by default and a refusal, before anything is written, with
``strict_actions=True``."""

from __future__ import annotations

import warnings
from collections.abc import Iterator
from typing import Any

import pytest

from asterisk_ami import (
    AsteriskAmi,
    CatalogueError,
    CatalogueWarning,
    InvalidMessageError,
    MissingParameterError,
    checking,
)
from asterisk_ami.live import LiveState
from asterisk_ami.testing import FakeAsterisk

from .helpers import Recorder
from .shells import SHELLS, client_factory

BANNERS = {"18": "Asterisk Call Manager/7.0.3", "20": "Asterisk Call Manager/9.0.0", "21": "Asterisk Call Manager/10.0.0"}


@pytest.fixture(autouse=True)
def fresh_warnings() -> Iterator[None]:
    checking._warned.clear()  # each warning is given once per process: start each test afresh
    yield
    checking._warned.clear()


def catalogue_warnings(record: list[warnings.WarningMessage]) -> list[str]:
    return [str(w.message) for w in record if issubclass(w.category, CatalogueWarning)]


@pytest.fixture(params=SHELLS)
def shell(request: pytest.FixtureRequest) -> str:
    return str(request.param)


def make_for(shell: str, banner: str | None = None) -> Iterator[tuple[FakeAsterisk, Any]]:
    kwargs = {} if banner is None else {"banner": banner}
    with FakeAsterisk(accounts={"admin": "secret"}, **kwargs) as fake:
        for make in client_factory(shell, fake, "secret"):
            yield fake, make


@pytest.fixture
def fake_and_make(shell: str) -> Iterator[tuple[FakeAsterisk, Any]]:
    yield from make_for(shell)


# -- event names --------------------------------------------------------------------------------------------


def test_a_misspelt_event_name_warns_once_naming_the_right_one(fake_and_make: tuple[FakeAsterisk, Any]) -> None:
    _, make = fake_and_make
    ami = make()
    with warnings.catch_warnings(record=True) as record:
        warnings.simplefilter("always")
        ami.on("Hnagup", lambda frame: None)
        ami.on("Hnagup", lambda frame: None)
        ami.once("NewExten", lambda frame: None)
    got = catalogue_warnings(record)
    assert len(got) == 2, got
    assert "Hangup" in got[0] and "Hnagup" in got[0]
    assert "Newexten" in got[1]
    assert all(w.filename == __file__ for w in record), [w.filename for w in record]  # points at the user's line


def test_known_names_library_events_and_patterns_never_warn(fake_and_make: tuple[FakeAsterisk, Any]) -> None:
    _, make = fake_and_make
    ami = make()
    with warnings.catch_warnings(record=True) as record:
        warnings.simplefilter("always")
        for name in ("Hangup", "Newexten", "DialBegin", "CoreShowChannelsComplete", "PeerEntry"):
            ami.on(name, lambda frame: None)
        for name in ("ami_data", "ami_login", "ami_socket_close", "ami_socket_error", "Queue*", "*Bridge*"):
            ami.on(name, lambda *args: None)
    assert catalogue_warnings(record) == []


def test_live_state_registers_without_warnings(fake_and_make: tuple[FakeAsterisk, Any]) -> None:
    _, make = fake_and_make
    ami = make()
    with warnings.catch_warnings(record=True) as record:
        warnings.simplefilter("always")
        LiveState(ami.ami if hasattr(ami, "loop") else ami)
    assert catalogue_warnings(record) == []


# -- actions ------------------------------------------------------------------------------------------------


def logged_in(make: Any, **options: Any) -> Any:
    ami = make(**options)
    rec = Recorder(ami)
    ami.connect()
    rec.wait_for("ami_login")
    return ami


def test_an_action_with_a_problem_warns_and_is_still_sent(fake_and_make: tuple[FakeAsterisk, Any]) -> None:
    fake, make = fake_and_make
    ami = logged_in(make)
    with warnings.catch_warnings(record=True) as record:
        warnings.simplefilter("always")
        ami.send({"Action": "Originate", "Exten": "100"})
        ami.send({"Action": "Orignate", "Channel": "Local/100@default"})
        ami.request({"Action": "Ping"})
    got = catalogue_warnings(record)
    assert any("Channel" in w and "Originate" in w for w in got), got
    assert any("did you mean" in w and "Originate" in w for w in got), got
    assert not any("Ping" in w for w in got), got
    sent = [a.get("action") for a in fake.actions]
    assert "Originate" in sent and "Orignate" in sent  # the server has the last word


def test_strict_actions_refuses_a_missing_parameter_before_writing(fake_and_make: tuple[FakeAsterisk, Any]) -> None:
    fake, make = fake_and_make
    ami = logged_in(make, strict_actions=True)
    with pytest.raises(MissingParameterError) as caught:
        ami.send({"Action": "Originate", "Exten": "100", "Context": "default"})
    assert isinstance(caught.value, InvalidMessageError)
    assert (caught.value.action, caught.value.parameter) == ("Originate", "Channel")
    assert "Channel" in str(caught.value)
    with pytest.raises(MissingParameterError):
        ami.action({"action": "originate", "exten": "100"})  # any case, as Asterisk reads it
    ami.request({"Action": "Ping"})
    assert [a.get("action") for a in fake.actions].count("Originate") == 0
    ami.send({"Action": "Originate", "Channel": "Local/100@default", "Application": "Wait", "Data": "1"})
    fake.wait_for_action("Originate")  # with its Channel it goes


@pytest.mark.parametrize(("banner", "warns"), [("20", False), ("21", True)])
def test_the_release_comes_from_the_banner(shell: str, banner: str, warns: bool) -> None:
    # SIPpeers went with chan_sip in 21: known to a 9.0.0 (Asterisk 20) server, unknown to a 10.0.0 one
    for _, make in make_for(shell, BANNERS[banner]):
        ami = logged_in(make)
        assert ami.banner == BANNERS[banner]
        with warnings.catch_warnings(record=True) as record:
            warnings.simplefilter("always")
            ami.send({"Action": "SIPpeers"})
        assert bool(catalogue_warnings(record)) is warns, catalogue_warnings(record)


def test_the_catalogue_option_pins_a_release_or_turns_checks_off(fake_and_make: tuple[FakeAsterisk, Any]) -> None:
    _, make = fake_and_make
    pinned = logged_in(make, catalogue="20")  # the fake says 11.0.0 (22); the option wins
    off = logged_in(make, catalogue=False)
    with warnings.catch_warnings(record=True) as record:
        warnings.simplefilter("always")
        pinned.send({"Action": "SIPpeers"})
        off.send({"Action": "NoSuchAction"})
    assert catalogue_warnings(record) == []


def test_an_unknown_release_in_the_option_fails_at_construction() -> None:
    with pytest.raises(CatalogueError, match="19"):
        AsteriskAmi(catalogue="19")
