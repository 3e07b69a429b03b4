"""A private, throw-away Asterisk 22 for integration tests (standard library only).

The sandbox prefers an ``asterisk`` binary already on ``PATH``.  Otherwise it fetches
Asterisk and the libraries it needs from Debian *sid* with a private apt configuration
(the system apt state is never touched), unpacks the packages with ``dpkg -x`` under
``<repo>/.cache/asterisk/root`` and runs the binary through the unpacked dynamic loader,
so sid's libc never mixes with the host's.

Each sandbox owns a state directory holding generated configuration (AMI on 127.0.0.1
only, plain and TLS), a self-signed certificate, logs and ``sandbox.json`` (pid, ports,
credentials) so another process -- e.g. the ``scripts/asterisk-sandbox`` CLI -- can find
and stop it again.  Processes are only ever signalled by their recorded pid.

Environment: ``ASTERISK_SANDBOX_CACHE`` (download cache, default ``<repo>/.cache/asterisk``),
``ASTERISK_SANDBOX_MIRROR`` (Debian archive URI, default: read from the host's apt sources).
"""

from __future__ import annotations

import argparse
import contextlib
import fcntl
import json
import os
import re
import secrets
import shlex
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

REPO_ROOT = Path(__file__).resolve().parent.parent
DEFAULT_CACHE_DIR = Path(os.environ.get("ASTERISK_SANDBOX_CACHE") or REPO_ROOT / ".cache" / "asterisk")
DEFAULT_CLI_STATE_DIR = DEFAULT_CACHE_DIR / "cli"
HOST = "127.0.0.1"
BANNER_PREFIX = b"Asterisk Call Manager/"
STATE_FILE = "sandbox.json"
KEYRING = Path("/usr/share/keyrings/debian-archive-keyring.gpg")
SUITE = "sid"

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

_LIB_RE = re.compile(r"^(lib|zlib)")
Log = Callable[[str], None]


class SandboxError(RuntimeError):
    """Asterisk could not be started or controlled."""


class SandboxUnavailable(SandboxError):
    """Asterisk cannot be obtained here (not Debian, no network, download failed, ...)."""


class PortInUse(SandboxError):
    """Asterisk could not bind its AMI port(s)."""


@dataclass(frozen=True)
class Credentials:
    """An AMI account."""

    username: str
    secret: str


@dataclass(frozen=True)
class Installation:
    """How to run an Asterisk binary: directly, or through an unpacked dynamic loader."""

    binary: str
    moddir: str
    datadir: str
    source: str  # "system" or "download"
    loader: str | None = None
    library_path: str | None = None

    def command(self, *args: str) -> list[str]:
        """Return the argv running Asterisk with ``args``."""
        if self.loader is None:
            return [self.binary, *args]
        return [self.loader, "--library-path", self.library_path or "", self.binary, *args]

    def version(self) -> str:
        """Return ``asterisk -V`` output (also a check that all libraries resolve)."""
        try:
            proc = subprocess.run(self.command("-V"), capture_output=True, text=True, timeout=30, check=False)
        except OSError as exc:
            raise SandboxError(f"cannot run {self.binary}: {exc}") from exc
        if proc.returncode != 0 or not proc.stdout.startswith("Asterisk"):
            raise SandboxError(f"{self.binary} -V failed: {(proc.stderr or proc.stdout).strip()}")
        return proc.stdout.strip()


def _quiet(_: str) -> None:
    """Default progress sink: say nothing."""


def _run(cmd: Sequence[str], *, what: str, cwd: Path | None = None, timeout: float = 600) -> str:
    """Run a helper command; raise SandboxUnavailable with its output if it fails."""
    try:
        proc = subprocess.run(list(cmd), cwd=cwd, capture_output=True, text=True, timeout=timeout, check=False)
    except (OSError, subprocess.TimeoutExpired) as exc:
        raise SandboxUnavailable(f"{what} failed: {exc}") from exc
    if proc.returncode != 0:
        output = (proc.stderr.strip() or proc.stdout.strip())[-2000:]
        raise SandboxUnavailable(f"{what} failed (exit {proc.returncode}): {output}")
    return proc.stdout


# --------------------------------------------------------------------------- download


def _deb822_stanzas(text: str) -> Iterator[dict[str, str]]:
    """Yield the stanzas of a deb822 file as {lower-case field: value}."""
    for chunk in re.split(r"\n\s*\n", text):
        fields: dict[str, str] = {}
        key = ""
        for line in chunk.splitlines():
            if line.startswith("#") or not line.strip():
                continue
            if line[0] in " \t" and key:
                fields[key] += "\n" + line.strip()
            elif ":" in line:
                key, _, value = line.partition(":")
                key = key.strip().lower()
                fields[key] = value.strip()
        if fields:
            yield fields


