"""Server-side event filters (the ``event_filters`` option), sans-IO: expressions to ``Filter`` actions.

Asterisk filters events per session with ``Action: Filter`` / ``Operation: Add``; the filters go with the
session, so the session writes them again after every login (session.py). Two syntaxes:

* **legacy** (every version): a POSIX regular expression matched against the whole event text,
  ``Event: Newchannel``; a leading ``!`` excludes what matches, ``!Channel: DAHDI/``;
* **advanced** (Asterisk 18.25, 20.10, 21.5, 22 and later): match criteria, and an expression when the
  method needs one, as manager.conf spells them: ``name(Newchannel)``,
  ``action(exclude),header(Channel),method(starts_with) = Local/``; the manager.conf line itself,
  ``eventfilter(name(Hangup)) =``, is taken too.

With include filters only the events matching one of them are sent; exclude filters then remove
events from what is left.
"""

from __future__ import annotations

import re
from collections.abc import Iterable

from .errors import HeaderInjectionError, InvalidMessageError
from .messages import BAD_CHARS, encode_message

_CRITERIA = {
    "action": frozenset({"include", "exclude"}),
    "name": None,
    "header": None,
    "method": frozenset({"regex", "exact", "starts_with", "ends_with", "contains", "none"}),
}
_ADVANCED = re.compile(r"\s*(?:eventfilter\s*\()?\s*(?:action|name|header|method)\s*\(")
_CRITERION = re.compile(r"\s*(\w+)\s*\(([^()]*)\)\s*")


def filter_message(expression: str) -> dict[str, str]:
    """The ``Filter`` action that adds ``expression`` (without its ActionID). Raises ``ValueError`` for
    an expression Asterisk could not take, naming what is wrong."""
    if not isinstance(expression, str):
        raise TypeError(f"an event filter is a str, not {type(expression).__name__}")
    if BAD_CHARS.search(expression):
        raise HeaderInjectionError(f"event filter {expression!r} contains CR, LF or NUL")
    if not expression.strip():
        raise ValueError("an event filter cannot be empty")
    if not _ADVANCED.match(expression):
        return {"Action": "Filter", "Operation": "Add", "Filter": expression}
    criteria, value = parse_advanced(expression)
    match = ",".join(f"{name}({arg})" for name, arg in criteria)
    return {"Action": "Filter", "Operation": "Add", "MatchCriteria": match, "Filter": value}


def parse_advanced(expression: str) -> tuple[list[tuple[str, str]], str]:
    """The criteria, as (name, argument) pairs, and the value of ``criteria [= value]`` or of a manager.conf
    line ``eventfilter(criteria) = [value]``. Raises ``ValueError`` naming what is wrong."""
    text = expression.strip()
    if re.match(r"eventfilter\s*\(", text):
        start = text.index("(") + 1
        end = _closing(text, start)
        if end < 0:
            raise ValueError(f"event filter {expression!r}: unbalanced parentheses")
        head, tail = text[start:end], text[end + 1 :].strip()
    else:
        head, sep, rest = text.partition("=")
        if head.count("(") != head.count(")"):  # a "=" inside a criterion's parentheses is not the separator
            raise ValueError(f"event filter {expression!r}: unbalanced parentheses")
        tail = sep + rest
    if tail and not tail.startswith("="):
        raise ValueError(f"event filter {expression!r}: what follows the criteria must start with '='")
    criteria: list[tuple[str, str]] = []
    pos = 0
    while pos < len(head):
        m = _CRITERION.match(head, pos)
        if m is None:
            raise ValueError(f"event filter {expression!r}: criteria are name(), header(), method(), action()")
        name, arg = m.group(1).lower(), m.group(2).strip()
        allowed = _CRITERIA.get(name, frozenset())
        if name not in _CRITERIA or any(name == seen for seen, _ in criteria):
            raise ValueError(f"event filter {expression!r}: {name}() is unknown or given twice")
        if allowed is not None and arg not in allowed:
            raise ValueError(f"event filter {expression!r}: {name}() takes one of {', '.join(sorted(allowed))}")
        if not arg:
            raise ValueError(f"event filter {expression!r}: {name}() needs a value")
        criteria.append((name, arg))
        pos = m.end()
        if pos < len(head):
            if head[pos] != ",":
                raise ValueError(f"event filter {expression!r}: criteria are separated by commas")
            pos += 1
    return criteria, tail[1:].strip()


def _closing(text: str, start: int) -> int:
    """The index of the ``)`` that closes the ``(`` just before ``start``, or -1."""
    depth = 1
    for i in range(start, len(text)):
        if text[i] == "(":
            depth += 1
        elif text[i] == ")":
            depth -= 1
            if depth == 0:
                return i
    return -1


def name_filter(name: str) -> str:
    """A legacy filter (every Asterisk version) that lets exactly the events called ``name`` through, in
    any letter case, as the CLI's ``--event`` matches: ``^Event: [Hh][Aa]...[[:space:]]``. A shell-style
    pattern (``Queue*``, ``Agent?``, ``[DN]ial*``, patterns.py) becomes the same kind of expression."""
    if BAD_CHARS.search(name):
        raise HeaderInjectionError(f"event name {name!r} contains CR, LF or NUL")
    if not name.strip():
        raise InvalidMessageError("an event name cannot be empty")
    return f"^Event: {_glob_ere(name)}[[:space:]]"


