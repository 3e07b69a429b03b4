"""The sans-IO protocol core: every framing and encoding rule, without a network.

Items named E1..E29 are the edge cases of docs/ami-protocol-notes.md.
"""

from __future__ import annotations

import itertools
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from asterisk_ami.errors import (
    FrameTooLargeError,
    HeaderInjectionError,
    InvalidMessageError,
    MessageTooLargeError,
    ProtocolError,
)
from asterisk_ami.protocol import (
    MAX_HEADERS,
    ActionIdGenerator,
    AmiProtocol,
    encode_message,
    find_action_id,
    frame_kind,
    login_message,
    md5_key,
    md5_login_message,
    normalize_key,
)
from asterisk_ami.session import prepare_action

CORPUS = (Path(__file__).parent / "data" / "asterisk22-session.bin").read_bytes()


pytestmark = pytest.mark.usefixtures("parser_impl")  # every test on both parsers (conftest.py)


BANNER = b"Asterisk Call Manager/11.0.0\r\n"


def parse(data: bytes, **kwargs: object) -> list[dict[str, object]]:
    return AmiProtocol(**kwargs).receive_data(data)  # type: ignore[arg-type, return-value]


def parse_chunks(chunks: list[bytes]) -> list[dict[str, object]]:
    proto = AmiProtocol()
    out: list[dict[str, object]] = []
    for chunk in chunks:
        out.extend(proto.receive_data(chunk))
    return out


# -- E1-E3: banner -------------------------------------------------------------------------------


def test_banner_is_parsed_and_exposed() -> None:
    proto = AmiProtocol()
    assert proto.receive_data(BANNER) == []
    assert proto.banner == "Asterisk Call Manager/11.0.0"
    assert proto.protocol_version == "11.0.0"


def test_banner_split_across_reads_and_glued_to_first_frame() -> None:
    proto = AmiProtocol()
    assert proto.receive_data(b"Asterisk Call Man") == []
    frames = proto.receive_data(b"ager/11.0.0\r\nResponse: Success\r\nActionID: l1\r\n\r\n")
    assert frames == [{"response": "Success", "actionid": "l1"}]
    assert proto.protocol_version == "11.0.0"


def test_proxy_banner() -> None:
    proto = AmiProtocol()
    proto.receive_data(b"Asterisk Call Manager Proxy/1.2\r\n")
    assert proto.banner == "Asterisk Call Manager Proxy/1.2"
    assert proto.protocol_version == "1.2"


def test_no_banner_first_frame_still_parsed() -> None:
    proto = AmiProtocol()
    assert proto.receive_data(b"Response: Error\r\nMessage: x\r\n\r\n") == [{"response": "Error", "message": "x"}]
    assert proto.banner is None


# -- E2: framing ---------------------------------------------------------------------------------


def test_split_between_cr_and_lf_of_terminator() -> None:
    frames = parse_chunks([BANNER + b"Response: Success\r\nMessage: Authentication accepted\r", b"\n\r\n"])
    assert frames == [{"response": "Success", "message": "Authentication accepted"}]


def test_several_frames_per_chunk_and_trailing_partial() -> None:
    proto = AmiProtocol()
    frames = proto.receive_data(BANNER + b"Event: A\r\n\r\nEvent: B\r\n\r\nEvent: C\r\nX: ")
    assert [f["event"] for f in frames] == ["A", "B"]
    assert proto.pending_bytes == len(b"Event: C\r\nX: ")
    assert proto.receive_data(b"1\r\n\r\n") == [{"event": "C", "x": "1"}]
    assert proto.pending_bytes == 0


def test_large_frame_in_many_chunks_is_not_rescanned() -> None:
    # a 400 KB frame fed 1 KB at a time: the parser resumes its search, so this stays linear
    proto = AmiProtocol()
    proto.receive_data(BANNER)
    body = b"".join(b"Output: line %d\r\n" % i for i in range(25000))
    data = b"Response: Success\r\nActionID: c\r\n" + body + b"\r\n"
    frames = []
    for i in range(0, len(data), 1024):
        frames += proto.receive_data(data[i : i + 1024])
        assert proto.resume_offset >= max(0, proto.pending_bytes - 3)  # never starts again from the beginning
    assert len(frames) == 1
    assert len(frames[0]["output"]) == 25000


