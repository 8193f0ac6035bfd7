"""Every page of the built book, opened in a real browser (headless Chromium).

For each page this checks what a reader would see: math typeset by MathJax (no raw
``$$`` or ``\\(`` left, no MathJax errors), every image loaded, no traceback, error or
warning text in cell outputs except in cells tagged ``raises-exception`` (which must show
theirs), no raw MyST (directives, roles) left in the text, a sidebar that lists every
chapter, no uncaught JavaScript error and no resource that failed to load (the pages are
opened from disk, with no network). Notebook pages must offer Binder, Colab and download
buttons built from the repository URL of ``_config.yml``. The Sphinx search is run from
disk and over HTTP, and a full-page screenshot of every page (up to 24000 px high) is
saved under ``_build/screenshots/``.

Chromium is driven through the Chrome DevTools Protocol over a pipe
(``--remote-debugging-pipe``), with the standard library only. Without Chromium the
tests are skipped, except on CI (``CI=true``), where they fail.
"""

from __future__ import annotations

import base64
import fcntl
import functools
import http.server
import json
import os
import re
import select
import shutil
import subprocess
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

import pytest
import yaml

from conftest import ROOT, toc_files

pytestmark = pytest.mark.book

#: Flags for a headless, offline, throw-away browser (a fresh --user-data-dir is added).
CHROMIUM_FLAGS = (
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--hide-scrollbars",
    "--remote-debugging-pipe",
)
WINDOW_WIDTH = 1280
#: Screenshots stop at this height (pixels) so that the files stay moderate.
MAX_SCREENSHOT_HEIGHT = 24000
PAGE_TIMEOUT = 60.0
SEARCH_QUERY = "mixture"


def find_chromium() -> str | None:
    for name in ("chromium", "chromium-browser", "google-chrome"):
        path = shutil.which(name)
        if path:
            return path
    return None


def book_source() -> Path:
    """The book's source folder: the repository, or the source of ``GMM_BOOK_HTML``.

    ``GMM_BOOK_HTML`` (see ``conftest.built_book``) may point at ``<book>/_build/html``
    built from a copy of the repository; its own ``_toc.yml`` then says which pages exist.
    """
    prebuilt = os.environ.get("GMM_BOOK_HTML")
    if prebuilt and (Path(prebuilt).resolve().parents[1] / "_toc.yml").exists():
        return Path(prebuilt).resolve().parents[1]
    return ROOT


def toc_pages() -> list[str]:
    """The toc's documents in reading order, as paths of built pages (``chapters/x.html``)."""
    return [f"{Path(file).with_suffix('')}.html" for file in toc_files(book_source())]


#: Sphinx's own pages, built next to the toc's documents.
SPHINX_PAGES = ["genindex.html", "search.html"]
PAGES = toc_pages() + SPHINX_PAGES


class CDPError(RuntimeError):
    """Chromium answered a DevTools command with an error, or did not answer in time."""


