"""mkdocs hook: the AMI reference, generated from ``asterisk_ami.catalogue`` at build time.

For each shipped release (``catalogue.RELEASES``) one page per action (``reference/ami/22/actions/
Originate.md``) and per event (``reference/ami/22/events/DialBegin.md``) with its parameters or fields,
required flags, values, numbered families, privilege, modules and the releases it exists in; an index
per release; and ``reference/ami/changes.md``, what ``catalogue.diff`` reports between adjacent releases.
``reference/ami/index.md`` is hand-written and its ``<!-- ami-releases -->`` marker becomes the table of
releases. Names and structure only: no prose of Asterisk's XML (GPL-2.0) reaches the site.

The pages are not in the nav (the index links them). Search holds each action and event once, on the
page of the newest release that has it, so "originate" finds one Originate page, not five.

``python -m docs_hooks.ami_reference --readme-table`` prints the table of README.md's Catalogue section.
"""

from __future__ import annotations

import sys
from collections.abc import Iterable, Mapping, Sequence
from functools import cache
from itertools import pairwise
from typing import Any

ROOT_DIR = "reference/ami/"
INDEX = ROOT_DIR + "index.md"
CHANGES = ROOT_DIR + "changes.md"
MARKER = "<!-- ami-releases -->"
HOWTO = "how-to/check-against-your-servers-catalogue.md"
HOWTO_MARKER = "<!-- catalogue-changes-table -->"
# md_in_html: docs/stylesheets/ami-reference.css keeps the names in these tables from breaking mid-word
TABLE_OPEN = '<div class="ami-table" markdown>'
TABLE_CLOSE = "</div>"
README_START = "<!-- catalogue-changes -->"
README_END = "<!-- /catalogue-changes -->"


def _catalogue() -> Any:
    from asterisk_ami import catalogue

    return catalogue


@cache
def releases() -> tuple[str, ...]:
    return tuple(_catalogue().RELEASES)


@cache
def load(release: str) -> Any:
    return _catalogue().load(release)


def action_path(release: str, name: str) -> str:
    return f"{ROOT_DIR}{release}/actions/{name}.md"


def event_path(release: str, name: str) -> str:
    return f"{ROOT_DIR}{release}/events/{name}.md"


def _where(kind: str, name: str) -> list[str]:
    """The releases whose catalogue has this action or event (by its exact name)."""
    return [r for r in releases() if name in (load(r).actions if kind == "actions" else load(r).events)]


def _code(text: str) -> str:
    # a name in a table cell: backticks, pipes escaped (none in Asterisk's names, but cheap to be sure)
    return "`" + text.replace("|", "\\|") + "`"


def _values(enum: Sequence[str] | None) -> str:
    return ", ".join(_code(v) for v in enum) if enum else ""


def _front_matter(searched: bool) -> str:
    return "" if searched else "---\nsearch:\n  exclude: true\n---\n\n"


def _releases_line(kind: str, name: str, release: str) -> str:
    """``in 18 · 20 · **22** · 23``: each release that has it, linked, this one in bold."""
    parts = []
    for other in releases():
        if other == release:
            parts.append(f"**{other}**")
        elif other in _where(kind, name):
            parts.append(f"[{other}](../../{other}/{kind}/{name}.md)")
    return " · ".join(parts)


def _heading(kind: str, name: str, release: str, modules: Iterable[str]) -> list[str]:
    cat = load(release)
    what = "Action" if kind == "actions" else "Event"
    where = _where(kind, name)
    lines = [
        _front_matter(searched=where[-1] == release),
        f"# {name}",
        "",
        f"{what} of the AMI in Asterisk {release} (catalogue of {cat.release or release}; "
        f"[all of {release}](../index.md), [AMI reference](../../index.md)).",
        "",
        f"- **Releases**: {_releases_line(kind, name, release)}",
    ]
    if modules:
        lines.append(f"- **Documented by**: {', '.join(_code(m) for m in modules)}")
    return lines


