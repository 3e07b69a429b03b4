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
}

# README.md's sections (## headings) and the page of the site that holds each one's content
README_HOMES = {
    "Install": "index.md",
    "Contents": "index.md",  # the site's navigation
    "Quick start": "tutorials/first-script.md",
    "asyncio": "tutorials/first-asyncio-service.md",
    "Options": "reference/options.md",
    "Events": "reference/events.md",
    "One contract, two shells": "reference/contract.md",
    "Methods": "reference/methods.md",
    "Frames": "reference/frames.md",
    "Actions with results": "reference/action-results.md",
    "Server-side event filters": "how-to/filter-events-on-the-server.md",
    "Live state": "reference/live-state.md",
    "Threads and back-pressure": "explanation/back-pressure.md",
    "A warning before Asterisk drops you": "explanation/back-pressure.md",
    "Performance": "explanation/performance.md",
    "Reliability": "explanation/reliability.md",
    "Errors": "reference/errors.md",
    "Many PBXes: the relay": "how-to/run-many-pbxes-through-the-relay.md",
    "Command-line tool": "reference/cli.md",
    "Testing your code: FakeAsterisk": "tutorials/first-test.md",
    "A real Asterisk for tests": "how-to/real-asterisk-for-tests.md",
    "Differences from the node original": "explanation/differences-from-node.md",
    "Layout": "reference/layout.md",
    "License": "index.md",
}


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
    for section in sections:
        assert (DOCS / README_HOMES[section]).is_file(), README_HOMES[section]