def find_debian_mirror(apt_etc: Path = Path("/etc/apt")) -> str:
    """Return the host's Debian archive URI, read from its apt sources (never hard-coded)."""
    override = os.environ.get("ASTERISK_SANDBOX_MIRROR")
    if override:
        return override.rstrip("/")
    candidates: list[str] = []
    for path in sorted((apt_etc / "sources.list.d").glob("*.sources")):
        with contextlib.suppress(OSError):
            for stanza in _deb822_stanzas(path.read_text()):
                if "deb" in stanza.get("types", "").split() and stanza.get("enabled", "yes") != "no":
                    candidates += stanza.get("uris", "").split()
    for path in [apt_etc / "sources.list", *sorted((apt_etc / "sources.list.d").glob("*.list"))]:
        with contextlib.suppress(OSError):
            for line in path.read_text().splitlines():
                match = re.match(r"\s*deb\s+(?:\[[^\]]*\]\s+)?(\S+)", line)
                if match:
                    candidates.append(match.group(1))
    candidates = [uri.rstrip("/") for uri in candidates if "security" not in uri]
    for uri in candidates:
        if uri.endswith("/debian"):
            return uri
    if candidates:
        return candidates[0]
    raise SandboxUnavailable(f"no Debian archive URI found in {apt_etc}/sources.list(.d) (not Debian?)")


def _parse_records(text: str) -> dict[str, dict[str, str]]:
    """Parse ``apt-cache show`` output into {package: fields}."""
    return {rec["package"]: rec for rec in _deb822_stanzas(text) if "package" in rec}


def _depends(record: dict[str, str]) -> list[list[str]]:
    """Return a record's Pre-Depends + Depends as a list of alternative groups."""
    groups = []
    for field in ("pre-depends", "depends"):
        for group in record.get(field, "").replace("\n", " ").split(","):
            names = [re.split(r"[\s(:\[]", alt.strip(), maxsplit=1)[0] for alt in group.split("|")]
            if names := [n for n in names if n]:
                groups.append(names)
    return groups