def test_extra_blank_lines_between_frames_are_ignored() -> None:
    assert [f["event"] for f in parse(BANNER + b"Event: A\r\n\r\n\r\n\r\nEvent: B\r\n\r\n")] == ["A", "B"]


def test_bare_lf_server_is_tolerated() -> None:
    proto = AmiProtocol()
    frames = proto.receive_data(b"Asterisk Call Manager/1.1\nResponse: Success\nMessage: ok\n\nEvent: X\nA: b\n\n")
    assert proto.lenient
    assert frames == [{"response": "Success", "message": "ok"}, {"event": "X", "a": "b"}]


def test_bare_lf_inside_crlf_stream_splits_lines() -> None:
    frames = parse(BANNER + b"Event: X\nA: 1\r\nB: 2\r\n\r\n")
    assert frames == [{"event": "X", "a": "1", "b": "2"}]


# -- E4, E5, E29: odd lines ------------------------------------------------------------------------


def test_broken_pre14_varset_gives_frame_without_event_and_keeps_going() -> None:
    data = (
        BANNER
        + b"Event: VarSet\r\nVariable: X\r\nValue: line1\r\n\r\nline2\r\nUniqueid: 1.2\r\n\r\nEvent: Next\r\n\r\n"
    )
    frames = parse(data)
    assert frames[0] == {"event": "VarSet", "variable": "X", "value": "line1"}
    assert frames[1] == {"raw": "line2", "uniqueid": "1.2"}
    assert frame_kind(frames[1]) == "unknown"
    assert frames[2] == {"event": "Next"}


def test_escaped_values_are_not_unescaped() -> None:
    assert parse(BANNER + b"Event: VarSet\r\nValue: line1\\r\\nline2\r\n\r\n")[0]["value"] == "line1\\r\\nline2"


def test_empty_values_and_missing_space() -> None:
    frame = parse(BANNER + b"Response: Success\r\nOutput: \r\nKey:\r\nNoSpace:value\r\nAccountCode: \r\n\r\n")[0]
    assert frame == {"response": "Success", "output": "", "key": "", "nospace": "value", "accountcode": ""}


def test_value_keeps_its_own_spaces() -> None:
    assert parse(BANNER + b"Event: X\r\nData:   padded  \r\n\r\n")[0]["data"] == "  padded  "


def test_lines_without_colon_are_kept_under_raw() -> None:
    data = BANNER + b"Event: SMS\r\nSender: 123\r\nHello there\r\n--END SMS EVENT--\r\n\r\n"
    assert parse(data)[0] == {"event": "SMS", "sender": "123", "raw": "Hello there\n--END SMS EVENT--"}


# -- E6, E7, E8: values and keys -----------------------------------------------------------------------


def test_value_with_colon_space_is_kept_whole() -> None:
    data = BANNER + (
        b"Response: Error\r\nMessage: Invalid/unknown command: Foo. Use Action: ListCommands to show available"
        b" commands.\r\n\r\n"
    )
    assert parse(data)[0]["message"] == (
        "Invalid/unknown command: Foo. Use Action: ListCommands to show available commands."
    )


def test_a_frame_after_stray_cr_does_not_depend_on_the_names_seen_before() -> None:
    # blank-line leftovers before a frame are stripped; a cached "\rEvent" name must not change that
    proto = AmiProtocol()
    first = proto.receive_data(b"Asterisk Call Manager/11.0.0\r\nRaw\r\n\rResponse: A\r\n\r\n")
    follows = b"\rResponse: Follows\r\nx\n--END COMMAND--\r\n\r\n"
    again = proto.receive_data(follows)
    assert first == [{"raw": "Raw", "response": "A"}]
    assert again == [{"response": "Follows", "output": ["x"]}] == AmiProtocol().receive_data(follows)


def test_first_colon_splits_even_without_space() -> None:
    assert parse(BANNER + b"Event: X\r\nFoo:bar: baz\r\n\r\n")[0]["foo"] == "bar: baz"


def test_repeated_keys_become_lists_in_order() -> None:
    data = BANNER + b"Event: Status\r\nVariable: A=1\r\nVariable: B=2\r\nVariable: X=a=b\r\nChannel: c\r\n\r\n"
    frame = parse(data)[0]
    assert frame["variable"] == ["A=1", "B=2", "X=a=b"]
    assert frame["channel"] == "c"


