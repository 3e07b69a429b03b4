"""The pytest plugin's fixtures (issue 19): ``ami_client``, ``wait_for_event`` and ``async_ami_client`` make
the natural test (push an event, wait for it, assert) right every time. The proof runs the plugin in a
pytest of its own, as a user's test file would, 200 times per shell."""

from __future__ import annotations

import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

import pytest

from asterisk_ami import AsteriskAmi
from asterisk_ami.testing import AsyncAmiRunner, FakeAsterisk

USER_TESTS = """
import asyncio
import threading
import time

import pytest


@pytest.mark.parametrize("n", range(200))
def test_threaded(fake_asterisk, ami_client, wait_for_event, n):
    seen = []

    def slow_handler(frame):  # runs on the dispatch thread, after the push has returned
        time.sleep(0.0005)
        seen.append(frame["channel"])

    ami_client.on("Hangup", slow_handler)
    fake_asterisk.push_event("Hangup", Channel=f"PJSIP/{n}", Cause="16")
    assert wait_for_event("Hangup")["channel"] == f"PJSIP/{n}"
    assert seen == [f"PJSIP/{n}"]  # the handler has run when the wait returns


@pytest.mark.parametrize("n", range(200))
def test_asyncio(fake_asterisk, async_ami_client, n):
    seen = []
    async_ami_client.ami.on("Hangup", lambda frame: seen.append(frame["channel"]))
    fake_asterisk.push_event("Hangup", Channel=f"PJSIP/{n}", Cause="16")
    assert async_ami_client.wait_for_event("Hangup", Channel=f"PJSIP/{n}")["cause"] == "16"
    assert seen == [f"PJSIP/{n}"]
    assert async_ami_client.run(async_ami_client.ami.request({"Action": "Ping"}))["ping"] == "Pong"


@pytest.mark.fake_asterisk(accounts={"bob": "pw"})
@pytest.mark.ami_client(events="system")
def test_markers(fake_asterisk, ami_client):
    assert fake_asterisk.sessions[0].username == "bob"
    assert fake_asterisk.sessions[0].events_on == "system"
"""


def test_the_natural_test_passes_every_time(tmp_path: Path) -> None:
    (tmp_path / "test_user.py").write_text(USER_TESTS)
    proc = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "-W", "error", str(tmp_path)],
        capture_output=True,
        text=True,
        timeout=300,
        cwd=tmp_path,  # a user's project: no conftest of ours, only the installed plugin
    )
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-2000:]
    assert "401 passed" in proc.stdout, proc.stdout[-500:]


def test_wait_for_event_sees_events_from_before_the_call(
    fake_asterisk: FakeAsterisk, ami_client: AsteriskAmi, wait_for_event: Any
) -> None:
    fake_asterisk.push_event("UserEvent", UserEvent="first")
    fake_asterisk.push_event("UserEvent", UserEvent="second")
    time.sleep(0.05)  # both are in before the waits: each is still handed out, once, in order
    assert wait_for_event("UserEvent")["userevent"] == "first"
    assert wait_for_event("UserEvent")["userevent"] == "second"
    with pytest.raises(TimeoutError, match=r"no UserEvent event within 0\.2 s"):
        wait_for_event("UserEvent", timeout=0.2)


def test_wait_for_event_filters_on_headers(
    fake_asterisk: FakeAsterisk, ami_client: AsteriskAmi, wait_for_event: Any
) -> None:
    threading.Timer(0.05, lambda: fake_asterisk.push_event("Hangup", Channel="PJSIP/1", Cause="17")).start()
    threading.Timer(0.1, lambda: fake_asterisk.push_event("Hangup", Channel="PJSIP/2", Cause="16")).start()
    assert wait_for_event("Hangup", Channel="PJSIP/2")["cause"] == "16"
    assert wait_for_event("Hangup")["channel"] == "PJSIP/1"  # the one passed over is still there


def test_the_asyncio_runner_fails_a_bad_login_clearly(fake_asterisk: FakeAsterisk) -> None:
    runner = AsyncAmiRunner({**fake_asterisk.client_options(), "password": "wrong"})
    try:
        with pytest.raises(Exception, match="uthentication"):
            runner.start()
    finally:
        runner.close()


def test_the_documented_example_passes(tmp_path: Path) -> None:
    # the example of the testing tools' page (it lived in README before the docs site)
    page = (Path(__file__).resolve().parent.parent / "docs" / "reference" / "testing.md").read_text()
    section = page[page.index("<!-- example: pytest -->") :]
    start = section.index("```python\n") + len("```python\n")
    (tmp_path / "test_readme.py").write_text(section[start : section.index("```", start)])
    proc = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", str(tmp_path)],
        capture_output=True,
        text=True,
        timeout=120,
        cwd=tmp_path,
    )
    assert proc.returncode == 0 and "2 passed" in proc.stdout, proc.stdout[-2000:]
