"""Every docstring of the package reads as text: no raw control characters (issue 19).

A docstring that spells ``"\\r\\n"`` without being raw holds a real carriage return, and ``help()`` then
prints lines that overwrite themselves.
"""

from __future__ import annotations

import ast
import pydoc
import re
from pathlib import Path

import asterisk_ami
from asterisk_ami.testing import FakeAsterisk

PACKAGE = Path(asterisk_ami.__file__).resolve().parent
CONTROL = re.compile(r"[\x00-\x08\x0b-\x1f\x7f]")  # every C0 control but LF (and DEL)


def _docstrings() -> list[tuple[str, str]]:
    found = []
    for path in sorted(PACKAGE.rglob("*.py")):
        tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
        for node in ast.walk(tree):
            if isinstance(node, (ast.Module, ast.ClassDef, ast.FunctionDef, ast.AsyncFunctionDef)):
                doc = ast.get_docstring(node, clean=False)
                if doc is not None:
                    where = f"{path.relative_to(PACKAGE.parent)}:{getattr(node, 'lineno', 1)}"
                    found.append((where, doc))
    return found


def test_the_scan_sees_the_package() -> None:
    names = {where.split(":")[0] for where, _ in _docstrings()}
    assert "asterisk_ami/testing/_server.py" in names and "asterisk_ami/cli.py" in names


def test_no_docstring_holds_a_control_character() -> None:
    bad = [f"{where}: {CONTROL.findall(doc)!r}" for where, doc in _docstrings() if CONTROL.search(doc)]
    assert not bad, "docstrings with raw control characters (make them raw strings):\n" + "\n".join(bad)


def test_help_of_fake_asterisk_prints_whole_lines() -> None:
    text = pydoc.render_doc(FakeAsterisk, renderer=pydoc.plaintext)
    assert "\r" not in text
    assert '"\\r\\n"' in text  # the line end is shown as it is spelled
