"""``asterisk-ami catalogue`` and the catalogue's use in ``action --help`` and ``events --event``, run in a
subprocess (FakeAsterisk for the connecting parts; the real server: tests/integration/test_catalogue_real.py)."""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from asterisk_ami import catalogue
from asterisk_ami.testing import FakeAsterisk

from .cli_helpers import args_for, one_clear_line, run_cli, start_cli

SECRET = "s3cr3t-catalogue"
SHARED_XML = Path(__file__).resolve().parents[2] / "shared" / "asterisk-docs" / "22.10.1" / "core-en_US.xml.xz"


@pytest.fixture
def fake() -> Iterator[FakeAsterisk]:
    with FakeAsterisk(accounts={"admin": SECRET}) as server:
        yield server


def shared_xml() -> Path:
    if not SHARED_XML.is_file():
        pytest.skip(f"{SHARED_XML} is not here (the shared Asterisk documentation is a separate checkout)")
    return SHARED_XML


def section(out: str, heading: str) -> list[str]:
    """The indented lines under the first line that starts with ``heading``."""
    lines = out.splitlines()
    start = next(i for i, line in enumerate(lines) if line.startswith(heading))
    body = []
    for line in lines[start + 1 :]:
        if not line.startswith("  "):
            break
        body.append(line.strip())
    return body


# -- show ---------------------------------------------------------------------------------------------


def test_show_an_action_marks_the_required_parameters() -> None:
    done = run_cli("catalogue", "show", "originate", "--version", "22")
    assert done.code == 0, done.err
    assert done.out.startswith("Action Originate (from the Asterisk 22.")
    params = section(done.out, "Parameters")
    assert "* Channel" in params
    assert "Exten" in params and "ActionID" in params  # optional: no mark
    assert len(params) == len(catalogue.load("22").actions["Originate"].params)
    assert "Response events: (none listed)" in done.out.splitlines()
    releases = next(line for line in done.out.splitlines() if line.startswith("In releases: "))
    assert releases == "In releases: " + ", ".join(catalogue.RELEASES)


def test_show_an_action_lists_its_enums_families_and_response_events() -> None:
    bridge = run_cli("catalogue", "show", "Bridge")
    assert bridge.code == 0, bridge.err
    params = section(bridge.out, "Parameters")
    assert "* Channel1" in params and "* Channel2" in params
    assert [" ".join(p.split()) for p in params if p.startswith("Tone")] == [
        "Tone one of: no, Channel1, Channel2, Both"
    ]
    update = run_cli("catalogue", "show", "UpdateConfig")
    families = section(update.out, "Numbered header families")
    assert r"Action  pattern ^Action-\d{6}$" in families and len(families) == 7, families
    listing = run_cli("catalogue", "show", "CoreShowChannels")
    responses = next(line for line in listing.out.splitlines() if line.startswith("Response events: "))
    assert "CoreShowChannel" in responses.split(": ", 1)[1].split(", "), responses


def test_show_an_event_lists_its_fields_enums_and_privilege() -> None:
    done = run_cli("catalogue", "show", "DialBegin", "--version", "22")
    assert done.code == 0, done.err
    assert done.out.startswith("Event DialBegin (from the Asterisk 22.")
    fields = section(done.out, "Fields")
    names = [line.split()[0] for line in fields]
    assert "DestChannel" in names and "Channel" in names and "DestUniqueid" in names
    assert "Privilege: call" in done.out.splitlines()
    state = next(line for line in fields if line.startswith("ChannelStateDesc "))
    assert state.endswith(
        "one of: Down, Rsrvd, OffHook, Dialing, Ring, Ringing, Up, Busy, Dialing Offhook, Pre-ring, Unknown"
    )
    assert "replaces (Asterisk 11 and earlier): Dial" in done.out


