"""``FakeAsterisk``: a real AMI server on the loopback interface, for tests and benchmarks.

It speaks the bytes Asterisk 22's ``main/manager.c`` writes (see ``tests/data/asterisk22-session.bin``),
so a client under test cannot tell it from a real server for everything it implements::

    from asterisk_ami import AsteriskAmi
    from asterisk_ami.testing import EventList, FakeAsterisk

    with FakeAsterisk(accounts={"admin": "secret"}) as fake:
        ami = AsteriskAmi(host=fake.host, port=fake.port, username="admin", password="secret")
        ami.connect()
        fake.wait_for_clients(1, timeout=5)
        fake.respond("CoreShowChannels", EventList([{"Channel": "PJSIP/100-0001"}],
                                                   "CoreShowChannelsComplete", event="CoreShowChannel"))
        fake.push_event("Hangup", Channel="PJSIP/100-0001", Cause="16")

Built in, as Asterisk does them: the banner, ``Login`` (plain ``Secret`` and MD5 ``Challenge``/``Key``),
``Logoff``, ``Ping``, ``Events``, ``Filter`` (both syntaxes, applied to :meth:`~FakeAsterisk.push_event` as
Asterisk applies them), ``Command`` (outputs registered with :meth:`FakeAsterisk.respond_command`, and
``manager show user NAME``),
``Permission denied`` before login, ``Invalid/unknown command`` for anything else, and the parse errors
(a line over 1024 bytes, more than 128 header lines, no ``Action``). Every other action is answered by
what :meth:`FakeAsterisk.respond` registered.

Threads: one accept thread and one thread per connection, which reads, parses and answers that
connection's actions in order, like Asterisk's ``session_do``. Writes (answers, :meth:`~FakeAsterisk.push_event`,
:meth:`~FakeAsterisk.push_raw`, :meth:`~FakeAsterisk.replay`) go out whole with ``sendall`` under a
per-connection lock, so frames never interleave; pushes run on the caller's thread and block while a
client does not read (unlike Asterisk, which drops such a client after ``writetimeout``). A client that
vanishes only ends its own connection. Nothing is printed: logs go to the ``asterisk_ami.testing`` logger.
FakeAsterisk uses only the standard library, :mod:`asterisk_ami.protocol` (to parse the clients' actions),
:mod:`asterisk_ami.filters` and :mod:`asterisk_ami.errors`. Modules: ``_wire.py`` (what it
writes), ``_reader.py`` (how it reads actions), ``_session.py`` (a connection's I/O), ``_actions.py``
(the answers to actions), ``_server.py`` (``FakeAsterisk``), ``_clients.py`` (clients for tests:
``EventRecorder``, ``logged_in_client``, ``AsyncAmiRunner``; what the pytest plugin's fixtures use).

The natural test, right every time (the plugin's ``ami_client`` and ``wait_for_event`` do this)::

    ami, events = logged_in_client(fake.client_options())
    fake.push_event("Hangup", Channel="PJSIP/100-0001", Cause="16")
    assert events.wait_for_event("Hangup")["cause"] == "16"   # came, and its handlers have run
"""

from ._clients import AsyncAmiRunner, EventRecorder, logged_in_client
from ._server import FakeAsterisk
from ._session import FakeSession
from ._wire import (
    CommandOutput,
    EventList,
    Reply,
    Responder,
    encode_frame,
    recorded_frames,
    render_reply,
    strings_to_mask,
)

__all__ = [
    "AsyncAmiRunner",
    "CommandOutput",
    "EventList",
    "EventRecorder",
    "FakeAsterisk",
    "FakeSession",
    "Reply",
    "Responder",
    "encode_frame",
    "logged_in_client",
    "recorded_frames",
    "render_reply",
    "strings_to_mask",
]
