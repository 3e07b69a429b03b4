"""The catalogue runtime: loading, lookups, checks, the overlay, hints and diffs."""

from __future__ import annotations

import json
import lzma
import os
import subprocess
import sys
from pathlib import Path

import pytest

from asterisk_ami import catalogue
from asterisk_ami.catalogue import Catalogue, CatalogueError, Problem
from asterisk_ami.catalogue.overlay import OVERLAY_PATH, evidence_entries, load_overlay
from asterisk_ami.errors import AmiError

SHARED_DOCS = Path(os.environ.get("ASTERISK_AMI_SHARED", Path(__file__).parents[1].parent / "shared")) / "asterisk-docs"

# a small DATA DICT in the generator's format, for rules that must not depend on a release's data
SMALL = {
    "format": 1,
    "release": "99.1.0",
    "actions": {
        "Ping": {"modules": ["manager"], "params": {"ActionID": {"required": False}}, "families": {}, "responses": []},
        "Setvar": {
            "modules": ["manager"],
            "params": {
                "ActionID": {"required": True},
                "Variable": {"required": True},
                "Value": {"required": True},
                "Mode": {"required": False, "enum": ["Fast", "Slow"]},
                "Early": {"required": False, "enum": ["true", "false"]},
            },
            "families": {"Var": {"pattern": "^Var-\\d{6}$", "required": False}},
            "responses": [],
        },
    },
    "events": {
        "NewExten": {
            "modules": ["manager_channels"],
            "privilege": ["dialplan"],
            "fields": {
                "channel": {"name": "Channel"},
                "channelstate": {"name": "ChannelState", "enum": ["0", "6"]},
                "uniqueid": {"name": "Uniqueid"},
                "linkedid": {"name": "Linkedid"},
                "application": {"name": "Application"},
            },
            "families": {},
        },
        "Thing": {"modules": ["x"], "privilege": [], "fields": {"count": {"name": "Count"}}, "families": {}},
    },
}


def small() -> Catalogue:
    return Catalogue(SMALL, load_overlay(), "small")


# -- loading --------------------------------------------------------------------------------------


@pytest.mark.parametrize("major", catalogue.RELEASES)
def test_every_release_loads(major: str) -> None:
    cat = catalogue.load(major)
    assert cat.major == major
    assert cat.release is not None and cat.release.startswith(major + ".")
    assert len(cat.actions) > 140 and len(cat.events) > 160
    assert cat.action("Originate") is not None and cat.event("Hangup") is not None
    assert catalogue.load(cat.release) is cat  # the full release number names the same catalogue


def test_releases_and_caching() -> None:
    assert catalogue.RELEASES == ("18", "20", "21", "22", "23")
    assert catalogue.load("22") is catalogue.load("22")
    assert catalogue.union() is catalogue.union()


def test_unknown_release_names_the_known_ones() -> None:
    with pytest.raises(CatalogueError, match="18, 20, 21, 22, 23") as info:
        catalogue.load("19")
    assert isinstance(info.value, AmiError) and isinstance(info.value, ValueError)
    with pytest.raises(CatalogueError):
        catalogue.load("22.1.0")  # not the release shipped
    with pytest.raises(CatalogueError, match="neither a release"):
        catalogue.load("/nonexistent/core-en_US.xml")


def test_unreadable_xml_is_a_catalogue_error(tmp_path: Path) -> None:
    bad = tmp_path / "core-en_US.xml"
    bad.write_text("<docs><manager name=")
    with pytest.raises(CatalogueError, match="cannot read"):
        catalogue.load(bad)


def test_load_a_path_is_cached_by_mtime(tmp_path: Path) -> None:
    source = SHARED_DOCS / "22.10.1" / "core-en_US.xml.xz"
    if not source.is_file():
        pytest.skip(f"no shared Asterisk documentation at {SHARED_DOCS} (set ASTERISK_AMI_SHARED)")
    target = tmp_path / "22.10.1"
    target.mkdir()
    xml = target / "core-en_US.xml"
    xml.write_bytes(lzma.decompress(source.read_bytes()))
    (target / "appdocsxml.xslt").write_bytes((source.parent / "appdocsxml.xslt").read_bytes())
    first = catalogue.load(xml)
    assert catalogue.load(str(xml)) is first
    assert sorted(first.actions) == sorted(catalogue.load("22").actions)
    assert first.event("NewExten") is not None and "Newexten" in first.events  # the overlay applies
    os.utime(xml, ns=(xml.stat().st_atime_ns, xml.stat().st_mtime_ns + 10**9))
    assert catalogue.load(xml) is not first