def _families_table(families: Mapping[str, Any], required_column: bool) -> list[str]:
    if not families:
        return []
    lines = ["", "Numbered headers (families):", ""]
    if required_column:
        lines += ["| family | header names | required |", "|---|---|---|"]
        for f in families.values():
            lines.append(f"| {_code(f.name)} | {_code(f.pattern)} | {'**yes**' if f.required else 'no'} |")
    else:
        lines += ["| family | header names |", "|---|---|"]
        lines += [f"| {_code(f.name)} | {_code(f.pattern)} |" for f in families.values()]
    return lines


def action_page(release: str, name: str) -> str:
    action = load(release).actions[name]
    lines = _heading("actions", name, release, action.modules)
    if action.responses:
        links = [
            f"[{r}](../events/{r}.md)" if r in load(release).events else _code(r) for r in action.responses
        ]
        lines.append(f"- **Answered with**: {', '.join(links)}")
    lines += ["", "## Parameters", ""]
    if action.params:
        lines += [TABLE_OPEN, "", "| parameter | required | values |", "|---|---|---|"]
        for param in sorted(action.params.values(), key=lambda p: (not p.required, p.name.lower())):
            required = "**yes**" if param.required else "no"
            lines.append(f"| {_code(param.name)} | {required} | {_values(param.enum)} |")
        lines += ["", TABLE_CLOSE]
    else:
        lines.append("None documented.")
    lines += _families_table(action.families, required_column=True)
    check = f'catalogue.load("{release}").check_action({{"Action": "{name}", ...}})'
    lines += ["", f"Check a message against it: `{check}`."]
    return "\n".join(lines) + "\n"


def event_page(release: str, name: str) -> str:
    event = load(release).events[name]
    lines = _heading("events", name, release, event.modules)
    if event.privilege:
        lines.append(f"- **Privilege**: {', '.join(_code(p) for p in event.privilege)}")
    if event.renamed_from:
        lines.append(f"- **Replaces**: {', '.join(_code(n) for n in event.renamed_from)} (Asterisk 11 and earlier)")
    if not event.documented:
        lines.append("- **Documented**: no; known from what servers send, not from Asterisk's XML")
    lines += [
        "",
        "## Fields",
        "",
        f'A handler gets them under their frame keys (`ami.on("{name}", handler)`): '
        f"lower case, without `-`.",
        "",
    ]
    if event.fields:
        lines += [TABLE_OPEN, "", "| frame key | header | values |", "|---|---|---|"]
        for key in sorted(event.fields):
            field = event.fields[key]
            lines.append(f"| {_code(field.key)} | {_code(field.name)} | {_values(field.enum)} |")
        lines += ["", TABLE_CLOSE]
    else:
        lines.append("None documented.")
    lines += _families_table(event.families, required_column=False)
    return "\n".join(lines) + "\n"


def release_index(release: str) -> str:
    cat = load(release)
    newest = release == releases()[-1]
    lines = [
        _front_matter(searched=newest),
        f"# AMI reference: Asterisk {release}",
        "",
        f"The catalogue of {cat.release or release}: {len(cat.actions)} actions, {len(cat.events)} events. "
        f"Other releases and what changed: [AMI reference](../index.md), [changes](../changes.md).",
        "",
        "## Actions",
        "",
        "| action | required parameters | parameters |",
        "|---|---|---|",
    ]
    for name in sorted(cat.actions, key=str.lower):
        action = cat.actions[name]
        required = ", ".join(_code(p.name) for p in action.params.values() if p.required)
        lines.append(f"| [{name}](actions/{name}.md) | {required} | {len(action.params)} |")
    lines += ["", "## Events", "", "| event | privilege | fields |", "|---|---|---|"]
    for name in sorted(cat.events, key=str.lower):
        event = cat.events[name]
        lines.append(f"| [{name}](events/{name}.md) | {', '.join(event.privilege)} | {len(event.fields)} |")
    return "\n".join(lines) + "\n"


# -- what changed between releases: catalogue.diff --------------------------------------------------------


def pairs() -> list[tuple[str, str]]:
    rel = releases()
    return list(pairwise(rel))


@cache
def diff(a: str, b: str) -> Any:
    return _catalogue().diff(load(a), load(b))


def counts(a: str, b: str) -> dict[str, tuple[int, int]]:
    """(added, removed) per kind, from the diff's own summary."""
    s = diff(a, b).summary()
    return {kind: (s[f"{kind}_added"], s[f"{kind}_removed"]) for kind in ("actions", "events", "params", "fields")}