class Chromium:
    """A headless Chromium, driven through the DevTools protocol over a pipe.

    Chromium reads commands (JSON, each ended by a NUL byte) on its file descriptor 3
    and writes answers and events on its descriptor 4.
    """

    def __init__(self, executable: str, profile_dir: Path, log_path: Path) -> None:
        to_chrome_read, self._to_chrome = os.pipe()
        self._from_chrome, from_chrome_write = os.pipe()

        def give_pipes_to_chromium() -> None:  # runs in the child, before exec
            # Copy both ends above 10 first, so that placing them on 3 and 4 cannot
            # overwrite one with the other; the copies close on exec.
            read = fcntl.fcntl(to_chrome_read, fcntl.F_DUPFD_CLOEXEC, 10)
            write = fcntl.fcntl(from_chrome_write, fcntl.F_DUPFD_CLOEXEC, 10)
            os.dup2(read, 3)
            os.dup2(write, 4)

        self._log = open(log_path, "wb")
        self.process = subprocess.Popen(
            [executable, *CHROMIUM_FLAGS, f"--user-data-dir={profile_dir}", "about:blank"],
            stdin=subprocess.DEVNULL,
            stdout=self._log,
            stderr=self._log,
            preexec_fn=give_pipes_to_chromium,
            close_fds=False,  # fds 3 and 4 must survive exec; Python's own fds close on exec anyway
        )
        os.close(to_chrome_read)
        os.close(from_chrome_write)
        self._buffer = b""
        self._next_id = 0
        self.events: list[dict[str, Any]] = []

    def close(self) -> None:
        try:
            self.send("Browser.close", timeout=10)
        except (CDPError, OSError):
            pass
        try:
            self.process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait(timeout=10)
        for fd in (self._to_chrome, self._from_chrome):
            os.close(fd)
        self._log.close()

    def _read_message(self, deadline: float) -> dict[str, Any]:
        while b"\0" not in self._buffer:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise CDPError("Chromium did not answer in time")
            ready, _, _ = select.select([self._from_chrome], [], [], remaining)
            if ready:
                chunk = os.read(self._from_chrome, 1 << 20)
                if not chunk:
                    raise CDPError(f"Chromium closed the pipe (exit code {self.process.poll()})")
                self._buffer += chunk
        message, self._buffer = self._buffer.split(b"\0", 1)
        return json.loads(message)

    def send(self, method: str, params: dict | None = None, session: str | None = None, timeout: float = 30):
        """Send one command and return its result; events that arrive meanwhile are kept."""
        self._next_id += 1
        command: dict[str, Any] = {"id": self._next_id, "method": method, "params": params or {}}
        if session:
            command["sessionId"] = session
        os.write(self._to_chrome, json.dumps(command).encode() + b"\0")
        deadline = time.monotonic() + timeout
        while True:
            message = self._read_message(deadline)
            if message.get("id") == self._next_id:
                if "error" in message:
                    raise CDPError(f"{method}: {message['error']}")
                return message.get("result", {})
            self.events.append(message)

    def wait_for_event(self, method: str, session: str, timeout: float = PAGE_TIMEOUT) -> dict[str, Any]:
        deadline = time.monotonic() + timeout
        while True:
            for index, event in enumerate(self.events):
                if event.get("method") == method and event.get("sessionId") == session:
                    return self.events.pop(index)
            self.events.append(self._read_message(deadline))

    def pop_events(self, method: str, session: str) -> list[dict[str, Any]]:
        found = [e for e in self.events if e.get("method") == method and e.get("sessionId") == session]
        self.events = [e for e in self.events if e not in found]
        return found


class Page:
    """One tab, with the domains the checks need enabled."""

    def __init__(self, browser: Chromium) -> None:
        self.browser = browser
        target = browser.send("Target.createTarget", {"url": "about:blank"})["targetId"]
        self.session = browser.send("Target.attachToTarget", {"targetId": target, "flatten": True})["sessionId"]
        for domain in ("Page", "Runtime", "Network", "Log"):
            self.send(f"{domain}.enable")
        self.request_urls: dict[str, str] = {}
        self.send(
            "Emulation.setDeviceMetricsOverride",
            {"width": WINDOW_WIDTH, "height": 900, "deviceScaleFactor": 1, "mobile": False},
        )

    def send(self, method: str, params: dict | None = None, timeout: float = 30) -> dict[str, Any]:
        return self.browser.send(method, params, session=self.session, timeout=timeout)

    def goto(self, url: str) -> None:
        for method in ("Page.loadEventFired", *BROWSER_PROBLEM_EVENTS):
            self.browser.pop_events(method, self.session)  # forget the previous page
        self.send("Page.navigate", {"url": url})
        self.browser.wait_for_event("Page.loadEventFired", self.session)

    def evaluate(self, expression: str, timeout: float = PAGE_TIMEOUT) -> Any:
        result = self.send(
            "Runtime.evaluate",
            {"expression": expression, "returnByValue": True, "awaitPromise": True},
            timeout=timeout,
        )
        if "exceptionDetails" in result:
            raise CDPError(f"JavaScript failed: {result['exceptionDetails']}")
        return result["result"].get("value")

    def problems_reported_by_the_browser(self) -> list[str]:
        """Uncaught JavaScript errors, failed loads and console errors since the last page."""
        for event in self.browser.pop_events("Network.requestWillBeSent", self.session):
            self.request_urls[event["params"]["requestId"]] = event["params"]["request"]["url"]
        problems = []
        for event in self.browser.pop_events("Runtime.exceptionThrown", self.session):
            details = event["params"]["exceptionDetails"]
            text = details.get("exception", {}).get("description") or details.get("text")
            problems.append(f"uncaught JavaScript error: {text}")
        for event in self.browser.pop_events("Network.loadingFailed", self.session):
            params = event["params"]
            if not params.get("canceled"):
                url = self.request_urls.get(params["requestId"], "?")
                problems.append(f"failed to load {url}: {params.get('errorText')}")
        for event in self.browser.pop_events("Log.entryAdded", self.session):
            entry = event["params"]["entry"]
            if entry.get("level") == "error" and not entry.get("url", "").endswith("/favicon.ico"):
                # (the browser asks every web server for a favicon by itself; the book has none)
                problems.append(f"browser error: {entry.get('text')} {entry.get('url', '')}".strip())
        return problems

    def screenshot(self, path: Path) -> None:
        height = int(self.evaluate("document.documentElement.scrollHeight"))
        height = max(600, min(height, MAX_SCREENSHOT_HEIGHT))
        self.send(
            "Emulation.setDeviceMetricsOverride",
            {"width": WINDOW_WIDTH, "height": height, "deviceScaleFactor": 1, "mobile": False},
        )
        data = self.send("Page.captureScreenshot", {"format": "png"}, timeout=120)["data"]
        path.write_bytes(base64.b64decode(data))
        self.send(
            "Emulation.setDeviceMetricsOverride",
            {"width": WINDOW_WIDTH, "height": 900, "deviceScaleFactor": 1, "mobile": False},
        )


