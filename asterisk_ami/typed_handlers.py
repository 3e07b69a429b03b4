"""``TypedHandlers``: both clients' registration methods. At run time they are ``Registrations``' own;
their typed overloads (a handler annotated with an event's ``TypedDict`` must match its event's name) are
in ``typed_handlers.pyi``, generated from the catalogue, which only a type checker reads."""

from __future__ import annotations

from .handlers import Registrations


class TypedHandlers(Registrations):
    """``Registrations`` with the typed overloads of ``on()`` and ``once()`` (in the stub)."""
