"""The overlay: what Asterisk sends that its documentation does not say (``overlay.json``, by hand).

Every entry there carries an ``evidence`` string (a file and line of the Asterisk source, or of its
UPGRADE notes). Applied to every catalogue:

* ``wire_names``: an event documented under one spelling and sent under another (``NewExten`` is sent
  as ``Newexten``); the catalogue keys it by the wire spelling.
* ``snapshot_fields``: headers every channel snapshot carries beyond its documented ones (``Tenantid``,
  the repeated ``ChanVariable``), added for each snapshot prefix an event has.
* ``list_ends``/``list_end_fields``: documented events that end an event list, which carry
  ``EventList`` and ``ListItems`` although the documentation does not list them.
* ``events``: events sent but documented nowhere (``fields``: only what is evidenced); ``releases``
  restricts an entry to the releases whose source sends it.
* ``renamed``/``removed``: the event renames and removals of Asterisk 12, for hints.
* ``open_params``: action parameters whose documented values are examples, not the whole set
  (``Login``'s ``Events`` takes a list of classes); ``free_form_actions``: actions that take any header.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from types import MappingProxyType
from typing import Any

from ..protocol import normalize_key
from .model import Event, Field, families_of

OVERLAY_PATH = Path(__file__).with_name("overlay.json")
_SNAPSHOT_SUFFIX = "linkedid"  # a snapshot's fields end in these; its prefix is what comes before
_SNAPSHOT_SIBLINGS = ("uniqueid", "channelstate")


@dataclass(frozen=True, slots=True)
class ExtraEvent:
    name: str
    fields: tuple[str, ...]
    releases: tuple[str, ...] | None
    evidence: str


@dataclass(frozen=True, slots=True)
class Overlay:
    wire_names: Mapping[str, str]  # documented name -> wire name
    snapshot_fields: tuple[str, ...]
    list_ends: frozenset[str]
    list_end_fields: tuple[str, ...]
    events: Mapping[str, ExtraEvent]
    renamed: Mapping[str, tuple[str, ...]]  # Asterisk 11 name -> its Asterisk 12 replacements
    renamed_from: Mapping[str, tuple[str, ...]]
    removed: frozenset[str]
    open_params: frozenset[tuple[str, str]]  # (action, parameter): its documented enum is not the whole set
    free_form_actions: frozenset[str]  # actions that pass any header on (UserEvent)

    def event_sources(self, documented: Mapping[str, Any], major: str | None) -> dict[str, tuple[str | None, Any]]:
        """Wire name -> (documented name or None, its raw DATA DICT entry or None) for one release."""
        sources: dict[str, tuple[str | None, Any]] = {}
        for name, raw in documented.items():
            sources[self.wire_names.get(name, name)] = (name, raw)
        for name, extra in self.events.items():
            if name in sources:
                continue  # documented after all (by a newer XML read with load(path))
            if major is not None and extra.releases is not None and major not in extra.releases:
                continue
            sources[name] = (None, None)
        return sources

    def build_event(self, wire: str, source: tuple[str | None, Any]) -> Event:
        """The Event for one wire name, documented fields plus what the overlay adds."""
        doc_name, raw = source
        fields: dict[str, Field] = {}
        if raw is not None:
            for key, f in raw.get("fields", {}).items():
                enum = f.get("enum")
                fields[key] = Field(key, f["name"], tuple(enum) if enum is not None else None)
            for key in [k for k in fields if k.endswith(_SNAPSHOT_SUFFIX)]:
                prefix = key[: -len(_SNAPSHOT_SUFFIX)]
                if all(prefix + sibling in fields for sibling in _SNAPSHOT_SIBLINGS):
                    shown = fields[key].name[: -len(_SNAPSHOT_SUFFIX)]  # the prefix as documented
                    for suffix in self.snapshot_fields:
                        extra_key = prefix + normalize_key(suffix)
                        fields.setdefault(extra_key, Field(extra_key, shown + suffix))
            if doc_name in self.list_ends or wire in self.list_ends:
                for name in self.list_end_fields:
                    fields.setdefault(normalize_key(name), Field(normalize_key(name), name))
        extra = self.events.get(wire)
        if extra is not None:
            for name in extra.fields:
                fields.setdefault(normalize_key(name), Field(normalize_key(name), name))
        raw = raw or {}
        return Event(
            wire,
            MappingProxyType(fields),
            families_of(raw),
            tuple(raw.get("privilege", ())),
            tuple(raw.get("modules", ())),
            documented=doc_name is not None,
            renamed_from=self.renamed_from.get(wire, ()),
        )


@cache
def load_overlay(path: Path = OVERLAY_PATH) -> Overlay:
    """The overlay in ``path`` (the package's ``overlay.json``), read once."""
    with open(path, encoding="utf-8") as fh:
        data = json.load(fh)
    return overlay_from_dict(data)


def overlay_from_dict(data: Mapping[str, Any]) -> Overlay:
    renamed = {r["old"]: tuple(r["new"]) for r in data.get("renamed", ())}
    renamed_from: dict[str, list[str]] = {}
    for old, new in renamed.items():
        for name in new:
            renamed_from.setdefault(name, []).append(old)
    events = {
        e["name"]: ExtraEvent(
            e["name"],
            tuple(e.get("fields", ())),
            tuple(e["releases"]) if "releases" in e else None,
            e["evidence"],
        )
        for e in data.get("events", ())
    }
    return Overlay(
        wire_names=MappingProxyType({w["documented"]: w["wire"] for w in data.get("wire_names", ())}),
        snapshot_fields=tuple(s["name"] for s in data.get("snapshot_fields", ())),
        list_ends=frozenset(e["event"] for e in data.get("list_ends", ())),
        list_end_fields=tuple(data.get("list_end_fields", {}).get("fields", ())),
        events=MappingProxyType(events),
        renamed=MappingProxyType(renamed),
        renamed_from=MappingProxyType({k: tuple(v) for k, v in renamed_from.items()}),
        removed=frozenset(r["name"] for r in data.get("removed", ())),
        open_params=frozenset((p["action"], p["param"]) for p in data.get("open_params", ())),
        free_form_actions=frozenset(a["action"] for a in data.get("free_form_actions", ())),
    )


def evidence_entries(data: Mapping[str, Any]) -> list[tuple[str, Mapping[str, Any]]]:
    """Every entry of an overlay dict that must carry evidence, with the section it is in."""
    found: list[tuple[str, Mapping[str, Any]]] = []
    for section, value in data.items():
        if isinstance(value, list):
            found.extend((section, entry) for entry in value)
        elif isinstance(value, dict):
            found.append((section, value))
    return found
