"""The MLOps view in a real browser: headless Chromium (Debian's, no download) driven by Playwright,
against the running stack of tests/e2e/conftest.py after the HITL runs, a drift_monitoring run and
a rag_ingestion run. Logs in through Airflow's own login form, checks the page against the
warehouse, opens a drift report, and saves screenshots under reports/ui/ (the README shows them).
"""

from __future__ import annotations

import time
from pathlib import Path

import httpx
import pytest

from tests.conftest import wait_for
from tests.e2e.conftest import DAYS, EXTRA_DAYS, populate

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(420)]

ROOT = Path(__file__).resolve().parents[2]
SHOTS = ROOT / "reports" / "ui"
CHROMIUM = "/usr/bin/chromium"
FLAGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]


def fetch(sql: str, *params):
    from include.warehouse import db

    return db.fetch_all(sql, params)


@pytest.fixture(scope="module")
def populated(hitl_stack):
    """The stack with a champion, drift windows and the RAG index; training paused (stable champion)."""
    stack, info = hitl_stack
    if not fetch("select 1 from ml.model_registry where status = 'champion'"):  # this file run alone
        run = stack.trigger("training", conf={"hyperparameters": [{"name": "ridge", "family": "ridge", "params": {}}]})
        stack.wait_quiet(["training"], settle_s=1, timeout=240)
        assert stack.api("GET", f"/dags/training/dagRuns/{run['dag_run_id']}")["state"] == "success"
    stack.set_paused("training", True)
    populate(info["start"], DAYS, DAYS + EXTRA_DAYS)  # new days after the champion's window, drifting
    for dag_id in ("drift_monitoring", "rag_ingestion"):
        stack.set_paused(dag_id, False)
        stack.trigger(dag_id)
    runs = stack.wait_quiet(["drift_monitoring", "rag_ingestion", "training"], settle_s=3, timeout=300)
    assert all(r["state"] == "success" for r in runs if r["dag_id"] != "training"), runs
    return stack, info


def test_the_view_refuses_requests_without_login(populated):
    stack, _ = populated
    for path in ("/mlops/", "/mlops/api/summary", "/mlops/drift-report/anything"):
        r = httpx.get(stack.base_url + path)
        assert r.status_code == 401, (path, r.status_code, r.text[:200])
        r = httpx.get(stack.base_url + path, headers={"Authorization": "Bearer not-a-token"})
        assert r.status_code in (401, 403), (path, r.status_code)
    # the navigation entry is registered with the UI
    plugins = stack.api("GET", "/plugins")["plugins"]
    (view,) = [p for p in plugins if p["name"] == "mlops_view"]
    assert view["external_views"][0]["href"] == "/mlops/" and view["fastapi_apps"]


def test_the_view_in_a_browser(populated):
    from playwright.sync_api import sync_playwright

    stack, _ = populated
    user, password = stack.credentials()
    SHOTS.mkdir(parents=True, exist_ok=True)
    (champion,) = fetch("select version from ml.model_registry where status = 'champion'")[0]
    days = fetch(
        "select (interval_start at time zone 'UTC')::date, rows_loaded, quality_report->>'status'"
        " from warehouse.load_ledger order by 1"
    )
    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=CHROMIUM, args=FLAGS, headless=True)
        try:
            context = browser.new_context(viewport={"width": 1400, "height": 900})
            page = context.new_page()
            assert page.goto(stack.base_url + "/mlops/").status == 401  # no cookie yet

            page.goto(stack.base_url + "/auth/login/?next=" + stack.base_url + "/mlops/")
            page.fill("input[name=username]", user)
            page.fill("input[name=password]", password)
            page.click("button[type=submit]")
            wait_for(lambda: any(c["name"] == "_token" for c in context.cookies()), 30, "the login cookie")

            t0 = time.perf_counter()
            response = page.goto(stack.base_url + "/mlops/", wait_until="load")
            load_ms = (time.perf_counter() - t0) * 1000
            assert response.status == 200
            timing = page.evaluate(
                "() => { const n = performance.getEntriesByType('navigation')[0];"
                " return {ttfb: n.responseStart - n.requestStart, load: n.loadEventEnd - n.startTime}; }"
            )
            print(f"view load: {load_ms:.0f} ms (browser: {timing}, server: {response.headers.get('server-timing')})")
            assert load_ms < 1000 and timing["load"] < 1000, (load_ms, timing)

            assert page.inner_text("#champion-version") == champion
            bars = page.locator("#quality rect.bar")
            assert bars.count() == len(days)
            shown = [(b.get_attribute("data-day"), int(b.get_attribute("data-rows"))) for b in bars.all()]
            assert shown == [(str(d), rows) for d, rows, _ in days]
            statuses = [b.get_attribute("data-status") for b in bars.all()]
            assert statuses == [s for *_, s in days] and "failed" in statuses
            assert page.locator("#quality circle.share").count() == len(days)
            cells = page.locator("#psi rect.cell")
            assert cells.count() > 0 and all(float(c.get_attribute("data-psi")) >= 0 for c in cells.all())
            assert page.locator("#error-ratio circle.point").count() > 0
            assert "chunks" in page.inner_text("#rag") and not page.inner_text("#rag").startswith("0 documents")
            page.screenshot(path=str(SHOTS / "mlops_view.png"), full_page=True)

            with context.expect_page() as popup:
                page.locator("#psi a.report-link").first.click()
            report = popup.value
            report.wait_for_load_state()
            assert "drift" in report.content().lower() and "/mlops/drift-report/" in report.url
            report.screenshot(path=str(SHOTS / "drift_report.png"))

            # the navigation entry: the view inside the Airflow UI
            page.goto(stack.base_url + "/plugin/mlops")
            frame = page.wait_for_selector("iframe", timeout=30_000)
            assert frame.get_attribute("src").endswith("/mlops/")
            page.frame_locator("iframe").locator("#champion-version").wait_for(timeout=30_000)
            page.screenshot(path=str(SHOTS / "airflow_nav.png"))
        finally:
            browser.close()
