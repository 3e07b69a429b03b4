"""Checks of an action message and of a received frame against one catalogue.

Lenient where Asterisk is: action and header names in any case, booleans as ``ast_true``/``ast_false``
read them, enum values of actions in any case (Asterisk compares them with ``strcasecmp``), and a
parameter that repeats (``Variable``) given as a list.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import TYPE_CHECKING

from .names import closest

if TYPE_CHECKING:
    from .model import Catalogue, Event, Problem

# headers any action may carry, whatever its documentation says
_ANY_ACTION = frozenset({"action", "actionid"})
# keys any event frame may carry: the common headers of manager.c, and the one the client adds
# (``identifier``, session.py, when the connection has one)
COMMON_FIELDS = frozenset({"event", "privilege", "timestamp", "systemname", "actionid", "identifier"})
# ast_true / ast_false (main/utils.c): the words a boolean parameter accepts
_TRUE = frozenset({"yes", "true", "y", "t", "1", "on"})
_FALSE = frozenset({"no", "false", "n", "f", "0", "off"})
_BOOLEAN = _TRUE | _FALSE
# events whose headers are the sender's choice (UserEvent: the dialplan's UserEvent() arguments)
FREE_FORM = frozenset({"UserEvent"})


def _values(value: object) -> Iterable[str]:
    if isinstance(value, (list, tuple)):
        return [str(v) for v in value]
    return [str(value)]


def _where(cat: Catalogue) -> str:
    return f"Asterisk {cat.release}" if cat.release else "this catalogue"


def check_action(cat: Catalogue, message: Mapping[str, object]) -> list[Problem]:
    from .model import Problem

    headers = {str(k).strip().lower(): (str(k).strip(), v) for k, v in message.items()}
    if "action" not in headers:
        return [Problem("missing-parameter", "Action", "the message has no Action header")]
    name = str(headers["action"][1]).strip()
    action = cat.action(name)
    if action is None:
        near = closest(name, {n.lower(): n for n in cat.actions})
        text = f'unknown action "{name}" in {_where(cat)}'
        return [Problem("unknown-action", name, text + (f': did you mean "{near}"?' if near else ""), near)]
    problems: list[Problem] = []
    for need in action.params.values():
        low = need.name.lower()
        if need.required and low not in _ANY_ACTION and low not in headers:
            text = f'{action.name}: missing required parameter "{need.name}"'
            problems.append(Problem("missing-parameter", need.name, text))
    for family in action.families.values():
        if family.required and not any(family.matches(shown) for shown, _ in headers.values()):
            text = f'{action.name}: needs at least one "{family.name}" header ({family.pattern})'
            problems.append(Problem("missing-parameter", family.name, text))
    overlay = cat.overlay
    free = action.name in overlay.free_form_actions
    for low, (shown, value) in headers.items():
        if low in _ANY_ACTION:
            continue
        param = action.param(low)
        if param is None:
            if free or any(family.matches(shown) for family in action.families.values()):
                continue
            near = closest(shown, {p.lower(): p for p in action.params})
            text = f'{action.name}: unknown parameter "{shown}"' + (f' (did you mean "{near}"?)' if near else "")
            problems.append(Problem("unknown-parameter", shown, text, near))
            continue
        if param.enum is None or (action.name, param.name) in overlay.open_params:
            continue
        allowed = {e.lower() for e in param.enum}
        if allowed <= _BOOLEAN:
            allowed = set(_BOOLEAN)
        for one in _values(value):
            if one.strip().lower() not in allowed:
                choices = ", ".join(param.enum)
                text = f'{action.name}: {param.name} "{one}" is not one of {choices}'
                problems.append(Problem("unknown-value", param.name, text))
    return problems


def check_frame(cat: Catalogue, frame: Mapping[str, object]) -> list[Problem]:
    from .model import Problem

    name = frame.get("event")
    if not isinstance(name, str):
        return []  # a response (or a list's items inside one)
    event = cat.events.get(name)
    if event is None:
        return [_unknown_event(cat, name)]
    problems: list[Problem] = []
    free = not event.documented or name in FREE_FORM  # only the fields we know are checked
    for key, value in frame.items():
        if key in COMMON_FIELDS:
            continue
        field = event.fields.get(key)
        if field is None:
            if free or _in_family(event, key):
                continue
            text = f'{name}: field "{key}" is not documented in {_where(cat)}'
            problems.append(Problem("unknown-field", key, text))
            continue
        if field.enum is None:
            continue
        for one in _values(value):
            if one not in field.enum:
                text = f'{name}: {field.name} "{one}" is not one of {", ".join(field.enum)}'
                problems.append(Problem("unknown-value", field.name, text))
    return problems


def _in_family(event: Event, key: str) -> bool:
    return any(family.matches_key(key) for family in event.families.values())


def _unknown_event(cat: Catalogue, name: str) -> Problem:
    from .model import Problem

    same = cat.event_name(name)
    if same is not None:
        return Problem("unknown-event", name, f'unknown event "{name}": it is sent as "{same}"', same)
    near = closest(name, {n.lower(): n for n in cat.events})
    text = f'unknown event "{name}" in {_where(cat)}' + (f': did you mean "{near}"?' if near else "")
    return Problem("unknown-event", name, text, near)