def test_old_chanvariable_form_is_a_key() -> None:
    frame = parse(BANNER + b"Event: X\r\nChanVariable(SIP/100-0001): foo=bar\r\n\r\n")[0]
    assert frame["chanvariable(sip/1000001)"] == "foo=bar"


def test_key_normalisation() -> None:
    assert normalize_key("X-Custom-Head") == "xcustomhead"
    assert normalize_key("Content-Type") == "contenttype"
    assert normalize_key("ActionID") == "actionid"
    frame = parse(BANNER + b"Event: X\r\nX-Custom-Head: 1\r\nEVENTLIST: start\r\n\r\n")[0]
    assert frame == {"event": "X", "xcustomhead": "1", "eventlist": "start"}


# -- E11: classification -------------------------------------------------------------------------


def test_originate_response_event_is_an_event_not_a_response() -> None:
    data = BANNER + (
        b"Event: OriginateResponse\r\nPrivilege: call,all\r\nActionID: o7\r\nResponse: Success\r\n"
        b"Channel: PJSIP/100-00000001\r\nReason: 4\r\nUniqueid: 1.2\r\n\r\n"
    )
    frame = parse(data)[0]
    assert frame_kind(frame) == "event"
    assert frame["response"] == "Success"
    assert frame_kind({"response": "Success"}) == "response"
    assert frame_kind({}) == "unknown"


# -- E13: command output ---------------------------------------------------------------------------


def test_command_output_14_plus_keeps_blank_lines() -> None:
    data = BANNER + (
        b"Response: Success\r\nActionID: 9\r\nMessage: Command output follows\r\nOutput: line1\r\nOutput: \r\n"
        b"Output: a: b\r\n\r\n"
    )
    assert parse(data)[0]["output"] == ["line1", "", "a: b"]


@pytest.mark.parametrize(
    ("body", "expected"),
    [
        (b"Asterisk 11.25.3 built by root\n--END COMMAND--", ["Asterisk 11.25.3 built by root"]),
        (b"text--END COMMAND--", ["text"]),
        (b"a\n\nName: x\n --END COMMAND--", ["a", "", "Name: x"]),
        (b"--END COMMAND--", []),
    ],
)
def test_command_output_pre14_follows(body: bytes, expected: list[str]) -> None:
    data = (
        BANNER + b"Response: Follows\r\nPrivilege: Command\r\nActionID: 9\r\n" + body + b"\r\n\r\nEvent: Next\r\n\r\n"
    )
    frames = parse(data)
    assert frames[0] == {"response": "Follows", "privilege": "Command", "actionid": "9", "output": expected}
    assert frames[1] == {"event": "Next"}


def test_command_output_pre14_with_blank_lines_from_bare_lf_server() -> None:
    proto = AmiProtocol()
    data = b"Asterisk Call Manager/1.1\nResponse: Follows\nPrivilege: Command\nActionID: 9\nA\n\nB\n--END COMMAND--\n\n"
    frames = proto.receive_data(data + b"Event: X\n\n")
    assert frames[0]["output"] == ["A", "", "B"]
    assert frames[0]["actionid"] == "9"
    assert frames[1] == {"event": "X"}


# -- E21-E23: what is sent -----------------------------------------------------------------------------


def test_encode_message_basic_and_repeated_headers() -> None:
    data = encode_message({"Action": "Originate", "Variable": ["A=1", "B=2"], "Async": True, "Skip": None})
    assert data == b"Action: Originate\r\nVariable: A=1\r\nVariable: B=2\r\nAsync: True\r\n\r\n"


@pytest.mark.parametrize("bad", ["PJSIP/1\r\n\r\nAction: Command", "a\nb", "a\rb", "a\x00b"])
def test_header_injection_in_values_is_refused(bad: str) -> None:
    with pytest.raises(HeaderInjectionError) as info:
        encode_message({"Action": "Originate", "Channel": bad})
    assert isinstance(info.value, ValueError)
    assert bad not in str(info.value)  # values (maybe secrets) are never echoed