#: Runs in the page once it has loaded: waits for MathJax and the images, then reports.
INSPECT_PAGE = r"""
(async () => {
  if (window.MathJax && MathJax.startup && MathJax.startup.promise) {
    await MathJax.startup.promise;
  }
  const images = Array.from(document.images);
  images.forEach((image) => { image.loading = "eager"; });
  await Promise.all(images.map((image) => image.complete ? image.decode().catch(() => null)
    : new Promise((done) => { image.addEventListener("load", done); image.addEventListener("error", done); })));

  const article = document.querySelector("article.bd-article") || document.querySelector("main") || document.body;
  // The text a reader sees, hidden dropdowns included, without code, typeset math and scripts.
  const skip = "pre, code, script, style, mjx-container, .cell_input";
  const walker = document.createTreeWalker(article, NodeFilter.SHOW_TEXT, {
    acceptNode: (node) => node.parentElement.closest(skip) ? NodeFilter.FILTER_REJECT : NodeFilter.FILTER_ACCEPT,
  });
  const prose = [];
  while (walker.nextNode()) { prose.push(walker.currentNode.nodeValue); }

  const cells = Array.from(article.querySelectorAll("div.cell")).map((cell) => {
    const output = cell.querySelector(".cell_output");
    return {
      tagged: cell.classList.contains("tag_raises-exception"),
      errorBlocks: cell.querySelectorAll(".cell_output .traceback, .cell_output .error, .cell_output .stderr").length,
      text: output ? output.innerText : "",
      source: (cell.querySelector(".cell_input") || {innerText: ""}).innerText.slice(0, 80),
    };
  });
  const sidebar = document.querySelector("nav.bd-docs-nav");
  return {
    url: location.href,
    title: document.title,
    mathElements: article.querySelectorAll(".math").length,
    mathUntypeset: Array.from(article.querySelectorAll(".math")).filter((m) => !m.querySelector("mjx-container"))
      .map((m) => m.textContent.slice(0, 60)),
    mathJaxOutput: article.querySelectorAll("mjx-container").length,
    // A TeX error, or an undefined macro (MathJax shows its name in red: an mtext with mathcolor red).
    mathJaxErrors: Array.from(article.querySelectorAll("mjx-merror, mjx-assistive-mml mtext[mathcolor='red']"))
      .map((e) => e.textContent.slice(0, 80)),
    brokenImages: images.filter((image) => !(image.naturalWidth > 0)).map((image) => image.src),
    numImages: images.length,
    prose: prose.join("\n"),
    cells: cells,
    sidebar: sidebar ? Array.from(sidebar.querySelectorAll("a")).map((a) => a.href.split("#")[0]) : null,
    links: Array.from(document.querySelectorAll("a[href]")).map((a) => a.href),
  };
})()
"""

BROWSER_PROBLEM_EVENTS = (
    "Network.requestWillBeSent",
    "Runtime.exceptionThrown",
    "Network.loadingFailed",
    "Log.entryAdded",
)
RAW_MATH = re.compile(r"\$\$|\\\(|\\\)|\\\[|\\\]|\\begin\{")
RAW_MYST = re.compile(r"```\{|:::\{|^:::|\{[a-z]+(?::[a-z-]+)*\}`|^:(?:class|label|filter|tags):", re.M)
ERROR_TEXT = re.compile(
    r"Traceback \(most recent call last\)|^\s*[\w.]*(?:Error|Exception|Warning)\b:|^\s*Warning\b", re.M
)


