"""Asterisk AMI catalogue: actions, events and their parameters per release.

``load("22")`` gives the catalogue shipped for a release (18, 20, 21, 22, 23), ``load(path)`` one
made from a ``core-en_US.xml`` (``.xz`` too) or a ``documentation/`` directory the user has;
``for_banner(banner)`` picks the release for an AMI banner; ``union()`` merges every release. Each
is cached and immutable. The data are names, flags and enums only: no prose from Asterisk's XML.

Importing this package reads nothing; ``import asterisk_ami`` never imports it.
"""

from __future__ import annotations

import json
import os
import re
from collections.abc import Mapping
from functools import cache
from pathlib import Path
from typing import Any

from ..errors import CatalogueError
from .changes import Diff, diff
from .model import Action, Catalogue, Event, Family, Field, Param, Problem
from .names import action_hint, event_hint
from .overlay import load_overlay

__all__ = [
    "RELEASES",
    "Action",
    "Catalogue",
    "CatalogueError",
    "Diff",
    "Event",
    "Family",
    "Field",
    "Param",
    "Problem",
    "action_hint",
    "diff",
    "event_hint",
    "for_banner",
    "load",
    "union",
]

RELEASES: tuple[str, ...] = ("18", "20", "21", "22", "23")
"""The majors whose catalogue ships with the package, oldest first."""

DATA_DIR = Path(__file__).with_name("data")
# the AMI version in a banner ("Asterisk Call Manager/11.0.0") -> the Asterisk major that sends it
AMI_VERSIONS: Mapping[str, str] = {"7": "18", "9": "20", "10": "21", "11": "22", "12": "23"}
_VERSION = re.compile(r"(\d+)(?:\.\d+)*")


def load(version_or_path: str | os.PathLike[str]) -> Catalogue:
    """The catalogue of a shipped release (``"22"``, or its full ``"22.10.1"``), or of the XML at a path
    (``core-en_US.xml``, ``.xz`` too, a ``documentation/`` directory), or of a ``.json`` file that
    ``asterisk-ami catalogue build`` wrote.

    Raises ``CatalogueError`` for an unknown release or a file that cannot be read.
    """
    text = os.fspath(version_or_path)
    if not isinstance(version_or_path, os.PathLike):
        match = _VERSION.fullmatch(text.strip())
        if match is not None:
            major = match.group(1)
            if major in RELEASES and (match.group(0) == major or match.group(0) == _shipped_release(major)):
                return _load_release(major)
            raise CatalogueError(f"unknown Asterisk release {text!r}: the catalogue knows {', '.join(RELEASES)}")
    path = Path(text).expanduser()
    try:
        resolved = path.resolve(strict=True)
        stamp = _stamp(resolved)
    except OSError as exc:
        known = ", ".join(RELEASES)
        raise CatalogueError(f"{text!r} is neither a release ({known}) nor a readable path: {exc}") from None
    return _load_path(str(resolved), stamp)


def for_banner(banner: str) -> Catalogue:
    """The catalogue for the release that sends this banner (``Asterisk Call Manager/11.0.0`` -> 22);
    the newest for an AMI version the table does not know."""
    version = banner.rsplit("/", 1)[-1].strip()
    major = version.split(".", 1)[0]
    return load(AMI_VERSIONS.get(major, RELEASES[-1]))


@cache
def union() -> Catalogue:
    """Every shipped release merged (newest definition first, parameters and fields of all), with the
    overlay: for name hints and for typing, never for checking one server."""
    merged: dict[str, Any] = {"actions": {}, "events": {}, "release": None}
    for major in RELEASES:
        data = _read_release(major)
        for section, inner in (("actions", "params"), ("events", "fields")):
            into = merged[section]
            for name, raw in data.get(section, {}).items():
                old = into.get(name)
                if old is None:
                    into[name] = raw
                    continue
                into[name] = {
                    **old,
                    **raw,
                    inner: {**old.get(inner, {}), **raw.get(inner, {})},
                    "families": {**old.get("families", {}), **raw.get("families", {})},
                    "modules": sorted(set(old.get("modules", ())) | set(raw.get("modules", ()))),
                }
    return Catalogue(merged, load_overlay(), "union of " + ", ".join(RELEASES))


def _shipped_release(major: str) -> str | None:
    release = _read_release(major).get("release")
    return release if isinstance(release, str) else None


@cache
def _read_release(major: str) -> dict[str, Any]:
    path = DATA_DIR / f"{major}.json"
    try:
        with open(path, encoding="utf-8") as fh:
            data: dict[str, Any] = json.load(fh)
    except (OSError, ValueError) as exc:
        raise CatalogueError(f"the catalogue of Asterisk {major} cannot be read ({path}): {exc}") from exc
    return data


@cache
def _load_release(major: str) -> Catalogue:
    return Catalogue(_read_release(major), load_overlay(), f"{major}.json", major)


def _stamp(path: Path) -> int:
    """A path's modification time; for a directory, the newest of its documentation files'."""
    if not path.is_dir():
        return path.stat().st_mtime_ns
    times = [path.stat().st_mtime_ns]
    times += [p.stat().st_mtime_ns for p in path.glob("*.xml*")]
    times += [p.stat().st_mtime_ns for p in path.glob("thirdparty/*.xml")]
    return max(times)


@cache
def _load_path(path: str, stamp: int) -> Catalogue:
    import lzma

    from . import build

    if path.endswith(".json"):  # what `asterisk-ami catalogue build` writes
        try:
            with open(path, encoding="utf-8") as fh:
                data = json.load(fh)
        except (OSError, ValueError) as exc:
            raise CatalogueError(f"cannot read the catalogue file {path}: {exc}") from exc
        if not isinstance(data, dict) or data.get("format") != 1 or not isinstance(data.get("actions"), dict):
            raise CatalogueError(f"{path} is not a catalogue file (format 1, as `asterisk-ami catalogue build` writes)")
    else:
        try:
            data = build.build_data(path)
        except (OSError, ValueError, SyntaxError, KeyError, lzma.LZMAError) as exc:
            # ElementTree's ParseError is a SyntaxError
            raise CatalogueError(f"cannot read the documentation at {path}: {exc}") from exc
    return Catalogue(data, load_overlay(), path, _major_of(data))


def _major_of(data: Mapping[str, Any]) -> str | None:
    """The release a user's XML documents, so that the overlay adds only the undocumented events that
    release sends: from its directory's name when it has one, else the oldest shipped release whose
    documented actions and events have the same names (an installed core-en_US.xml names no version; 22
    and 23 document the same AMI). None for an XML like no shipped one (custom modules, another release)."""
    release = data.get("release")
    if isinstance(release, str) and release.split(".", 1)[0] in RELEASES:
        return release.split(".", 1)[0]
    names = (set(data.get("actions", {})), set(data.get("events", {})))
    for major in RELEASES:
        shipped = _read_release(major)
        if (set(shipped.get("actions", {})), set(shipped.get("events", {}))) == names:
            return major
    return None