def test_header_injection_in_list_values_and_keys_is_refused() -> None:
    with pytest.raises(HeaderInjectionError):
        encode_message({"Action": "Originate", "Variable": ["ok=1", "x=1\r\nAction: Logoff"]})
    with pytest.raises(HeaderInjectionError):
        encode_message({"Action": "Ping", "X\r\nAction": "Logoff"})


class _Thing:
    def __str__(self) -> str:
        return "HOLD=1"


# values whose str() is a Python repr (or not what the caller meant): refused, never written
NOT_TEXT = [b"HOLD=1", bytearray(b"HOLD=1"), memoryview(b"HOLD=1"), {"HOLD": 1}, {"HOLD=1"}, frozenset({"HOLD=1"})]
NOT_TEXT += [_Thing(), ["A=1", b"HOLD=1"], ("A=1", {"HOLD": 1}), [["HOLD=1"]]]


@pytest.mark.parametrize("value", NOT_TEXT, ids=lambda v: type(v).__name__)
def test_values_that_are_not_text_or_numbers_are_refused(value: object) -> None:
    with pytest.raises(InvalidMessageError) as info:
        encode_message({"Action": "Originate", "Variable": value})
    message = str(info.value)
    assert "'Variable'" in message  # the header is named
    assert "HOLD" not in message  # the value is not echoed (it may be a secret)


@pytest.mark.parametrize("key", [5, b"Action", None, ("Variable",)], ids=repr)
def test_header_names_that_are_not_str_are_refused(key: object) -> None:
    message = {"Action": "Ping", key: "1"}
    with pytest.raises(InvalidMessageError) as info:
        encode_message(message)  # type: ignore[arg-type]
    assert type(key).__name__ in str(info.value)
    with pytest.raises(InvalidMessageError):  # not an AttributeError from looking for the ActionID
        prepare_action(message, ActionIdGenerator("t"), "utf-8")  # type: ignore[arg-type]


def test_str_numbers_and_bools_are_written_as_today() -> None:
    data = encode_message(
        {
            "Action": "Originate",
            "Priority": 1,
            "Timeout": 1.5,
            "Async": True,
            "EarlyMedia": False,
            "Variable": ("A=1", 2, 3.25, True),
            "Codecs": [],
            "Skip": None,
            "Also": [None, "x"],
        }
    )
    assert data == (
        b"Action: Originate\r\nPriority: 1\r\nTimeout: 1.5\r\nAsync: True\r\nEarlyMedia: False\r\n"
        b"Variable: A=1\r\nVariable: 2\r\nVariable: 3.25\r\nVariable: True\r\nAlso: x\r\n\r\n"
    )


@pytest.mark.parametrize("key", ["", "Bad Key", "Bad:Key", "Tab\tKey"])
def test_invalid_keys_are_refused(key: str) -> None:
    with pytest.raises(InvalidMessageError):
        encode_message({"Action": "Ping", key: "1"})


def test_secret_is_not_echoed_in_errors() -> None:
    with pytest.raises(HeaderInjectionError) as info:
        encode_message(login_message("admin", "hunter2\nx", True, "l1"))
    assert "hunter2" not in str(info.value)


def test_line_length_limit() -> None:
    ok = "x" * (1024 - len("Variable: \r\n"))
    assert encode_message({"Variable": ok}).endswith(b"\r\n\r\n")
    with pytest.raises(MessageTooLargeError) as info:
        encode_message({"Action": "Setvar", "Variable": "BIGVAR=" + "x" * 1100})
    assert isinstance(info.value, ValueError)


def test_line_length_counts_encoded_bytes() -> None:
    value = "é" * 600  # 1200 bytes in UTF-8
    with pytest.raises(MessageTooLargeError):
        encode_message({"Variable": value})


def test_header_count_limit() -> None:
    # E22: Asterisk refuses more than 128 lines in one action
    encode_message({"Action": "Originate", "Variable": [f"V{i}=1" for i in range(MAX_HEADERS - 1)]})
    with pytest.raises(MessageTooLargeError):
        encode_message({"Action": "Originate", "Variable": [f"V{i}=1" for i in range(130)]})