@pytest.mark.parametrize(("release", "major"), [("20.20.1", "20"), ("21.12.3", "21"), ("22.10.1", "22")])
def test_an_installed_xml_names_no_release_and_is_told_by_its_names(tmp_path: Path, release: str, major: str) -> None:
    # as /usr/share/asterisk/documentation/ holds it: no version in the path; the overlay must add only that
    # release's undocumented events (chan_sip's lists are 18/20 only)
    source = SHARED_DOCS / release / "core-en_US.xml.xz"
    if not source.is_file():
        pytest.skip(f"no shared Asterisk documentation at {SHARED_DOCS} (set ASTERISK_AMI_SHARED)")
    target = tmp_path / "documentation"
    target.mkdir()
    (target / "core-en_US.xml").write_bytes(lzma.decompress(source.read_bytes()))
    (target / "appdocsxml.xslt").write_bytes((source.parent / "appdocsxml.xslt").read_bytes())
    mine = catalogue.load(target / "core-en_US.xml")
    assert mine.release is None and mine.major == major  # 22 and 23 document the same AMI: the older is named
    assert set(mine.events) == set(catalogue.load(major).events)
    assert set(mine.actions) == set(catalogue.load(major).actions)


def test_import_reads_no_data_and_asterisk_ami_does_not_import_it() -> None:
    code = (
        "import sys, asterisk_ami; assert 'asterisk_ami.catalogue' not in sys.modules;"
        "import asterisk_ami.catalogue as c; assert c._read_release.cache_info().currsize == 0;"
        "assert c.load_overlay.cache_info().currsize == 0"
    )
    subprocess.run([sys.executable, "-c", code], check=True)


@pytest.mark.parametrize(
    ("banner", "major"),
    [
        ("Asterisk Call Manager/7.0.3", "18"),
        ("Asterisk Call Manager/9.0.0", "20"),
        ("Asterisk Call Manager/10.0.0", "21"),
        ("Asterisk Call Manager/11.0.0", "22"),
        ("Asterisk Call Manager/12.0.0", "23"),
        ("Asterisk Call Manager/99.0.0", "23"),
        ("garbage", "23"),
    ],
)
def test_for_banner(banner: str, major: str) -> None:
    assert catalogue.for_banner(banner) is catalogue.load(major)


# -- objects --------------------------------------------------------------------------------------


def test_lookups_by_wire_name_in_any_case() -> None:
    cat = catalogue.load("22")
    assert "Newexten" in cat.events and "NewExten" not in cat.events
    newexten = cat.event("NewExten")
    assert newexten is not None and newexten.name == "Newexten" and newexten.documented
    assert cat.event("NEWEXTEN") is newexten and cat.event("nope") is None
    originate = cat.action("ORIGINATE")
    assert originate is not None and originate.name == "Originate"
    channel = originate.param("channel")
    assert channel is not None and channel.required and channel.name == "Channel"
    with pytest.raises(AttributeError):
        cat.release = "x"
    with pytest.raises(TypeError):
        cat.actions["X"] = originate  # type: ignore[index]


def test_snapshot_fields_are_added_per_prefix() -> None:
    cat = catalogue.load("22")
    dial = cat.events["DialBegin"]
    for key in ("tenantid", "chanvariable", "desttenantid", "destchanvariable"):
        assert key in dial.fields
    assert dial.fields["destchanvariable"].name == "DestChanVariable"
    assert "tenantid" not in cat.events["FullyBooted"].fields  # no snapshot, nothing added
    assert {"eventlist", "listitems"} <= set(cat.events["StatusComplete"].fields)


