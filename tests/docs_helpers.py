"""What the docs tests share: the built site (built once per run), and the code examples of the pages.

The site: ``./scripts/test`` builds it with ``mkdocs build --strict`` and passes its directory in
``ASTERISK_AMI_DOCS_SITE``; run alone, the ``built_site`` fixture builds it into a temporary directory.
Without the ``docs`` extra (the version matrix installs only ``test``) the docs tests are skipped.

Examples: every ```` ```python ```` block of ``docs/`` and of README.md is preceded by a marker saying how it is run::

    <!-- example: KIND [script=NAME] [expect="TEXT"] [service] -->

* ``run``: run as it is (it makes its own ``FakeAsterisk``, or needs no server);
* ``fake``: run against a ``FakeAsterisk`` that plays a small PBX (tests/docs_pbx.py): the example's
  ``host="pbx"`` (or ``'host': 'pbx'``) becomes that server's address and port; ``script=NAME`` plays
  ``SCRIPTS[NAME]`` while it runs;
* ``pytest``: a test module, run with pytest (the ``fake_asterisk`` fixture comes from the plugin);
* ``compile``: needs what a test cannot have (a web framework, a real PBX): compiled, and every name it
  imports from ``asterisk_ami`` must exist.

The examples inside the docstrings that the API reference shows are compiled and their imports checked
(tests/test_docs_examples.py); they are fragments, not programs.

``expect`` is text the example must print; ``service`` marks one that runs until stopped: once
``expect`` is printed it gets SIGTERM and must then exit cleanly. A block without a marker fails the
test, so no example can silently go unrun.
"""

from __future__ import annotations

import os
import re
import shlex
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
DOCS = ROOT / "docs"
KINDS = ("run", "fake", "pytest", "compile")
MARKER = re.compile(r"^(?P<indent>\s*)<!--\s*example:(?P<spec>.*?)-->\s*$")
FENCE = re.compile(r"^(?P<indent>\s*)```(?P<lang>[\w-]*)")


def require_docs_extra() -> None:
    """Skip unless the docs extra is installed (pip install -e '.[docs]')."""
    pytest.importorskip("mkdocs", reason="the docs extra is not installed (pip install -e '.[docs]')")
    pytest.importorskip("mkdocstrings", reason="the docs extra is not installed (pip install -e '.[docs]')")


def build_site(site_dir: Path) -> None:
    """``mkdocs build --strict`` into ``site_dir``; fails with mkdocs' own output."""
    env = {**os.environ, "NO_MKDOCS_2_WARNING": "1"}
    proc = subprocess.run(
        [sys.executable, "-m", "mkdocs", "build", "--strict", "--site-dir", str(site_dir)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        env=env,
        timeout=300,
    )
    if proc.returncode != 0:
        pytest.fail(f"mkdocs build --strict failed:\n{proc.stdout}\n{proc.stderr}")


_built: list[Path] = []


def site_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The built site's directory: ``ASTERISK_AMI_DOCS_SITE``, or built now, once per test run.

    Each docs test module has a ``site`` fixture that calls this."""
    require_docs_extra()
    given = os.environ.get("ASTERISK_AMI_DOCS_SITE")
    if given and (Path(given) / "index.html").is_file():
        return Path(given)
    if not _built:
        site = tmp_path_factory.mktemp("site")
        build_site(site)
        _built.append(site)
    return _built[0]


@dataclass(frozen=True)
class Example:
    page: str  # relative to docs/
    line: int  # of the opening fence, 1-based
    kind: str
    code: str
    script: str | None = None
    expect: str | None = None
    service: bool = False

    @property
    def id(self) -> str:
        return f"{self.page}:{self.line}"


def _options(spec: str, where: str) -> dict[str, str | bool]:
    words = shlex.split(spec)
    if not words or words[0] not in KINDS:
        raise ValueError(f"{where}: example marker must start with one of {', '.join(KINDS)}: {spec!r}")
    out: dict[str, str | bool] = {"kind": words[0]}
    for word in words[1:]:
        key, sep, value = word.partition("=")
        if key not in ("script", "expect", "service") or (key == "service") == bool(sep):
            raise ValueError(f"{where}: unknown example option {word!r}")
        out[key] = value if sep else True
    return out


def page_examples(path: Path) -> Iterator[Example]:
    """The Python blocks of one page, each with the marker before it; ValueError for an unmarked one."""
    page = (path.relative_to(DOCS) if path.is_relative_to(DOCS) else path.relative_to(ROOT)).as_posix()
    lines = path.read_text(encoding="utf-8").splitlines()
    pending: dict[str, str | bool] | None = None
    i = 0
    while i < len(lines):
        line = lines[i]
        marker = MARKER.match(line)
        fence = FENCE.match(line)
        if marker:
            pending = _options(marker.group("spec"), f"{page}:{i + 1}")
        elif fence:
            indent, lang = fence.group("indent"), fence.group("lang")
            end = i + 1
            while end < len(lines) and not lines[end].startswith(indent + "```"):
                end += 1
            if lang in ("python", "py"):
                if pending is None:
                    raise ValueError(f"{page}:{i + 1}: a python block without an <!-- example: KIND --> marker")
                body = "\n".join(raw[len(indent) :] if raw.startswith(indent) else raw.lstrip() for raw in lines[i + 1 : end])
                yield Example(
                    page,
                    i + 1,
                    str(pending["kind"]),
                    body + "\n",
                    script=str(pending["script"]) if "script" in pending else None,
                    expect=str(pending["expect"]) if "expect" in pending else None,
                    service=bool(pending.get("service", False)),
                )
            pending = None
            i = end
        elif line.strip() and pending is not None:
            raise ValueError(f"{page}:{i + 1}: an example marker must be followed by its python block")
        i += 1


def example_pages() -> list[Path]:
    """Every page whose examples are run: the site's, and README.md (its examples carry the same markers)."""
    return [*sorted(DOCS.rglob("*.md")), ROOT / "README.md"]


def all_examples() -> list[Example]:
    return [example for path in example_pages() for example in page_examples(path)]