class AptFetcher:
    """Resolve and download Debian sid packages with a private apt configuration."""

    def __init__(self, workdir: Path, log: Log = _quiet) -> None:
        self.workdir = workdir
        self.log = log
        self._records: dict[str, dict[str, str] | None] = {}

    def _options(self) -> list[str]:
        d = self.workdir
        opts = [
            f"-oDir::Etc::sourcelist={d / 'sources.list'}",
            "-oDir::Etc::sourceparts=-",
            f"-oDir::Etc::preferences={d / 'preferences'}",
            f"-oDir::Etc::preferencesparts={d / 'preferences.d'}",
            f"-oDir::State::Lists={d / 'lists'}",
            f"-oDir::State::status={d / 'status'}",
            f"-oDir::Cache={d / 'cache'}",
            "-oDebug::NoLocking=1",
            "-oAcquire::Languages=none",
            "-oAcquire::Retries=3",
            "-oAPT::Update::Error-Mode=any",
        ]
        if os.geteuid() == 0:
            opts.append("-oAPT::Sandbox::User=root")  # our dirs are not readable by _apt
        return opts

    def update(self) -> None:
        """Fetch sid's package index into the private lists directory."""
        for tool in ("apt-get", "apt-cache", "dpkg"):
            if shutil.which(tool) is None:
                raise SandboxUnavailable(f"{tool} not found: downloading Asterisk needs a Debian host")
        if not KEYRING.is_file():
            raise SandboxUnavailable(f"{KEYRING} missing (package debian-archive-keyring)")
        mirror = find_debian_mirror()
        for sub in ("lists/partial", "cache/archives/partial", "preferences.d"):
            (self.workdir / sub).mkdir(parents=True, exist_ok=True)
        (self.workdir / "status").touch()
        (self.workdir / "sources.list").write_text(f"deb [signed-by={KEYRING}] {mirror} {SUITE} main\n")
        self.log(f"apt-get update ({mirror} {SUITE})")
        _run(["apt-get", "-q", *self._options(), "update"], what=f"apt-get update from {mirror} {SUITE}")
        if not any((self.workdir / "lists").glob("*Packages*")):
            raise SandboxUnavailable(f"apt-get update fetched no package index from {mirror} {SUITE}")

    def _lookup(self, names: Iterable[str]) -> None:
        """Load the candidate records of ``names`` (None for names with no real package)."""
        todo = sorted({n for n in names if n not in self._records})
        if not todo:
            return
        out = _run(["apt-cache", *self._options(), "show", "--no-all-versions", *todo], what="apt-cache show")
        found = _parse_records(out)
        for name in todo:
            self._records[name] = found.get(name)

    def _providers(self, name: str) -> list[str]:
        """Return the real packages providing a virtual package."""
        out = _run(["apt-cache", *self._options(), "showpkg", name], what="apt-cache showpkg")
        _, _, tail = out.partition("Reverse Provides:")
        providers = [line.split()[0] for line in tail.splitlines() if line.strip()]
        self._lookup(providers)
        return [p for p in providers if self._records.get(p)]

    def _pick(self, alternatives: list[str]) -> str | None:
        """Return the first alternative that a real package satisfies."""
        for name in alternatives:
            if self._records.get(name):
                return name
        for name in alternatives:
            if providers := self._providers(name):
                return providers[0]
        return None

    def resolve(self, roots: Sequence[str], follow: set[str]) -> list[str]:
        """Resolve ``roots`` plus the shared-library closure of the packages in ``follow``."""
        chosen: dict[str, dict[str, str]] = {}
        pending: list[tuple[list[str], str]] = [([name], "request") for name in roots]
        while pending:
            self._lookup(name for alternatives, _ in pending for name in alternatives)
            next_pending: list[tuple[list[str], str]] = []
            for alternatives, parent in pending:
                name = self._pick(alternatives)
                if name is None:
                    raise SandboxUnavailable(
                        f"package {' | '.join(alternatives)} (needed by {parent}) not found in Debian {SUITE}"
                    )
                if name in chosen:
                    continue
                record = self._records[name]
                assert record is not None
                chosen[name] = record
                if name not in follow and not _LIB_RE.match(name):
                    continue
                for group in _depends(record):
                    libs = [alt for alt in group if _LIB_RE.match(alt)]
                    if libs and not any(alt in chosen for alt in libs):
                        next_pending.append((libs, name))
            pending = next_pending
        return sorted(chosen)

    def download(self, packages: Sequence[str], dest: Path) -> list[Path]:
        """Download ``packages`` (.deb files) into ``dest``."""
        dest.mkdir(parents=True, exist_ok=True)
        self.log(f"apt-get download {len(packages)} packages")
        _run(["apt-get", "-q", *self._options(), "download", *packages], what="apt-get download", cwd=dest)
        debs = []
        for name in packages:
            matches = sorted(dest.glob(f"{name}_*.deb"))
            if not matches:
                raise SandboxUnavailable(f"apt-get download did not fetch {name}")
            debs.append(matches[-1])
        return debs


def _find_one(root: Path, patterns: Sequence[str], what: str) -> Path:
    """Return the first path under ``root`` matching one of ``patterns``."""
    for pattern in patterns:
        if matches := sorted(root.glob(pattern)):
            return matches[0]
    raise SandboxUnavailable(f"unpacked packages contain no {what} under {root}")


def _downloaded_installation(root: Path) -> Installation:
    """Describe the Asterisk unpacked under ``root``."""
    moddir = _find_one(root, ["usr/lib/*/asterisk/modules", "usr/lib/asterisk/modules"], "module dir")
    libdir = moddir.parent.parent
    loader = _find_one(libdir, ["ld-linux*.so.*", "ld-*.so.*"], "dynamic loader")
    library_path = [str(libdir)]
    if (root / "lib" / libdir.name).is_dir():
        library_path.append(str(root / "lib" / libdir.name))
    return Installation(
        binary=str(root / "usr" / "sbin" / "asterisk"),
        moddir=str(moddir),
        datadir=str(root / "usr" / "share" / "asterisk"),
        source="download",
        loader=str(loader),
        library_path=":".join(library_path),
    )


def _system_installation(binary: str) -> Installation:
    """Describe an installed Asterisk, reading its directories from /etc/asterisk if possible."""
    dirs: dict[str, str] = {}
    with contextlib.suppress(OSError):
        for line in Path("/etc/asterisk/asterisk.conf").read_text().splitlines():
            if match := re.match(r"\s*(astmoddir|astdatadir)\s*=>?\s*(\S+)", line):
                dirs[match.group(1)] = match.group(2)
    prefix = Path(binary).resolve().parent.parent
    mod_candidates = [dirs.get("astmoddir", ""), str(prefix / "lib/asterisk/modules")]
    mod_candidates += [str(p) for p in sorted(prefix.glob("lib*/*/asterisk/modules"))]
    mod_candidates += ["/usr/lib/asterisk/modules", "/usr/lib64/asterisk/modules"]
    data_candidates = [dirs.get("astdatadir", ""), str(prefix / "share/asterisk"), "/usr/share/asterisk"]
    data_candidates.append("/var/lib/asterisk")
    moddir = next((p for p in mod_candidates if p and Path(p, "pbx_config.so").exists()), None)
    if moddir is None:
        raise SandboxError(f"{binary}: cannot find its module directory (pbx_config.so)")
    datadir = next((p for p in data_candidates if p and Path(p).is_dir()), "/usr/share/asterisk")
    return Installation(binary=binary, moddir=moddir, datadir=datadir, source="system")


