"""The console in a real browser (Debian's headless Chromium driven by Playwright) against
``firewarden up`` and a real Mosquitto: sign in, a fire alarm appears on the board within
2 seconds, is acknowledged and resolved with an outcome, and the fleet counts match the API.
Screenshots go to test-artifacts/."""

from __future__ import annotations

import shutil
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.support.mosquitto import MosquittoServer
from tests.support.up import UpProcess

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
BROWSER_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                "--disable-background-networking", "--disable-component-update",
                "--disable-sync"]


@pytest.fixture
def console(tmp_path: Path, mosquitto: MosquittoServer) -> Iterator[UpProcess]:
    c = UpProcess(tmp_path, mosquitto)
    yield c
    c.close()


def test_an_operator_works_a_fire_alarm_in_the_browser(console: UpProcess,
                                                       artifacts_dir: Path) -> None:
    from playwright.sync_api import expect, sync_playwright

    assert Path(CHROMIUM).exists(), "Debian chromium is missing: scripts/test installs it"

    smoke = [d.id for d in console.sim.fleet.devices if d.kind == "smoke"]
    console.send("smoke", smoke[1], "telemetry", battery_pct=90, rsrp_dbm=-85)
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=BROWSER_ARGS)
        page = browser.new_page(viewport={"width": 1400, "height": 900}, locale="zh-CN")
        page.goto(console.url)
        page.get_by_test_id("key").fill("fwk_wrong")
        page.get_by_test_id("sign-in-button").click()
        expect(page.get_by_test_id("banner")).to_contain_text("密钥无效")
        page.get_by_test_id("key").fill(console.key)
        page.get_by_test_id("sign-in-button").click()
        expect(page.get_by_test_id("no-alerts")).to_be_visible()
        expect(page.get_by_test_id("stream-state")).to_have_attribute("data-state", "live")

        published = time.monotonic()
        console.send("smoke", smoke[0], "event", event="smoke_alarm", smoke_db_per_m=0.31)
        fire = page.locator('[data-testid="alert-card"][data-type="fire"]')
        expect(fire).to_be_visible(timeout=2000)
        assert time.monotonic() - published < 2.0
        expect(fire).to_have_class("card critical pinned")
        page.screenshot(path=str(artifacts_dir / "console-fire-alarm.png"), full_page=True)

        fire.get_by_test_id("acknowledge").click()
        expect(fire).to_have_attribute("data-status", "acknowledged")
        fire.get_by_test_id("resolve").click()
        page.get_by_test_id("resolve-confirm").click()  # no outcome: refused
        expect(page.locator("#resolve-error")).to_be_visible()
        page.get_by_test_id("resolve-outcome").select_option("false_alarm")
        page.get_by_test_id("resolve-note").fill("厨房油烟")
        page.get_by_test_id("resolve-confirm").click()
        expect(fire).to_have_count(0)
        expect(page.get_by_test_id("no-alerts")).to_be_visible()

        [stored] = console.get("/api/v1/alerts", type="fire")["data"]
        assert (stored["status"], stored["outcome"], stored["acknowledged_by"]) == (
            "resolved", "false_alarm", "console test")

        deadline = time.monotonic() + 20  # device status is written every 5 s
        while console.get("/api/v1/stats/fleet")["total"]["online"] < 2 \
                and time.monotonic() < deadline:
            time.sleep(0.5)
        page.locator('#tabs button[data-tab="fleet"]').click()
        totals = console.get("/api/v1/stats/fleet")["total"]
        row = page.locator('[data-testid="fleet-kind"] tr[data-key="all"]')
        for column in ("devices", "online", "offline", "never_seen", "maintenance"):
            expect(row.locator(f'td[data-col="{column}"]')).to_have_text(str(totals[column]))
        assert totals["online"] == 2 and totals["devices"] == 6  # the two that reported
        page.screenshot(path=str(artifacts_dir / "console-fleet.png"), full_page=True)

        # A device's view charts its telemetry; a duty check shows its answer coming in.
        now_ms = int(time.time() * 1000)
        for minutes, battery in ((30, 91.0), (20, 90.5), (10, 90.0)):
            console.send("smoke", smoke[2], "telemetry", ts=now_ms - minutes * 60_000,
                         battery_pct=battery, rsrp_dbm=-88)
        time.sleep(1)  # the telemetry writer flushes every 0.1 s
        page.locator('#tabs button[data-tab="device"]').click()
        page.get_by_test_id("device-id").fill(smoke[2])
        page.get_by_test_id("device-id").press("Enter")
        expect(page.locator('[data-testid="chart"][data-field="battery_pct"]')).to_be_visible()
        room = next(d.id for d in console.sim.fleet.devices if d.kind == "controlroom")
        page.locator('#tabs button[data-tab="duty"]').click()
        page.get_by_test_id("duty-value").fill(room)
        page.get_by_test_id("duty-start").click()
        expect(page.locator('[data-testid="duty-row"][data-status="pending"]')).to_be_visible()
        console.send("controlroom", room, "event", event="duty_check_ack",
                     check_id=console.get("/api/v1/duty-checks")["data"][0]["id"])
        expect(page.locator('[data-testid="duty-row"][data-status="answered"]')).to_be_visible(
            timeout=10_000)

        page.get_by_test_id("lang").click()
        expect(page.locator('#tabs button[data-tab="board"]')).to_have_text("Alerts")
        expect(page.get_by_test_id("duty-checks")).to_contain_text("Answered")
        expect(page.get_by_test_id("stream-state")).to_have_text("Live")
        page.screenshot(path=str(artifacts_dir / "console-duty-check-en.png"), full_page=True)
        browser.close()
