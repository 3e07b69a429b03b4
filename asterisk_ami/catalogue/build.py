"""The catalogue generator: Asterisk's documentation XML -> the DATA DICT of one release.

``build_data(source)`` reads a ``core-en_US.xml`` (``.xz`` too) or a ``documentation/`` directory and
returns the data: actions with their parameters, events with their fields, as names, required flags,
enumerated values and event classes (no synopsis or description text: that is Asterisk's prose).

    python -m asterisk_ami.catalogue.build ../shared/asterisk-docs            # writes data/{18,...}.json
    python -m asterisk_ami.catalogue.build ../shared/asterisk-docs --check    # exit 1 when a file differs
"""

from __future__ import annotations

import argparse
import difflib
import json
import re
import sys
import xml.etree.ElementTree as ET
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..errors import CatalogueError
from ..protocol import normalize_key
from .xmldoc import load_documents

FORMAT = 1
DATA_DIR = Path(__file__).with_name("data")
_VERSION = re.compile(r"^\d+\.\d+(?:\.\d+)?(?:-[\w.]+)?$")
_SOURCE_NAMES = ("core-en_US.xml.xz", "core-en_US.xml")

# Numbered header names: Asterisk documents one example of a repeated header with its number set to
# zeros ("Var-000000", "UnitType(0)"); the real headers carry any number in that place.
_DASHED = re.compile(r"^(?P<stem>.+)-(?P<digits>0+)$")  # Var-000000: always six digits on the wire
_BRACKETED = re.compile(r"^(?P<stem>.+)\((?P<digits>0+)\)$")  # UnitType(0): any number


def family_of(name: str, names: Iterable[str] = ()) -> tuple[str, str] | None:
    """``(family, regex)`` when ``name`` is a numbered header such as ``Var-000000``, else None.

    ``names`` are the other names of the same action or event: a ``Header1`` documented together with a
    ``HeaderN`` (UserEvent) is a family too.
    """
    match = _DASHED.match(name)
    if match is not None:
        return match["stem"], f"^{re.escape(match['stem'])}-\\d{{{len(match['digits'])}}}$"
    match = _BRACKETED.match(name)
    if match is not None:
        return match["stem"], f"^{re.escape(match['stem'])}\\(\\d+\\)$"
    stem, last = name[:-1], name[-1:]
    if stem and last in ("1", "N") and {stem + "1", stem + "N"} <= set(names):
        return stem, f"^{re.escape(stem)}\\d+$"
    return None


@dataclass
class _Param:
    """One parameter as one definition (one <manager> or <managerEventInstance>) documents it."""

    name: str
    required: bool
    enum: tuple[str, ...] | None


@dataclass
class _Definition:
    module: str | None
    params: dict[str, _Param]
    responses: set[str] = field(default_factory=set)
    classes: set[str] = field(default_factory=set)


def _enum(parameter: ET.Element) -> tuple[str, ...] | None:
    """The values an <enumlist> gives directly in the parameter or in its <para> (not an enum's own list)."""
    values: list[str] = []
    for enum in [*parameter.findall("enumlist/enum"), *parameter.findall("para/enumlist/enum")]:
        name = enum.get("name")
        if name is not None and name not in values:
            values.append(name)
    return tuple(values) or None


def _params(syntax: ET.Element | None) -> dict[str, _Param]:
    params: dict[str, _Param] = {}
    for parameter in [] if syntax is None else syntax.findall("parameter"):
        name = (parameter.get("name") or "").strip()
        if not name:
            continue
        required = parameter.get("required", "false").strip().lower() in ("true", "yes", "1")
        enum = _enum(parameter)
        previous = params.get(name)
        if previous is not None:  # the same name twice in one definition: keep what both say
            required = required or previous.required
            enum = _union_enum([previous.enum, enum])
        params[name] = _Param(name, required, enum)
    return params


def _union_enum(enums: Iterable[tuple[str, ...] | None]) -> tuple[str, ...] | None:
    """The union of the values, or None when one of the definitions leaves the value free."""
    values: list[str] = []
    for enum in enums:
        if enum is None:
            return None
        values.extend(v for v in enum if v not in values)
    return tuple(values)


