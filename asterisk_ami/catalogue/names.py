"""Did-you-mean for event and action names, over every release and the overlay.

``event_hint``/``action_hint`` return None for a name that is fine and a one-line message otherwise;
the clients call them on every ``on()``, so answers are cached and the name tables built once.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from functools import cache, lru_cache

CUTOFF = 0.75
_GLOB = frozenset("*?[")


def closest(name: str, lower_to_name: Mapping[str, str], cutoff: float = CUTOFF) -> str | None:
    """The known name nearest ``name`` (compared in lower case), or None when none is near."""
    import difflib  # only when a name is wrong: importing the catalogue stays cheap

    found = difflib.get_close_matches(name.lower(), list(lower_to_name), n=1, cutoff=cutoff)
    return lower_to_name[found[0]] if found else None


def quoted_or(names: Iterable[str]) -> str:
    """'"A"', '"A" or "B"', '"A", "B" or "C"'."""
    items = [f'"{n}"' for n in names]
    return items[0] if len(items) == 1 else ", ".join(items[:-1]) + " or " + items[-1]


@dataclass(frozen=True, slots=True)
class _Names:
    events: frozenset[str]  # exact wire names
    events_lower: Mapping[str, str]
    actions_lower: Mapping[str, str]
    renamed: Mapping[str, tuple[str, ...]]
    removed: frozenset[str]


@cache
def _names() -> _Names:
    # only the names of every release: read and let go, so the first on() of a client does not keep five
    # releases' data in memory (about 6 MB) for its name check
    import json

    from . import DATA_DIR, RELEASES
    from .overlay import load_overlay

    overlay = load_overlay()
    events: set[str] = set(overlay.events)
    actions: set[str] = set()
    for major in RELEASES:
        with open(DATA_DIR / f"{major}.json", encoding="utf-8") as fh:
            data = json.load(fh)
        events.update(overlay.wire_names.get(name, name) for name in data.get("events", {}))
        actions.update(data.get("actions", {}))
        del data
    return _Names(
        events=frozenset(events),
        events_lower={n.lower(): n for n in sorted(events)},
        actions_lower={n.lower(): n for n in sorted(actions)},
        renamed=overlay.renamed,
        removed=overlay.removed,
    )


def _skipped(name: str) -> bool:
    return not name or name.startswith("ami_") or not _GLOB.isdisjoint(name)


@lru_cache(maxsize=4096)
def event_hint(name: str) -> str | None:
    """None when some release or the overlay sends an event of exactly this name (or it is an ``ami_*``
    library event, or a glob); else why it will never fire and what to use instead."""
    if _skipped(name):
        return None
    names = _names()
    if name in names.events:
        return None
    if name in names.renamed:
        return f'"{name}" was renamed in Asterisk 12: use {quoted_or(names.renamed[name])}'
    if name in names.removed:
        return f'"{name}" was removed in Asterisk 12'
    same = names.events_lower.get(name.lower())
    if same is not None:
        return f'"{name}" is sent as "{same}"'
    near = closest(name, names.events_lower)
    if near is not None:
        return f'unknown event "{name}": did you mean "{near}"?'
    return f'unknown event "{name}": no release of Asterisk from 18 to 23 sends it'


@lru_cache(maxsize=4096)
def action_hint(name: str) -> str | None:
    """None when some release knows the action (in any case, as Asterisk compares them), or for a glob;
    else a message naming the closest known action when there is one."""
    if _skipped(name):
        return None
    names = _names()
    if name.strip().lower() in names.actions_lower:
        return None
    near = closest(name.strip(), names.actions_lower)
    if near is not None:
        return f'unknown action "{name}": did you mean "{near}"?'
    return f'unknown action "{name}": no release of Asterisk from 18 to 23 has it'
