"""`taskc view` in a real headless Chromium (Debian's package, driven by Playwright): index ->
comparison -> filter "only wrong" -> one sample, the regression, per-kind and SQL views, an error
in the page, and text holding <script> or HTML shown as text. Screenshots go to the test's tmp folder."""

from __future__ import annotations

import os
import re
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from tests.view.workspace import SCRIPT_OUTPUT, SCRIPT_TEXT

CHROMIUM = Path("/usr/bin/chromium")
FLAGS = ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run", "--disable-background-networking",
         "--disable-component-update", "--disable-sync", "--disable-extensions", "--disable-default-apps"]


@pytest.fixture(scope="module")
def browser():
    sync_api = pytest.importorskip("playwright.sync_api")
    if not CHROMIUM.exists():
        if os.environ.get("CI"):
            pytest.fail("chromium is missing: scripts/setup.sh installs Debian's chromium package")
        pytest.skip("chromium is not installed (scripts/setup.sh installs it)")
    with sync_api.sync_playwright() as p:
        found = p.chromium.launch(executable_path=str(CHROMIUM), headless=True, args=FLAGS)
        yield found
        found.close()


@pytest.fixture(scope="module")
def served(made):
    """`taskc view` started as a user starts it (port 0: any free port); its base URL."""
    root, _ = made
    proc = subprocess.Popen([sys.executable, "-m", "taskc.cli", "view", str(root / "runs"), "--port", "0",
                             "--specs", str(root / "specs")], stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                            text=True, cwd=root)
    lines = []
    try:
        for line in proc.stdout:
            lines.append(line)
            m = re.match(r"serving (http://127\.0\.0\.1:\d+/) \(Ctrl-C to stop\)", line)
            if m:
                break
        else:
            raise AssertionError("taskc view did not start:\n" + "".join(lines))
        assert lines[0].startswith("taskc view: 9 runs in 4 groups under ")
        threading.Thread(target=lambda: lines.extend(proc.stdout), daemon=True).start()  # keep the pipe drained
        yield m.group(1)
    finally:
        proc.terminate()
        proc.wait(timeout=10)


def _until(page, expression: str, timeout_s: float = 15.0) -> None:
    """Poll a JS expression (the page's CSP forbids eval, so no wait_for_function)."""
    deadline = time.monotonic() + timeout_s
    while not page.evaluate(expression):
        if time.monotonic() > deadline:
            raise AssertionError(f"still false after {timeout_s}s: {expression}")
        time.sleep(0.05)


def _wait_idle(page) -> None:
    _until(page, "!document.body.dataset.loading")


def test_index_compare_wrong_sample(browser, served, tmp_path: Path):
    page = browser.new_page(viewport={"width": 1280, "height": 900})
    requests, errors = [], []
    page.on("request", lambda r: requests.append(r.url))
    page.on("pageerror", lambda e: errors.append(str(e)))
    page.goto(served)
    tickets = page.locator("section.group", has=page.locator("h2", has_text="tickets · contract"))
    tickets.locator("table").wait_for()
    assert page.locator("section.group").count() == 4
    rows = tickets.locator("tbody tr")
    assert rows.count() == 3
    replay = tickets.locator("tbody tr", has_text="replay:")
    assert "0.583 ± 0.000" in replay.inner_text() and "8.3%" in replay.inner_text()
    chart = tickets.locator("img.chart")
    chart.wait_for()
    _until(page, "[...document.querySelectorAll('img.chart')].every(i => i.complete && i.naturalWidth > 0)")
    page.screenshot(path=str(tmp_path / "1-index.png"), full_page=True)

    tickets.locator("button.compare").click()
    page.locator("#samples").wait_for()
    _wait_idle(page)
    assert page.locator("#page-info").inner_text() == "page 1 of 1 · 12 of 12 rows"
    script_row = page.locator("tr.row[data-key='3.0']")
    assert script_row.locator("td").nth(1).inner_text() == SCRIPT_TEXT
    assert page.locator("#samples b, #samples script, #samples img").count() == 0
    page.screenshot(path=str(tmp_path / "2-compare.png"), full_page=True)

    page.check("#filter-wrong")
    _until(page, "document.querySelector('#page-info').textContent.includes('6 of 12')")
    _wait_idle(page)
    keys = page.locator("tr.row").evaluate_all("rows => rows.map(r => r.dataset.key)")
    assert keys == ["2.0", "4.0", "5.0", "6.0", "8.0", "11.0"]
    assert page.locator("#filter-wrong").is_checked()
    row5 = page.locator("tr.row[data-key='5.0']")
    assert row5.locator(".out").nth(2).inner_text() == SCRIPT_OUTPUT
    assert row5.locator("td").nth(2).inner_text() == "card"
    page.screenshot(path=str(tmp_path / "3-only-wrong.png"), full_page=True)

    row5.click()
    page.locator(".run-card").first.wait_for()
    _wait_idle(page)
    assert page.locator("h1").inner_text() == "tickets · row 5"
    assert page.locator("#gold").inner_text() == "card"
    cards = page.locator(".run-card")
    assert cards.count() == 3
    assert cards.nth(2).locator("pre.raw").inner_text() == SCRIPT_OUTPUT
    assert "invalid" in cards.nth(2).inner_text()
    page.click("#show-messages")
    page.locator("#messages .msg").nth(1).wait_for()
    messages = page.locator("#messages .msg pre").all_inner_texts()
    assert messages[-1] == "Ticket: my card was swallowed by the machine"
    assert messages[0].startswith("You route support tickets.")
    page.screenshot(path=str(tmp_path / "4-sample.png"), full_page=True)

    assert page.evaluate("window.__pwned") is None
    assert errors == []
    assert requests and all(u.startswith(served) for u in requests), [u for u in requests if not u.startswith(served)]
    page.close()