def _glob_ere(name: str) -> str:
    """``name`` as a POSIX extended regular expression over one event name, letters in either case."""
    out: list[str] = []
    i = 0
    while i < len(name):
        c = name[i]
        end = name.find("]", i + 2) if c == "[" else -1
        if c == "*":
            out.append("[^[:space:]]*")
        elif c == "?":
            out.append("[^[:space:]]")
        elif end > 0:  # a bracket set, as fnmatch reads it: [abc], [!abc], [a-z]
            body = name[i + 1 : end]
            negate = body.startswith("!")
            body = body[1:] if negate else body
            out.append(f"[{'^' if negate else ''}{_bracket_body(body)}]")
            i = end
        else:
            out.append(f"[{c.upper()}{c.lower()}]" if c.isalpha() else _literal(c))
        i += 1
    return "".join(out)


def _bracket_body(body: str) -> str:
    """The inside of a bracket set with each letter (and each range of letters) in both cases."""
    parts: list[str] = []
    j = 0
    while j < len(body):
        if j + 2 < len(body) and body[j + 1] == "-":
            low, high = body[j], body[j + 2]
            parts.append(f"{low}-{high}")
            if low.isalpha() and high.isalpha():
                parts.append(f"{low.swapcase()}-{high.swapcase()}")
            j += 3
            continue
        c = body[j]
        parts.append(c.upper() + c.lower() if c.isalpha() else c)
        j += 1
    return "".join(parts)


def _literal(c: str) -> str:
    """``c`` matched literally in a POSIX extended regular expression."""
    if c.isalnum() or c in "_-:/ ]":
        return c
    if c == "^":
        return "\\^"
    return f"[{c}]"


def check_filters(filters: Iterable[str], encoding: str = "utf-8") -> tuple[str, ...]:
    """The ``event_filters`` option, checked now: a bad expression, or one Asterisk would refuse to read
    (a line over its limit, text the encoding cannot write), raises here, never on a reader."""
    if isinstance(filters, str):
        raise TypeError("event_filters is a list of filter expressions, not one str")
    checked = tuple(filters)
    for expression in checked:
        message = filter_message(expression)
        try:
            encode_message(message, encoding)
        except UnicodeEncodeError:
            raise InvalidMessageError(f"event filter {expression!r} cannot be written in {encoding}") from None
        except InvalidMessageError as exc:
            raise type(exc)(f"event filter {expression!r}: {exc}") from None
    return checked


# -- how Asterisk applies them (FakeAsterisk filters its events with this) --------------------------------

COMPILE_ERROR = "Filter did not compile.  Check the syntax of the filter given."
FORMAT_ERROR = "Filter was formatted incorrectly.  Check the syntax of the filter given."
_POSIX_CLASSES = {
    "[:space:]": r"\s",
    "[:digit:]": r"\d",
    "[:alpha:]": "a-zA-Z",
    "[:alnum:]": "a-zA-Z0-9",
    "[:upper:]": "A-Z",
    "[:lower:]": "a-z",
    "[:blank:]": " \t",
    "[:punct:]": re.escape("!\"#$%&'()*+,-./:;<=>?@[\\]^_`{|}~"),
}


def posix_regex(pattern: str) -> re.Pattern[str]:
    """A POSIX extended regular expression (Asterisk's regcomp) as a Python pattern: the character
    classes ``[[:space:]]`` and the like translated, the rest taken as it is. Raises ``re.error``."""
    for name, python in _POSIX_CLASSES.items():
        pattern = pattern.replace(name, python)
    return re.compile(pattern)


class _Rule:
    __slots__ = ("exclude", "header", "method", "name", "pattern", "value")

    def __init__(self) -> None:
        self.exclude = False
        self.name: str | None = None
        self.header: str | None = None
        self.method = "regex"
        self.value = ""
        self.pattern: re.Pattern[str] | None = None

    def matches(self, name: str, headers: list[tuple[str, str]], payload: str) -> bool:
        if self.name is not None and name != self.name:
            return False
        if self.header is not None:
            values = [v for k, v in headers if k.lower() == self.header]
            if not values:
                return False
        else:
            values = [payload]
        method = self.method
        if method == "none":
            return True
        if method == "regex":
            assert self.pattern is not None
            return any(self.pattern.search(v) for v in values)
        value = self.value
        if method == "exact":
            return value in values
        if method == "starts_with":
            return any(v.startswith(value) for v in values)
        if method == "ends_with":
            return any(v.endswith(value) for v in values)
        return any(value in v for v in values)  # contains


class FilterSet:
    """One session's filters, applied as Asterisk applies them: with include filters only the events
    matching one of them pass; exclude filters then remove events from what is left."""

    def __init__(self) -> None:
        self.includes: list[_Rule] = []
        self.excludes: list[_Rule] = []

    def __bool__(self) -> bool:
        return bool(self.includes or self.excludes)

    def add(self, criteria: str, value: str) -> str | None:
        """Add a filter (``MatchCriteria`` and ``Filter`` of the action); returns Asterisk's error message,
        or None when it was added."""
        rule = _Rule()
        if criteria.strip():
            try:
                pairs, value = parse_advanced(f"{criteria} = {value}")
            except ValueError:
                return FORMAT_ERROR
            given = dict(pairs)
            rule.exclude = given.get("action") == "exclude"
            rule.name = given.get("name")
            rule.header = given["header"].lower() if "header" in given else None
            rule.method = given.get("method", "none")
        else:
            rule.exclude = value.startswith("!")
            value = value[1:] if rule.exclude else value
        rule.value = value
        if rule.method == "regex":
            try:
                rule.pattern = posix_regex(value)
            except re.error:
                return COMPILE_ERROR
        (self.excludes if rule.exclude else self.includes).append(rule)
        return None

    def allows(self, name: str, headers: list[tuple[str, str]], payload: str) -> bool:
        """Whether an event (its name, its headers in order, its text as sent) gets through."""
        if self.includes and not any(r.matches(name, headers, payload) for r in self.includes):
            return False
        return not any(r.matches(name, headers, payload) for r in self.excludes)