@contextlib.contextmanager
def _locked(path: Path) -> Iterator[None]:
    """Hold an exclusive lock file (serialises concurrent installs)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("a") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def ensure_installation(
    cache_dir: Path = DEFAULT_CACHE_DIR, *, prefer_system: bool = True, log: Log = _quiet
) -> Installation:
    """Return a runnable Asterisk: the installed one, the cached download, or a fresh download."""
    system_binary = shutil.which("asterisk") if prefer_system else None
    if system_binary:
        try:
            installation = _system_installation(system_binary)
            installation.version()
            return installation
        except SandboxError as exc:
            log(f"not using {system_binary}: {exc}")
    root = cache_dir / "root"
    marker = cache_dir / "installed.json"
    with _locked(cache_dir / ".lock"):
        if marker.is_file() and root.is_dir():
            return _downloaded_installation(root)
        if not sys.platform.startswith("linux"):
            raise SandboxUnavailable(f"cannot download Debian's Asterisk on {sys.platform}")
        started = time.monotonic()
        log(f"downloading Asterisk from Debian {SUITE} into {cache_dir} (first run only)")
        work = cache_dir / "apt"
        shutil.rmtree(work, ignore_errors=True)
        fetcher = AptFetcher(work, log)
        fetcher.update()
        packages = fetcher.resolve(["asterisk", "asterisk-modules"], follow={"asterisk"})
        debs = fetcher.download(packages, work / "debs")
        tmp_root = cache_dir / "root.tmp"
        shutil.rmtree(tmp_root, ignore_errors=True)
        log(f"unpacking {len(debs)} packages")
        for deb in debs:
            _run(["dpkg", "-x", str(deb), str(tmp_root)], what=f"dpkg -x {deb.name}")
        try:
            version = _downloaded_installation(tmp_root).version()  # fails if a library is missing
        except SandboxError as exc:
            raise SandboxUnavailable(f"unpacked Asterisk does not run: {exc}") from exc
        shutil.rmtree(root, ignore_errors=True)
        tmp_root.rename(root)
        installation = _downloaded_installation(root)
        seconds = time.monotonic() - started
        details = {"version": version, "packages": [deb.name for deb in debs], "seconds": round(seconds, 1)}
        marker.write_text(json.dumps(details, indent=2) + "\n")
        shutil.rmtree(work, ignore_errors=True)
        log(f"{version} ready after {seconds:.1f} s")
        return installation


# --------------------------------------------------------------------------- sandbox


def free_port(host: str = HOST) -> int:
    """Return a TCP port that is currently free on ``host``."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((host, 0))
        port: int = sock.getsockname()[1]
        return port


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


def _ami_messages(sock: socket.socket) -> Iterator[dict[str, str]]:
    """Yield AMI messages (after the banner) read from ``sock``."""
    buffer = b""
    while True:
        while b"\r\n\r\n" not in buffer:
            chunk = sock.recv(65536)
            if not chunk:
                return
            buffer += chunk
        raw, buffer = buffer.split(b"\r\n\r\n", 1)
        message: dict[str, str] = {}
        for line in raw.decode("utf-8", "replace").split("\r\n"):
            key, _, value = line.partition(":")
            message.setdefault(key.strip(), value.strip())
        yield message


def _read_banner(sock: socket.socket) -> bytes:
    """Read the AMI banner line."""
    data = b""
    while not data.endswith(b"\n"):
        chunk = sock.recv(1)
        if not chunk:
            break
        data += chunk
    return data.strip()