def test_show_a_release_that_lacks_the_name() -> None:
    done = run_cli("catalogue", "show", "SIPpeers", "--version", "18")
    assert done.code == 0, done.err
    assert "In releases: 18, 20" in done.out.splitlines()
    later = run_cli("catalogue", "show", "SIPpeers", "--version", "22")
    assert later.code == 2
    assert "SIPpeers" in one_clear_line(later.err)


def test_show_a_misspelt_name_exits_2_with_a_suggestion() -> None:
    done = run_cli("catalogue", "show", "Originat")
    assert done.code == 2
    line = one_clear_line(done.err)
    assert "did you mean" in line and '"Originate"' in line, line
    event = run_cli("catalogue", "show", "Hnagup")
    assert event.code == 2
    assert '"Hangup"' in one_clear_line(event.err)
    assert done.out == event.out == ""


def test_show_prints_the_synopsis_from_the_users_xml_only(tmp_path: Path) -> None:
    xml = shared_xml()
    done = run_cli("catalogue", "show", "Originate", "--xml", str(xml))
    assert done.code == 0, done.err
    lines = done.out.splitlines()
    at = lines.index(f"From your Asterisk documentation ({xml}):")
    synopsis = lines[at + 1].strip()
    assert synopsis and not synopsis.startswith("(no synopsis"), synopsis
    # the same text without --xml is absent (the package ships no prose), unless Asterisk's own file is here
    plain = run_cli("catalogue", "show", "Originate")
    if not Path("/usr/share/asterisk/documentation/core-en_US.xml").exists():
        assert synopsis not in plain.out and "From your Asterisk documentation" not in plain.out
    missing = run_cli("catalogue", "show", "Originate", "--xml", str(tmp_path / "none.xml"))
    assert missing.code == 1
    assert "none.xml" in one_clear_line(missing.err)


def test_show_takes_no_connection_options() -> None:
    done = run_cli("catalogue", "show", "Originate", "--host", "pbx")
    assert done.code == 2
    one_clear_line(done.err)


# -- list, diff ---------------------------------------------------------------------------------------


def test_list_prints_one_name_a_line() -> None:
    actions = run_cli("catalogue", "list", "actions", "--version", "22")
    assert actions.code == 0, actions.err
    names = actions.out.splitlines()
    assert names == sorted(catalogue.load("22").actions, key=str.lower)
    assert "Originate" in names and all(name and " " not in name for name in names)
    events = run_cli("catalogue", "list", "events", "--version", "18")
    assert "Hangup" in events.out.splitlines()
    assert set(events.out.splitlines()) == set(catalogue.load("18").events)


def test_diff_names_what_was_added_and_removed() -> None:
    done = run_cli("catalogue", "diff", "20", "21")
    assert done.code == 0, done.err
    assert "SIPpeers" in section(done.out, "actions removed")
    assert "SIPpeers" not in section(done.out, "actions added") if "actions added" in done.out else True
    back = run_cli("catalogue", "diff", "21", "20")
    assert "SIPpeers" in section(back.out, "actions added")
    same = run_cli("catalogue", "diff", "22", "22")
    assert same.out.splitlines()[1:] == ["no changes"]


# -- build --------------------------------------------------------------------------------------------


def test_build_from_a_servers_xml_loads_and_shows(tmp_path: Path) -> None:
    xml = shared_xml()
    output = tmp_path / "mine.json"
    done = run_cli("catalogue", "build", str(xml), "-o", str(output), timeout=120)
    assert done.code == 0, done.err
    assert done.out.startswith(f"{output}: ")
    # the same input as the shipped 22.json: the same bytes
    shipped = Path(catalogue.__file__).with_name("data") / "22.json"
    assert output.read_bytes() == shipped.read_bytes()
    assert json.loads(output.read_text())["release"] == "22.10.1"
    show = run_cli("catalogue", "show", "Originate", "--version", str(output))
    assert show.code == 0, show.err
    assert "* Channel" in section(show.out, "Parameters")


