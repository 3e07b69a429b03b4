"""The generated configuration: modules, the test dialplan, asterisk.conf, manager.conf, the TLS cert.

Everything here is text (or a certificate file); where it goes is the sandbox's business
(``AsteriskSandbox.write_config`` in process.py).
"""

from __future__ import annotations

import shutil
import subprocess
from collections.abc import Iterable, Mapping
from pathlib import Path

from .common import Credentials

#: Modules loaded (``autoload = no``).  Answer, Wait, Hangup and Local channels are built in;
#: pbx_config (extensions.conf), app_userevent and app_echo are what the test dialplan and an
#: ``Originate ... Application: Echo`` need, the rest is cheap and handy for client tests.
MODULES: tuple[str, ...] = (
    "pbx_config",
    "app_echo",
    "app_userevent",
    "app_verbose",
    "app_dial",
    "app_senddtmf",
    "func_strings",
    "func_callerid",
    "func_channel",
    "func_global",
    "func_logic",
    "bridge_simple",
    "bridge_builtin_features",
    "bridge_holding",
    "res_timing_timerfd",
    # the live-state tests: a queue with a Local member, and DeviceStateList
    "app_queue",
    "res_manager_devicestate",
    # the catalogue's real-session test: parking lots (no call parks: a lot's bridge outlives its calls,
    # and other tests count bridges), recording, presence and custom device states, hold music, AGI, ChanSpy
    "res_parking",
    "app_mixmonitor",
    "format_wav",
    "res_manager_presencestate",
    "func_presencestate",
    "func_devstate",
    "res_musiconhold",
    "res_speech",  # res_agi requires it
    "res_agi",
    "app_chanspy",
)

#: Test dialplan.  Extension 100 matches the session recorded in tests/data/asterisk22-session.bin.
DIALPLAN = """\
[default]
; short call: Newchannel, UserEvent(TestEvent), Hangup after about a second
exten => 100,1,Answer()
 same => n,UserEvent(TestEvent,Foo: bar)
 same => n,Wait(1)
 same => n,Hangup()

; echoes until hung up (Hangup action)
exten => 101,1,Answer()
 same => n,UserEvent(TestEvent,Foo: bar)
 same => n,Echo()

; long-lived channel for CoreShowChannels / Status / Hangup tests
exten => 200,1,Answer()
 same => n,Wait(30)
 same => n,Hangup()

; a real bridged pair: 300 dials a second Local channel (301) that answers
exten => 300,1,Dial(Local/301@default/n,30)
 same => n,Hangup()
exten => 301,1,Answer()
 same => n,Wait(30)
 same => n,Hangup()

; a caller for the queue, and the queue's Local agent (answers, talks, hangs up)
exten => 400,1,Answer()
 same => n,Queue(support,r)
 same => n,Hangup()
exten => agent,1,Answer()
 same => n,Wait(20)
 same => n,Hangup()

; music on hold for a second (a playlist of a file that is not there: the events come all the same)
exten => 610,1,Answer()
 same => n,MusicOnHold(default,1)
 same => n,Wait(30)
 same => n,Hangup()

; spies on 600 quietly
exten => 620,1,Answer()
 same => n,ChanSpy(Local/600,qs)
 same => n,Hangup()

; new caller ID and account code, DTMF towards the other half
exten => 600,1,Answer()
 same => n,Set(CALLERID(all)=Catalogue <600>)
 same => n,Set(CHANNEL(accountcode)=catalogue)
 same => n,SendDTMF(12)
 same => n,Wait(30)
 same => n,Hangup()
"""

#: One queue for the live-state tests; members are added by the tests (QueueAdd).
QUEUES = """\
[general]
persistentmembers = no
shared_lastcall = no

[support]
strategy = ringall
timeout = 15
retry = 1
wrapuptime = 0
ringinuse = no
"""

INDICATIONS = """\
[general]
country = us

[us]
description = United States / North America
ringcadence = 2000,4000
dial = 350+440
busy = 480+620/500,0/500
ring = 440+480/2000,0/4000
congestion = 480+620/250,0/250
"""