def test_regression_kind_sql_and_error_views(browser, served, tmp_path: Path):
    page = browser.new_page(viewport={"width": 1280, "height": 900})
    page.goto(served)
    tickets = page.locator("section.group", has=page.locator("h2", has_text="tickets · contract"))
    tickets.locator("table").wait_for()
    checks = tickets.locator("input.run-check")
    checks.nth(0).uncheck()  # gold; leaves baseline and replay
    tickets.locator("button.regress").click()
    page.locator("#tab-regressed").wait_for()
    _wait_idle(page)
    if not page.locator("h1").inner_text().startswith("Regression: baseline"):  # older run first: replay
        assert page.locator("#tab-regressed").inner_text() == "right → wrong (1)"
        page.click("#swap")
        _until(page, "document.querySelector('h1').textContent.startsWith('Regression: baseline')")
        _wait_idle(page)
    assert page.locator("#tab-regressed").inner_text() == "right → wrong (5)"
    assert page.locator("#tab-fixed").inner_text() == "wrong → right (1)"
    keys = page.locator("tr.row").evaluate_all("rows => rows.map(r => r.dataset.key)")
    assert keys == ["2.0", "4.0", "5.0", "8.0", "11.0"]
    page.screenshot(path=str(tmp_path / "5-regression.png"), full_page=True)
    page.click("#tab-fixed")
    _until(page, "document.querySelectorAll('tr.row').length === 1")
    assert page.locator("tr.row").get_attribute("data-key") == "6.0"

    page.goto(served)
    tickets.locator("table").wait_for()
    tickets.locator("button.kind").click()
    page.locator("#confusion").first.wait_for()
    _wait_idle(page)
    last = page.locator("#confusion").nth(2)
    assert last.locator("thead").inner_text().split("\t")[:3] == ["gold \\ predicted", "billing", "card"]
    assert last.locator("tbody tr").nth(0).inner_text().split("\t") == ["billing", "3", "0", "0", "0", "0", "1", "0.75"]
    assert "null" not in page.locator("main").inner_text()
    page.screenshot(path=str(tmp_path / "6-confusion.png"), full_page=True)

    shop = page.locator("section.group", has=page.locator("h2", has_text="shop · contract"))
    page.goto(served)
    shop.locator("table").wait_for()
    shop.locator("button.compare").click()
    page.locator("tr.row[data-key='1.0']").click()
    page.locator(".sql-card").nth(2).wait_for()
    cards = page.locator(".sql-card")
    assert cards.nth(0).locator("h3").inner_text() == "gold query"
    assert cards.nth(0).locator("table").inner_text() == "book"
    assert cards.nth(2).locator("table").inner_text() == "pen"
    page.screenshot(path=str(tmp_path / "7-sql.png"), full_page=True)

    page.goto(served)
    tickets.locator("table").wait_for()
    tickets.locator("button.compare").click()
    page.locator("#samples").wait_for()
    page.fill("#search", "TWICE")
    page.press("#search", "Enter")
    _until(page, "document.querySelector('#page-info').textContent.includes('2 of 12')")
    keys = page.locator("tr.row").evaluate_all("rows => rows.map(r => r.dataset.key)")
    assert keys == ["3.0", "7.0"] and page.input_value("#search") == "TWICE"

    page.goto(served + "#/compare?group=nope")
    page.locator("#error").wait_for()
    assert page.locator("#error").inner_text() == "no task group 'nope' in this runs folder"
    page.screenshot(path=str(tmp_path / "8-error.png"), full_page=True)
    page.close()
    assert sorted(p.name for p in tmp_path.glob("*.png")) == [
        "5-regression.png", "6-confusion.png", "7-sql.png", "8-error.png"]