def test_undocumented_and_renamed_events() -> None:
    cat = catalogue.load("22")
    cc = cat.events["CCAvailable"]
    assert not cc.documented
    assert {"eventlist", "listitems"} <= set(cat.events["QueueStatusComplete"].fields)
    assert cat.events["DialBegin"].renamed_from == ("Dial",)
    assert "DevicelistComplete" in catalogue.load("20").events  # chan_skinny, gone in 21
    assert "DevicelistComplete" not in cat.events


# -- check_action ---------------------------------------------------------------------------------


def kinds(problems: list[Problem]) -> list[tuple[str, str]]:
    return [(p.kind, p.name) for p in problems]


def test_check_action_originate() -> None:
    cat = catalogue.load("22")
    missing = cat.check_action({"Action": "Originate", "Exten": "100"})
    assert kinds(missing) == [("missing-parameter", "Channel")]
    assert "Channel" in str(missing[0])
    typo = cat.check_action({"Action": "Orignate", "Channel": "PJSIP/a"})
    assert kinds(typo) == [("unknown-action", "Orignate")]
    assert typo[0].hint == "Originate" and 'did you mean "Originate"?' in str(typo[0])
    fine = {"action": "originate", "CHANNEL": "PJSIP/a", "ActionID": "1", "Variable": ["a=1", "b=2"]}
    assert cat.check_action(fine) == []
    wrong = cat.check_action({"Action": "Originate", "Channel": "x", "Chanel": "y"})
    assert kinds(wrong) == [("unknown-parameter", "Chanel")]
    assert cat.check_action({"Channel": "x"})[0].kind == "missing-parameter"


def test_check_action_rules_on_a_small_catalogue() -> None:
    cat = small()
    # ActionID is never needed, whatever the data say; families match in any case
    ok = {"Action": "setvar", "variable": "v", "VALUE": "1", "var-000001": "x", "Mode": "fast"}
    assert cat.check_action(ok) == []
    assert kinds(cat.check_action({"Action": "Setvar", "Variable": "v"})) == [("missing-parameter", "Value")]
    bad_family = cat.check_action({"Action": "Setvar", "Variable": "v", "Value": "1", "Var-1": "x"})
    assert kinds(bad_family) == [("unknown-parameter", "Var-1")]
    bad = cat.check_action({"Action": "Setvar", "Variable": "v", "Value": "1", "Mode": ["Fast", "Medium"]})
    assert kinds(bad) == [("unknown-value", "Mode")] and "Medium" in str(bad[0])
    for word in ("yes", "TRUE", "y", "t", "1", "on", "no", "Off", "0", "f"):
        assert cat.check_action({"Action": "Setvar", "Variable": "v", "Value": "1", "Early": word}) == [], word
    assert kinds(cat.check_action({"Action": "Setvar", "Variable": "v", "Value": "1", "Early": "maybe"})) == [
        ("unknown-value", "Early")
    ]


def test_check_action_overlay_leniency() -> None:
    cat = catalogue.load("22")
    login = {"Action": "Login", "Username": "u", "Secret": "s", "Events": "system,call"}
    assert cat.check_action(login) == []
    assert cat.check_action({"Action": "UserEvent", "UserEvent": "Foo", "Anything": "1"}) == []
    assert cat.check_action({"Action": "Status", "AllVariables": "yes"}) == []


# -- check_frame ----------------------------------------------------------------------------------


def test_check_frame_rules() -> None:
    cat = small()
    frame = {"event": "Newexten", "privilege": "dialplan,all", "channel": "PJSIP/a-1", "channelstate": "6"}
    extra = {"uniqueid": "1", "linkedid": "1", "timestamp": "1.0", "systemname": "pbx", "identifier": "pbx1"}
    assert cat.check_frame({**frame, **extra}) == []
    assert cat.check_frame({**frame, "chanvariable": ["a=1", "b=2"], "tenantid": "t"}) == []
    assert kinds(cat.check_frame({**frame, "channelstate": "9"})) == [("unknown-value", "ChannelState")]
    assert kinds(cat.check_frame({**frame, "extra": "1"})) == [("unknown-field", "extra")]
    unknown = cat.check_frame({"event": "NewExten"})
    assert kinds(unknown) == [("unknown-event", "NewExten")] and unknown[0].hint == "Newexten"
    typo = cat.check_frame({"event": "Thnig"})
    assert typo[0].hint == "Thing"
    assert cat.check_frame({"response": "Success", "whatever": "1"}) == []


