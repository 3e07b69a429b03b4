"""Every event frame of the recorded Asterisk 22 session checks clean against the Asterisk 22 catalogue.

The recording (``../shared/data/asterisk22-session.bin``, see ``../shared/README.md``) is what a real
22.10 server sent; a problem here is a gap in the catalogue or its overlay, to be fixed with evidence.
"""

from __future__ import annotations

import os
from collections import Counter
from pathlib import Path

import pytest

from asterisk_ami import catalogue
from asterisk_ami.protocol import AmiProtocol

SHARED = Path(os.environ.get("ASTERISK_AMI_SHARED", Path(__file__).parents[1].parent / "shared"))
SESSION = SHARED / "data" / "asterisk22-session.bin"


def _frames() -> list[dict[str, str | list[str]]]:
    if not SESSION.is_file():
        pytest.skip(f"no recorded session at {SESSION} (set ASTERISK_AMI_SHARED)")
    protocol = AmiProtocol()
    frames = protocol.receive_data(SESSION.read_bytes())
    assert protocol.banner == "Asterisk Call Manager/11.0.0"
    return frames


def test_every_event_frame_checks_clean() -> None:
    cat = catalogue.for_banner("Asterisk Call Manager/11.0.0")
    assert cat.major == "22"
    checked: Counter[str] = Counter()
    problems = []
    for number, frame in enumerate(_frames()):
        if "event" not in frame:
            assert cat.check_frame(frame) == []  # responses are not checked
            continue
        checked[str(frame["event"])] += 1
        problems += [f"frame {number}: {p}" for p in cat.check_frame(frame)]
    assert problems == []
    assert sum(checked.values()) > 400
    # the overlay's part: the wire spelling, an undocumented event, a list end with EventList/ListItems
    assert checked["Newexten"] > 0 and checked["TestEvent"] > 0 and checked["CoreShowChannelsComplete"] > 0


def test_the_session_would_fail_without_the_overlay_facts() -> None:
    """The clean check above is not vacuous: a changed frame is caught."""
    cat = catalogue.load("22")
    newexten = next(f for f in _frames() if f.get("event") == "Newexten")
    assert [p.kind for p in cat.check_frame({**newexten, "event": "NewExten"})] == ["unknown-event"]
    assert [p.kind for p in cat.check_frame({**newexten, "bogusheader": "1"})] == ["unknown-field"]
    state = {**newexten, "channelstatedesc": "Sleeping"}
    assert [p.kind for p in cat.check_frame(state)] == ["unknown-value"]