@pytest.fixture(scope="module")
def browser(built_book: Path):
    executable = find_chromium()
    if executable is None:
        message = "Chromium is not installed (Debian: apt-get install chromium)"
        if os.environ.get("CI") == "true":
            pytest.fail(message + "; CI must run the browser tests")
        pytest.skip(message)
    with tempfile.TemporaryDirectory(prefix="gmm-chromium-") as profile:
        chromium = Chromium(executable, Path(profile), built_book.parent / "chromium.log")
        try:
            yield chromium
        finally:
            chromium.close()


@pytest.fixture(scope="module")
def screenshots(built_book: Path) -> Path:
    folder = built_book.parent / "screenshots"
    shutil.rmtree(folder, ignore_errors=True)
    folder.mkdir(parents=True)
    return folder


@pytest.fixture(scope="module")
def reports(browser: Chromium, built_book: Path, screenshots: Path) -> dict[str, dict[str, Any]]:
    """Open every page once; inspect it, screenshot it, and keep what the browser reported."""
    page = Page(browser)
    found = {}
    for name in PAGES:
        path = built_book / name
        if not path.exists():
            continue  # test_every_page_was_built says so
        page.goto(path.as_uri())
        report = page.evaluate(INSPECT_PAGE)
        page.screenshot(screenshots / (name.replace("/", "__").removesuffix(".html") + ".png"))
        report["browser_problems"] = page.problems_reported_by_the_browser()
        found[name] = report
    return found


def test_every_page_was_built(built_book: Path):
    missing = [name for name in PAGES if not (built_book / name).exists()]
    assert not missing, f"pages in the toc but not built: {missing}"
    built = {
        str(path.relative_to(built_book))
        for path in built_book.rglob("*.html")
        if not path.relative_to(built_book).parts[0].startswith("_")
    }
    untested = built - set(PAGES) - {"index.html"}
    assert not untested, f"built pages this test does not open: {sorted(untested)}"


@pytest.mark.parametrize("name", PAGES)
def test_page_renders_cleanly(reports: dict[str, dict[str, Any]], built_book: Path, name: str):
    assert name in reports, f"{name} was not built"
    report = reports[name]
    problems = list(report["browser_problems"])

    # Math: MathJax typeset every formula, with no errors, and no raw TeX is left in the prose.
    if report["mathUntypeset"]:
        problems.append(f"math not typeset by MathJax: {report['mathUntypeset'][:3]}")
    if report["mathElements"] and not report["mathJaxOutput"]:
        problems.append("the page has math but no MathJax output")
    if report["mathJaxErrors"]:
        problems.append(f"MathJax errors: {report['mathJaxErrors'][:3]}")
    for match in RAW_MATH.finditer(report["prose"]):
        context = report["prose"][max(0, match.start() - 40) : match.end() + 40]
        problems.append(f"raw math delimiter {match.group()!r} in the text: ...{context}...")

    # Images: each one loaded.
    if report["brokenImages"]:
        problems.append(f"images that did not load: {report['brokenImages']}")

    # Raw MyST left in the text: an unknown directive or role, a directive option.
    for match in RAW_MYST.finditer(report["prose"]):
        context = report["prose"][max(0, match.start() - 40) : match.end() + 40]
        problems.append(f"raw MyST {match.group()!r} in the text: ...{context}...")

    # Cell outputs: no traceback, error or warning, except where the cell is tagged to raise;
    # and a cell tagged to raise must show its traceback (it is the point of the cell).
    for cell in report["cells"]:
        shows_error = cell["errorBlocks"] > 0 or bool(ERROR_TEXT.search(cell["text"]))
        if shows_error and not cell["tagged"]:
            problems.append(f"error or warning in the output of cell {cell['source']!r}: {cell['text'][:200]!r}")
        if cell["tagged"] and not cell["errorBlocks"]:
            problems.append(f"cell tagged raises-exception shows no traceback: {cell['source']!r}")

    # Sidebar: every chapter (every toc entry below the root page) is listed.
    if report["sidebar"] is None:
        problems.append("no sidebar navigation")
    else:
        missing = [toc for toc in toc_pages()[1:] if (built_book / toc).as_uri() not in report["sidebar"]]
        if missing:
            problems.append(f"the sidebar does not list {missing}")

    assert not problems, f"{name}:\n  " + "\n  ".join(problems)


NOTEBOOK_PAGES = [name for name in PAGES if (book_source() / name).with_suffix(".ipynb").exists()]


