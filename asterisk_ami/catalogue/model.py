"""The catalogue's objects: frozen dataclasses over one release's DATA DICT (and the overlay).

A catalogue is built lazily: loading a release reads its JSON and indexes the names; an ``Action`` or
``Event`` (with its ``Param``/``Field`` objects) is made the first time it is looked up, so loading stays
well under 10 ms and a client that checks three actions builds three.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from functools import lru_cache
from types import MappingProxyType
from typing import TYPE_CHECKING, Any, Generic, TypeVar

if TYPE_CHECKING:  # overlay.py builds Events from this module
    from .overlay import Overlay

T = TypeVar("T")

_EMPTY: Mapping[str, Any] = MappingProxyType({})


def _empty() -> Mapping[str, Any]:
    return _EMPTY


@dataclass(frozen=True, slots=True)
class Param:
    """One documented parameter of an action; ``enum`` only when the XML lists the values."""

    name: str
    required: bool
    enum: tuple[str, ...] | None = None


@dataclass(frozen=True, slots=True)
class Family:
    """Numbered headers such as ``Var-000000``: ``pattern`` is a regular expression over the header name."""

    name: str
    pattern: str
    required: bool = False

    def matches(self, header: str) -> bool:
        """Whether a header name as written (any case) belongs to the family."""
        return _compiled(self.pattern).fullmatch(header.strip()) is not None

    def matches_key(self, key: str) -> bool:
        """Whether a frame key (normalised: lower case, no '-') belongs to the family."""
        return _compiled(self.pattern.replace("-", "")).fullmatch(key) is not None


@lru_cache(maxsize=256)
def _compiled(pattern: str) -> re.Pattern[str]:
    return re.compile(pattern, re.IGNORECASE)


@dataclass(frozen=True, slots=True)
class Field:
    """One header of an event: ``key`` is the frame key (``normalize_key`` of ``name``)."""

    key: str
    name: str
    enum: tuple[str, ...] | None = None


@dataclass(frozen=True, slots=True)
class Action:
    """An action as one release documents it; ``name`` is its documented spelling."""

    name: str
    params: Mapping[str, Param]
    families: Mapping[str, Family] = field(default_factory=_empty)
    responses: tuple[str, ...] = ()
    modules: tuple[str, ...] = ()
    _lower: Mapping[str, Param] = field(default_factory=_empty, repr=False, compare=False)

    def param(self, name: str) -> Param | None:
        """The parameter named ``name`` in any case (Asterisk reads headers case-insensitively)."""
        return self._lower.get(name.strip().lower())


@dataclass(frozen=True, slots=True)
class Event:
    """An event under its wire name. ``documented`` is False for an event only the overlay knows (its
    ``fields`` are then only what the overlay could evidence); ``renamed_from`` names the events of
    Asterisk 11 and earlier that this one replaced."""

    name: str
    fields: Mapping[str, Field]
    families: Mapping[str, Family] = field(default_factory=_empty)
    privilege: tuple[str, ...] = ()
    modules: tuple[str, ...] = ()
    documented: bool = True
    renamed_from: tuple[str, ...] = ()


class LazyMap(Mapping[str, T], Generic[T]):
    """A read-only mapping whose values are built from raw data on first access, then kept."""

    __slots__ = ("_build", "_built", "_raw")

    def __init__(self, raw: Mapping[str, Any], build: Callable[[str, Any], T]) -> None:
        self._raw = raw
        self._build = build
        self._built: dict[str, T] = {}

    def __getitem__(self, key: str) -> T:
        try:
            return self._built[key]
        except KeyError:
            pass
        value = self._build(key, self._raw[key])  # KeyError for an unknown name, as a dict
        self._built[key] = value
        return value

    def __iter__(self) -> Iterator[str]:
        return iter(self._raw)

    def __len__(self) -> int:
        return len(self._raw)

    def __contains__(self, key: object) -> bool:
        return key in self._raw

    def __repr__(self) -> str:
        return f"<{len(self._raw)} entries: {', '.join(list(self._raw)[:5])}, ...>"


def _enum(raw: Mapping[str, Any]) -> tuple[str, ...] | None:
    values = raw.get("enum")
    return tuple(values) if values is not None else None


def families_of(raw: Mapping[str, Any]) -> Mapping[str, Family]:
    fams = raw.get("families")
    if not fams:
        return _EMPTY
    return MappingProxyType(
        {name: Family(name, f["pattern"], bool(f.get("required", False))) for name, f in fams.items()}
    )


def build_action(name: str, raw: Mapping[str, Any]) -> Action:
    params = {p: Param(p, bool(r.get("required", False)), _enum(r)) for p, r in raw.get("params", {}).items()}
    return Action(
        name,
        MappingProxyType(params),
        families_of(raw),
        tuple(raw.get("responses", ())),
        tuple(raw.get("modules", ())),
        MappingProxyType({p.lower(): v for p, v in params.items()}),
    )


class Catalogue:
    """The actions and events of one release (or of all: ``union()``), keyed by wire name.

    ``actions``/``events`` are read-only mappings; ``action(name)``/``event(name)`` accept any case and
    return None for an unknown name. Immutable: nothing changes a catalogue after it is made.
    """

    __slots__ = ("_action_lower", "_event_lower", "actions", "events", "major", "overlay", "release", "source")

    _action_lower: Mapping[str, str] | None
    _event_lower: Mapping[str, str] | None
    release: str | None
    major: str | None
    source: str
    overlay: Overlay
    actions: Mapping[str, Action]
    events: Mapping[str, Event]

    def __init__(self, data: Mapping[str, Any], overlay: Overlay, source: str, major: str | None = None) -> None:
        release = data.get("release")
        object.__setattr__(self, "release", release)
        if major is None and isinstance(release, str) and release:
            major = release.split(".", 1)[0]
        object.__setattr__(self, "major", major)
        object.__setattr__(self, "source", source)
        object.__setattr__(self, "overlay", overlay)
        object.__setattr__(self, "actions", LazyMap(data.get("actions", {}), build_action))
        object.__setattr__(
            self, "events", LazyMap(overlay.event_sources(data.get("events", {}), major), overlay.build_event)
        )
        object.__setattr__(self, "_action_lower", None)
        object.__setattr__(self, "_event_lower", None)

    def __setattr__(self, name: str, value: object) -> None:
        raise AttributeError(f"Catalogue is immutable: cannot set {name!r}")

    def __repr__(self) -> str:
        what = self.release or self.source
        return f"<Catalogue {what}: {len(self.actions)} actions, {len(self.events)} events>"

    def _lower_actions(self) -> Mapping[str, str]:
        table: Mapping[str, str] | None = self._action_lower
        if table is None:
            table = {name.lower(): name for name in self.actions}
            object.__setattr__(self, "_action_lower", table)
        return table

    def _lower_events(self) -> Mapping[str, str]:
        table: Mapping[str, str] | None = self._event_lower
        if table is None:
            table = {name.lower(): name for name in self.events}
            object.__setattr__(self, "_event_lower", table)
        return table

    def action_name(self, name: str) -> str | None:
        """The catalogue's spelling of an action name given in any case, or None."""
        return self._lower_actions().get(name.strip().lower())

    def event_name(self, name: str) -> str | None:
        """The wire spelling of an event name given in any case, or None."""
        return self._lower_events().get(name.strip().lower())

    def action(self, name: str) -> Action | None:
        """The action named ``name`` in any case (Asterisk accepts any case), or None."""
        found = self.action_name(name)
        return self.actions[found] if found is not None else None

    def event(self, name: str) -> Event | None:
        """The event named ``name`` in any case, or None. Mind that the wire (and ``on()``) is
        case-sensitive: ``event("NewExten").name`` is ``"Newexten"``."""
        found = self.event_name(name)
        return self.events[found] if found is not None else None

    def check_action(self, message: Mapping[str, object]) -> list[Problem]:
        """Problems of an action message (header names in any case) against this release."""
        from .check import check_action

        return check_action(self, message)

    def check_frame(self, frame: Mapping[str, object]) -> list[Problem]:
        """Problems of an event frame (keys normalised) against this release; [] for a response."""
        from .check import check_frame

        return check_frame(self, frame)


@dataclass(frozen=True, slots=True)
class Problem:
    """One thing ``check_action``/``check_frame`` found. ``kind`` is one of ``unknown-action``,
    ``unknown-event``, ``missing-parameter``, ``unknown-parameter``, ``unknown-field``,
    ``unknown-value``; ``name`` the action, event, parameter or field concerned; ``hint`` a
    suggestion (the closest known name) when there is one."""

    kind: str
    name: str
    message: str
    hint: str | None = None

    def __str__(self) -> str:
        return self.message
