"""``asterisk_ami/events.py`` and ``asterisk_ami/typed_handlers.py`` are what the catalogue's data gives:
regenerated here and compared (nobody edits them by hand)."""

from __future__ import annotations

import typing

from asterisk_ami import events
from asterisk_ami.catalogue import RELEASES, load, typing_gen, union


def test_the_generated_files_are_fresh() -> None:
    assert typing_gen.EVENTS_FILE.read_text(encoding="utf-8") == typing_gen.render_events(), (
        "asterisk_ami/events.py is stale: python -m asterisk_ami.catalogue.typing_gen"
    )
    assert typing_gen.HANDLERS_FILE.read_text(encoding="utf-8") == typing_gen.render_handlers(), (
        "asterisk_ami/typed_handlers.py is stale: python -m asterisk_ami.catalogue.typing_gen"
    )
    assert typing_gen.main(["--check"]) == 0


def test_one_typed_dict_per_event_of_every_release_with_every_field() -> None:
    every = union()
    assert set(events.EVENT_TYPES) == set(every.events)
    for release in RELEASES:
        for name, event in load(release).events.items():
            cls = events.EVENT_TYPES[name]
            hints = typing.get_type_hints(cls)
            missing = set(event.fields) - set(hints)
            assert not missing, (release, name, missing)
            assert cls.__total__ is False  # type: ignore[attr-defined]
    assert events.EVENT_TYPES["Newexten"] is events.NewextenEvent
    assert "NewExten" not in events.EVENT_TYPES  # the wire spelling only
    hangup = typing.get_type_hints(events.HangupEvent)
    assert hangup["causetxt"] is str and hangup["cause"] is str
    assert {"destchannel", "channel", "event", "identifier"} <= set(typing.get_type_hints(events.DialBeginEvent))
