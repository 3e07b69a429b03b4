"""What changed between two catalogues: actions, events, parameters and fields added or removed."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from types import MappingProxyType

from .model import Catalogue


@dataclass(frozen=True, slots=True)
class Diff:
    """``a`` -> ``b``. Names are sorted; ``params_*``/``fields_*`` only list actions/events in both."""

    a: str
    b: str
    actions_added: tuple[str, ...]
    actions_removed: tuple[str, ...]
    events_added: tuple[str, ...]
    events_removed: tuple[str, ...]
    params_added: Mapping[str, tuple[str, ...]]
    params_removed: Mapping[str, tuple[str, ...]]
    fields_added: Mapping[str, tuple[str, ...]]
    fields_removed: Mapping[str, tuple[str, ...]]

    def summary(self) -> dict[str, int]:
        """Counts: actions/events added and removed, and parameters/fields added and removed in all."""
        return {
            "actions_added": len(self.actions_added),
            "actions_removed": len(self.actions_removed),
            "events_added": len(self.events_added),
            "events_removed": len(self.events_removed),
            "params_added": sum(len(v) for v in self.params_added.values()),
            "params_removed": sum(len(v) for v in self.params_removed.values()),
            "fields_added": sum(len(v) for v in self.fields_added.values()),
            "fields_removed": sum(len(v) for v in self.fields_removed.values()),
        }

    def lines(self) -> list[str]:
        """A readable report, one line per change; empty sections are left out."""
        out = [f"{self.a} -> {self.b}"]
        for title, names in (
            ("actions added", self.actions_added),
            ("actions removed", self.actions_removed),
            ("events added", self.events_added),
            ("events removed", self.events_removed),
        ):
            if names:
                out.append(f"{title} ({len(names)}):")
                out.extend(f"  {name}" for name in names)
        for title, table in (
            ("parameters added", self.params_added),
            ("parameters removed", self.params_removed),
            ("fields added", self.fields_added),
            ("fields removed", self.fields_removed),
        ):
            if table:
                out.append(f"{title} ({sum(len(v) for v in table.values())}):")
                out.extend(f"  {owner}: {', '.join(names)}" for owner, names in table.items())
        if len(out) == 1:
            out.append("no changes")
        return out

    def __str__(self) -> str:
        return "\n".join(self.lines())


def _label(cat: Catalogue) -> str:
    return cat.release or cat.source


def diff(a: Catalogue, b: Catalogue) -> Diff:
    """The changes from ``a`` to ``b`` (by wire name; fields by frame key)."""
    common_actions = sorted(set(a.actions) & set(b.actions))
    common_events = sorted(set(a.events) & set(b.events))
    params_added: dict[str, tuple[str, ...]] = {}
    params_removed: dict[str, tuple[str, ...]] = {}
    for name in common_actions:
        pa, pb = set(a.actions[name].params), set(b.actions[name].params)
        if pb - pa:
            params_added[name] = tuple(sorted(pb - pa))
        if pa - pb:
            params_removed[name] = tuple(sorted(pa - pb))
    fields_added: dict[str, tuple[str, ...]] = {}
    fields_removed: dict[str, tuple[str, ...]] = {}
    for name in common_events:
        fa, fb = a.events[name].fields, b.events[name].fields
        added = [fb[k].name for k in sorted(set(fb) - set(fa))]
        removed = [fa[k].name for k in sorted(set(fa) - set(fb))]
        if added:
            fields_added[name] = tuple(added)
        if removed:
            fields_removed[name] = tuple(removed)
    return Diff(
        a=_label(a),
        b=_label(b),
        actions_added=tuple(sorted(set(b.actions) - set(a.actions))),
        actions_removed=tuple(sorted(set(a.actions) - set(b.actions))),
        events_added=tuple(sorted(set(b.events) - set(a.events))),
        events_removed=tuple(sorted(set(a.events) - set(b.events))),
        params_added=MappingProxyType(params_added),
        params_removed=MappingProxyType(params_removed),
        fields_added=MappingProxyType(fields_added),
        fields_removed=MappingProxyType(fields_removed),
    )
