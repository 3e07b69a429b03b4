"""The docs site's reference cannot drift from the code.

* every public name (each public module's ``__all__``) has a docstring and is rendered in the API
  reference (the built site's ``objects.inv``, which mkdocstrings writes from what it rendered);
* every module that exports names is in the reference or known to be internal;
* the CLI page is the parser's own, every subcommand and option included;
* the options and errors tables list every option and every error there is;
* the performance table and chart are drawn from the committed benchmark output;
* every section of README.md has a page in the site.
"""

from __future__ import annotations

import argparse
import dataclasses
import importlib
import inspect
import itertools
import pkgutil
import re
import sys
import zlib
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest

import asterisk_ami
from asterisk_ami import errors
from asterisk_ami.cli import build_parser
from asterisk_ami.options import AmiOptions

from .docs_helpers import DOCS, ROOT, require_docs_extra, site_dir

# modules whose __all__ is hygiene, not API: what they export is documented where users import it
INTERNAL_MODULES = {
    "asterisk_ami.client": "its AsteriskAmi is asterisk_ami.AsteriskAmi; redact() is the log filter's",
    "asterisk_ami.asyncio.client": "its AsteriskAmi is asterisk_ami.asyncio.AsteriskAmi",
    "asterisk_ami.session": "the sans-IO session under both shells; ClientState is documented with the results",
    "asterisk_ami.live.model": "its LiveModel is asterisk_ami.live.LiveModel",
    "asterisk_ami.cli": "the command line: its reference is generated from build_parser() (reference/cli.md)",
    "asterisk_ami.sync": "its AsteriskAmi and EventStream are asterisk_ami's",
    "asterisk_ami.sync.client": "its AsteriskAmi is asterisk_ami.AsteriskAmi",
    "asterisk_ami.session_events": "the lifecycle's events, documented where asterisk_ami exports them",
    "asterisk_ami.relay.remote": "its RemoteAmi is asterisk_ami.relay.RemoteAmi",
    "asterisk_ami.events": "one TypedDict per event, generated from the catalogue: the AMI reference has a page per event",
    "asterisk_ami.typed_handlers": "the typed overloads of on()/once(), generated from the catalogue",
    "asterisk_ami.checking": "what the clients check against the catalogue (the catalogue and strict_actions options)",
}