def changes_table() -> str:
    """Per adjacent pair of releases: actions, events, parameters and fields added and removed."""
    lines = [
        "| from → to | actions + / - | events + / - | parameters + / - | fields + / - |",
        "|---|---|---|---|---|",
    ]
    for a, b in pairs():
        c = counts(a, b)
        cells = " | ".join(f"+{c[k][0]} / -{c[k][1]}" for k in ("actions", "events", "params", "fields"))
        lines.append(f"| {a} → {b} | {cells} |")
    return "\n".join(lines)


def _link_list(names: Iterable[str], release: str, kind: str) -> str:
    return ", ".join(f"[{n}]({release}/{kind}/{n}.md)" for n in sorted(names, key=str.lower)) or "none"


def _owned_list(grouped: Mapping[str, Sequence[str]], release: str, kind: str) -> str:
    if not grouped:
        return "none"
    return "; ".join(
        f"[{owner}]({release}/{kind}/{owner}.md): {', '.join(_code(n) for n in names)}"
        for owner, names in grouped.items()
    )


def changes_page() -> str:
    lines = [
        "# Changes between releases",
        "",
        "What `catalogue.diff` (and `asterisk-ami catalogue diff A B`) reports between each release and the "
        "next: actions and events added and removed, and the parameters and fields added to or removed from "
        "the actions and events both have. Names link to the page of the release that has them.",
        "",
        changes_table(),
    ]
    for a, b in pairs():
        d = diff(a, b)
        lines += [
            "",
            f"## {a} → {b}",
            "",
            f"- actions added: {_link_list(d.actions_added, b, 'actions')}",
            f"- actions removed: {_link_list(d.actions_removed, a, 'actions')}",
            f"- events added: {_link_list(d.events_added, b, 'events')}",
            f"- events removed: {_link_list(d.events_removed, a, 'events')}",
            f"- parameters added: {_owned_list(d.params_added, b, 'actions')}",
            f"- parameters removed: {_owned_list(d.params_removed, a, 'actions')}",
            f"- fields added: {_owned_list(d.fields_added, b, 'events')}",
            f"- fields removed: {_owned_list(d.fields_removed, a, 'events')}",
        ]
    return "\n".join(lines) + "\n"


def releases_table() -> str:
    lines = ["| release | catalogue of | actions | events |", "|---|---|---|---|"]
    for release in releases():
        cat = load(release)
        link = f"[Asterisk {release}]({release}/index.md)"
        lines.append(f"| {link} | {cat.release or ''} | {len(cat.actions)} | {len(cat.events)} |")
    return "\n".join(lines)


def pages() -> dict[str, str]:
    """Every generated page of the AMI reference: path -> markdown."""
    out: dict[str, str] = {CHANGES: changes_page()}
    for release in releases():
        cat = load(release)
        out[f"{ROOT_DIR}{release}/index.md"] = release_index(release)
        for name in cat.actions:
            out[action_path(release, name)] = action_page(release, name)
        for name in cat.events:
            out[event_path(release, name)] = event_page(release, name)
    return out


def on_files(files: Any, config: Any) -> Any:
    from mkdocs.structure.files import File, InclusionLevel

    for path, content in pages().items():
        # the changes page is in the nav; the others are reached from the indexes
        inclusion = InclusionLevel.UNDEFINED if path == CHANGES else InclusionLevel.NOT_IN_NAV
        files.append(File.generated(config, path, content=content, inclusion=inclusion))
    return files


def on_page_markdown(markdown: str, page: Any, config: Any, files: Any) -> str:
    for path, marker, render in ((INDEX, MARKER, releases_table), (HOWTO, HOWTO_MARKER, changes_table)):
        if page.file.src_uri == path:
            if marker not in markdown:
                raise ValueError(f"{path} lost its {marker} marker")
            return markdown.replace(marker, render())
    return markdown


def main(argv: Sequence[str] | None = None) -> int:
    args = list(sys.argv[1:] if argv is None else argv)
    if args != ["--readme-table"]:
        print("usage: python -m docs_hooks.ami_reference --readme-table", file=sys.stderr)
        return 2
    print(changes_table())
    return 0


if __name__ == "__main__":
    sys.exit(main())
