"""Sockets for the threaded client: a connect (and TLS handshake) that ``destroy()`` can interrupt and that
keeps to a deadline, and a write that cannot block forever.

Every write is bounded by ``write_timeout``: the socket's timeout is set to it once connected, so a
``sendall`` to a server that stopped reading raises ``TimeoutError`` instead of blocking for good; reads
only follow a ``select`` that said the socket is readable.
"""

from __future__ import annotations

import contextlib
import errno
import select
import socket
import ssl
import time
from collections.abc import Callable


class Aborted(Exception):
    """``destroy()`` woke the reader while it was connecting."""


class Wake:
    """The reader's wake-up: a byte on ``fd`` means "look again"; ``stop()`` says whether to give up."""

    def __init__(self, fd: socket.socket, stop: Callable[[], bool]) -> None:
        self.fd = fd
        self.stop = stop


def _wait(sock: socket.socket, wake: Wake, *, write: bool, deadline: float) -> None:
    while True:
        left = deadline - time.monotonic()
        if left <= 0:
            raise TimeoutError("timed out")
        readable, writable, _ = select.select([wake.fd, *([] if write else [sock])], [sock] if write else [], [], left)
        if wake.fd in readable:
            with contextlib.suppress(OSError):
                wake.fd.recv(4096)
            if wake.stop():
                raise Aborted
            readable.remove(wake.fd)
        if readable or writable:
            return


def open_socket(
    address: tuple[str, int],
    deadline: float,
    wake: Wake,
    context: ssl.SSLContext | None,
    write_timeout: float,
) -> socket.socket:
    """A connected socket (TLS when ``context``), within ``deadline`` (monotonic); ``Aborted`` as soon as
    ``wake`` says stop, ``TimeoutError`` past the deadline, else the ``OSError`` of the last address."""
    host, port = address
    last: OSError | None = None
    for family, kind, proto, _, sockaddr in socket.getaddrinfo(host, port, type=socket.SOCK_STREAM):
        sock = socket.socket(family, kind, proto)
        try:
            sock.setblocking(False)
            code = sock.connect_ex(sockaddr)
            if code in (errno.EINPROGRESS, errno.EWOULDBLOCK, errno.EAGAIN):
                _wait(sock, wake, write=True, deadline=deadline)
                code = sock.getsockopt(socket.SOL_SOCKET, socket.SO_ERROR)
            if code:
                raise OSError(code, f"{errno.errorcode.get(code, code)}: cannot connect to {host}:{port}")
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            if context is not None:
                tls = context.wrap_socket(sock, server_hostname=host, do_handshake_on_connect=False)
                sock = _handshake(tls, wake, deadline)
            sock.settimeout(write_timeout)
            return sock
        except (Aborted, TimeoutError):
            sock.close()
            raise
        except OSError as exc:
            sock.close()
            last = exc
    raise last or OSError(f"no address for {host}:{port}")


def _handshake(sock: ssl.SSLSocket, wake: Wake, deadline: float) -> ssl.SSLSocket:
    while True:
        try:
            sock.do_handshake()
            return sock
        except ssl.SSLWantReadError:
            _wait(sock, wake, write=False, deadline=deadline)
        except ssl.SSLWantWriteError:
            _wait(sock, wake, write=True, deadline=deadline)


def write_all(sock: socket.socket, data: bytes) -> bool:
    """Write all of ``data`` (within the socket's timeout: ``write_timeout``). Returns True when the kernel
    buffer was full and the write had to wait (node's ``drain``)."""
    # the socket has a timeout (so send() would wait for room): ask first whether there is any
    _, writable, _ = select.select([], [sock], [], 0)
    sent = sock.send(data) if writable else 0
    if sent >= len(data):
        return False
    sock.sendall(memoryview(data)[sent:])
    return True