# Every section README.md has had (## headings; it was shrunk to one screen in issue 22), the page of the
# site that holds its content, and phrases of that content the page must hold: a section may leave README
# only once its home has it, and its home cannot lose it later
README_HOMES: dict[str, tuple[str, tuple[str, ...]]] = {
    "Install": ("index.md", ("asterisk-ami-client", "python-ami 0.1.7", "asterisk_ami.protocol.SPEEDUPS")),
    "Contents": ("index.md", ("[Tutorials](tutorials/index.md)", "[Reference](reference/index.md)")),
    "Quick start": ("tutorials/first-script.md", ('ami.request({"Action": "CoreShowChannels"})', "core show version")),
    "asyncio": (
        "reference/methods.md",
        ("await wait_for_complete()", "gather(create_task(...))", "events(*names, maxsize=max_queued_frames) -> EventStream"),
    ),
    "One contract, two shells": ("reference/contract.md", ("ami.connect_and_wait(timeout=None)", "ActionNotSentError")),
    "Options": ("reference/options.md", ("max_queued_frames", "write_timeout", "event_filters")),
    "Events": ("reference/events.md", ("register_event('Peer*')", "'[DN]ial*'", "ami_socket_unwritable")),
    "Methods": ("reference/methods.md", ("wait_closed(timeout=None) -> bool", "connect_and_wait(timeout=None)")),
    "Frames": ("reference/frames.md", ("Asterisk Call Manager Proxy/1.2", "Asterisk Call Manager/11.0.0")),
    "Actions with results": ("reference/action-results.md", ("EventList: Complete", "ConnectionLostError")),
    "Server-side event filters": (
        "how-to/filter-events-on-the-server.md",
        ("method(regex|exact|starts_with|ends_with|contains|none)", "action(include|exclude)"),
    ),
    "Live state": (
        "reference/live-state.md",
        ("max_channels=20_000", "`<unknown>`", "top > file", "remove_login_actions(provider)"),
    ),
    "Threads and back-pressure": ("explanation/back-pressure.md", ("asterisk_ami/lifecycle.py", "WriteBufferFullError")),
    "A warning before Asterisk drops you": (
        "explanation/back-pressure.md",
        ("tests/integration/test_slow_real.py", "the reader was blocked for 4000 ms ..."),
    ),
    "Performance": ("explanation/performance.md", ("benchmarks/run.py --install-comparisons", "pip install -e .")),
    "Reliability": ("explanation/reliability.md", ("test_stalled_server_is_detected_by_keepalive_and_reconnected",)),
    "Errors": ("reference/errors.md", ("asterisk_ami.AmiError", "what ended the last connection")),
    "Many PBXes: the relay": ("how-to/run-many-pbxes-through-the-relay.md", ("asterisk_ami.relay.testing.NatsServer",)),
    "Command-line tool": (
        "reference/cli.md",
        ("Subcommand(name, help, run, arguments, connects=True)", "127.0.0.1:5038 does not speak TLS ...", "$AMI_PASSWORD"),
    ),
    "Testing your code: FakeAsterisk": (
        "reference/testing.md",
        ("wait_for_event(name, timeout=5.0, **headers)", "EventRecorder(ami).wait_for_event(...)", "async_ami_client"),
    ),
    "A real Asterisk for tests": ("how-to/real-asterisk-for-tests.md", ("scripts/asterisk-sandbox start | stop | status | env", "`nocall`")),
    "Differences from the node original": ("explanation/differences-from-node.md", ("(success, frame)",)),
    "Layout": ("reference/layout.md", ("asterisk_ami/session_events.py", "asterisk_ami/relay/", "asterisk_ami/catalogue/")),
    "License": ("index.md", ("MIT, as the original.",)),
    # the sections the shrunk README added
    "Features": ("index.md", ("## What it does",)),
    "Catalogue": (
        "how-to/check-against-your-servers-catalogue.md",
        ('catalogue.load("22")', "check_action", "strict_actions=True", "asterisk-ami catalogue diff"),
    ),
    "Typed events": ("how-to/check-against-your-servers-catalogue.md", ("HangupEvent", "dict[str, Any]")),
}
README_MAX_LINES = 200