def test_optional_headers_are_ordinary_keys() -> None:
    # E20: timestampevents, manager debug and systemname add headers between Event and the body
    data = BANNER + (
        b"Event: Hangup\r\nPrivilege: call,all\r\nTimestamp: 1764310597.123456\r\nSequenceNumber: 42\r\n"
        b"File: manager_channels.c\r\nLine: 745\r\nFunc: channel_hangup_handler\r\nSystemName: pbx1\r\n"
        b"Channel: PJSIP/100-00000001\r\nCause: 16\r\n\r\n"
    )
    [frame] = parse(data)
    assert frame == {
        "event": "Hangup",
        "privilege": "call,all",
        "timestamp": "1764310597.123456",
        "sequencenumber": "42",
        "file": "manager_channels.c",
        "line": "745",
        "func": "channel_hangup_handler",
        "systemname": "pbx1",
        "channel": "PJSIP/100-00000001",
        "cause": "16",
    }


def test_empty_message_refused() -> None:
    with pytest.raises(InvalidMessageError):
        encode_message({})


def test_encoding_option_used_for_values() -> None:
    assert encode_message({"CallerID": "Вітал"}, "cp1251") == "CallerID: Вітал\r\n\r\n".encode("cp1251")


# -- E9, E10: ActionIDs -----------------------------------------------------------------------------


def test_action_ids_unique_across_generators() -> None:
    a, b = ActionIdGenerator(), ActionIdGenerator()
    ids = {a() for _ in range(1000)} | {b() for _ in range(1000)}
    assert len(ids) == 2000
    assert a.prefix != b.prefix


def test_find_action_id_any_case() -> None:
    assert find_action_id({"action": "Ping", "actionid": 5}) == ("actionid", "5")
    assert find_action_id({"Action": "Ping"}) == (None, None)


# -- E16: MD5 ------------------------------------------------------------------------------------------


def test_md5_login() -> None:
    import hashlib

    assert md5_key("840724201", "secret") == hashlib.md5(b"840724201secret").hexdigest()
    msg = md5_login_message("admin", "840724201", "secret", "call,system", "l1")
    assert msg["Key"] == md5_key("840724201", "secret")
    assert msg["Key"] == msg["Key"].lower()
    assert "Secret" not in msg and "secret" not in str(msg.values())
    assert msg["Events"] == "call,system"


def test_login_events_values() -> None:
    assert login_message("u", "p", True, "1")["Events"] == "on"
    assert login_message("u", "p", False, "1")["Events"] == "off"
    assert login_message("u", "p", "system,call", "1")["Events"] == "system,call"


# -- E28: encodings -----------------------------------------------------------------------------------


def test_undecodable_bytes_do_not_crash() -> None:
    frame = parse(BANNER + b"Event: Newchannel\r\nCallerIDName: \xc2\xe8\xf2\xe0\xeb\xe8\xe9\r\n\r\n")[0]
    assert frame["event"] == "Newchannel"
    assert "\ufffd" in str(frame["calleridname"])


def test_configurable_codec() -> None:
    frame = parse(BANNER + b"Event: X\r\nCallerIDName: \xc2\xe8\xf2\xe0\xeb\xe8\xe9\r\n\r\n", encoding="cp1251")[0]
    assert frame["calleridname"] == "Виталий"


def test_multibyte_character_split_across_reads() -> None:
    data = BANNER + "Event: X\r\nName: Zoë ☎\r\n\r\n".encode()
    cut = data.index("☎".encode()) + 1
    assert parse_chunks([data[:cut], data[cut:]]) == [{"event": "X", "name": "Zoë ☎"}]


def test_unknown_codec_fails_early() -> None:
    with pytest.raises(LookupError):
        AmiProtocol(encoding="no-such-codec")


# -- limits ------------------------------------------------------------------------------------------


def test_oversized_incomplete_frame_raises_and_bounds_memory() -> None:
    proto = AmiProtocol(max_frame_bytes=1000)
    proto.receive_data(BANNER + b"Event: X\r\n")
    with pytest.raises(FrameTooLargeError):
        for _ in range(100):
            proto.receive_data(b"Key: " + b"v" * 95 + b"\r\n")
    assert proto.pending_bytes == 0
    with pytest.raises(ProtocolError):
        proto.receive_data(b"Event: Y\r\n\r\n")


def test_oversized_complete_frame_raises() -> None:
    proto = AmiProtocol(max_frame_bytes=1000)
    with pytest.raises(FrameTooLargeError):
        proto.receive_data(BANNER + b"Event: X\r\nBig: " + b"v" * 2000 + b"\r\n\r\nEvent: Y\r\n\r\n")


