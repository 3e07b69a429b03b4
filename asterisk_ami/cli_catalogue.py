"""``asterisk-ami catalogue``: what each Asterisk release documents for AMI (actions, their parameters,
events, their fields), a diff between two releases, a catalogue built from a server's own XML, and a check
of a live server's ``ListCommands`` against the catalogue.

The catalogue package is imported inside the commands only: the CLI's startup (every other subcommand)
must not pay for it. The package ships names and flags only; a synopsis is printed from an XML the user
has (``--xml``, or Asterisk's standard location), never from the package.
"""

from __future__ import annotations

import argparse
import json
import lzma
import os
import sys
import xml.etree.ElementTree as ET
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from .cli_connection import CliError, CliUsageError, add_connection_options, login, make_client
from .errors import CatalogueError

if TYPE_CHECKING:
    from .catalogue import Action, Catalogue, Event

#: where Asterisk installs its documentation XML (Debian and a default ``make install``)
STANDARD_XML = Path("/usr/share/asterisk/documentation/core-en_US.xml")
HELP = "what each Asterisk release documents for AMI: actions, events, their parameters and fields"
RELEASE_HELP = "a release (18, 20, 21, 22, 23), a catalogue JSON file or an Asterisk XML (default: the newest release)"


def catalogue_arguments(p: argparse.ArgumentParser) -> None:
    """``catalogue show|list|diff|build|check``; only ``check`` takes the connection options."""
    sub = p.add_subparsers(dest="catalogue_cmd", required=True, metavar="COMMAND", parser_class=type(p))
    what = "an action's parameters or an event's fields"
    show = sub.add_parser("show", help=what, description=what)
    show.add_argument("name", help="an action or event name, in any case (Originate, dialbegin)")
    show.add_argument("--version", metavar="RELEASE", help=RELEASE_HELP)
    show.add_argument(
        "--xml",
        metavar="PATH",
        help=f"print the synopsis from this Asterisk documentation XML (default: {STANDARD_XML} when it exists)",
    )
    show.set_defaults(catalogue_run=cmd_show)
    what = "every action or event name, one a line"
    listing = sub.add_parser("list", help=what, description=what)
    listing.add_argument("kind", choices=("actions", "events"), help="what to list")
    listing.add_argument("--version", metavar="RELEASE", help=RELEASE_HELP)
    listing.set_defaults(catalogue_run=cmd_list)
    diff = sub.add_parser(
        "diff",
        help="actions, events, parameters and fields added and removed between two releases",
        description="actions, events, parameters and fields added and removed from OLD to NEW",
    )
    diff.add_argument("old", help="a release (20), a catalogue JSON file or an Asterisk XML")
    diff.add_argument("new", help="likewise")
    diff.set_defaults(catalogue_run=cmd_diff)
    build = sub.add_parser(
        "build",
        help="a catalogue JSON from a server's own documentation XML",
        description="a catalogue JSON from a server's own documentation XML (for --version FILE)",
    )
    build.add_argument("path", help="core-en_US.xml, core-en_US.xml.xz or Asterisk's documentation/ directory")
    build.add_argument("-o", "--output", required=True, metavar="FILE", help="the JSON file to write")
    build.set_defaults(catalogue_run=cmd_build)
    check = sub.add_parser(
        "check",
        help="compare a live server's ListCommands with the catalogue",
        description="log in, send ListCommands and compare the server's actions with the catalogue of its release",
    )
    add_connection_options(check)
    check.add_argument(
        "--version", metavar="RELEASE", help="the catalogue to compare with (default: the one the banner names)"
    )
    check.add_argument("--strict", action="store_true", help="exit 1 when the server has actions the catalogue lacks")
    check.set_defaults(catalogue_run=cmd_check, connects=True)


def cmd_catalogue(args: argparse.Namespace) -> int:
    return int(args.catalogue_run(args))


# -- loading ------------------------------------------------------------------------------------------


def load(version: str | None) -> Catalogue:
    """The catalogue of a release, a JSON file (``catalogue build``) or an XML; the newest release when None."""
    from . import catalogue

    if version is not None and version.endswith(".json"):
        return load_json(Path(version))
    return catalogue.load(version or catalogue.RELEASES[-1])


def load_json(path: Path) -> Catalogue:
    """A catalogue from a file that ``catalogue build`` wrote (``catalogue.load`` reads those too)."""
    from . import catalogue

    try:
        return catalogue.load(path)
    except CatalogueError as exc:
        raise CliUsageError(str(exc)) from None


def _title(cat: Catalogue) -> str:
    return f"Asterisk {cat.release or cat.major or '(unknown release)'}"


