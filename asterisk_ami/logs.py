"""Logging per connection: every line a client logs names its connection, as websockets passes a logger
per connection.

:func:`connection_logger` gives each client a :class:`ConnectionLog` (a ``LoggerAdapter``) that prefixes
``[host:port identifier]`` and adds the same to the record as ``ami_connection``, for formatters and
filters. The ``debug`` option turns on DEBUG for that one client only, on a logger of its own below
``asterisk_ami``; the process-wide ``asterisk_ami`` logger is never changed.
"""

from __future__ import annotations

import itertools
import logging
from collections.abc import MutableMapping
from typing import Any

logger = logging.getLogger("asterisk_ami")
_debug_ids = itertools.count(1)


class ConnectionLog(logging.LoggerAdapter):  # type: ignore[type-arg]  # generic only in typeshed
    """A logger adapter naming one client's connection in every line."""

    def __init__(self, base: logging.Logger, label: str) -> None:
        super().__init__(base, {"ami_connection": label})
        self.label = label

    def process(self, msg: Any, kwargs: MutableMapping[str, Any]) -> tuple[Any, MutableMapping[str, Any]]:
        kwargs["extra"] = {**(kwargs.get("extra") or {}), "ami_connection": self.label}
        return f"[{self.label}] {msg}", kwargs


def connection_logger(label: str, base: logging.Logger | None = None, debug: bool = False) -> ConnectionLog:
    """The log of one client: ``base`` (default: the ``asterisk_ami`` logger), or with ``debug`` a child
    logger of it at DEBUG. That child logs to stderr itself only when nothing in the process handles
    logging (else it would print every line twice); its records still reach the application's handlers."""
    base = base or logger
    if debug:
        # one logger per debug client: loggers live for the whole process, so none is made without debug
        base = base.getChild(f"debug{next(_debug_ids)}")
        base.setLevel(logging.DEBUG)
        if not base.hasHandlers():
            handler = logging.StreamHandler()
            handler.setFormatter(logging.Formatter("%(asctime)s asterisk_ami %(levelname)s %(message)s"))
            base.addHandler(handler)
    return ConnectionLog(base, label)