@pytest.mark.parametrize("name", NOTEBOOK_PAGES)
def test_notebook_pages_offer_binder_colab_and_download(reports: dict[str, dict[str, Any]], built_book: Path, name: str):
    """The launch buttons follow the one repository URL of _config.yml; the download works."""
    config = yaml.safe_load((book_source() / "_config.yml").read_text())["repository"]
    owner_repo = re.sub(r"^https://github\.com/|/$", "", config["url"])
    notebook = str(Path(config.get("path_to_book") or "", name).with_suffix(".ipynb"))
    expected = {
        "Binder": f"https://mybinder.org/v2/gh/{owner_repo}/{config['branch']}?urlpath=lab/tree/{notebook}",
        "Colab": f"https://colab.research.google.com/github/{owner_repo}/blob/{config['branch']}/{notebook}",
    }
    links = reports[name]["links"]
    for button, url in expected.items():
        assert url in links, f"{name}: no {button} button for {url}"
    download = (built_book / "_sources" / name).with_suffix(".ipynb")
    assert download.as_uri() in links, f"{name}: no download link to {download.name}"
    assert download.exists(), f"{name}: the downloadable notebook was not built"


def test_pages_with_math_were_typeset(reports: dict[str, dict[str, Any]]):
    # The book has math (the models' equations): make sure the checks above saw some.
    typeset = [name for name, report in reports.items() if report["mathJaxOutput"] > 0]
    assert typeset, "no page has MathJax output: is MathJax loaded at all?"


def test_index_redirects_to_the_first_page(browser: Chromium, built_book: Path):
    page = Page(browser)
    page.goto((built_book / "index.html").as_uri())
    url = ""
    deadline = time.monotonic() + PAGE_TIMEOUT
    while time.monotonic() < deadline:
        try:
            url = page.evaluate("location.href")
        except CDPError:  # the redirect is navigating right now
            url = ""
        if url.endswith(toc_pages()[0]):
            break
        time.sleep(0.2)
    assert url.endswith(toc_pages()[0]), url


@pytest.fixture(scope="module")
def served_book(built_book: Path):
    """The built book served over HTTP on localhost, as a published site is."""

    class QuietHandler(http.server.SimpleHTTPRequestHandler):
        def log_message(self, *args: Any) -> None:
            pass

    server = http.server.ThreadingHTTPServer(
        ("127.0.0.1", 0), functools.partial(QuietHandler, directory=str(built_book))
    )
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/"
    finally:
        server.shutdown()
        server.server_close()


@pytest.mark.parametrize("where", ["disk", "http"])
def test_search_finds_the_book_pages(browser: Chromium, built_book: Path, served_book: str, where: str):
    base = built_book.as_uri() + "/" if where == "disk" else served_book
    page = Page(browser)
    page.goto(f"{base}search.html?q={SEARCH_QUERY}")
    results: list[str] = []
    deadline = time.monotonic() + PAGE_TIMEOUT
    while time.monotonic() < deadline:
        results = page.evaluate(
            "Array.from(document.querySelectorAll('#search-results li a'))"
            ".map((a) => a.href.split('#')[0].split('?')[0])"
        )
        summary = page.evaluate("(document.querySelector('#search-results p.search-summary') || {}).textContent || ''")
        if results and summary:  # Sphinx writes the summary when the search has finished
            break
        time.sleep(0.2)
    assert results, f"searching for {SEARCH_QUERY!r} found nothing"
    chapters = [url for url in results if "/chapters/" in url]
    assert chapters, f"searching for {SEARCH_QUERY!r} found no chapter: {results}"
    problems = page.problems_reported_by_the_browser()
    if where == "disk":
        # From disk the results are listed, but the browser refuses the script's fetch of
        # each result page for its text snippet (file:// pages may not read other files).
        # Those refusals, and only those, are expected there.
        problems = [
            problem
            for problem in problems
            if "Failed to fetch" not in problem and not any(url in problem for url in results)
        ]
    assert not problems, "\n".join(problems)


def test_a_screenshot_of_every_page(reports: dict[str, dict[str, Any]], screenshots: Path):
    from PIL import Image

    shots = sorted(screenshots.glob("*.png"))
    assert len(shots) == len(reports) == len(PAGES)
    for shot in shots:
        with Image.open(shot) as image:
            width, height = image.size
            assert width == WINDOW_WIDTH and height >= 600, shot.name
            # A blank page has one or two grey levels; a page with text has many.
            assert len(image.convert("L").getcolors(maxcolors=256)) > 16, shot.name
