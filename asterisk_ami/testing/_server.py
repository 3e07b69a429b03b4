"""``FakeAsterisk``: the listener and accept thread, the scripted answers, pushes, and what tests wait on."""

from __future__ import annotations

import contextlib
import logging
import os
import selectors
import socket
import threading
import time
from collections.abc import Callable, Mapping
from pathlib import Path
from types import TracebackType

from ..protocol import Frame
from ._session import FakeSession
from ._wire import (
    EVENT_ALL,
    CommandOutput,
    HeaderItems,
    Reply,
    Responder,
    _encode_items,
    _mask_to_perm_str,
    _perm_mask,
    _privilege_mask,
    _with_line_end,
    recorded_frames,
)

logger = logging.getLogger("asterisk_ami.testing")  # not __name__: the one name tests and users filter on


class FakeAsterisk:
    r"""A fake Asterisk AMI server listening on ``host:port`` (port 0: an ephemeral port).

    Options (all keyword):

    * ``accounts``: username -> secret (usernames match in any case, as in Asterisk).
    * ``read``: username -> its manager.conf ``read`` line (``"system,agent"``); an account not named
      reads every class (``all``). As in Asterisk, a session is sent only the events whose ``Privilege``
      classes are all in its read classes and its ``Events`` mask, and the built-in answer to
      ``Command: manager show user NAME`` tells them.
    * ``banner``: the first line, without CRLF; None sends none (the session goes on without it).
    * ``banner_delay``, ``login_delay``: seconds before the banner / before answering ``Login``.
    * ``auth_fail_delay``: seconds before ``Authentication failed`` (real Asterisk sleeps 1 s; the
      default 0 keeps tests fast). The connection is closed after it.
    * ``send_fully_booted``: send ``Event: FullyBooted`` after a login whose event mask has ``system``.
    * ``authtimeout``: seconds a connection may stay without logging in (Asterisk: 30); None: forever.
    * ``authlimit``: when this many connections are not logged in, a new one is closed before the
      banner (notes E3; Asterisk: 50); None: no limit.
    * ``challenge``: a fixed MD5 challenge (default: random, up to 9 digits, as Asterisk).
    * ``encoding``: for text written and read (default utf-8; undecodable bytes round-trip).
    * ``line_end``: ``"\r\n"`` (Asterisk), or ``"\n"`` to play an old or broken server that ends every
      line it writes with a bare LF (the banner included; bytes given to it are sent as they are).
    """

    def __init__(
        self,
        *,
        accounts: Mapping[str, str] | None = None,
        read: Mapping[str, str] | None = None,
        host: str = "127.0.0.1",
        port: int = 0,
        banner: str | None = "Asterisk Call Manager/11.0.0",
        login_delay: float = 0.0,
        auth_fail_delay: float = 0.0,
        send_fully_booted: bool = True,
        banner_delay: float = 0.0,
        authtimeout: float | None = 30.0,
        authlimit: int | None = 50,
        challenge: str | None = None,
        encoding: str = "utf-8",
        line_end: str = "\r\n",
    ) -> None:
        "".encode(encoding)
        if line_end not in ("\r\n", "\n"):
            raise ValueError("line_end must be '\\r\\n' or '\\n'")
        self._accounts = dict({"admin": "secret"} if accounts is None else accounts)
        self._read = {name.lower(): line for name, line in (read or {}).items()}
        self.host = host
        self.port = port
        self.banner = banner
        self.login_delay = login_delay
        self.auth_fail_delay = auth_fail_delay
        self.send_fully_booted = send_fully_booted
        self.banner_delay = banner_delay
        self.authtimeout = authtimeout
        self.authlimit = authlimit
        self.challenge = challenge
        self.encoding = encoding
        self.line_end = line_end
        #: connections accepted, logins accepted and connections refused by ``authlimit``, ever
        self.connection_count = 0
        self.login_count = 0
        self.rejected_count = 0
        #: exceptions raised by responders (each is also logged)
        self.responder_errors: list[BaseException] = []
        self._cond = threading.Condition(threading.RLock())
        self._sessions: list[FakeSession] = []
        self._actions: list[Frame] = []
        self._cursors: dict[str | None, int] = {}
        self._responses: dict[str, Reply | Responder] = {}
        self._commands: dict[str, CommandOutput] = {}
        self._stalled = False
        self._started = False
        self._closed = False
        self._started_at = time.monotonic()
        self._listener: socket.socket | None = None
        self._accept_thread: threading.Thread | None = None
        self._wake_r: socket.socket | None = None
        self._wake_w: socket.socket | None = None

    # -- lifecycle -------------------------------------------------------------------------------

    def start(self) -> FakeAsterisk:
        """Bind, listen and start accepting (in a background thread); returns self."""
        with self._cond:
            if self._closed:
                raise RuntimeError("this FakeAsterisk is closed; make a new one")
            if self._started:
                return self
            family = socket.getaddrinfo(self.host, self.port, type=socket.SOCK_STREAM)[0][0]
            listener = socket.create_server((self.host, self.port), family=family, backlog=128)
            listener.setblocking(False)
            self._listener = listener
            self.port = listener.getsockname()[1]
            self._wake_r, self._wake_w = socket.socketpair()
            self._started_at = time.monotonic()
            self._accept_thread = threading.Thread(
                target=self._accept_loop, name=f"fake-asterisk-accept-{self.port}", daemon=True
            )
            self._started = True
            self._accept_thread.start()
        logger.debug("listening on %s:%d", self.host, self.port)
        return self

    def close(self, timeout: float = 5.0) -> None:
        """Stop accepting, close every connection and join every thread. Safe to call twice."""
        with self._cond:
            if self._closed:
                return
            self._closed = True
            self._stalled = False
            sessions = list(self._sessions)
            self._cond.notify_all()
        end = time.monotonic() + timeout
        if self._wake_w is not None:
            with contextlib.suppress(OSError):
                self._wake_w.send(b"x")
        if self._accept_thread is not None and self._accept_thread is not threading.current_thread():
            self._accept_thread.join(max(0.0, end - time.monotonic()))
        for session in sessions:
            session.close()
        for session in sessions:
            if not session.wait_closed(max(0.0, end - time.monotonic())):
                logger.warning("session #%d did not finish within %s s", session.number, timeout)
        for sock in (self._listener, self._wake_r, self._wake_w):
            if sock is not None:
                sock.close()
        logger.debug("closed %s:%d", self.host, self.port)

    def __enter__(self) -> FakeAsterisk:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    def __repr__(self) -> str:
        state = "closed" if self._closed else "listening" if self._started else "not started"
        return f"<FakeAsterisk {self.host}:{self.port} {state} sessions={len(self._sessions)}>"

    @property
    def url(self) -> str:
        """``ami://host:port`` (never any secret)."""
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"ami://{host}:{self.port}"

    def client_options(self, username: str | None = None) -> dict[str, object]:
        """Keyword arguments for ``AsteriskAmi`` to log in here (the first account by default)."""
        if username is None:
            username = next(iter(self._accounts))
        return {"host": self.host, "port": self.port, "username": username, "password": self._accounts[username]}

    # -- state -------------------------------------------------------------------------------------

    @property
    def sessions(self) -> list[FakeSession]:
        """The connections open now (logged in or not), oldest first."""
        with self._cond:
            return list(self._sessions)

    @property
    def actions(self) -> list[Frame]:
        """Every action received from every session, as parsed frames, in arrival order."""
        with self._cond:
            return list(self._actions)

    @property
    def stalled(self) -> bool:
        """True while :meth:`stall` holds the server."""
        return self._stalled

    def wait_for(self, predicate: Callable[[], object], timeout: float = 5.0) -> None:
        """Block until ``predicate()`` is true, re-checked whenever sessions, logins or actions change.

        Raises ``TimeoutError`` after ``timeout`` seconds.
        """
        end = time.monotonic() + timeout
        with self._cond:
            while not predicate():
                remaining = end - time.monotonic()
                if remaining <= 0:
                    raise TimeoutError(f"condition not met within {timeout} s")
                self._cond.wait(remaining)

    def wait_for_clients(self, count: int = 1, timeout: float = 5.0) -> list[FakeSession]:
        """Block until at least ``count`` sessions are logged in; returns them.

        A session counts as its login answer is written: anything sent to it afterwards follows the answer,
        and a client that has seen the answer also sees ``login_count`` include it.

        Raises ``TimeoutError`` after ``timeout`` seconds.
        """
        end = time.monotonic() + timeout
        with self._cond:
            while True:
                logged = [s for s in self._sessions if s._announced]
                if len(logged) >= count:
                    return logged
                remaining = end - time.monotonic()
                if remaining <= 0:
                    raise TimeoutError(
                        f"{len(logged)} of {count} client(s) logged in within {timeout} s "
                        f"({len(self._sessions)} connected)"
                    )
                self._cond.wait(remaining)

    def wait_for_action(self, name: str | None = None, timeout: float = 5.0) -> Frame:
        """The next action called ``name`` (any case; None: any action) not yet returned by this method.

        The first call returns the first such action ever received, the next call the one after it,
        waiting for it to arrive if need be. Raises ``TimeoutError`` after ``timeout`` seconds.
        """
        key = None if name is None else name.lower()
        end = time.monotonic() + timeout
        with self._cond:
            while True:
                actions = self._actions
                for i in range(self._cursors.get(key, 0), len(actions)):
                    if key is None or _action_name(actions[i]).lower() == key:
                        self._cursors[key] = i + 1
                        return actions[i]
                self._cursors[key] = len(actions)
                remaining = end - time.monotonic()
                if remaining <= 0:
                    seen = ", ".join(_action_name(a) for a in actions[-20:]) or "none"
                    raise TimeoutError(f"no {name or 'action'} within {timeout} s (last actions: {seen})")
                self._cond.wait(remaining)

    # -- scripting answers ---------------------------------------------------------------------------

    def respond(self, action: str, reply: Reply | Responder) -> None:
        """Answer every later ``Action: <action>`` (any case) with ``reply``, replacing what was set before.

        ``reply`` is a :data:`Reply` (a frame dict, bytes, an :class:`EventList`, a :class:`CommandOutput`,
        a list of those, or None for no answer at all) or a :data:`Responder` callable
        ``(action_frame, session) -> Reply``. The action's ActionID is echoed into every frame after its
        first header (see :class:`EventList` for lists); bytes are sent verbatim. It overrides the
        built-in ``Ping``, ``Events``, ``Logoff`` (the connection then stays open) and ``Command``;
        ``Login`` and ``Challenge`` cannot be overridden. Works only for logged-in clients, as Asterisk.
        """
        if action.lower() in ("login", "challenge"):
            raise ValueError(f"{action} is built in; use the accounts/login_delay/challenge options")
        with self._cond:
            self._responses[action.lower()] = reply

    def reset_responses(self, *actions: str) -> None:
        """Forget what :meth:`respond` set for ``actions`` (none given: for every action)."""
        with self._cond:
            if not actions:
                self._responses.clear()
            for action in actions:
                self._responses.pop(action.lower(), None)

    def respond_command(self, command: str, output: str, *, legacy: bool = False, success: bool = True) -> None:
        """Answer ``Action: Command`` / ``Command: <command>`` with ``output`` (see :class:`CommandOutput`).

        Commands match with runs of blanks collapsed, in any case. A command with no output registered
        gets Asterisk's ``Response: Error`` with ``Output: No such command '…' (type 'core show help …'
        for other possible commands)``.
        """
        with self._cond:
            self._commands[_command_key(command)] = CommandOutput(output, legacy, success)

    # -- pushing -------------------------------------------------------------------------------------

    def push_event(self, event: str | Mapping[str, object], /, **headers: object) -> int:
        """Send ``Event: <event>`` with ``headers`` (in order) to every logged-in session with events on.

        ``event`` can also be a whole frame mapping (``{"Event": "Hangup", "Cause-txt": ...}``: header
        names that are not Python identifiers). With a ``Privilege`` header, a session whose event mask is
        partial gets it only when the mask has all its classes, as in Asterisk. Returns how many sessions
        it was sent to.
        """
        if isinstance(event, Mapping):
            items: HeaderItems = [*event.items(), *headers.items()]
        else:
            items = [("Event", event), *headers.items()]
        data = _with_line_end(_encode_items(items, self.encoding), self.line_end)
        category = _privilege_mask(items)
        pairs = [(str(k), str(v)) for k, v in items]
        info = (next((v for k, v in pairs if k.lower() == "event"), ""), pairs)
        return sum(session._send_if_logged_in(data, category, info) for session in self.sessions)

    def push_raw(self, data: bytes) -> int:
        """Send ``data`` verbatim (malformed or split frames…) to every logged-in session; returns how many."""
        return sum(session._send_if_logged_in(bytes(data)) for session in self.sessions)

    def replay(
        self,
        source: str | os.PathLike[str] | bytes,
        chunk_size: int | None = None,
        *,
        skip_login: bool = True,
        repeat: int = 1,
    ) -> int:
        """Send a recorded session to every logged-in session; returns the bytes sent to each.

        ``source`` is a file path or the bytes. The banner line is dropped and, with ``skip_login``, so is
        every frame up to the login answer (``Message: Authentication accepted``): a recording such as
        ``tests/data/asterisk22-session.bin`` then delivers the frames after its login. ``chunk_size``
        writes the bytes in pieces of that size (frames split anywhere); ``repeat`` sends it that many times.
        """
        data = bytes(source) if isinstance(source, bytes | bytearray) else Path(source).read_bytes()
        payload = recorded_frames(data, skip_login=skip_login)
        sent = 0
        for session in self.sessions:
            if self._replay_to(session, payload, chunk_size, repeat):
                sent += 1
        return len(payload) * repeat if sent else 0

    @staticmethod
    def _replay_to(session: FakeSession, payload: bytes, chunk_size: int | None, repeat: int) -> bool:
        view = memoryview(payload)
        for _ in range(repeat):
            if not chunk_size:
                if not session._send_if_logged_in(payload):
                    return False
                continue
            for offset in range(0, len(view), chunk_size):
                if not session._send_if_logged_in(bytes(view[offset : offset + chunk_size])):
                    return False
        return True

    # -- failures ------------------------------------------------------------------------------------

    def drop(self, rst: bool = False, timeout: float = 5.0) -> int:
        """Close every client connection (``rst``: abort it with a TCP RST); returns how many.

        Waits until they are closed and gone from :attr:`sessions`. New connections are still accepted.
        """
        sessions = self.sessions
        for session in sessions:
            session.close(rst=rst)
        end = time.monotonic() + timeout
        for session in sessions:
            session.wait_closed(max(0.0, end - time.monotonic()))
        return len(sessions)

    def stall(self, on: bool = True) -> None:
        """``stall(True)``: stop reading and answering on every connection, like a hung server (new
        connections get no banner); ``stall(False)`` resumes. :meth:`push_event`, :meth:`push_raw` and
        :meth:`replay` still write while stalled."""
        with self._cond:
            self._stalled = on
            self._cond.notify_all()

    # -- internals (called by sessions) ------------------------------------------------------------------

    def _accept_loop(self) -> None:
        listener, wake = self._listener, self._wake_r
        assert listener is not None and wake is not None
        selector = selectors.DefaultSelector()
        selector.register(listener, selectors.EVENT_READ)
        selector.register(wake, selectors.EVENT_READ)
        try:
            while not self._closed:
                for key, _ in selector.select():
                    if key.fileobj is wake or self._closed:
                        return
                    try:
                        conn, peer = listener.accept()
                    except (BlockingIOError, InterruptedError):
                        continue
                    except OSError as exc:  # e.g. out of file descriptors: do not spin
                        logger.warning("accept failed: %s", exc)
                        time.sleep(0.05)
                        continue
                    self._admit(conn, peer)
        except Exception:
            logger.exception("accept thread crashed")
        finally:
            selector.close()

    def _admit(self, conn: socket.socket, peer: object) -> None:
        try:
            conn.setblocking(True)
            conn.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        except OSError:
            conn.close()
            return
        with self._cond:
            if self._closed:
                conn.close()
                return
            if self.authlimit is not None:
                unauthenticated = sum(1 for s in self._sessions if not s.logged_in)
                if unauthenticated >= self.authlimit:
                    self.rejected_count += 1
                    logger.info("authlimit %d reached: closing %s before the banner", self.authlimit, peer)
                    conn.close()
                    return
            try:
                session = FakeSession(self, conn, peer, self.connection_count + 1)
                session._start()  # under the lock: drop() and close() never see a session not yet started
            except (OSError, RuntimeError) as exc:  # out of file descriptors or threads
                logger.warning("cannot serve %s: %s", peer, exc)
                conn.close()
                return
            self.connection_count += 1
            self._sessions.append(session)
            self._cond.notify_all()
        logger.debug("session #%d: connection from %s", session.number, peer)

    def _session_gone(self, session: FakeSession) -> None:
        with self._cond:
            if session in self._sessions:
                self._sessions.remove(session)
            self._cond.notify_all()
        logger.debug("session #%d: closed", session.number)

    def _record(self, frame: Frame) -> None:
        with self._cond:
            self._actions.append(frame)
            self._cond.notify_all()

    def _logged_in(self, session: FakeSession) -> None:
        with self._cond:
            session._announced = True
            self.login_count += 1
            self._cond.notify_all()

    def _responder(self, name: str) -> tuple[bool, Reply | Responder]:
        with self._cond:
            if name not in self._responses:
                return False, None
            return True, self._responses[name]

    def _responder_failed(self, exc: BaseException) -> None:
        with self._cond:
            self.responder_errors.append(exc)

    def _command_output(self, command: str) -> CommandOutput | None:
        with self._cond:
            output = self._commands.get(_command_key(command))
        if output is None:  # built in, as Asterisk's CLI ``manager show user`` prints it
            words = command.split()
            if len(words) == 4 and [w.lower() for w in words[:3]] == ["manager", "show", "user"]:
                return self._show_user(words[3])
        return output

    def _show_user(self, username: str) -> CommandOutput:
        name = self._account_for(username)
        if name is None:
            return CommandOutput(f"There is no manager called {username}\n")
        rows = [
            ("username", name),
            ("secret", "<Set>"),
            ("ACL", "no"),
            ("read perm", _mask_to_perm_str(self._read_mask_for(name))),
            ("write perm", _mask_to_perm_str(EVENT_ALL)),
            ("displayconnects", "no"),
            ("allowmultiplelogin", "yes"),
        ]
        return CommandOutput("\n" + "".join(f"{key:>18}: {value}\n" for key, value in rows) + "         Variables: \n")

    def _read_mask_for(self, username: str) -> int:
        """The account's read classes as a mask (Asterisk's ``get_perm`` of its ``read`` line)."""
        line = self._read.get(username.lower())
        return EVENT_ALL if line is None else _perm_mask(line)

    def _account_for(self, username: str) -> str | None:
        """The account's name as configured, or None."""
        return next((name for name in self._accounts if name.lower() == username.lower()), None)

    def _secret_for(self, username: str) -> str | None:
        if not username:
            return None
        for name, secret in self._accounts.items():
            if name.lower() == username.lower():
                return secret
        return None


def _action_name(frame: Frame) -> str:
    value = frame.get("action", "")
    return value if isinstance(value, str) else (value[0] if value else "")


def _command_key(command: str) -> str:
    return " ".join(command.split()).lower()
