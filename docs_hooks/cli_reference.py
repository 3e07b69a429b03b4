"""mkdocs hook: the command-line reference, generated from ``asterisk_ami.cli.build_parser()`` at build time.

``reference/cli.md`` holds the prose and the marker ``<!-- cli-reference -->``; the marker becomes one
section per subcommand (nested subcommands too), with its usage line and a table of its arguments, so a
subcommand or option added to the parser is documented by the next build, and none can be left stale.
"""

from __future__ import annotations

import argparse
import os
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

MARKER = "<!-- cli-reference -->"
PAGE = "reference/cli.md"


@contextmanager
def _clean_environment() -> Iterator[None]:
    """The parser's defaults come from AMI_HOST and friends: document the defaults, not this machine's."""
    saved = {k: v for k, v in os.environ.items() if k.startswith("AMI_")}
    for key in saved:
        del os.environ[key]
    try:
        yield
    finally:
        os.environ.update(saved)


def _subcommands(parser: argparse.ArgumentParser) -> list[tuple[str, str, argparse.ArgumentParser]]:
    """(name, help, parser) of each subcommand, in the order they were added.

    argparse has no public accessor for its subparsers: ``_SubParsersAction`` and ``_choices_actions`` are
    what every argparse documenter (sphinx-argparse, mkdocs-click's argparse cousin) reads.
    """
    out = []
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            helps = {choice.dest: choice.help or "" for choice in action._choices_actions}
            for name, sub in action.choices.items():
                out.append((name, helps.get(name, ""), sub))
    return out


def _cell(text: object) -> str:
    return str(text).replace("|", "\\|").replace("\n", " ")


def _argument_row(action: argparse.Action) -> str:
    if action.option_strings:
        flags = ", ".join(f"`{flag}`" for flag in action.option_strings)
        if action.nargs != 0:
            flags += f" `{action.metavar or action.dest.upper()}`"
    else:
        flags = f"`{action.metavar or action.dest}`"
        if action.nargs in ("*", "+"):
            flags += " ..."
    default = action.default
    shown = (
        ""
        # by identity: 0 is a default worth showing, though 0 == False
        if default is None or default is False or default == [] or default == argparse.SUPPRESS
        or isinstance(action, argparse._VersionAction)
        else f"`{default}`"
    )
    if action.choices and not isinstance(action, argparse._SubParsersAction):
        shown = (shown + " " if shown else "") + "one of " + ", ".join(f"`{c}`" for c in action.choices)
    if isinstance(action, argparse._AppendAction):
        shown = (shown + " " if shown else "") + "repeatable"
    help_text = (action.help or "") % {"prog": "asterisk-ami", "default": default} if action.help else ""
    return f"| {_cell(flags)} | {_cell(help_text)} | {_cell(shown)} |"


def _arguments_table(parser: argparse.ArgumentParser) -> list[str]:
    lines: list[str] = []
    for group in parser._action_groups:
        actions = [
            a
            for a in group._group_actions
            if not isinstance(a, argparse._HelpAction | argparse._SubParsersAction) and a.help != argparse.SUPPRESS
        ]
        if not actions:
            continue
        title = group.title or "arguments"
        lines += ["", f"*{title}*", "", "| argument | meaning | default |", "|---|---|---|"]
        lines += [_argument_row(a) for a in actions]
    return lines


def _sections(parser: argparse.ArgumentParser, prog: str, level: int) -> list[str]:
    lines: list[str] = []
    for name, help_text, sub in _subcommands(parser):
        full = f"{prog} {name}"
        lines += ["", f"{'#' * level} `{full}`", ""]
        if help_text:
            lines += [help_text[0].upper() + help_text[1:] + ".", ""]
        usage = sub.format_usage().removeprefix("usage: ").strip()
        lines += ["```text", usage, "```"]
        lines += _arguments_table(sub)
        lines += _sections(sub, full, level + 1)
    return lines


def render(parser: argparse.ArgumentParser, prog: str = "asterisk-ami") -> str:
    """The reference of ``parser``: its own usage and options, then a section per subcommand."""
    lines = ["```text", parser.format_usage().removeprefix("usage: ").strip(), "```"]
    lines += _arguments_table(parser)
    lines += _sections(parser, prog, 2)
    return "\n".join(lines) + "\n"


def cli_markdown() -> str:
    """The generated reference of the ``asterisk-ami`` command, as this build's code defines it."""
    from asterisk_ami.cli import build_parser

    with _clean_environment():
        parser = build_parser()
    # usage lines wrap at $COLUMNS; the same width on every machine
    parser.formatter_class = _fixed_width(parser.formatter_class)
    for _name, _help, sub in _walk(parser):
        sub.formatter_class = _fixed_width(sub.formatter_class)
    return render(parser)


def _walk(parser: argparse.ArgumentParser) -> Iterator[tuple[str, str, argparse.ArgumentParser]]:
    for item in _subcommands(parser):
        yield item
        yield from _walk(item[2])


def _fixed_width(formatter: Any) -> Any:
    def make(prog: str) -> argparse.HelpFormatter:
        return formatter(prog, width=100)  # type: ignore[no-any-return]

    return make


def on_page_markdown(markdown: str, page: Any, config: Any, files: Any) -> str:
    if page.file.src_uri != PAGE:
        return markdown
    if MARKER not in markdown:
        raise ValueError(f"{PAGE} lost its {MARKER} marker: the generated CLI reference has nowhere to go")
    return markdown.replace(MARKER, cli_markdown())