def _find(cat: Catalogue, name: str) -> Action | Event:
    """The action or event ``name`` (any case); unknown: a usage error saying why, with a suggestion."""
    from . import catalogue

    found: Action | Event | None = cat.action(name) or cat.event(name)
    if found is not None:
        return found
    elsewhere = [r for r in catalogue.RELEASES if (c := catalogue.load(r)).action(name) or c.event(name)]
    if elsewhere:
        raise CliUsageError(f"{name!r} is not in the {_title(cat)} catalogue; it is in {', '.join(elsewhere)}")
    event, action = catalogue.event_hint(name), catalogue.action_hint(name)
    # a renamed or respelt event says more than a near name; a near name more than "unknown"
    hints = [h for h in (event, action) if h and "did you mean" in h]
    if event and not event.startswith("unknown"):
        hints.insert(0, event)
    first, last = catalogue.RELEASES[0], catalogue.RELEASES[-1]
    raise CliUsageError(hints[0] if hints else f"no release from {first} to {last} has an action or event {name!r}")


# -- show ---------------------------------------------------------------------------------------------


def cmd_show(args: argparse.Namespace) -> int:
    from .catalogue import Action

    cat = load(args.version)
    item = _find(cat, args.name)
    lines = describe_action(cat, item) if isinstance(item, Action) else describe_event(cat, item)
    xml = Path(args.xml) if args.xml else (STANDARD_XML if STANDARD_XML.is_file() else None)
    if xml is not None:
        kind = "action" if isinstance(item, Action) else "event"
        lines += ["", f"From your Asterisk documentation ({xml}):"]
        synopsis = read_synopsis(xml, kind, item.name)
        lines.append(f"  {synopsis}" if synopsis else f"  (no synopsis for the {kind} {item.name} in that file)")
    _print_lines(lines)
    return 0


def describe_action(cat: Catalogue, action: Action) -> list[str]:
    """The catalogue's data about ``action``, as lines of text (names and flags only, no prose)."""
    lines = [f"Action {action.name} (from the {_title(cat)} catalogue; modules: {', '.join(action.modules) or '-'})"]
    lines.append("Parameters (* = required):")
    width = max((len(p) for p in action.params), default=0)
    for param in action.params.values():
        mark = "*" if param.required else " "
        values = f"  one of: {', '.join(param.enum)}" if param.enum else ""
        lines.append(f"  {mark} {param.name:<{width}}{values}".rstrip())
    if not action.params:
        lines.append("  (none)")
    if action.families:
        lines.append("Numbered header families:")
        for family in action.families.values():
            mark = "*" if family.required else " "
            lines.append(f"  {mark} {family.name}  pattern {family.pattern}")
    lines.append(f"Response events: {', '.join(action.responses) or '(none listed)'}")
    lines.append(f"In releases: {', '.join(_releases(lambda c: c.action(action.name) is not None))}")
    return lines


def describe_event(cat: Catalogue, event: Event) -> list[str]:
    """The catalogue's data about ``event``, as lines of text."""
    lines = [f"Event {event.name} (from the {_title(cat)} catalogue; modules: {', '.join(event.modules) or '-'})"]
    if not event.documented:
        lines.append("  not in Asterisk's documentation: known from its C sources")
    if event.renamed_from:
        lines.append(f"  replaces (Asterisk 11 and earlier): {', '.join(event.renamed_from)}")
    lines.append(f"Privilege: {', '.join(event.privilege) or '(none listed)'}")
    lines.append("Fields:")
    width = max((len(f.name) for f in event.fields.values()), default=0)
    for field in event.fields.values():
        values = f"  one of: {', '.join(field.enum)}" if field.enum else ""
        lines.append(f"    {field.name:<{width}}{values}".rstrip())
    if not event.fields:
        lines.append("    (none)")
    if event.families:
        lines.append("Numbered header families:")
        for family in event.families.values():
            lines.append(f"    {family.name}  pattern {family.pattern}")
    lines.append(f"In releases: {', '.join(_releases(lambda c: c.event(event.name) is not None))}")
    return lines


def _releases(has: Any) -> list[str]:
    from . import catalogue

    return [release for release in catalogue.RELEASES if has(catalogue.load(release))] or ["(none)"]


def _open_xml(path: Path) -> Any:
    if path.is_dir():
        path = path / "core-en_US.xml"
    if path.suffix == ".xz":
        return lzma.open(path, "rb")
    return path.open("rb")


def read_synopsis(path: Path, kind: str, name: str) -> str | None:
    """The synopsis of an ``action`` or ``event`` in the user's own documentation XML (the text is
    Asterisk's, so it is read from their file and never shipped). Raises CliError when it cannot be read."""
    tag = "manager" if kind == "action" else "managerEvent"
    wanted = name.lower()
    try:
        with _open_xml(path) as handle:
            for _, element in ET.iterparse(handle):
                if element.tag != tag or element.get("name", "").lower() != wanted:
                    continue
                synopsis = element.find("synopsis")
                if synopsis is None:
                    synopsis = element.find("managerEventInstance/synopsis")
                if synopsis is not None:
                    text = " ".join("".join(synopsis.itertext()).split())
                    if text:
                        return text
    except (OSError, ET.ParseError, lzma.LZMAError) as exc:
        raise CliError(f"cannot read {path}: {exc}") from None
    return None


