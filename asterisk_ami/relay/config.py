"""The relay's configuration: PBX URLs, the JSON config file, secrets from the environment.

No NATS import here: the command line parses and checks everything before ``nats-py`` is loaded.

A PBX is ``ami://USER@HOST:PORT`` (``amis://`` for TLS, port 5039 by default), with optional query
options ``auth=md5``, ``events=call,system``, ``cafile=/path`` and ``insecure=1``. Its secret comes from,
in order: ``secret`` in the config file, the URL (a config file may hold one; on the command line it is
visible to ``ps``), ``secret_env`` (the name of a variable), ``AMI_SECRET_<NAME>`` (the PBX name upper-cased,
``-`` as ``_``), ``AMI_SECRET``. Secrets never appear in a repr, a log line or an error message.
"""

from __future__ import annotations

import json
import os
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl, unquote, urlsplit

from .errors import RelayConfigError

# a PBX name is one NATS subject token, and part of message ids: letters, digits, '_' and '-'
PBX_NAME = re.compile(r"^[A-Za-z0-9_-]{1,64}$")
STREAM_NAME = re.compile(r"^[A-Za-z0-9_-]{1,64}$")
# actions that would change the relay's own AMI session for everyone: never relayed
SESSION_ACTIONS = frozenset({"login", "logoff", "challenge", "events", "filter", "waitevent"})
ON_STALL = ("block", "drop")
# the stream's limits unless configured (also what a RemoteAmi that starts before any relay makes it with)
DEFAULT_MAX_AGE = 7 * 86400.0
DEFAULT_MAX_BYTES = 1024**3
DEFAULT_DUPLICATE_WINDOW = 120.0
_UNITS: dict[str, float] = {
    "": 1,
    "b": 1,
    "k": 1000,
    "kb": 1000,
    "m": 1000**2,
    "mb": 1000**2,
    "g": 1000**3,
    "gb": 1000**3,
}
_UNITS.update({"kib": 1024, "mib": 1024**2, "gib": 1024**3, "tib": 1024**4, "t": 1000**4, "tb": 1000**4})
_SECONDS = {"": 1.0, "ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0, "d": 86400.0}


def _amount(value: object, units: dict[str, float], what: str, example: str) -> float:
    """A number with an optional unit of ``units`` (a plain number: the unit ``""``), never negative."""
    if isinstance(value, bool):
        raise RelayConfigError(f"{what}: expected {example}")
    if isinstance(value, int | float):
        number, unit = float(value), ""
    else:
        match = re.fullmatch(r"\s*([0-9]+(?:\.[0-9]+)?)\s*([A-Za-z]*)\s*", str(value))
        if match is None or match.group(2).lower() not in units:
            raise RelayConfigError(f"{what}: expected {example}")
        number, unit = float(match.group(1)), match.group(2).lower()
    if number < 0:
        raise RelayConfigError(f"{what}: must not be negative")
    return number * units[unit]


def parse_size(value: object, what: str) -> int:
    """``10GiB``, ``512MB``, ``1000`` (bytes) -> bytes; 0 means no limit."""
    return int(_amount(value, _UNITS, what, "a size such as 512MB or 10GiB"))


def parse_duration(value: object, what: str) -> float:
    """``7d``, ``24h``, ``30m``, ``90s``, ``250ms`` or a number of seconds -> seconds; 0 means no limit."""
    return _amount(value, _SECONDS, what, "a duration such as 90s, 30m, 24h or 7d")


def redact_url(url: str) -> str:
    """The URL with any password replaced by ``***`` (for logs and reprs)."""
    try:
        parts = urlsplit(url)
    except ValueError:
        return "<unparsable URL>"
    if parts.password is None:
        return url
    netloc = parts.netloc.rpartition("@")[2]
    user = parts.username or ""
    return parts._replace(netloc=f"{user}:***@{netloc}").geturl()


def secret_variable(name: str) -> str:
    """``AMI_SECRET_<NAME>``: where the secret of PBX ``name`` is looked for in the environment."""
    return "AMI_SECRET_" + name.upper().replace("-", "_")


def _names(value: object, what: str) -> frozenset[str] | None:
    if value is None:
        return None
    items = value.split(",") if isinstance(value, str) else value
    if not isinstance(items, Iterable) or isinstance(items, Mapping):
        raise RelayConfigError(f"{what}: expected action names (a list, or a comma-separated string)")
    names = {str(item).strip().lower() for item in items}
    names.discard("")
    return frozenset(names)


@dataclass(frozen=True)
class PbxConfig:
    """One PBX the relay serves. ``name`` is operator-chosen and stable: it names the subjects
    (``ami.<name>.``) and every message of this PBX."""

    name: str
    host: str
    port: int
    username: str
    secret: str = field(repr=False)
    tls: bool = False
    cafile: str | None = None
    insecure: bool = False
    auth: str = "plain"
    events: bool | str = True
    allow: frozenset[str] | None = None  # lower-case action names; None: every action
    deny: frozenset[str] = frozenset()

    def __post_init__(self) -> None:
        if not PBX_NAME.match(self.name):
            raise RelayConfigError(f"PBX name {self.name!r}: use 1 to 64 letters, digits, '_' or '-'")
        if self.auth not in ("plain", "md5"):
            raise RelayConfigError(f"PBX {self.name!r}: auth must be 'plain' or 'md5'")
        if not self.host:
            raise RelayConfigError(f"PBX {self.name!r}: no host")
        if not 0 < self.port < 65536:
            raise RelayConfigError(f"PBX {self.name!r}: bad port {self.port}")

    @property
    def url(self) -> str:
        """``ami://user@host:port`` (never the secret)."""
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"{'amis' if self.tls else 'ami'}://{self.username}@{host}:{self.port}"

    def allows(self, action: str) -> bool:
        """Whether an action of this name may be sent to this PBX through the bus."""
        name = action.lower()
        if name in SESSION_ACTIONS or name in self.deny:
            return False
        return self.allow is None or name in self.allow

    def client_options(self) -> dict[str, Any]:
        """Options for ``asterisk_ami.asyncio.AsteriskAmi`` (the secret included: for the client only)."""
        ssl_option: Any = False
        if self.tls:
            import ssl

            context = ssl.create_default_context(cafile=self.cafile)
            if self.insecure:
                context.check_hostname = False
                context.verify_mode = ssl.CERT_NONE
            ssl_option = context
        return {
            "host": self.host,
            "port": self.port,
            "username": self.username,
            "password": self.secret,
            "ssl": ssl_option,
            "auth": self.auth,
            "events": self.events,
        }


def parse_pbx(name: str, url: str, *, env: Mapping[str, str] | None = None, **options: Any) -> PbxConfig:
    """A ``PbxConfig`` from a URL and the options of a config file entry (``secret``, ``secret_env``,
    ``username``, ``allow``, ``deny``, ``auth``, ``events``, ``cafile``, ``insecure``)."""
    env = os.environ if env is None else env
    where = f"PBX {name!r}"
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError:
        raise RelayConfigError(f"{where}: bad URL (expected ami://USER@HOST:PORT)") from None
    if parts.scheme not in ("ami", "amis"):
        raise RelayConfigError(f"{where}: the URL must start with ami:// or amis:// (TLS)")
    tls = parts.scheme == "amis"
    query = dict(parse_qsl(parts.query, keep_blank_values=True))
    unknown = set(query) - {"auth", "events", "cafile", "insecure"}
    if unknown:
        raise RelayConfigError(f"{where}: unknown URL option(s) {', '.join(sorted(unknown))}")
    merged: dict[str, Any] = {**query, **options}
    known = {"secret", "secret_env", "username", "allow", "deny", "auth", "events", "cafile", "insecure", "url"}
    unknown = set(merged) - known
    if unknown:
        raise RelayConfigError(f"{where}: unknown option(s) {', '.join(sorted(unknown))}")
    username = merged.get("username") or (unquote(parts.username) if parts.username else None)
    if not username:
        raise RelayConfigError(f"{where}: no user name (ami://USER@HOST:PORT)")
    secret = merged.get("secret")
    if secret is None and parts.password is not None:
        secret = unquote(parts.password)
    if secret is None and merged.get("secret_env"):
        secret = env.get(str(merged["secret_env"]))
        if secret is None:
            raise RelayConfigError(f"{where}: the variable {merged['secret_env']} named by secret_env is not set")
    if secret is None:
        secret = env.get(secret_variable(name), env.get("AMI_SECRET"))
    if secret is None:
        raise RelayConfigError(
            f"{where}: no secret; set {secret_variable(name)} (or AMI_SECRET), or secret/secret_env in the config file"
        )
    events = merged.get("events", True)
    if isinstance(events, str) and events.lower() in ("on", "off", "true", "false"):
        events = events.lower() in ("on", "true")
    insecure = merged.get("insecure", False)
    if isinstance(insecure, str):
        insecure = insecure.lower() in ("1", "true", "yes", "on")
    return PbxConfig(
        name=name,
        host=parts.hostname or "",
        port=port or (5039 if tls else 5038),
        username=str(username),
        secret=str(secret),
        tls=tls,
        cafile=merged.get("cafile") or None,
        insecure=bool(insecure),
        auth=str(merged.get("auth") or "plain").lower(),
        events=events,
        allow=_names(merged.get("allow"), f"{where}: allow"),
        deny=_names(merged.get("deny"), f"{where}: deny") or frozenset(),
    )


@dataclass(frozen=True, repr=False)
class RelayConfig:
    """Everything a :class:`~asterisk_ami.relay.Relay` needs. Sizes are bytes, durations seconds.

    * ``nats``: server URLs; ``nats_user``/``nats_password``, ``nats_token``, ``nats_creds`` (a ``.creds``
      file) and ``nats_cafile`` (trust for ``tls://``) authenticate to NATS.
    * ``stream``, ``max_age``, ``max_bytes`` (0: no limit), ``duplicate_window``: the JetStream stream.
    * ``on_stall``: ``'drop'`` (keep reading Asterisk, drop what does not fit in the buffer, counted as a
      gap) or ``'block'`` (stop reading Asterisk until there is room; Asterisk drops a session that does not
      read within its ``writetimeout``, and the next login is a new epoch: a gap).
    * ``buffer_frames``/``buffer_bytes``: the bound of what one PBX holds before NATS has acknowledged it.
    * ``per_frame``: one message per frame on ``ami.<pbx>.ev.<Event>`` instead of batches on ``ami.<pbx>.ev``.
    * ``batch_frames``, ``batch_delay``: a batch goes out when it holds this many frames, or this long
      after its first frame (a batch larger than NATS takes in one message is split).
    """

    pbxes: tuple[PbxConfig, ...]
    nats: tuple[str, ...] = ("nats://127.0.0.1:4222",)
    nats_user: str | None = None
    nats_password: str | None = field(default=None, repr=False)
    nats_token: str | None = field(default=None, repr=False)
    nats_creds: str | None = None
    nats_cafile: str | None = None
    stream: str = "AMI"
    max_age: float = DEFAULT_MAX_AGE
    max_bytes: int = DEFAULT_MAX_BYTES
    duplicate_window: float = DEFAULT_DUPLICATE_WINDOW
    on_stall: str = "drop"
    per_frame: bool = False
    batch_frames: int = 100
    batch_delay: float = 0.002
    buffer_frames: int = 50_000
    buffer_bytes: int = 64 * 1024 * 1024
    max_inflight: int = 64
    ack_timeout: float = 5.0
    action_timeout: float = 10.0
    max_actions: int = 256
    reconnect_after: float = 1.0
    reconnect_max: float = 30.0
    login_retry: float = 30.0
    relay_id: str = ""

    def __post_init__(self) -> None:
        names = [p.name for p in self.pbxes]
        if not names:
            raise RelayConfigError("no PBX: give at least one --pbx NAME=ami://USER@HOST:PORT (or pbxes in --config)")
        twice = sorted({n for n in names if names.count(n) > 1})
        if twice:
            raise RelayConfigError(f"PBX name(s) used twice: {', '.join(twice)}")
        if not self.nats:
            raise RelayConfigError("no NATS server URL")
        for url in self.nats:
            try:
                scheme = urlsplit(url).scheme
            except ValueError:
                scheme = ""
            if scheme not in ("nats", "tls", "ws", "wss"):
                raise RelayConfigError(f"NATS URL {redact_url(url)!r}: expected nats://HOST:PORT or tls://HOST:PORT")
        if not STREAM_NAME.match(self.stream):
            raise RelayConfigError(f"stream name {self.stream!r}: use letters, digits, '_' or '-'")
        if self.on_stall not in ON_STALL:
            raise RelayConfigError("on_stall must be 'block' or 'drop'")
        for what in ("batch_frames", "buffer_frames", "buffer_bytes", "max_inflight", "max_actions"):
            if getattr(self, what) < 1:
                raise RelayConfigError(f"{what} must be at least 1")
        if self.buffer_frames < self.batch_frames:
            raise RelayConfigError("buffer_frames must be at least batch_frames")
        for what in ("batch_delay", "ack_timeout", "action_timeout", "reconnect_after", "login_retry"):
            if getattr(self, what) <= 0:
                raise RelayConfigError(f"{what} must be positive")
        if self.duplicate_window <= 0:
            raise RelayConfigError("duplicate_window must be positive")

    def __repr__(self) -> str:
        pbxes = ", ".join(f"{p.name}={p.url}" for p in self.pbxes)
        return (
            f"RelayConfig(nats={self.nats_urls}, stream={self.stream!r}, on_stall={self.on_stall!r}, pbxes=[{pbxes}])"
        )

    def pbx(self, name: str) -> PbxConfig:
        for p in self.pbxes:
            if p.name == name:
                return p
        raise KeyError(name)

    @property
    def nats_urls(self) -> list[str]:
        """The NATS URLs without passwords (for logs)."""
        return [redact_url(u) for u in self.nats]


_DURATIONS = (
    "max_age",
    "duplicate_window",
    "batch_delay",
    "ack_timeout",
    "action_timeout",
    "reconnect_after",
    "reconnect_max",
    "login_retry",
)
_SIZES = ("max_bytes", "buffer_bytes")
_INTS = ("batch_frames", "buffer_frames", "max_inflight", "max_actions")
_FILE_KEYS = {*_DURATIONS, *_SIZES, *_INTS, "nats", "nats_user", "nats_password", "nats_password_env"}
_FILE_KEYS |= {"nats_token", "nats_token_env", "nats_creds", "nats_cafile", "stream", "on_stall", "per_frame", "pbxes"}


def read_config_file(path: str | os.PathLike[str]) -> dict[str, Any]:
    """The JSON config file as a dict (see README "Many PBXes: the relay")."""
    try:
        text = Path(path).read_text(encoding="utf-8")
    except OSError as exc:
        raise RelayConfigError(f"cannot read the config file {os.fspath(path)!r}: {exc.strerror}") from None
    try:
        data = json.loads(text)
    except json.JSONDecodeError as exc:
        # the position, never the text: the file holds secrets
        where = f"line {exc.lineno}, column {exc.colno}"
        raise RelayConfigError(f"config file {os.fspath(path)!r}: not JSON ({where})") from None
    if not isinstance(data, dict):
        raise RelayConfigError(f"config file {os.fspath(path)!r}: expected a JSON object")
    return data


def config_from_mapping(data: Mapping[str, Any], *, env: Mapping[str, str] | None = None) -> RelayConfig:
    """A ``RelayConfig`` from the config file's object (or the same keys made by the command line)."""
    env = os.environ if env is None else env
    unknown = set(data) - _FILE_KEYS
    if unknown:
        raise RelayConfigError(f"unknown config key(s): {', '.join(sorted(unknown))}")
    values: dict[str, Any] = {}
    for key in _DURATIONS:
        if data.get(key) is not None:
            values[key] = parse_duration(data[key], key)
    for key in _SIZES:
        if data.get(key) is not None:
            values[key] = parse_size(data[key], key)
    for key in _INTS:
        if data.get(key) is not None:
            if isinstance(data[key], bool) or not isinstance(data[key], int):
                raise RelayConfigError(f"{key}: expected a whole number")
            values[key] = data[key]
    nats = data.get("nats")
    if nats is not None:
        values["nats"] = (nats,) if isinstance(nats, str) else tuple(str(u) for u in nats)
    for key in ("nats_user", "nats_creds", "nats_cafile", "stream", "on_stall"):
        if data.get(key) is not None:
            values[key] = str(data[key])
    if data.get("per_frame") is not None:
        values["per_frame"] = bool(data["per_frame"])
    for key in ("nats_password", "nats_token"):
        value = data.get(key)
        if value is None and data.get(key + "_env"):
            value = env.get(str(data[key + "_env"]))
            if value is None:
                raise RelayConfigError(f"the variable {data[key + '_env']} named by {key}_env is not set")
        if value is None:
            value = env.get(key.upper())  # NATS_PASSWORD, NATS_TOKEN
        if value is not None:
            values[key] = str(value)
    values["pbxes"] = tuple(_pbxes(data.get("pbxes"), env))
    return RelayConfig(**values)


def _pbxes(value: object, env: Mapping[str, str]) -> list[PbxConfig]:
    if value is None:
        return []
    if isinstance(value, Mapping):
        entries = [(str(name), entry) for name, entry in value.items()]
    elif isinstance(value, list):
        entries = []
        for entry in value:
            if not isinstance(entry, Mapping) or "name" not in entry:
                raise RelayConfigError("pbxes: each entry of the list needs a name")
            entries.append((str(entry["name"]), {k: v for k, v in entry.items() if k != "name"}))
    else:
        raise RelayConfigError("pbxes: expected an object (name -> settings) or a list")
    pbxes = []
    for name, entry in entries:
        if isinstance(entry, str):
            entry = {"url": entry}
        if not isinstance(entry, Mapping) or not entry.get("url"):
            raise RelayConfigError(f"PBX {name!r}: needs a url (ami://USER@HOST:PORT)")
        options = {k: v for k, v in entry.items() if k != "url"}
        pbxes.append(parse_pbx(name, str(entry["url"]), env=env, **options))
    return pbxes


def with_pbxes(config: RelayConfig, extra: Iterable[PbxConfig]) -> RelayConfig:
    """``config`` with more PBXes (the command line's ``--pbx`` after the file's)."""
    return replace(config, pbxes=(*config.pbxes, *extra))
