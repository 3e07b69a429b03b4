"""What ``LiveState`` hands out: frozen objects, built from the model's records when they are read.

Every object is immutable and every mapping read-only, so a reader on another thread never sees half of
an event applied: it holds either the object from before the event or the one from after. ``fields``
keeps every header of the object's last event (lower-cased keys), also the ones this module does not
model.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any

_EMPTY: Mapping[str, str] = MappingProxyType({})


def _plain(obj: Any) -> dict[str, Any]:
    """A frozen object as JSON-ready data: mappings become dicts, sets sorted lists."""
    out: dict[str, Any] = {}
    for name in obj.__dataclass_fields__:
        value = getattr(obj, name)
        if isinstance(value, Mapping):
            value = {k: _plain(v) if hasattr(v, "__dataclass_fields__") else v for k, v in value.items()}
        elif isinstance(value, frozenset | set):
            value = sorted(value)
        elif isinstance(value, tuple):
            value = list(value)
        out[name] = value
    return out


class _Plain:
    """``to_dict()``: the object as JSON-ready data."""

    __slots__ = ()

    def to_dict(self) -> dict[str, Any]:
        """The object as JSON-ready data: mappings become dicts, sets sorted lists."""
        return _plain(self)


def as_int(value: object, default: int = 0) -> int:
    try:
        return int(str(value))
    except (TypeError, ValueError):
        return default


def as_bool(value: object) -> bool:
    return str(value).strip().lower() in ("1", "yes", "true", "y", "t", "on")


@dataclass(frozen=True, slots=True)
class Channel(_Plain):
    """One channel, keyed by ``uniqueid``. ``created``/``answered`` are wall-clock seconds (``time.time()``);
    ``cause``/``cause_txt`` are set on the object ``channel_removed`` hands out."""

    uniqueid: str
    """``Uniqueid``: the key of the channel."""
    linkedid: str
    """``Linkedid``: the call it belongs to (it can change, e.g. after ``Action: Bridge``)."""
    name: str
    """``Channel``, e.g. ``PJSIP/100-00000001``."""
    state: int
    """``ChannelState``, Asterisk's number (6: up)."""
    state_desc: str
    """``ChannelStateDesc``, e.g. ``Ring``, ``Up``."""
    callerid_num: str
    """``CallerIDNum``."""
    callerid_name: str
    """``CallerIDName``."""
    connected_num: str
    """``ConnectedLineNum``."""
    connected_name: str
    """``ConnectedLineName``."""
    account_code: str
    """``AccountCode``."""
    context: str
    """``Context`` of the dialplan position."""
    exten: str
    """``Exten`` of the dialplan position."""
    priority: int
    """``Priority`` of the dialplan position."""
    application: str
    """``Application`` running (``Dial``, ``Queue``, ...)."""
    app_data: str
    """``AppData``: its arguments."""
    bridge_id: str | None
    """The bridge it is in, or None when not bridged."""
    created: float
    """When it was first seen, wall-clock seconds (``time.time()``)."""
    answered: float | None
    """When it went up, wall-clock seconds; None until answered."""
    cause: int | None = None
    """``Cause`` of the hangup, on the object ``channel_removed`` hands out."""
    cause_txt: str | None = None
    """``Cause-txt`` of the hangup, on the object ``channel_removed`` hands out."""
    fields: Mapping[str, str] = field(default_factory=lambda: _EMPTY, repr=False)
    """Every header of the object's last event (lower-cased keys), also those not modelled."""


@dataclass(frozen=True, slots=True)
class Call(_Plain):
    """The channels that share a ``linkedid`` (one call, however many legs)."""

    linkedid: str
    """The ``Linkedid`` its channels share."""
    channels: frozenset[str]  # uniqueids
    """The uniqueids of its channels."""
    started: float
    """When its first channel was seen, wall-clock seconds."""


@dataclass(frozen=True, slots=True)
class Bridge(_Plain):
    """A bridge, keyed by its ``BridgeUniqueid``; ``channels`` are the member uniqueids."""

    uniqueid: str
    """``BridgeUniqueid``."""
    type: str
    """``BridgeType`` (``basic``, ...)."""
    technology: str
    """``BridgeTechnology`` (``simple_bridge``, ...)."""
    creator: str
    """``BridgeCreator``."""
    name: str
    """``BridgeName``."""
    video_source_mode: str
    """``BridgeVideoSourceMode``."""
    channels: frozenset[str]
    """The uniqueids of its members."""
    created: float
    """When it was first seen, wall-clock seconds."""
    fields: Mapping[str, str] = field(default_factory=lambda: _EMPTY, repr=False)
    """Every header of the object's last event (lower-cased keys), also those not modelled."""


