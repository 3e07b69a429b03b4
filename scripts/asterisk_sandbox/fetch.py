"""Getting Asterisk: the one on ``PATH``, or Debian sid's, fetched with a private apt configuration.

The download resolves ``asterisk`` and ``asterisk-modules`` plus the shared-library closure of the
binary, fetches the packages with a private apt configuration (the system apt state is never
touched), unpacks them with ``dpkg -x`` under ``<cache>/root`` and runs the binary through the
unpacked dynamic loader, so sid's libc never mixes with the host's.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import re
import shutil
import subprocess
import sys
import time
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

from .common import DEFAULT_CACHE_DIR, Log, SandboxError, SandboxUnavailable, quiet

KEYRING = Path("/usr/share/keyrings/debian-archive-keyring.gpg")
SUITE = "sid"
_LIB_RE = re.compile(r"^(lib|zlib)")


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

    def __init__(self, workdir: Path, log: Log = quiet) -> None:
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
    cache_dir: Path = DEFAULT_CACHE_DIR, *, prefer_system: bool = True, log: Log = quiet
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
