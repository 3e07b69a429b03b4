"""What the session may read, and so which parts of the live state it can follow (sans-IO).

Why an account without ``call`` in its manager.conf ``read`` showed an empty PBX: Asterisk sends a session
an event only when every class of the event's ``Privilege`` is in the session's ``send_events``, which is
the account's read classes and the Login's ``Events:`` mask together (main/manager.c: ``authenticate()``,
``set_eventmask()``, ``process_events()``); answers to actions are never filtered. The bootstrap lists came
in whole (a true snapshot of the login's moment), and then no ``Newchannel``, ``Hangup`` or ``BridgeEnter``
(all ``call``) ever arrived: every call that started later was missing, every call that ended stayed.

The rule: each part of the live state needs the event classes that report its changes (``NEEDS``; Asterisk
22's event classes, as its AMI documentation gives them). A class the session cannot read is found from, in
this order:

1. the client's ``events`` option: a mask without the class (``events=False``, ``'system'``) keeps it out;
2. Asterisk's answer to ``Command: manager show user <username>``, its ``read perm:`` line (the account
   needs ``command`` in its ``write`` for it);
3. when Asterisk does not answer that (``Permission denied``), the events themselves: a class is readable
   once one of the events the model handles arrives with it (its ``Privilege`` header, or its name:
   ``Newchannel`` is only ever ``call``; every call has a Newchannel and a Hangup, every queue change a
   Queue* or Agent* event);
   one that has not is proven missing when a later channel list holds channels that appeared or went away
   unannounced, since Asterisk announces every one with a ``call`` event.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping

#: manager.conf's classes, in Asterisk's order (main/manager.c ``perms[]``)
CLASSES = (
    "system",
    "call",
    "log",
    "verbose",
    "command",
    "agent",
    "user",
    "config",
    "dtmf",
    "reporting",
    "cdr",
    "dialplan",
    "originate",
    "agi",
    "cc",
    "aoc",
    "test",
    "security",
    "message",
)
#: the class of the events that report each part's changes (README "Live state": the read classes)
NEEDS = {"channels": "call", "calls": "call", "bridges": "call", "devices": "call", "queues": "agent"}
#: the list that shows what a class's events would have announced (a channel or a queue member or caller
#: that appeared or went away)
LIST_OF = {"call": "channels", "agent": "queues"}
#: the events the model follows whose class is one of NEEDS' (Asterisk 22's AMI documentation)
EVENT_CLASS = {
    **dict.fromkeys(
        (
            "Newchannel",
            "Hangup",
            "HangupRequest",
            "SoftHangupRequest",
            "Newstate",
            "NewCallerid",
            "NewConnectedLine",
            "NewAccountCode",
            "Rename",
            "DialBegin",
            "DialState",
            "DialEnd",
            "Hold",
            "Unhold",
            "LocalBridge",
            "LocalOptimizationBegin",
            "LocalOptimizationEnd",
            "BridgeCreate",
            "BridgeEnter",
            "BridgeLeave",
            "BridgeDestroy",
            "BridgeMerge",
            "AttendedTransfer",
            "BlindTransfer",
            "DeviceStateChange",
            "OriginateResponse",
        ),
        "call",
    ),
    **dict.fromkeys(
        (
            "QueueMemberAdded",
            "QueueMemberRemoved",
            "QueueMemberStatus",
            "QueueMemberPause",
            "QueueMemberRinginuse",
            "QueueCallerJoin",
            "QueueCallerLeave",
            "QueueCallerAbandon",
            "AgentCalled",
            "AgentConnect",
            "AgentComplete",
            "AgentRingNoAnswer",
        ),
        "agent",
    ),
}
_TRUE = frozenset({"yes", "true", "y", "t", "1", "on"})
_FALSE = frozenset({"no", "false", "n", "f", "0", "off"})


def mask_classes(events: bool | str) -> frozenset[str]:
    """The classes an ``events`` option lets through (Asterisk's ``strings_to_mask`` of the Login's
    ``Events:``: on/off words, a number, or a comma list of class names)."""
    if events is True:
        return frozenset(CLASSES)
    if events is False:
        return frozenset()
    text = str(events).strip()
    if not text or text.lower() in _TRUE:
        return frozenset(CLASSES)
    if text.lower() in _FALSE:
        return frozenset()
    if text.isdigit():
        bits = int(text)
        return frozenset(name for name, bit in zip(CLASSES, _BITS, strict=True) if bits & bit)
    words = {w.strip() for w in text.split(",")}
    return frozenset(CLASSES) if "all" in words else frozenset(c for c in CLASSES if c in words)


_BITS = tuple(1 << n for n in (*range(14), *range(15, 20)))  # EVENT_FLAG_*: bit 14 is not a class


def read_classes(output: Iterable[str]) -> tuple[frozenset[str], str] | None:
    """The classes and the text of the ``read perm:`` line of ``manager show user``'s output, or None."""
    for line in output:
        key, sep, value = line.partition(":")
        if sep and key.strip() == "read perm":
            text = value.strip()
            words = {w.strip() for w in text.split(",")}
            return frozenset(CLASSES) if "all" in words else frozenset(c for c in CLASSES if c in words), text
    return None


def event_classes(frame: Mapping[str, object]) -> Iterable[str]:
    """The classes an event proves the session reads: its ``Privilege`` header's, or its name's."""
    privilege = frame.get("privilege")
    if isinstance(privilege, str):
        return privilege.split(",")
    name = frame.get("event")
    cls = EVENT_CLASS.get(name) if isinstance(name, str) else None
    return (cls,) if cls is not None else ()


def parts_of(cls: str) -> list[str]:
    return [part for part, needed in NEEDS.items() if needed == cls]


def manager_line(username: str, read_text: str | None, cls: str) -> str:
    """The manager.conf line that gives the account the class."""
    if read_text is None:
        return f"[{username}] read = <its classes>,{cls}"
    classes = [w.strip() for w in read_text.split(",") if w.strip() and w.strip() != "<none>"]
    return f"[{username}] read = {','.join([*classes, cls])}"
