"""mkdocs hook: pages that are generated, not written.

* ``reference/api/<module>.md``: every nav entry under ``reference/api/`` without a file of its own gets a
  page that renders ``<module>`` with mkdocstrings (``::: <module>``). Documenting a new public module is
  therefore one line in mkdocs.yml's nav; a hand-written page at that path (to group or introduce the
  members) takes precedence.
* ``changelog.md``: the repository's CHANGELOG.md, which lives outside docs/.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

from mkdocs.config.defaults import MkDocsConfig
from mkdocs.structure.files import File, Files

API_DIR = "reference/api/"
ROOT = Path(__file__).resolve().parent.parent


def nav_paths(nav: Any) -> Iterator[str]:
    """Every page path in a mkdocs nav (nested lists of strings and one-key dicts)."""
    if isinstance(nav, str):
        yield nav
    elif isinstance(nav, list):
        for item in nav:
            yield from nav_paths(item)
    elif isinstance(nav, dict):
        for value in nav.values():
            yield from nav_paths(value)


def api_modules(nav: Any) -> list[str]:
    """The modules the nav's API section names: ``reference/api/asterisk_ami.live.md`` -> ``asterisk_ami.live``."""
    return [path[len(API_DIR) : -len(".md")] for path in nav_paths(nav) if path.startswith(API_DIR)]


def api_page(module: str) -> str:
    """The generated page of one module: its docstring, then every member in its ``__all__``."""
    return f"# `{module}`\n\n::: {module}\n    options:\n      show_root_heading: false\n"


def on_files(files: Files, config: MkDocsConfig) -> Files:
    for module in api_modules(config.nav):
        path = f"{API_DIR}{module}.md"
        if files.get_file_from_path(path) is None:
            files.append(File.generated(config, path, content=api_page(module)))
    changelog = ROOT / "CHANGELOG.md"
    files.append(File.generated(config, "changelog.md", content=changelog.read_text(encoding="utf-8")))
    return files
