"""What the clients check against the catalogue: event names given to ``on()``/``once()``, and actions
given to ``send()``/``action()``. Sans-IO, and lazy: ``import asterisk_ami`` loads no catalogue; the first
``on()`` or action loads it (a few milliseconds), and the cost is per call, never per frame.

The server has the last word: a problem is a :class:`CatalogueWarning` and the action is still sent (the
server may run modules no catalogue knows), unless ``strict_actions=True``, where an action missing a
required parameter is refused with :class:`~asterisk_ami.errors.MissingParameterError` before anything
is written.
"""

from __future__ import annotations

import os
import sys
import threading
import warnings
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from .errors import CatalogueWarning, MissingParameterError
from .session import action_name

if TYPE_CHECKING:
    from .catalogue import Catalogue, Problem

__all__ = ["ActionChecker", "CatalogueWarning", "warn_unknown_event"]


_warned: set[str] = set()
_warned_lock = threading.Lock()


_PACKAGE = os.path.dirname(os.path.abspath(__file__)) + os.sep


def _user_stacklevel() -> int:
    """The stacklevel that points a warning at the first caller outside this package (the user's line)."""
    level, frame = 1, sys._getframe(1)
    while frame is not None and os.path.abspath(frame.f_code.co_filename).startswith(_PACKAGE):
        level += 1
        frame = frame.f_back  # type: ignore[assignment]
    return level


def _warn_once(key: str, message: str) -> None:
    with _warned_lock:
        if key in _warned:
            return
        _warned.add(key)
    warnings.warn(message, CatalogueWarning, stacklevel=_user_stacklevel())


def warn_unknown_event(event: str) -> None:
    """Warn once per name when ``event`` is no event any shipped release or the overlay knows (the
    library's ``ami_*`` events and patterns never warn)."""
    if event.startswith("ami_") or event in ("error", "new_listener"):
        return
    from .catalogue import event_hint

    hint = event_hint(event)
    if hint is not None:
        _warn_once("event:" + event, hint)


class ActionChecker:
    """Checks one client's actions against a catalogue: the ``catalogue`` option's (a release such as
    ``"22"``, a path to a server's XML, or a ``Catalogue``), else the release the server's banner names,
    else (no banner yet) the newest release. ``catalogue=False`` checks nothing."""

    def __init__(self, option: Any, strict: bool) -> None:
        self._option = option
        self._strict = strict
        self._pinned: Catalogue | None = None
        self._by_banner: dict[str | None, Catalogue] = {}
        if isinstance(option, str | os.PathLike):  # a release or file that does not load says so now
            self.catalogue(None)

    @property
    def enabled(self) -> bool:
        return self._option is not False

    def catalogue(self, banner: str | None) -> Catalogue:
        """The catalogue this client's actions are checked against, given the server's banner (or None)."""
        from . import catalogue as cat

        if self._option is not None and self._option is not True:
            if self._pinned is None:
                if isinstance(self._option, str | os.PathLike):
                    self._pinned = cat.load(self._option)
                else:
                    self._pinned = self._option
            assert self._pinned is not None
            return self._pinned
        found = self._by_banner.get(banner)
        if found is None:
            found = cat.for_banner(banner) if banner else cat.load(cat.RELEASES[-1])
            self._by_banner[banner] = found
        return found

    def check(self, message: Mapping[str, object], banner: str | None) -> list[Problem]:
        """The problems the release's catalogue finds with an action; with ``strict_actions``, one
        missing a required parameter raises ``MissingParameterError`` instead."""
        if self._option is False or not isinstance(message, Mapping):
            return []
        catalogue = self.catalogue(banner)
        problems = catalogue.check_action(message)
        if problems and self._strict:
            for problem in problems:
                if problem.kind == "missing-parameter":
                    raise MissingParameterError(
                        f"{problem.message} (by {_by(catalogue)}; strict_actions=True, nothing was sent)",
                        action=action_name(message),
                        parameter=problem.name,
                    )
        return problems

    def warn(self, problems: list[Problem], message: Mapping[str, object], banner: str | None) -> None:
        """Warn (once each) about the problems of an action that was sent all the same."""
        catalogue = self.catalogue(banner)
        for problem in problems:
            _warn_once(
                f"action:{catalogue.release}:{action_name(message).lower()}:{problem.kind}:{problem.name}",
                f"{problem.message} (by {_by(catalogue)}; sent anyway: the server has the last word)",
            )


def _by(catalogue: Catalogue) -> str:
    return f"Asterisk {catalogue.major}'s catalogue" if catalogue.major else f"the catalogue of {catalogue.source}"
