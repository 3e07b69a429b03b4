"""The built docs site looked at as a person would: a real headless Chromium (Debian's /usr/bin/chromium,
driven by Playwright, which never downloads a browser of its own) opens the site served on 127.0.0.1 and
checks the home page, the search, a reference page and the AMI reference of an event and an action,
taking a screenshot of each.

Every request the browser makes must go to the local server: the site works with no network (no web
fonts, no CDN). The screenshots go to ``ASTERISK_AMI_DOCS_SCREENSHOTS`` (default
``.cache/docs-screenshots``) and the test prints where. Without Chromium or Playwright the test is skipped
with the reason, except under ``CI=true``, where that is a failure.
"""

from __future__ import annotations

import functools
import os
import threading
from collections.abc import Iterator
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest

from .docs_helpers import ROOT, require_docs_extra, site_dir

CHROMIUM = Path("/usr/bin/chromium")
# without these Chromium phones home (updates, sync, field trials) and can stall with no network
FLAGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]


def _unavailable(reason: str) -> None:
    if os.environ.get("CI"):
        pytest.fail(f"{reason} (CI=true: the browser test must run; ./scripts/test installs it)")
    pytest.skip(reason)


class _QuietHandler(SimpleHTTPRequestHandler):
    def log_message(self, format: str, *args: Any) -> None:  # the test reports what matters itself
        pass


