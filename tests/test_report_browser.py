"""The report in a real browser (Debian's chromium driven by Playwright).

Every page loads with no console error and no failed or external request, every image has
pixels, the index's scoreboard is claims.csv row for row, every link resolves to a file inside
the report, no page names a folder of the machine; and the checks catch a broken page.
The report checked is ``$LLC_REPORT_DIR`` (``make reporttest``: the smoke run's), else one built
here from a copy of the committed ``results/``. The index's screenshot goes next to the report
(``<results>/report_index.png``). Without chromium or playwright the tests skip, in CI
(``CI=true``) they fail.
"""
import base64
import json
import os
import shutil
from pathlib import Path
from urllib.parse import unquote, urlparse

import pandas as pd
import pytest

from llcpkg.report import build_report, launch_chromium

ROOT = Path(__file__).resolve().parents[1]
LINKED = "a[href], link[href], script[src], img[src], iframe[src], source[src], embed[src], object[data]"


def _missing(reason: str) -> None:
    if os.environ.get("CI", "").lower() == "true":
        pytest.fail(f"{reason}: required in CI")
    pytest.skip(reason)


@pytest.fixture(scope="module")
def browser():
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        _missing("playwright is not installed (pip install playwright)")
    if shutil.which("chromium") is None:
        _missing("no chromium on PATH (Debian: apt-get install chromium)")
    with sync_playwright() as p:
        b = launch_chromium(p)
        yield b
        b.close()


@pytest.fixture(scope="module")
def report(tmp_path_factory) -> Path:
    """The report folder to check: $LLC_REPORT_DIR, else built from a copy of results/."""
    if os.environ.get("LLC_REPORT_DIR"):
        return Path(os.environ["LLC_REPORT_DIR"]).resolve()
    if not (ROOT / "results" / "executed").is_dir():
        pytest.skip("no executed notebooks in results/ to build a report from")
    dst = tmp_path_factory.mktemp("results")
    for sub in ("executed", "tables", "figures"):
        if (ROOT / "results" / sub).is_dir():
            shutil.copytree(ROOT / "results" / sub, dst / sub)
    if (ROOT / "results" / "provenance.json").exists():
        shutil.copy2(ROOT / "results" / "provenance.json", dst)
    return build_report(dst).parent


# ---------------------------------------------------------------- the checks

class PageChecker:
    """One browser page that opens files of a report and lists what is wrong on each: console
    and page errors, failed requests, requests leaving the report, images with no pixels, and
    links or sources that are not a file in the report (see :func:`link_problems`)."""

    def __init__(self, browser, root: Path):
        self.root, self.problems = root.resolve(), []
        self.page = browser.new_page()
        self.page.route("**/*", self._route)
        self.page.on("console", lambda m: m.type == "error" and self.problems.append(f"console error: {m.text}"))
        self.page.on("pageerror", lambda e: self.problems.append(f"page error: {e}"))
        self.page.on("requestfailed", lambda r: self.problems.append(f"failed request: {r.url} ({r.failure})"))

    def _route(self, route):
        if route.request.url.startswith(("file:", "data:")):
            return route.continue_()
        self.problems.append(f"external request: {route.request.url}")
        return route.abort()

    def check(self, html: Path) -> list[str]:
        self.problems = problems = []
        self.page.goto(html.resolve().as_uri(), wait_until="load")
        found = self.page.evaluate(FOUND)
        problems += [f"image with no pixels: {src[:120]}" for src, width in found["images"] if not width]
        for url in found["urls"]:
            problems += link_problems(url, html, self.root, set(found["ids"]))
        return problems


FOUND = f"""() => ({{
  images: [...document.images].map(e => [e.currentSrc || e.src, e.naturalWidth]),
  urls: [...document.querySelectorAll("{LINKED}")].map(e => e.href || e.src || e.data),
  ids: [...document.querySelectorAll("[id]")].map(e => e.id)}})"""