class AsteriskSandbox:
    """One private Asterisk process with generated configuration under ``state_dir``."""

    def __init__(
        self,
        state_dir: Path | str | None = None,
        *,
        cache_dir: Path | str = DEFAULT_CACHE_DIR,
        host: str = HOST,
        port: int | None = None,
        tls_port: int | None = None,
        startup_timeout: float = 60.0,
        prefer_system: bool = True,
        die_with_parent: bool = False,
        log: Log = _quiet,
    ) -> None:
        self.state_dir = Path(state_dir) if state_dir else Path(tempfile.mkdtemp(prefix="asterisk-sandbox-"))
        self.cache_dir = Path(cache_dir)
        self.host = host
        self.port = port or free_port(host)
        self.tls_port: int | None = tls_port or free_port(host)
        while self.tls_port == self.port:
            self.tls_port = free_port(host)
        self.startup_timeout = startup_timeout
        self.prefer_system = prefer_system
        self.die_with_parent = die_with_parent
        self.log = log
        self.admin = Credentials("admin", secrets.token_hex(12))
        self.system = Credentials("sysonly", secrets.token_hex(12))
        self.wrong_secret = "wrong-" + secrets.token_hex(6)
        self.installation: Installation | None = None
        self.version = ""
        self.pid: int | None = None
        self._proc: subprocess.Popen[bytes] | None = None
        self._auto_ports = port is None and tls_port is None  # may pick others if taken on first start
        self._messages_offset = 0

    # ----------------------------------------------------------------- paths

    @property
    def etc_dir(self) -> Path:
        """Directory of the generated configuration."""
        return self.state_dir / "etc"

    @property
    def config_file(self) -> Path:
        """The generated asterisk.conf (passed with -C; also identifies our process)."""
        return self.etc_dir / "asterisk.conf"

    @property
    def certfile(self) -> Path:
        """Self-signed certificate of the TLS listener (also the CA file for clients)."""
        return self.state_dir / "tls" / "cert.pem"

    @property
    def keyfile(self) -> Path:
        """Private key of the TLS listener."""
        return self.state_dir / "tls" / "key.pem"

    @property
    def cafile(self) -> Path | None:
        """CA file for TLS clients, or None when TLS is disabled."""
        return self.certfile if self.tls_port else None

    @property
    def log_file(self) -> Path:
        """Asterisk's stdout/stderr."""
        return self.state_dir / "asterisk.out"

    @property
    def messages_file(self) -> Path:
        """Asterisk's own log (errors and warnings)."""
        return self.state_dir / "log" / "messages.log"

    # ----------------------------------------------------------------- persistence

    def save(self) -> None:
        """Write ``sandbox.json`` so other processes can find this sandbox."""
        data = {
            "host": self.host,
            "port": self.port,
            "tls_port": self.tls_port,
            "cafile": str(self.cafile) if self.cafile else None,
            "admin": asdict(self.admin),
            "system": asdict(self.system),
            "wrong_secret": self.wrong_secret,
            "pid": self.pid,
            "version": self.version,
            "config_file": str(self.config_file),
            "log_file": str(self.log_file),
            "cache_dir": str(self.cache_dir),
            "installation": asdict(self.installation) if self.installation else None,
        }
        self.state_dir.mkdir(mode=0o700, parents=True, exist_ok=True)  # holds the secrets
        tmp = self.state_dir / (STATE_FILE + ".tmp")
        tmp.write_text(json.dumps(data, indent=2) + "\n")
        tmp.replace(self.state_dir / STATE_FILE)

    @classmethod
    def load(cls, state_dir: Path | str, **kwargs: Any) -> AsteriskSandbox:
        """Recreate a sandbox object from a state directory written by :meth:`save`."""
        state_dir = Path(state_dir)
        try:
            data = json.loads((state_dir / STATE_FILE).read_text())
        except (OSError, ValueError) as exc:
            raise SandboxError(f"no sandbox state in {state_dir}: {exc}") from exc
        kwargs.setdefault("cache_dir", data["cache_dir"])
        sandbox = cls(state_dir, host=data["host"], port=data["port"], tls_port=data["tls_port"], **kwargs)
        sandbox.tls_port = data["tls_port"]
        sandbox.admin = Credentials(**data["admin"])
        sandbox.system = Credentials(**data["system"])
        sandbox.wrong_secret = data["wrong_secret"]
        sandbox.pid = data["pid"]
        sandbox.version = data["version"]
        if data["installation"]:
            sandbox.installation = Installation(**data["installation"])
        return sandbox

    # ----------------------------------------------------------------- configuration

    def write_config(self) -> None:
        """Generate asterisk.conf, manager.conf, modules.conf, the dialplan and friends."""
        assert self.installation is not None
        state = self.state_dir
        state.mkdir(mode=0o700, parents=True, exist_ok=True)  # manager.conf holds the secrets
        for sub in ("etc", "run", "log", "spool", "lib", "keys", "agi", "cache", "tls"):
            (state / sub).mkdir(parents=True, exist_ok=True)
        if self.tls_port and not self._ensure_cert():
            self.log("no openssl or cryptography: TLS listener disabled")
            self.tls_port = None
        directories = {
            "astetcdir": self.etc_dir,
            "astmoddir": self.installation.moddir,
            "astvarlibdir": state / "lib",
            "astdbdir": state / "lib",
            "astkeydir": state / "keys",
            "astdatadir": self.installation.datadir,
            "astagidir": state / "agi",
            "astspooldir": state / "spool",
            "astrundir": self._run_dir(),
            "astlogdir": state / "log",
            "astsbindir": Path(self.installation.binary).parent,
            "astcachedir": state / "cache",
        }
        files = {
            "asterisk.conf": "[directories]\n"
            + "".join(f"{key} => {value}\n" for key, value in directories.items())
            + "\n[options]\nverbose = 0\ndebug = 0\nnocolor = yes\n",
            "modules.conf": "[modules]\nautoload = no\n" + "".join(f"load => {m}.so\n" for m in MODULES),
            "manager.conf": self._manager_conf(),
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
            "udptl.conf": "",
            "cli.conf": "",
        }
        for name, text in files.items():
            (self.etc_dir / name).write_text(text)

    def _ensure_cert(self) -> bool:
        """Create the self-signed certificate unless it exists; False if that is impossible."""
        return self.certfile.exists() or make_self_signed_cert(self.certfile, self.keyfile)

    def _run_dir(self) -> Path:
        """Run directory; kept short because the control socket path is limited to 107 bytes."""
        run_dir = self.state_dir / "run"
        if len(str(run_dir / "asterisk.ctl")) > 100:
            link = Path(tempfile.gettempdir()) / f"asterisk-sandbox-run-{os.getuid()}-{self.port}"
            with contextlib.suppress(FileNotFoundError):
                link.unlink()
            link.symlink_to(run_dir)
            return link
        return run_dir

    def _manager_conf(self) -> str:
        """Return manager.conf: AMI on 127.0.0.1 (plain + TLS), a full and a system-only account."""
        lines = [
            "[general]",
            "enabled = yes",
            "webenabled = no",
            f"bindaddr = {self.host}",
            f"port = {self.port}",
            "displayconnects = no",
            "timestampevents = no",
            "allowmultiplelogin = yes",
        ]
        if self.tls_port:
            lines += [
                "tlsenable = yes",
                f"tlsbindaddr = {self.host}:{self.tls_port}",
                f"tlscertfile = {self.certfile}",
                f"tlsprivatekey = {self.keyfile}",
            ]
        for creds, perms in ((self.admin, "all"), (self.system, "system")):
            lines += ["", f"[{creds.username}]", f"secret = {creds.secret}"]
            lines += [f"read = {perms}", f"write = {perms}"]
        return "\n".join(lines) + "\n"

    # ----------------------------------------------------------------- process control

    def install(self) -> Installation:
        """Locate or download Asterisk (cached) and remember its version."""
        if self.installation is None:
            self.installation = ensure_installation(self.cache_dir, prefer_system=self.prefer_system, log=self.log)
        if not self.version:
            self.version = self.installation.version()
        return self.installation

    def is_running(self) -> bool:
        """True while our Asterisk process (recorded pid) is alive."""
        if self.pid is None:
            return False
        if self._proc is not None and self._proc.pid == self.pid:
            return self._proc.poll() is None
        return _pid_is_ours(self.pid, self.config_file)

    def start(self) -> None:
        """Start Asterisk (no-op if already running) and wait until AMI is fully booted."""
        if self.is_running():
            return
        for attempt in range(3):
            try:
                self._spawn()
                return
            except PortInUse:
                if not self._auto_ports or attempt == 2:
                    raise
                self.log(f"port {self.port} or {self.tls_port} was taken meanwhile, trying others")
                self.port, self.tls_port = free_port(self.host), free_port(self.host)

    def _spawn(self) -> None:
        """Start the process with freshly written configuration and wait for readiness."""
        installation = self.install()
        self.write_config()
        cmd = installation.command("-C", str(self.config_file), "-f", "-n")
        if self.die_with_parent and shutil.which("setpriv"):
            cmd = ["setpriv", "--pdeathsig", "SIGTERM", "--", *cmd]
        with contextlib.suppress(OSError):
            self._messages_offset = self.messages_file.stat().st_size
        with self.log_file.open("ab") as out:
            out.write(f"\n=== {time.strftime('%Y-%m-%d %H:%M:%S')} {shlex.join(cmd)}\n".encode())
            out.flush()
            self._proc = subprocess.Popen(
                cmd,
                stdin=subprocess.DEVNULL,
                stdout=out,
                stderr=subprocess.STDOUT,
                cwd=self.state_dir,
                start_new_session=not self.die_with_parent,
            )
        self.pid = self._proc.pid
        self.save()
        try:
            self.wait_ready(self.startup_timeout)
        except BaseException:
            self.stop()
            raise
        self._auto_ports = False  # from now on the ports are part of the contract (restart)

    def wait_ready(self, timeout: float = 60.0) -> None:
        """Wait until AMI sends its banner and reports FullyBooted; raise SandboxError on timeout."""
        deadline = time.monotonic() + timeout
        last_error = "no attempt"
        while time.monotonic() < deadline:
            if not self.is_running():
                raise SandboxError(f"Asterisk exited during startup\n{self.log_tail()}")
            if "Unable to bind" in self._new_messages():
                raise PortInUse(f"AMI port {self.port} or {self.tls_port} is in use\n{self.log_tail()}")
            try:
                self._probe(min(2.0, max(0.1, deadline - time.monotonic())))
                return
            except (OSError, SandboxError) as exc:
                last_error = str(exc)
            time.sleep(0.1)
        raise SandboxError(
            f"AMI on {self.host}:{self.port} not ready after {timeout:.0f} s ({last_error})\n{self.log_tail()}"
        )

    def _new_messages(self) -> str:
        """Return what Asterisk logged to messages.log since the last start."""
        try:
            with self.messages_file.open("rb") as handle:
                handle.seek(self._messages_offset)
                return handle.read().decode(errors="replace")
        except OSError:
            return ""

    def _probe(self, timeout: float) -> None:
        """Check the banner, log in and wait for FullyBooted."""
        with socket.create_connection((self.host, self.port), timeout=timeout) as sock:
            banner = _read_banner(sock)
            if not banner.startswith(BANNER_PREFIX):
                raise SandboxError(f"unexpected banner {banner!r}")
            login = f"Action: Login\r\nUsername: {self.admin.username}\r\nSecret: {self.admin.secret}\r\n\r\n"
            sock.sendall(login.encode())
            for message in _ami_messages(sock):
                if message.get("Response") == "Error":
                    raise SandboxError(f"login failed: {message.get('Message')}")
                if message.get("Event") == "FullyBooted":
                    sock.sendall(b"Action: Logoff\r\n\r\n")
                    return
            raise SandboxError("connection closed before FullyBooted")

    def kill(self, sig: int = signal.SIGKILL, *, wait: bool | None = None, timeout: float = 10.0) -> None:
        """Send ``sig`` to our Asterisk; by default wait for it to exit if ``sig`` is SIGKILL/SIGTERM."""
        if self.pid is None or not self.is_running():
            return
        if self._proc is not None and self._proc.pid == self.pid:
            self._proc.send_signal(sig)
        else:
            os.kill(self.pid, sig)
        if wait is None:
            wait = sig in (signal.SIGKILL, signal.SIGTERM)
        if wait:
            self._wait_exit(timeout)

    def _wait_exit(self, timeout: float) -> None:
        """Wait for our process to exit (reaping it if it is our child)."""
        if self._proc is not None and self._proc.pid == self.pid:
            try:
                self._proc.wait(timeout)
            except subprocess.TimeoutExpired as exc:
                raise SandboxError(f"Asterisk pid {self.pid} did not exit in {timeout} s") from exc
            return
        deadline = time.monotonic() + timeout
        while self.is_running():
            if time.monotonic() > deadline:
                raise SandboxError(f"Asterisk pid {self.pid} did not exit in {timeout} s")
            time.sleep(0.05)

    def stop(self, timeout: float = 10.0) -> None:
        """Stop Asterisk: SIGTERM, then SIGKILL if it does not exit within ``timeout``."""
        if self.is_running():
            self.kill(signal.SIGCONT, wait=False)  # in case a test stopped it with SIGSTOP
            try:
                self.kill(signal.SIGTERM, timeout=timeout)
            except SandboxError:
                self.kill(signal.SIGKILL, timeout=timeout)
        self.pid = None
        self._proc = None
        if (self.state_dir / STATE_FILE).exists():
            self.save()

    def restart(self) -> None:
        """Stop (if running) and start again on the same ports; wait until AMI answers."""
        self.stop()
        self.start()

    # ----------------------------------------------------------------- reporting

    def log_tail(self, lines: int = 30) -> str:
        """Return the last lines of Asterisk's output and messages log."""
        parts = []
        for path in (self.log_file, self.messages_file):
            with contextlib.suppress(OSError):
                text = path.read_text(errors="replace").splitlines()[-lines:]
                parts.append(f"--- {path}\n" + "\n".join(text))
        return "\n".join(parts) or "(no log output)"

    def env(self) -> dict[str, str]:
        """Environment variables describing this server (as read by tests/integration/conftest.py)."""
        env = {
            "AMI_HOST": self.host,
            "AMI_PORT": str(self.port),
            "AMI_USERNAME": self.admin.username,
            "AMI_SECRET": self.admin.secret,
            "AMI_SYSTEM_USERNAME": self.system.username,
            "AMI_SYSTEM_SECRET": self.system.secret,
            "AMI_SANDBOX_DIR": str(self.state_dir),
        }
        if self.tls_port and self.cafile:
            env["AMI_TLS_PORT"] = str(self.tls_port)
            env["AMI_CAFILE"] = str(self.cafile)
        return env

    def describe(self) -> str:
        """Human-readable summary: host, ports, credentials, files."""
        rows = [
            ("version", self.version),
            ("pid", str(self.pid)),
            ("host", self.host),
            ("port", str(self.port)),
            ("tls_port", str(self.tls_port) if self.tls_port else "(disabled)"),
            ("cafile", str(self.cafile) if self.cafile else "-"),
            ("admin", f"{self.admin.username} / {self.admin.secret}  (read=all write=all)"),
            ("system", f"{self.system.username} / {self.system.secret}  (read=system write=system)"),
            ("state_dir", str(self.state_dir)),
            ("log", str(self.log_file)),
        ]
        return "\n".join(f"{key + ':':11}{value}" for key, value in rows)