def _module(*elements: ET.Element) -> str | None:
    for element in elements:
        module = element.get("module")
        if module:
            return module
    return None


@dataclass
class _Collected:
    actions: dict[str, list[_Definition]] = field(default_factory=dict)
    events: dict[str, list[_Definition]] = field(default_factory=dict)


def _collect(root: ET.Element, into: _Collected) -> None:
    for manager in root.iter("manager"):
        name = (manager.get("name") or "").strip()
        if not name:
            continue
        definition = _Definition(_module(manager), _params(manager.find("syntax")))
        for responses in manager.findall("responses"):
            definition.responses.update(e.get("name", "") for e in responses.iter("managerEvent"))
        definition.responses.discard("")
        into.actions.setdefault(name, []).append(definition)
    # Every <managerEvent>, at the top level or inside an action's <responses>, is an event.
    for event in root.iter("managerEvent"):
        name = (event.get("name") or "").strip()
        if not name:
            continue
        for instance in event.findall("managerEventInstance") or [event]:
            definition = _Definition(_module(instance, event), _params(instance.find("syntax")))
            classes = re.split(r"[|,\s]+", instance.get("class", ""))
            definition.classes.update(c.removeprefix("EVENT_FLAG_").lower() for c in classes if c)
            into.events.setdefault(name, []).append(definition)


def _merge(definitions: Sequence[_Definition], event: bool) -> dict[str, Any]:
    """One action's or event's entry from all the definitions of it (several modules, several instances).

    Parameters and fields are the union. A parameter is required only when every definition requires it:
    a server runs one of the modules that document an action (app_voicemail or its IMAP/ODBC build, say),
    so "required" must hold whichever it is, or the checker would flag valid actions. Likewise an enum is
    kept only when every definition that has the parameter lists values (union of them).
    """
    names: dict[str, list[_Param | None]] = {}
    for index, definition in enumerate(definitions):
        for param in definition.params.values():
            names.setdefault(param.name, [None] * len(definitions))[index] = param
    params: dict[str, Any] = {}
    families: dict[str, Any] = {}
    for name, found in names.items():
        present = [p for p in found if p is not None]
        required = all(p is not None and p.required for p in found)
        enum = _union_enum(p.enum for p in present)
        family = family_of(name, names)
        if family is not None:
            stem, pattern = family
            known = families.setdefault(stem, {"pattern": pattern, "required": required})
            known["required"] = known["required"] and required
            continue
        item: dict[str, Any] = {"name": name} if event else {"required": required}
        if enum is not None:
            item["enum"] = list(enum)
        if event:
            params.setdefault(normalize_key(name), item)  # first documented spelling wins
        else:
            params[name] = item
    entry: dict[str, Any] = {
        "modules": sorted({d.module for d in definitions if d.module}),
        "families": families,
    }
    if event:
        entry["fields"] = params
        entry["privilege"] = sorted({c for d in definitions for c in d.classes})
    else:
        entry["params"] = params
        entry["responses"] = sorted({r for d in definitions for r in d.responses})
    return entry


def release_of(source: Path) -> str | None:
    """The release named by the source's directory (``.../22.10.1/core-en_US.xml.xz``), else None."""
    resolved = source.resolve()
    candidates = [resolved, resolved.parent] if source.is_dir() else [resolved.parent]
    for path in candidates:
        if _VERSION.match(path.name):
            return path.name
    return None


def build_data(source: str | Path) -> dict[str, Any]:
    """The DATA DICT of the documentation at ``source`` (file or documentation/ directory)."""
    path = Path(source)
    collected = _Collected()
    for _path, root in load_documents(path):
        _collect(root, collected)
    if not collected.actions and not collected.events:
        raise CatalogueError(f"{path}: no <manager> or <managerEvent> documentation found")
    return {
        "format": FORMAT,
        "release": release_of(path),
        "actions": {name: _merge(defs, event=False) for name, defs in sorted(collected.actions.items())},
        "events": {name: _merge(defs, event=True) for name, defs in sorted(collected.events.items())},
    }


def dumps(data: dict[str, Any]) -> str:
    return json.dumps(data, indent=1, sort_keys=True, ensure_ascii=False) + "\n"


# --- CLI ----------------------------------------------------------------------------------------------


