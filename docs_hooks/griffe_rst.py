"""A griffe extension: the library's docstrings use a little reStructuredText; show it as Markdown.

``:meth:`~FakeAsterisk.push_event``` becomes ```push_event``` (the short name, as Sphinx shows ``~``), any
other role ``:class:`x.Y``` becomes ```x.Y```, and a paragraph ending in ``::`` (an RST literal block
follows) ends in ``:``. Double backticks are already Markdown code.
"""

from __future__ import annotations

import re
from typing import Any

import griffe

ROLE = re.compile(r":(?:py:)?(?:meth|class|func|attr|data|mod|exc|obj|const):`(~?)([^`]+)`")
LITERAL = re.compile(r"::$", re.MULTILINE)


def rst_to_markdown(text: str) -> str:
    """The docstring ``text`` with Sphinx roles and ``::`` turned into Markdown."""

    def role(match: re.Match[str]) -> str:
        target = match.group(2)
        return f"`{target.rsplit('.', 1)[-1] if match.group(1) else target}`"

    return LITERAL.sub(":", ROLE.sub(role, text))


class RstToMarkdown(griffe.Extension):
    """Rewrites every docstring as it is loaded."""

    def on_instance(self, *, node: Any, obj: griffe.Object, agent: Any, **kwargs: Any) -> None:
        if obj.docstring is not None:
            obj.docstring.value = rst_to_markdown(obj.docstring.value)