def test_build_of_a_missing_path_is_one_line(tmp_path: Path) -> None:
    done = run_cli("catalogue", "build", str(tmp_path / "nothing.xml"), "-o", str(tmp_path / "out.json"))
    assert done.code == 2
    assert "nothing.xml" in one_clear_line(done.err)
    assert not (tmp_path / "out.json").exists()


# -- action --help, events --event ----------------------------------------------------------------------


def test_action_help_with_a_name_adds_its_parameters() -> None:
    done = run_cli("action", "Originate", "--help")
    assert done.code == 0, done.err
    assert done.out.startswith("usage: asterisk-ami action")
    assert "* Channel" in section(done.out, "Parameters")
    plain = run_cli("action", "--help")
    assert plain.code == 0
    assert "Parameters" not in plain.out and done.out.startswith(plain.out)
    unknown = run_cli("action", "Originat", "--help")
    assert unknown.code == 0
    assert '"Originate"' in unknown.out.splitlines()[-1]


def test_events_warns_about_an_unknown_event_name_and_goes_on(fake: FakeAsterisk) -> None:
    proc = start_cli(
        "events",
        *args_for(fake),
        "--event",
        "Hnagup",
        "--event",
        "Hangup",
        "--event",
        "Queue*",
        "--count",
        "1",
        secret=SECRET,
    )
    fake.wait_for_clients(1, timeout=20)
    fake.wait_for(lambda: sum(a.get("action") == "Filter" for a in fake.actions) == 3, timeout=10)
    fake.push_event("Hangup", Channel="PJSIP/100-1")
    out, err = proc.communicate(timeout=30)
    assert proc.returncode == 0, err
    assert '"channel": "PJSIP/100-1"' in out
    warnings = [line for line in err.splitlines() if "warning:" in line]
    assert warnings == ['asterisk-ami: warning: unknown event "Hnagup": did you mean "Hangup"?'], err


# -- check --------------------------------------------------------------------------------------------


def list_commands(*names: str) -> dict[str, str]:
    return {"Response": "Success", **{name: "(a synopsis)  (Priv: <none>)" for name in names}}


def test_check_reports_both_directions_and_exits_0(fake: FakeAsterisk) -> None:
    fake.respond("ListCommands", list_commands("Ping", "Originate", "CoreShowChannels", "MadeUpThing"))
    done = run_cli("catalogue", "check", *args_for(fake), secret=SECRET)
    assert done.code == 0, done.err
    lines = done.out.splitlines()
    assert lines[0].startswith("server: 4 actions; Asterisk 22")  # FakeAsterisk's banner is 22's (11.0.0)
    assert section(done.out, "1 on the server but not in the catalogue") == ["madeupthing"]
    assert any("not on the server (normal: their modules are not loaded)" in line for line in lines)
    assert "Originate" not in " ".join(section(done.out, f"{len(catalogue.load('22').actions) - 3} in the"))
    strict = run_cli("catalogue", "check", "--strict", *args_for(fake), secret=SECRET)
    assert strict.code == 1, strict.err
    assert fake.wait_for_action("ListCommands")


def test_check_with_every_action_known_passes_strict(fake: FakeAsterisk) -> None:
    fake.respond("ListCommands", list_commands("Ping", "Originate"))
    done = run_cli("catalogue", "check", "--strict", "--version", "18", *args_for(fake), secret=SECRET)
    assert done.code == 0, done.err
    assert "Asterisk 18" in done.out.splitlines()[0] and "--version 18" in done.out.splitlines()[0]
    assert "every action of the server is in the catalogue" in done.out


# -- startup ------------------------------------------------------------------------------------------


def test_other_subcommands_do_not_import_the_catalogue() -> None:
    code = (
        "import sys\n"
        "from asterisk_ami import cli\n"
        "for argv in (['action', 'Ping'], ['events', '--event', 'Hangup'], ['demo'], ['catalogue', 'list', 'events']):\n"
        "    cli.parse_args(argv)\n"
        "print(sorted(m for m in sys.modules if m.startswith('asterisk_ami.catalogue')))\n"
    )
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60, check=False)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() == "[]"