def release_sources(docs: Path) -> dict[str, Path]:
    """``{major: source file}`` for each ``<release>/core-en_US.xml[.xz]`` under ``docs``."""
    if not docs.is_dir():
        raise CatalogueError(f"{docs}: not a directory of <release>/core-en_US.xml.xz")
    sources: dict[str, Path] = {}
    for release_dir in sorted(p for p in docs.iterdir() if p.is_dir() and _VERSION.match(p.name)):
        source = next((release_dir / n for n in _SOURCE_NAMES if (release_dir / n).is_file()), None)
        if source is not None:
            major = release_dir.name.split(".")[0]
            if major in sources:
                raise CatalogueError(
                    f"{docs}: two releases of Asterisk {major} ({sources[major].parent.name}, {release_dir.name})"
                )
            sources[major] = source
    if not sources:
        raise CatalogueError(f"{docs}: no <release>/core-en_US.xml(.xz) directories")
    return sources


def _summary(old_text: str, new_text: str) -> list[str]:
    """What changed between two data files: names added/removed, then the first lines of the diff."""
    lines: list[str] = []
    try:
        old, new = json.loads(old_text), json.loads(new_text)
        for kind in ("actions", "events"):
            added = sorted(set(new.get(kind, {})) - set(old.get(kind, {})))
            removed = sorted(set(old.get(kind, {})) - set(new.get(kind, {})))
            changed = sorted(k for k in set(new.get(kind, {})) & set(old.get(kind, {})) if new[kind][k] != old[kind][k])
            for label, items in (("added", added), ("removed", removed), ("changed", changed)):
                if items:
                    lines.append(
                        f"  {kind} {label} ({len(items)}): {', '.join(items[:10])}{' ...' if len(items) > 10 else ''}"
                    )
    except (ValueError, AttributeError, TypeError):
        lines.append("  the committed file is not valid catalogue JSON")
    diff = list(
        difflib.unified_diff(old_text.splitlines(), new_text.splitlines(), "committed", "generated", n=1, lineterm="")
    )
    lines.extend("  " + line for line in diff[:20])
    if len(diff) > 20:
        lines.append(f"  ... {len(diff) - 20} more diff lines")
    return lines


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m asterisk_ami.catalogue.build", description=__doc__.splitlines()[0])
    parser.add_argument(
        "source", type=Path, help="directory of <release>/core-en_US.xml.xz (e.g. ../shared/asterisk-docs)"
    )
    parser.add_argument(
        "--out", type=Path, default=DATA_DIR, help="where the <major>.json files go (default: the package's data/)"
    )
    parser.add_argument(
        "--check",
        action="store_true",
        help="compare with the files in --out instead of writing; exit 1 when one differs",
    )
    args = parser.parse_args(argv)
    try:
        sources = release_sources(args.source)
        outputs = {f"{major}.json": dumps(build_data(source)) for major, source in sources.items()}
    except CatalogueError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    if args.check:
        problems: list[str] = []
        for name, text in outputs.items():
            target = args.out / name
            if not target.is_file():
                problems.append(f"{target}: missing")
                continue
            committed = target.read_text(encoding="utf-8")
            if committed != text:
                problems.append(f"{target}: differs from what {sources[name[:-5]]} generates")
                problems.extend(_summary(committed, text))
        extra = sorted(p.name for p in args.out.glob("*.json") if p.name not in outputs) if args.out.is_dir() else []
        problems.extend(f"{args.out / name}: no release in {args.source} generates it" for name in extra)
        if problems:
            print("\n".join(problems), file=sys.stderr)
            print(
                f"regenerate with: python -m asterisk_ami.catalogue.build {args.source} --out {args.out}",
                file=sys.stderr,
            )
            return 1
        print(f"{len(outputs)} catalogue files up to date in {args.out}")
        return 0
    args.out.mkdir(parents=True, exist_ok=True)
    for name, text in outputs.items():
        target = args.out / name
        if not target.is_file() or target.read_text(encoding="utf-8") != text:
            target.write_text(text, encoding="utf-8")
        data = json.loads(text)
        print(f"{target}: {len(text.encode())} bytes, {len(data['actions'])} actions, {len(data['events'])} events")
    return 0


if __name__ == "__main__":
    sys.exit(main())