def config_files(directories: Mapping[str, object], manager: str) -> dict[str, str]:
    """Return the files of the generated etc/ directory as {name: text}; ``manager`` is manager.conf."""
    return {
        "asterisk.conf": "[directories]\n"
        + "".join(f"{key} => {value}\n" for key, value in directories.items())
        + "\n[options]\nverbose = 0\ndebug = 0\nnocolor = yes\n",
        "modules.conf": "[modules]\nautoload = no\n" + "".join(f"load => {m}.so\n" for m in MODULES),
        "manager.conf": manager,
        "extensions.conf": DIALPLAN,
        "queues.conf": QUEUES,
        "logger.conf": "[general]\n\n[logfiles]\nmessages.log => error,warning\n",
        "indications.conf": INDICATIONS,
        "cdr.conf": "[general]\nenable = no\n",
        "cel.conf": "[general]\nenable = no\n",
        "stasis.conf": "",
        "acl.conf": "",
        "ccss.conf": "",
        "features.conf": "",
        "musiconhold.conf": "[default]\nmode = playlist\nentry => /nonexistent/catalogue-hold\n",
        "res_parking.conf": "[general]\n\n[default]\nparkext => 700\nparkpos => 701-720\ncontext => parkedcalls\n",
        "udptl.conf": "",
        "cli.conf": "",
    }


#: manager.conf's permission classes (main/manager.c ``perms[]``, without ``all`` and ``none``)
CLASSES: tuple[str, ...] = (
    "system",
    "call",
    "log",
    "verbose",
    "command",
    "agent",
    "user",
    "config",
    "dtmf",
    "reporting",
    "cdr",
    "dialplan",
    "originate",
    "agi",
    "cc",
    "aoc",
    "test",
    "security",
    "message",
)
#: the ``read`` of the account that cannot see calls: every class but ``call``
READ_WITHOUT_CALL = ",".join(c for c in CLASSES if c != "call")


def manager_conf(
    *,
    host: str,
    port: int,
    tls_port: int | None,
    certfile: Path,
    keyfile: Path,
    accounts: Iterable[tuple[Credentials, str, str]],
) -> str:
    """Return manager.conf: AMI on ``host`` (plain, and TLS if ``tls_port``), one section per
    (account, read, write)."""
    lines = [
        "[general]",
        "enabled = yes",
        "webenabled = no",
        f"bindaddr = {host}",
        f"port = {port}",
        "displayconnects = no",
        "timestampevents = no",
        "allowmultiplelogin = yes",
    ]
    if tls_port:
        lines += [
            "tlsenable = yes",
            f"tlsbindaddr = {host}:{tls_port}",
            f"tlscertfile = {certfile}",
            f"tlsprivatekey = {keyfile}",
        ]
    for creds, read, write in accounts:
        lines += ["", f"[{creds.username}]", f"secret = {creds.secret}"]
        lines += [f"read = {read}", f"write = {write}"]
    return "\n".join(lines) + "\n"


def make_self_signed_cert(certfile: Path, keyfile: Path) -> bool:
    """Write a self-signed cert for localhost/127.0.0.1; return False if no tool can."""
    if shutil.which("openssl"):
        subj_alt = "subjectAltName=DNS:localhost,IP:127.0.0.1"
        cmd = ["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-sha256", "-days", "3650"]
        cmd += ["-subj", "/CN=localhost", "-addext", subj_alt, "-keyout", str(keyfile), "-out", str(certfile)]
        proc = subprocess.run(cmd, capture_output=True, timeout=60, check=False)
        if proc.returncode == 0:
            return True
    try:
        return _cryptography_cert(certfile, keyfile)
    except ImportError:
        return False


def _cryptography_cert(certfile: Path, keyfile: Path) -> bool:
    """Fallback certificate generation with the ``cryptography`` package, if importable."""
    import datetime
    import ipaddress

    from cryptography import x509  # type: ignore[import-not-found, unused-ignore]
    from cryptography.hazmat.primitives import hashes, serialization  # type: ignore[import-not-found, unused-ignore]
    from cryptography.hazmat.primitives.asymmetric import rsa  # type: ignore[import-not-found, unused-ignore]
    from cryptography.x509.oid import NameOID  # type: ignore[import-not-found, unused-ignore]

    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "localhost")])
    now = datetime.datetime.now(datetime.timezone.utc)
    alt_names = [x509.DNSName("localhost"), x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(days=1))
        .not_valid_after(now + datetime.timedelta(days=3650))
        .add_extension(x509.SubjectAlternativeName(alt_names), critical=False)
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    keyfile.write_bytes(
        key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
    )
    certfile.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    return True
