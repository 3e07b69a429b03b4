"""User code type-checked under ``mypy --strict`` with its expected errors and notes marked on their lines
(``# E: <start of message>``, ``# N: ...``): every mark must be met, and unmarked lines must stay clean."""

from __future__ import annotations

import re
import textwrap
from pathlib import Path


def expected(source: str) -> list[tuple[int, str, str]]:
    marks = []
    for number, line in enumerate(source.splitlines(), start=1):
        found = re.search(r"# ([EN]): (.*)$", line)
        if found:
            marks.append((number, "error" if found.group(1) == "E" else "note", found.group(2)))
    return marks


def assert_type_checks_as_marked(user_code: str, tmp_path: Path) -> None:
    from mypy import api as mypy_api  # the callers importorskip it

    source = textwrap.dedent(user_code)
    path = tmp_path / "user_code.py"
    path.write_text(source)
    out, _, _ = mypy_api.run(["--strict", "--no-incremental", "--cache-dir", str(tmp_path / ".mypy"), str(path)])
    got = []
    for line in out.splitlines():
        found = re.match(r".*?:(\d+): (error|note): (.*?)(  \[[a-z-]+\])?$", line)
        if found:
            got.append((int(found.group(1)), found.group(2), found.group(3)))
    marks = expected(source)
    for number, kind, text in marks:
        assert any(n == number and k == kind and t.startswith(text) for n, k, t in got), (number, text, out)
    unexpected = [g for g in got if not any(g[0] == n for n, _, _ in marks)]
    assert unexpected == [], out
