"""A fleet of PBXes on NATS JetStream: ``asterisk-ami relay`` (:class:`Relay`) and :class:`RemoteAmi`.

Needs the ``nats`` extra (``pip install asterisk-ami-client[nats]``). ``import asterisk_ami`` never loads
this package; the names below load ``nats-py`` only when first used, so ``asterisk_ami.relay.config``
(the command line's checks) works without it. README "Many PBXes: the relay" has the wire format.
"""

from __future__ import annotations

from importlib import import_module
from typing import TYPE_CHECKING, Any

from .config import PbxConfig, RelayConfig, config_from_mapping, parse_pbx
from .errors import ActionNotAllowedError, RelayConfigError, RelayError
from .sequence import Gap

if TYPE_CHECKING:
    from .relay import Relay
    from .remote import RemoteAmi

_LAZY = {"Relay": ".relay", "RemoteAmi": ".remote"}

__all__ = [
    "ActionNotAllowedError",
    "Gap",
    "PbxConfig",
    "Relay",
    "RelayConfig",
    "RelayConfigError",
    "RelayError",
    "RemoteAmi",
    "config_from_mapping",
    "parse_pbx",
]


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    try:
        value = getattr(import_module(module, __name__), name)
    except ModuleNotFoundError as exc:
        if exc.name is not None and exc.name.split(".")[0] == "nats":
            raise ImportError(
                f"asterisk_ami.relay.{name} needs nats-py: pip install 'asterisk-ami-client[nats]'"
            ) from exc
        raise
    globals()[name] = value
    return value