def link_problems(url: str, page: Path, root: Path, ids: set[str]) -> list[str]:
    """Empty if ``url`` (resolved by the browser) is a data URI, a file inside ``root``, or an
    anchor on ``page`` that exists; else one line saying why not."""
    u = urlparse(url)
    if u.scheme == "data":
        return []
    if u.scheme != "file":
        return [f"link leaves the report: {url}"]
    target = Path(unquote(u.path)).resolve()
    if not target.is_relative_to(root.resolve()):
        return [f"link outside the report: {url}"]
    if not target.is_file():
        return [f"link to a missing file: {url}"]
    if u.fragment and target == page.resolve() and not {u.fragment, unquote(u.fragment)} & ids:
        return [f"link to a missing anchor: {url}"]
    return []


def _pages(report: Path) -> list[Path]:
    return sorted(report.rglob("*.html"))


# ---------------------------------------------------------------- the report

def test_every_page_loads_clean(browser, report):
    checker = PageChecker(browser, report)
    problems = {str(p.relative_to(report)): checker.check(p) for p in _pages(report)}
    assert len(problems) >= 2  # the index and at least one notebook
    assert {k: v for k, v in problems.items() if v} == {}


def test_scoreboard_is_claims_csv(browser, report):
    claims = pd.read_csv(report / "tables" / "claims.csv")
    page = browser.new_page()
    try:
        page.goto((report / "index.html").as_uri())
        verdicts = page.eval_on_selector_all("#scoreboard tbody tr td.verdict", "els => els.map(e => e.textContent.trim())")
        rows = page.eval_on_selector_all("#scoreboard tbody tr", "els => els.length")
        claim_cells = page.eval_on_selector_all("#scoreboard tbody tr td.claim", "els => els.map(e => e.textContent.trim())")
        screenshot = report.parent / "report_index.png"
        page.set_viewport_size({"width": 1280, "height": 1000})
        page.screenshot(path=str(screenshot))
    finally:
        page.close()
    assert rows == len(claims)
    assert verdicts == claims["verdict"].tolist()
    assert claim_cells == claims["claim"].tolist()
    assert screenshot.stat().st_size > 0


def test_one_notebook_page_per_executed_notebook(report):
    executed = sorted(p.stem for p in (report.parent / "executed").glob("[0-9][0-9]_*.ipynb"))
    assert executed and sorted(p.stem for p in (report / "notebooks").glob("*.html")) == executed


def test_no_machine_paths(report):
    """No page names the project root, the results folder, or the folder papermill wrote to."""
    prefixes = {str(ROOT), str(report.parent.resolve())}
    for nb in (report.parent / "executed").glob("*.ipynb"):
        out = json.loads(nb.read_text()).get("metadata", {}).get("papermill", {}).get("output_path") or ""
        if out.startswith("/"):
            prefixes.add(str(Path(out).parent.parent))
    for page in _pages(report):
        text = page.read_text(encoding="utf-8")
        assert [p for p in prefixes if p in text] == [], page.name


# ---------------------------------------------------------------- the checks can fail

def test_checks_catch_a_broken_page(browser, tmp_path):
    site = tmp_path / "site"
    site.mkdir()
    (tmp_path / "outside.html").write_text("<p>outside</p>")
    (site / "index.html").write_text(
        '<html><body><img src="missing.png"><a href="https://example.org/">external</a>'
        '<a href="gone.html">gone</a><a href="../outside.html">outside</a><a href="#nowhere">anchor</a>'
        '<script>console.error("boom")</script><script src="https://example.org/x.js"></script></body></html>')
    problems = "\n".join(PageChecker(browser, site).check(site / "index.html"))
    for expected in ("image with no pixels", "failed request", "external request: https://example.org/x.js",
                     "link leaves the report: https://example.org/", "missing file", "gone.html",
                     "link outside the report", "missing anchor", "console error: boom"):
        assert expected in problems, expected


def test_checks_pass_a_clean_page(browser, tmp_path):
    (tmp_path / "a.png").write_bytes(_png_1x1())
    (tmp_path / "index.html").write_text('<html><body id="top"><img src="a.png"><a href="#top">top</a></body></html>')
    assert PageChecker(browser, tmp_path).check(tmp_path / "index.html") == []


def _png_1x1() -> bytes:
    """A valid 1×1 PNG."""
    return base64.b64decode("iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mNkYPhfDwAChwGA60e6kgAAAABJRU5ErkJggg==")