@pytest.fixture(scope="module")
def served_site(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    site = site_dir(tmp_path_factory)
    server = ThreadingHTTPServer(("127.0.0.1", 0), functools.partial(_QuietHandler, directory=str(site)))
    thread = threading.Thread(target=server.serve_forever, name="docs-site-server", daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_port}/"
    finally:
        server.shutdown()
        server.server_close()
        thread.join(10)


@pytest.fixture(scope="module")
def browser(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Any]:
    """A Playwright browser context on Debian's Chromium, with a fresh profile."""
    require_docs_extra()  # no site to look at without it (the version matrix installs only "test")
    if not CHROMIUM.is_file():
        _unavailable(f"no Chromium at {CHROMIUM} (apt-get install chromium)")
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        _unavailable("Playwright is not installed (pip install -e '.[dev]')")
    with sync_playwright() as playwright:
        context = playwright.chromium.launch_persistent_context(
            str(tmp_path_factory.mktemp("chromium-profile")),
            executable_path=str(CHROMIUM),
            headless=True,
            args=FLAGS,
            viewport={"width": 1280, "height": 900},
        )
        try:
            yield context
        finally:
            context.close()


@pytest.fixture(scope="module")
def screenshots() -> Path:
    directory = Path(os.environ.get("ASTERISK_AMI_DOCS_SCREENSHOTS", ROOT / ".cache" / "docs-screenshots"))
    directory.mkdir(parents=True, exist_ok=True)
    return directory


@pytest.fixture
def page(browser: Any, served_site: str) -> Iterator[Any]:
    """A new page that may only talk to the local server (anything else is aborted and reported)."""
    local = urlsplit(served_site).netloc
    elsewhere: list[str] = []

    def route(request_route: Any) -> None:
        url = request_route.request.url
        if urlsplit(url).netloc == local or url.startswith(("data:", "blob:")):
            request_route.continue_()
        else:
            elsewhere.append(url)
            request_route.abort()

    page = browser.new_page()
    page.route("**/*", route)
    errors: list[str] = []
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    try:
        yield page
    finally:
        page.close()
    assert not elsewhere, f"the site asked for something off this machine: {elsewhere}"
    assert not errors, f"JavaScript errors on the page: {errors}"


def _shot(page: Any, directory: Path, name: str, capsys: pytest.CaptureFixture[str]) -> None:
    path = directory / name
    page.screenshot(path=str(path))
    assert path.stat().st_size > 10_000, f"{path} looks empty"
    with capsys.disabled():
        print(f"\n[docs site] screenshot: {path}")


def test_home_page(page: Any, served_site: str, screenshots: Path, capsys: pytest.CaptureFixture[str]) -> None:
    page.goto(served_site)
    assert "asterisk-ami" in page.title()
    assert page.locator("article h1").first.inner_text().strip().rstrip("¶") == "asterisk-ami"  # ¶: its permalink
    nav = page.locator("nav.md-nav--primary").inner_text()
    for section in ("Tutorials", "How-to guides", "Reference", "Explanation"):
        assert section in nav, f"{section} missing from the navigation: {nav!r}"
    page.get_by_role("link", name="Tutorials", exact=True).first.wait_for(state="attached")
    assert page.locator(".tabbed-set").first.is_visible()  # the two clients' examples, in tabs
    _shot(page, screenshots, "home.png", capsys)


def test_search_finds_the_originate_how_to_and_the_action(
    page: Any, served_site: str, screenshots: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    page.goto(served_site)
    search = page.locator("input.md-search__input")  # in the header at this width
    search.click()
    search.press_sequentially("originate", delay=30)
    how_to = page.locator(".md-search-result__item", has_text="Originate a call and follow it").first
    how_to.wait_for(state="visible", timeout=15_000)
    # the AMI reference page of the action: once, on the newest release that has it
    action = page.locator('.md-search-result__item a[href*="reference/ami/"][href*="/actions/Originate/"]').first
    action.wait_for(state="visible", timeout=15_000)
    assert action.locator("h1").first.inner_text().strip() == "Originate"
    _shot(page, screenshots, "search-originate.png", capsys)
    how_to.locator("a").first.click()
    page.wait_for_url("**/how-to/originate-and-follow/**")
    assert "Originate a call and follow it" in page.locator("article h1").first.inner_text()


def test_a_reference_page(page: Any, served_site: str, screenshots: Path, capsys: pytest.CaptureFixture[str]) -> None:
    page.goto(served_site + "reference/api/asterisk_ami/")
    connect = page.locator('[id="asterisk_ami.AsteriskAmi.connect"]')
    connect.wait_for(state="attached")
    assert "AsteriskAmi" in page.locator('[id="asterisk_ami.AsteriskAmi"]').inner_text()
    assert page.locator('[id="asterisk_ami.AsteriskAmi.request"]').count() == 1
    _shot(page, screenshots, "reference-asterisk_ami.png", capsys)
    page.goto(served_site + "reference/cli/")
    generated = page.locator("h2", has_text="asterisk-ami events")
    assert generated.count() == 1
    generated.scroll_into_view_if_needed()
    _shot(page, screenshots, "reference-cli.png", capsys)


def test_the_diagram_and_the_chart_are_drawn(
    page: Any, served_site: str, screenshots: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    for path, name in (("explanation/architecture/", "architecture.png"), ("explanation/performance/", "performance.png")):
        page.goto(served_site + path)
        image = page.locator("article img").first
        image.scroll_into_view_if_needed()
        page.wait_for_function("img => img.complete", arg=image.element_handle())
        assert image.evaluate("img => img.naturalWidth") > 400, f"the image of {path} did not load"
        _shot(page, screenshots, name, capsys)


def test_the_ami_reference_of_dialbegin(
    page: Any, served_site: str, screenshots: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    page.goto(served_site + "reference/ami/")
    page.get_by_role("link", name="Asterisk 22", exact=True).click()
    page.wait_for_url("**/reference/ami/22/")
    page.locator("article a", has_text="DialBegin").first.click()
    page.wait_for_url("**/reference/ami/22/events/DialBegin/")
    assert page.locator("article h1").first.inner_text().strip().rstrip("¶") == "DialBegin"
    fields = page.locator("article table").last
    row = fields.locator("tr", has_text="destchannel").first
    assert row.is_visible(), "DialBegin's page does not show its destchannel field"
    assert "DestChannel" in row.inner_text()
    article = page.locator("article").inner_text()
    for release in ("18", "20", "21", "23"):  # the other releases it exists in, linked
        assert page.locator(f'article a[href*="/{release}/events/DialBegin/"]').count() == 1, release
    assert "Privilege: call" in article  # its privilege class
    _shot(page, screenshots, "ami-dialbegin.png", capsys)
    # the names stay whole (no "destconnectedlinenam" / "e" over two lines): one line box each
    broken = fields.evaluate(
        "t => [...t.querySelectorAll('td:nth-child(-n+2) code')]"
        ".filter(c => c.getClientRects().length > 1).map(c => c.textContent)"
    )
    assert not broken, f"names broken over lines: {broken}"
    row.scroll_into_view_if_needed()
    _shot(page, screenshots, "ami-dialbegin-destchannel.png", capsys)
    page.goto(served_site + "reference/ami/22/actions/Originate/")
    channel = page.locator("article tr", has_text="Channel").first
    assert "yes" in channel.inner_text()  # Channel is required
    _shot(page, screenshots, "ami-originate.png", capsys)