@pytest.fixture(scope="session")
def built_site(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return site_dir(tmp_path_factory)


def _hooks() -> Any:
    require_docs_extra()  # the hooks import mkdocs
    sys.path.insert(0, str(ROOT))
    try:
        return importlib.import_module("docs_hooks.api_pages"), importlib.import_module("docs_hooks.cli_reference")
    finally:
        sys.path.remove(str(ROOT))


def _nav() -> Any:
    yaml = pytest.importorskip("yaml")
    return yaml.safe_load((ROOT / "mkdocs.yml").read_text(encoding="utf-8"))["nav"]


def reference_modules() -> list[str]:
    api_pages, _ = _hooks()
    return list(api_pages.api_modules(_nav()))


def _modules_with_all() -> dict[str, ModuleType]:
    found = {}
    for info in pkgutil.walk_packages(asterisk_ami.__path__, "asterisk_ami."):
        if any(part.startswith("_") for part in info.name.split(".")):
            continue
        module = importlib.import_module(info.name)
        if hasattr(module, "__all__"):
            found[info.name] = module
    found["asterisk_ami"] = asterisk_ami
    return found


def _inventory(site: Path) -> set[str]:
    data = (site / "objects.inv").read_bytes()
    header = data.split(b"\n", 4)
    assert header[0] == b"# Sphinx inventory version 2", header[0]
    return {line.split(" ", 1)[0] for line in zlib.decompress(header[4]).decode().splitlines() if line}


def _griffe_package() -> Any:
    require_docs_extra()
    griffe = pytest.importorskip("griffe")
    return griffe.load("asterisk_ami", search_paths=[str(ROOT)], resolve_aliases=True)


def _public_names() -> list[tuple[str, str]]:
    return [
        (module, name) for module in reference_modules() for name in importlib.import_module(module).__all__
    ]


def test_every_module_that_exports_names_is_in_the_reference_or_internal() -> None:
    documented = set(reference_modules())
    for name in documented:
        importlib.import_module(name)  # a nav entry for a module that does not exist fails here
    missing = sorted(set(_modules_with_all()) - documented - set(INTERNAL_MODULES))
    assert not missing, (
        f"{missing} export names (__all__) but have no API page: add a line "
        "'- <module>: reference/api/<module>.md' under Reference > API in mkdocs.yml"
    )
    assert not documented & set(INTERNAL_MODULES)


def test_every_public_name_has_a_docstring() -> None:
    package = _griffe_package()
    undocumented = []
    for module, name in _public_names():
        obj = package[module.removeprefix("asterisk_ami.")] if module != "asterisk_ami" else package
        member = obj[name]
        target = member.final_target if member.is_alias else member
        if target.docstring is None or not target.docstring.value.strip():
            undocumented.append(f"{module}.{name}")
    assert not undocumented, f"public names without a docstring: {undocumented}"


def test_every_public_name_appears_in_the_reference(built_site: Path) -> None:
    rendered = _inventory(built_site)
    package = _griffe_package()
    absent = []
    for module, name in _public_names():
        obj = package[module.removeprefix("asterisk_ami.")] if module != "asterisk_ami" else package
        member = obj[name]
        paths = {f"{module}.{name}", member.final_target.path if member.is_alias else member.path}
        if not paths & rendered:
            absent.append(f"{module}.{name}")
    assert not absent, f"public names missing from the API reference: {absent}"


def test_the_api_hook_writes_a_page_for_each_nav_entry_without_a_file(built_site: Path) -> None:
    api_pages, _ = _hooks()
    nav = [{"Reference": [{"API": [{"x": "reference/api/asterisk_ami.live.md"}, "reference/api/a.b.md"]}]}, "index.md"]
    assert api_pages.api_modules(nav) == ["asterisk_ami.live", "a.b"]
    assert "::: asterisk_ami.live" in api_pages.api_page("asterisk_ami.live")
    for module in reference_modules():  # hand-written or generated, each page renders its module
        html = (built_site / "reference" / "api" / module / "index.html").read_text(encoding="utf-8")
        assert f'id="{module}' in html, module


def _subcommands(parser: argparse.ArgumentParser, prog: str) -> list[tuple[str, argparse.ArgumentParser]]:
    out = []
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for name, sub in action.choices.items():
                out += [(f"{prog} {name}", sub), *_subcommands(sub, f"{prog} {name}")]
    return out


def test_the_cli_page_is_generated_from_the_parser(built_site: Path) -> None:
    _, cli_reference = _hooks()
    markdown = cli_reference.cli_markdown()
    html = (built_site / "reference" / "cli" / "index.html").read_text(encoding="utf-8")
    assert cli_reference.MARKER not in (DOCS / "reference" / "cli.md").read_text().replace(cli_reference.MARKER, "", 1)
    commands = _subcommands(build_parser(), "asterisk-ami")
    assert len(commands) >= 5
    for command, sub in commands:
        assert f"## `{command}`" in markdown or f"### `{command}`" in markdown, command
        assert f"<code>{command}</code>" in html, f"{command} is not on the built CLI page"
        for action in sub._actions:
            if isinstance(action, argparse._HelpAction):  # -h/--help is on every page of argparse's
                continue
            for flag in action.option_strings:
                assert f"`{flag}`" in markdown, f"{command} {flag}"
            if not action.option_strings and not isinstance(action, argparse._SubParsersAction):
                assert f"`{action.metavar or action.dest}`" in markdown, f"{command} {action.dest}"


def test_the_cli_reference_picks_up_a_new_subcommand_and_option() -> None:
    _, cli_reference = _hooks()
    parser = build_parser()
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            relay = action.add_parser("later", help="a subcommand added later")
            nested = relay.add_subparsers(dest="relay_cmd").add_parser("serve", help="nested")
            nested.add_argument("--listen", default="127.0.0.1:4222", help="where to listen")
    markdown = cli_reference.render(parser)
    assert "## `asterisk-ami later`" in markdown and "A subcommand added later." in markdown
    assert "### `asterisk-ami later serve`" in markdown
    assert "| `--listen` `LISTEN` | where to listen | `127.0.0.1:4222` |" in markdown
    count = [line for line in markdown.splitlines() if line.startswith("| `--count` `COUNT` |")]
    assert count and all(line.endswith("| `0` |") for line in count), count  # a default of 0 is shown


def _first_column(page: Path) -> set[str]:
    names = set()
    for line in page.read_text(encoding="utf-8").splitlines():
        match = re.match(r"^\| `([A-Za-z_]+)` \|", line)
        if match:
            names.add(match.group(1))
    return names


def test_the_options_table_lists_every_option() -> None:
    options = {f.name for f in dataclasses.fields(AmiOptions)}
    assert _first_column(DOCS / "reference" / "options.md") == options


def test_the_errors_table_lists_every_error() -> None:
    classes = {
        name
        for name, obj in vars(errors).items()
        if inspect.isclass(obj) and issubclass(obj, errors.AmiError) and obj is not errors.AmiError
    }
    assert _first_column(DOCS / "reference" / "errors.md") == classes


def test_the_performance_page_is_drawn_from_the_benchmark_output(built_site: Path) -> None:
    import json

    results = json.loads((DOCS / "explanation" / "benchmark-results.json").read_text(encoding="utf-8"))
    html = (built_site / "explanation" / "performance" / "index.html").read_text(encoding="utf-8")
    svg = (built_site / "explanation" / "performance-chart.svg").read_text(encoding="utf-8")
    assert "benchmark-table" not in html and results["machine"]["commit"] in html
    plain = [row for row in results["rows"] if re.fullmatch(r"\d+(\.\d+)?x", row["ratio"])]
    assert len(plain) >= 5
    for row in results["rows"]:
        assert row["result"].replace("&", "&amp;") in html, row["scenario"]
    for row in plain:
        assert f">{float(row['ratio'][:-1]):.2f}x</text>" in svg, row["scenario"]
    assert svg.count("<rect ") == len(plain) + 1  # one bar each, and the background


def test_every_readme_section_has_a_home_in_the_site() -> None:
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    sections = re.findall(r"^## (.+)$", readme, flags=re.MULTILINE)
    unmapped = [s for s in sections if s not in README_HOMES]
    assert not unmapped, f"README sections with no page in the site (add them to README_HOMES): {unmapped}"
    lost = []
    for section, (page, phrases) in README_HOMES.items():
        text = (DOCS / page).read_text(encoding="utf-8")
        lost += [f"{section!r} -> {page}: {phrase!r}" for phrase in phrases if phrase not in text]
    assert not lost, f"pages that no longer hold what README's sections said: {lost}"


def test_the_readme_fits_one_screen_and_links_into_the_site() -> None:
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    assert len(readme.splitlines()) < README_MAX_LINES
    targets = re.findall(r"\]\((docs/[^)#]+)(?:#[^)]*)?\)", readme)
    assert len(targets) >= 10, targets
    missing = sorted({t for t in targets if not (ROOT / t).is_file() and not _generated_page(t)})
    assert not missing, f"README links to pages that do not exist: {missing}"


def _generated_page(target: str) -> bool:
    """docs/reference/ami/...: written at build time by docs_hooks/ami_reference.py."""
    return target.startswith("docs/reference/ami/")


def _ami_reference() -> Any:
    require_docs_extra()
    pytest.importorskip("asterisk_ami.catalogue")
    sys.path.insert(0, str(ROOT))
    try:
        return importlib.import_module("docs_hooks.ami_reference")
    finally:
        sys.path.remove(str(ROOT))


def test_the_readme_table_of_changes_is_what_the_diff_says() -> None:
    ami_reference = _ami_reference()
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    start, end = readme.index(ami_reference.README_START), readme.index(ami_reference.README_END)
    table = readme[start + len(ami_reference.README_START) : end].strip()
    assert table == ami_reference.changes_table(), (
        "README's table of changes between releases is stale: paste the output of "
        "`python -m docs_hooks.ami_reference --readme-table` between its markers"
    )
    from asterisk_ami import catalogue

    rows = table.splitlines()[2:]
    assert len(rows) == len(catalogue.RELEASES) - 1
    for row, (a, b) in zip(rows, itertools.pairwise(catalogue.RELEASES), strict=True):
        summary = catalogue.diff(catalogue.load(a), catalogue.load(b)).summary()
        expected = " | ".join(
            f"+{summary[f'{kind}_added']} / -{summary[f'{kind}_removed']}" for kind in ("actions", "events", "params", "fields")
        )
        assert row == f"| {a} → {b} | {expected} |"


def test_the_ami_reference_has_a_page_for_every_action_and_event_of_every_release(built_site: Path) -> None:
    from asterisk_ami import catalogue

    missing = []
    for release in catalogue.RELEASES:
        cat = catalogue.load(release)
        base = built_site / "reference" / "ami" / release
        assert (base / "index.html").is_file(), release
        missing += [f"{release} action {n}" for n in cat.actions if not (base / "actions" / n / "index.html").is_file()]
        missing += [f"{release} event {n}" for n in cat.events if not (base / "events" / n / "index.html").is_file()]
    assert not missing, missing[:20]
    html = (built_site / "reference" / "ami" / "22" / "events" / "DialBegin" / "index.html").read_text(encoding="utf-8")
    for field in catalogue.load("22").events["DialBegin"].fields.values():
        assert f"<code>{field.key}</code>" in html and f"<code>{field.name}</code>" in html, field
    html = (built_site / "reference" / "ami" / "22" / "actions" / "Originate" / "index.html").read_text(encoding="utf-8")
    assert re.search(r"<code>Channel</code></td>\s*<td><strong>yes</strong>", html), "Channel is not shown as required"
    changes = (built_site / "reference" / "ami" / "changes" / "index.html").read_text(encoding="utf-8")
    for a, b in itertools.pairwise(catalogue.RELEASES):
        assert f"{a} → {b}" in changes


def test_search_holds_each_ami_action_and_event_once(built_site: Path) -> None:
    import json

    from asterisk_ami import catalogue

    index = json.loads((built_site / "search" / "search_index.json").read_text(encoding="utf-8"))
    pages = [doc["location"] for doc in index["docs"] if "#" not in doc["location"]]
    ami = [p for p in pages if p.startswith("reference/ami/") and ("/actions/" in p or "/events/" in p)]
    names = [tuple(p.strip("/").split("/")[-2:]) for p in ami]
    assert len(names) == len(set(names)), "an AMI action or event is in the search index more than once"
    every = {("actions", n) for r in catalogue.RELEASES for n in catalogue.load(r).actions}
    every |= {("events", n) for r in catalogue.RELEASES for n in catalogue.load(r).events}
    assert set(names) == every
    assert f"reference/ami/{catalogue.RELEASES[-1]}/actions/Originate/" in pages