@dataclass(frozen=True, slots=True)
class QueueMember(_Plain):
    """A queue member, keyed by its interface (``Location`` in lists, ``Interface`` in events)."""

    interface: str
    """``Interface`` (``Location`` in lists): the key of the member."""
    name: str
    """``MemberName`` (``Name`` in lists)."""
    state_interface: str
    """``StateInterface``: the device whose state counts."""
    membership: str
    """``Membership``: ``static``, ``dynamic`` or ``realtime``."""
    penalty: int
    """``Penalty``."""
    calls_taken: int
    """``CallsTaken``."""
    last_call: int
    """``LastCall``, a Unix time (0: never)."""
    last_pause: int
    """``LastPause``, a Unix time (0: never)."""
    login_time: int
    """``LoginTime``, a Unix time."""
    in_call: bool
    """``InCall``: in a call from the queue now."""
    status: int
    """``Status``, Asterisk's device state number (1: not in use)."""
    paused: bool
    """``Paused``."""
    paused_reason: str
    """``PausedReason``."""
    ringinuse: bool | None  # lists do not say; None until an event does
    """``Ringinuse``; None until an event says (lists do not)."""
    wrapuptime: int
    """``Wrapuptime``, seconds."""
    fields: Mapping[str, str] = field(default_factory=lambda: _EMPTY, repr=False)
    """Every header of the object's last event (lower-cased keys), also those not modelled."""


@dataclass(frozen=True, slots=True)
class Queue(_Plain):
    """A queue: its counters (from ``QueueParams``, kept current by the events), members by interface,
    and the waiting callers' uniqueids in position order."""

    name: str
    """``Queue``: its name, the key."""
    strategy: str
    """``Strategy`` (``ringall``, ...)."""
    max: int
    """``Max`` waiting callers (0: no limit)."""
    calls: int
    """``Calls`` waiting now."""
    holdtime: int
    """``Holdtime``: average seconds waited."""
    talktime: int
    """``TalkTime``: average seconds talked."""
    completed: int
    """``Completed`` calls."""
    abandoned: int
    """``Abandoned`` calls."""
    service_level: int
    """``ServiceLevel``, seconds."""
    service_level_perf: str
    """``ServicelevelPerf``, percent."""
    weight: int
    """``Weight``."""
    members: Mapping[str, QueueMember]
    """Its members, by interface."""
    callers: tuple[str, ...]
    """The waiting callers' uniqueids, in position order."""
    fields: Mapping[str, str] = field(default_factory=lambda: _EMPTY, repr=False)
    """Every header of the object's last event (lower-cased keys), also those not modelled."""


def channel_of(fields: Mapping[str, str], bridge_id: str | None, created: float, answered: float | None) -> Channel:
    g = fields.get
    return Channel(
        uniqueid=g("uniqueid", ""),
        linkedid=g("linkedid", ""),
        name=g("channel", ""),
        state=as_int(g("channelstate")),
        state_desc=g("channelstatedesc", ""),
        callerid_num=g("calleridnum", ""),
        callerid_name=g("calleridname", ""),
        connected_num=g("connectedlinenum", ""),
        connected_name=g("connectedlinename", ""),
        account_code=g("accountcode", ""),
        context=g("context", ""),
        exten=g("exten", ""),
        priority=as_int(g("priority"), 1),
        application=g("application", ""),
        app_data=g("appdata", ""),
        bridge_id=bridge_id,
        created=created,
        answered=answered,
        cause=as_int(g("cause")) if "cause" in fields else None,
        cause_txt=g("causetxt"),
        fields=MappingProxyType(dict(fields)),
    )


def bridge_of(fields: Mapping[str, str], channels: frozenset[str], created: float) -> Bridge:
    g = fields.get
    return Bridge(
        uniqueid=g("bridgeuniqueid", ""),
        type=g("bridgetype", ""),
        technology=g("bridgetechnology", ""),
        creator=g("bridgecreator", ""),
        name=g("bridgename", ""),
        video_source_mode=g("bridgevideosourcemode", ""),
        channels=channels,
        created=created,
        fields=MappingProxyType(dict(fields)),
    )


def member_of(fields: Mapping[str, str]) -> QueueMember:
    g = fields.get
    ringinuse = g("ringinuse")
    return QueueMember(
        interface=g("interface", ""),
        name=g("membername", ""),
        state_interface=g("stateinterface", ""),
        membership=g("membership", ""),
        penalty=as_int(g("penalty")),
        calls_taken=as_int(g("callstaken")),
        last_call=as_int(g("lastcall")),
        last_pause=as_int(g("lastpause")),
        login_time=as_int(g("logintime")),
        in_call=as_bool(g("incall")),
        status=as_int(g("status")),
        paused=as_bool(g("paused")),
        paused_reason=g("pausedreason", ""),
        ringinuse=None if ringinuse is None else as_bool(ringinuse),
        wrapuptime=as_int(g("wrapuptime")),
        fields=MappingProxyType(dict(fields)),
    )


def queue_of(
    name: str, fields: Mapping[str, str], members: Mapping[str, QueueMember], callers: tuple[str, ...]
) -> Queue:
    g = fields.get
    return Queue(
        name=name,
        strategy=g("strategy", ""),
        max=as_int(g("max")),
        calls=as_int(g("calls")),
        holdtime=as_int(g("holdtime")),
        talktime=as_int(g("talktime")),
        completed=as_int(g("completed")),
        abandoned=as_int(g("abandoned")),
        service_level=as_int(g("servicelevel")),
        service_level_perf=g("servicelevelperf", ""),
        weight=as_int(g("weight")),
        members=MappingProxyType(dict(members)),
        callers=callers,
        fields=MappingProxyType(dict(fields)),
    )