def test_check_frame_user_event_and_undocumented() -> None:
    cat = catalogue.load("22")
    user = {"event": "UserEvent", "privilege": "user,all", "userevent": "Foo", "foo": "bar", "x": ["1", "2"]}
    assert cat.check_frame(user) == []
    assert cat.check_frame({"event": "CCAvailable", "coreid": "1", "callee": "x"}) == []


# -- overlay --------------------------------------------------------------------------------------


def test_every_overlay_entry_has_evidence() -> None:
    data = json.loads(OVERLAY_PATH.read_text(encoding="utf-8"))
    entries = evidence_entries({k: v for k, v in data.items() if k not in ("format", "about")})
    assert len(entries) > 70
    for section, entry in entries:
        evidence = entry.get("evidence")
        assert isinstance(evidence, str) and evidence.strip(), (section, entry)
        assert ".c:" in evidence or ".txt:" in evidence or "session" in evidence, (section, entry)


# -- hints ----------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("name", "expected"),
    [
        ("Hnagup", 'unknown event "Hnagup": did you mean "Hangup"?'),
        ("NewExten", '"NewExten" is sent as "Newexten"'),
        ("hangup", '"hangup" is sent as "Hangup"'),
        ("Dial", '"Dial" was renamed in Asterisk 12: use "DialBegin" or "DialEnd"'),
        ("Join", '"Join" was renamed in Asterisk 12: use "QueueCallerJoin"'),
        ("JabberEvent", '"JabberEvent" was removed in Asterisk 12'),
        ("Hangup", None),
        ("Newexten", None),
        ("SIPpeerstatusComplete", None),  # known to an older release only
        ("CCAvailable", None),  # the overlay's
        ("ami_data", None),
        ("Queue*", None),
        ("Dial?", None),
    ],
)
def test_event_hint(name: str, expected: str | None) -> None:
    assert catalogue.event_hint(name) == expected


def test_action_hint() -> None:
    assert catalogue.action_hint("originate") is None
    assert catalogue.action_hint("SIPpeers") is None  # in 18 and 20
    assert catalogue.action_hint("Orignate") == 'unknown action "Orignate": did you mean "Originate"?'
    hint = catalogue.action_hint("Qwertyuiop")
    assert hint is not None and "Qwertyuiop" in hint


# -- diff -----------------------------------------------------------------------------------------


def test_diff_20_to_21() -> None:
    d = catalogue.diff(catalogue.load("20"), catalogue.load("21"))
    assert {"SIPpeers", "Monitor"} <= set(d.actions_removed)
    assert "SIPpeers" not in d.actions_added
    summary = d.summary()
    assert summary["actions_removed"] == len(d.actions_removed) >= 2
    text = str(d)
    assert text.splitlines()[0] == "20.20.1 -> 21.12.3" and "  SIPpeers" in text.splitlines()


def test_diff_params_and_fields() -> None:
    a = small()
    changed = json.loads(json.dumps(SMALL))
    changed["release"] = "99.2.0"
    del changed["actions"]["Setvar"]["params"]["Mode"]
    changed["actions"]["Setvar"]["params"]["Speed"] = {"required": False}
    changed["events"]["Thing"]["fields"]["size"] = {"name": "Size"}
    del changed["actions"]["Ping"]
    b = Catalogue(changed, load_overlay(), "changed")
    d = catalogue.diff(a, b)
    assert d.actions_removed == ("Ping",) and d.actions_added == ()
    assert dict(d.params_added) == {"Setvar": ("Speed",)} and dict(d.params_removed) == {"Setvar": ("Mode",)}
    assert dict(d.fields_added) == {"Thing": ("Size",)}
    assert catalogue.diff(a, a).lines() == ["99.1.0 -> 99.1.0", "no changes"]