def _pid_is_ours(pid: int, config_file: Path) -> bool:
    """True if ``pid`` is alive, not a zombie, and runs with our asterisk.conf."""
    proc = Path("/proc") / str(pid)
    if not Path("/proc/self").exists():  # no procfs: best effort
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return False
        except PermissionError:
            return True
        return True
    try:
        stat = (proc / "stat").read_text()
        cmdline = (proc / "cmdline").read_bytes().split(b"\0")
    except OSError:
        return False
    if stat.rpartition(")")[2].split()[0] in ("Z", "X"):
        return False
    return os.fsencode(str(config_file)) in cmdline


# --------------------------------------------------------------------------- CLI


def main(argv: Sequence[str] | None = None) -> int:
    """``asterisk-sandbox start|stop|status|env``."""
    parser = argparse.ArgumentParser(prog="asterisk-sandbox", description=__doc__.splitlines()[0])
    parser.add_argument("command", choices=("start", "stop", "status", "env"))
    parser.add_argument("--state-dir", type=Path, default=DEFAULT_CLI_STATE_DIR, help="default: %(default)s")
    parser.add_argument("--cache-dir", type=Path, default=DEFAULT_CACHE_DIR, help="default: %(default)s")
    parser.add_argument("--port", type=int, help="AMI port (default: a free one)")
    parser.add_argument("--tls-port", type=int, help="AMI TLS port (default: a free one)")
    parser.add_argument("--download", action="store_true", help="ignore an installed asterisk")
    parser.add_argument("--timeout", type=float, default=60.0, help="startup timeout in seconds")
    args = parser.parse_args(argv)

    def log(message: str) -> None:
        print(f"asterisk-sandbox: {message}", file=sys.stderr, flush=True)

    existing: AsteriskSandbox | None = None
    if (args.state_dir / STATE_FILE).exists():
        existing = AsteriskSandbox.load(args.state_dir, log=log)
    try:
        if args.command == "start":
            if existing and existing.is_running():
                log("already running")
                print(existing.describe())
                return 0
            sandbox = AsteriskSandbox(
                args.state_dir,
                cache_dir=args.cache_dir,
                port=args.port or (existing.port if existing else None),
                tls_port=args.tls_port or (existing.tls_port if existing else None),
                startup_timeout=args.timeout,
                prefer_system=not args.download,
                log=log,
            )
            if existing:  # keep the credentials stable across restarts
                sandbox.admin, sandbox.system = existing.admin, existing.system
                sandbox.wrong_secret = existing.wrong_secret
            sandbox.start()
            print(sandbox.describe())
            return 0
        if existing is None or not existing.is_running():
            if args.command == "stop":
                log("not running")
                return 0
            log(f"not running (no live sandbox in {args.state_dir})")
            return 1
        if args.command == "stop":
            pid = existing.pid
            existing.stop()
            log(f"stopped pid {pid}")
        elif args.command == "status":
            print(existing.describe())
        else:
            for key, value in existing.env().items():
                print(f"export {key}={shlex.quote(value)}")
        return 0
    except SandboxError as exc:
        log(str(exc))
        return 2


if __name__ == "__main__":
    sys.exit(main())