def test_frames_below_limit_pass() -> None:
    proto = AmiProtocol(max_frame_bytes=1000)
    data = BANNER + b"".join(b"Event: X\r\nData: " + b"v" * 500 + b"\r\n\r\n" for _ in range(10))
    assert len(proto.receive_data(data)) == 10


# -- the real Asterisk 22 corpus ---------------------------------------------------------------------


def test_corpus_parses_whole() -> None:
    proto = AmiProtocol()
    frames = proto.receive_data(CORPUS)
    assert proto.banner == "Asterisk Call Manager/11.0.0"
    assert proto.pending_bytes == 0
    raw_frames = [f for f in CORPUS[len(BANNER) :].split(b"\r\n\r\n") if f]
    assert len(frames) == len(raw_frames) == 499
    assert all(frame_kind(f) in ("event", "response") for f in frames)
    # every key of every raw frame is in the parsed frame
    for raw, frame in zip(raw_frames, frames, strict=True):
        for line in raw.split(b"\r\n"):
            assert normalize_key(line.split(b":", 1)[0].decode()) in frame


def test_corpus_command_output_and_colon_values() -> None:
    frames = AmiProtocol().receive_data(CORPUS)
    command = next(f for f in frames if f.get("actionid") == "cmd")
    assert command["message"] == "Command output follows"
    assert isinstance(command["output"], list) and len(command["output"]) == CORPUS.count(b"\r\nOutput: ")
    assert command["output"][-1] == "21 calls processed"
    newexten = [f for f in frames if f.get("appdata") == "TestEvent,Foo: bar"]
    assert len(newexten) == 20
    error = next(f for f in frames if f.get("response") == "Error")
    assert error["message"].startswith("Invalid/unknown command: Bogus. Use Action: ListCommands")
    assert sum(1 for f in frames if f.get("event") == "UserEvent" and f.get("foo") == "bar") == 20


# -- properties ----------------------------------------------------------------------------------------


@settings(max_examples=200, deadline=None)
@given(st.lists(st.integers(min_value=1, max_value=len(CORPUS) - 1), max_size=60, unique=True))
def test_any_split_of_the_corpus_gives_the_same_frames(cuts: list[int]) -> None:
    points = [0, *sorted(cuts), len(CORPUS)]
    chunks = [CORPUS[a:b] for a, b in itertools.pairwise(points)]
    assert parse_chunks(chunks) == AmiProtocol().receive_data(CORPUS)


header_name = st.from_regex(r"[A-Za-z][A-Za-z0-9]{0,12}", fullmatch=True)
header_value = st.text(st.characters(blacklist_characters="\r\n\x00", codec="utf-8"), max_size=40)


@settings(max_examples=200, deadline=None)
@given(
    st.lists(st.lists(st.tuples(header_name, header_value), min_size=1, max_size=8), min_size=1, max_size=6),
    st.data(),
)
def test_encoded_messages_parse_back_under_any_split(
    messages: list[list[tuple[str, str]]], data: st.DataObject
) -> None:
    stream = b"".join(b"".join(f"{k}: {v}\r\n".encode() for k, v in m) + b"\r\n" for m in messages)
    cuts = data.draw(st.lists(st.integers(0, len(stream)), max_size=10))
    points = [0, *sorted(cuts), len(stream)]
    frames = parse_chunks([BANNER] + [stream[a:b] for a, b in itertools.pairwise(points)])
    assert len(frames) == len(messages)
    for frame, message in zip(frames, messages, strict=True):
        for key, value in message:
            got = frame[normalize_key(key)]
            assert value in got if isinstance(got, list) else got == value


@settings(max_examples=300, deadline=None)
@given(st.lists(st.binary(max_size=300), max_size=10))
def test_random_bytes_raise_nothing_but_protocol_error(chunks: list[bytes]) -> None:
    proto = AmiProtocol(max_frame_bytes=512)
    try:
        for chunk in chunks:
            for frame in proto.receive_data(chunk):
                assert isinstance(frame, dict)
                assert all(isinstance(v, str | list) for v in frame.values())
    except ProtocolError:
        pass