# -- list, diff, build ----------------------------------------------------------------------------------


def cmd_list(args: argparse.Namespace) -> int:
    cat = load(args.version)
    names = cat.actions if args.kind == "actions" else cat.events
    _print_lines(sorted(names, key=str.lower))
    return 0


def _print_lines(lines: Iterable[str]) -> None:
    try:
        sys.stdout.write("".join(f"{line}\n" for line in lines))
        sys.stdout.flush()
    except BrokenPipeError:  # `| head`: stop quietly, and let the interpreter's last flush find /dev/null
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        os.close(devnull)


def cmd_diff(args: argparse.Namespace) -> int:
    from . import catalogue

    old, new = load(args.old), load(args.new)
    lines = catalogue.diff(old, new).lines()
    # its first line names the two by release or file; this one says what was asked for too
    _print_lines([f"from {_title(old)} ({args.old}) to {_title(new)} ({args.new}):", *lines[1:]])
    return 0


def cmd_build(args: argparse.Namespace) -> int:
    from .catalogue import build

    source = Path(args.path)
    if not source.exists():
        raise CliUsageError(f"{source}: no such file or directory")
    data = build.build_data(source)
    output = Path(args.output)
    try:
        output.write_text(json.dumps(data, indent=1, sort_keys=True) + "\n", encoding="utf-8")
    except OSError as exc:
        raise CliError(f"cannot write {output}: {exc.strerror or exc}") from None
    cat = load_json(output)  # what --version FILE will read: it must load
    print(f"{output}: {len(cat.actions)} actions, {len(cat.events)} events ({_title(cat)})")
    return 0


# -- check --------------------------------------------------------------------------------------------


#: ListCommands' response headers that are not action names
_NOT_ACTIONS = frozenset({"response", "actionid", "message"})


def cmd_check(args: argparse.Namespace) -> int:
    from . import catalogue

    ami = make_client(args, events=False)
    try:
        login(ami, args.timeout)
        result = ami.request({"Action": "ListCommands"}, timeout=args.timeout)
        banner = ami.banner or ""
        ami.disconnect()
    finally:
        ami.destroy()
    cat = catalogue.load(args.version) if args.version else catalogue.for_banner(banner)
    # the client lower-cases header names, and ListCommands' headers are the action names
    server = sorted(key for key in result if key not in _NOT_ACTIONS)
    missing = [name for name in server if cat.action(name) is None]
    listed = {name.lower() for name in server}
    absent = sorted((a for a in cat.actions.values() if a.name.lower() not in listed), key=lambda a: a.name.lower())
    source = f"--version {args.version}" if args.version else f"banner {banner!r}"
    lines = [f"server: {len(server)} actions; {_title(cat)} catalogue ({source}): {len(cat.actions)} actions"]
    if missing:
        # the client lower-cases header names: these are ListCommands' names in lower case
        lines.append(f"{len(missing)} on the server but not in the catalogue:")
        lines += [f"  {name}" for name in missing]
    else:
        lines.append("every action of the server is in the catalogue")
    if absent:
        lines.append(f"{len(absent)} in the catalogue but not on the server (normal: their modules are not loaded):")
        lines += [f"  {module}: {', '.join(names)}" for module, names in _by_module(absent)]
    _print_lines(lines)
    return 1 if missing and args.strict else 0


def _by_module(actions: Sequence[Action]) -> list[tuple[str, list[str]]]:
    groups: dict[str, list[str]] = {}
    for action in actions:
        groups.setdefault(", ".join(action.modules) or "?", []).append(action.name)
    return sorted(groups.items())


# -- the other subcommands' use ------------------------------------------------------------------------


class ActionHelp(argparse._HelpAction):
    """``action NAME --help``: the generic help, then NAME's parameters from the newest release's
    catalogue; ``action --help`` (no NAME yet) is the generic help only."""

    def __call__(
        self, parser: argparse.ArgumentParser, namespace: argparse.Namespace, values: object, option: str | None = None
    ) -> None:
        name = getattr(namespace, "name", None)
        parser.print_help()
        if name:
            print()
            print("\n".join(action_help(name)))
        parser.exit()


def action_help(name: str) -> list[str]:
    from . import catalogue

    cat = load(None)
    action = cat.action(name)
    if action is None:
        return [catalogue.action_hint(name) or f"{name!r} is not in the {_title(cat)} catalogue"]
    return describe_action(cat, action)


def warn_unknown_events(names: Sequence[str]) -> None:
    """``events --event NAME``: a warning on stderr for each name no release knows (globs pass)."""
    from . import catalogue

    for name in names:
        hint = catalogue.event_hint(name)
        if hint:
            print(f"asterisk-ami: warning: {hint}", file=sys.stderr)
