"""The console for daily work, in a real browser (Debian's Chromium, headless, Playwright) against the built relay
with real OCPP peers: identities that need escaping, chargers that left and their recorded connections, a mirror's
frames in their original's row, a failed login said on the form, and a chargers page that stays readable at 200
chargers. Screenshots as in test_console.py (UPDATE_SCREENSHOTS=1 refreshes the README's)."""

import asyncio
import json
import urllib.parse

from ocpp.v16 import call as call16
from peers import Backend, Charger16, Tap, open_charger
from playwright.async_api import async_playwright, expect
from test_console import CHROMIUM, PASSWORD, SCREENSHOTS, TOKEN, USER, console_config, http, logged_in_page, start_console_relay

ODD = "CP 7/ä"  # a space, a slash and a non-ASCII letter: the relay accepts it percent-encoded


async def connected(relay, identity):
    ws = await open_charger(relay.url, urllib.parse.quote(identity, safe=""), ["ocpp1.6"])
    cp = Charger16(identity, Tap(ws))
    cp._ensure()
    task = asyncio.create_task(cp.start())
    await cp.call(call16.BootNotification(charge_point_model="E2E", charge_point_vendor="console-tests"))
    return ws, cp, task


def test_a_charger_with_an_odd_identity_live_then_left_then_recorded(start_relay):
    """`CP 7/ä` is shown live, says when it disconnected, is listed among the recently seen with how it left, and its
    recorded connection is clearly not live: its start, end, frame count and relay, no Pause, stepped through and
    filtered like the live view."""

    async def scenario():
        async with Backend(subprotocols=["ocpp1.6"], ask_after_boot=False) as backend:
            relay = start_console_relay(start_relay, backend.url, console_config())
            base = relay.console_url
            encoded = urllib.parse.quote(ODD, safe="")
            async with async_playwright() as playwright:
                browser = await playwright.chromium.launch(executable_path=CHROMIUM, headless=True)
                page = await logged_in_page(browser, relay)
                ws, cp, task = await connected(relay, ODD)
                await page.goto(base + "/#/chargers")
                row = page.locator("#chargers tr", has_text=ODD)
                await expect(row).to_be_visible(timeout=5000)
                await row.locator("a").first.click()
                await expect(page.locator("h1")).to_have_text(ODD)
                await expect(page.locator("#presence")).to_contain_text("connected since", timeout=5000)
                await asyncio.sleep(0.5)  # the stream is open
                for _ in range(3):
                    await cp.call(call16.Heartbeat())
                await cp.call(call16.StatusNotification(connector_id=1, error_code="NoError", status="Available"))
                await expect(page.locator('.frame[data-action="Heartbeat"]')).to_have_count(6, timeout=3000)  # calls and answers
                history = json.loads(http(f"{base}/api/chargers/{encoded}/history", {"Authorization": f"Bearer {TOKEN}"})[1])
                await ws.close()
                task.cancel()
                await backend.closed(encoded)  # the backend sees the identity percent-encoded, as one segment
                # The page says the charger left, and since when.
                await expect(page.locator("#presence")).to_contain_text("disconnected since", timeout=6000)
                await expect(page.locator("#presence")).to_contain_text("closed by charger")
                # Gone from the connected list; among the recently seen, with how it left and its history.
                await page.goto(base + "/#/chargers")
                await expect(page.locator("#chargers tr", has_text=ODD)).to_have_count(0, timeout=5000)
                await page.select_option("#which", "all")
                left = page.locator("#chargers tr.left", has_text=ODD)
                await expect(left).to_be_visible(timeout=8000)
                await expect(left).to_contain_text("closed by charger (1000")
                await page.screenshot(path=str(SCREENSHOTS / "chargers-recent.png"))
                await left.locator("a", has_text="history").click()
                # The recorded connection: never looks live.
                await expect(page.locator("#status")).to_contain_text("recorded", timeout=5000)
                status = await page.locator("#status").inner_text()
                pause_hidden = await page.locator("#pause").is_hidden()
                chosen = await page.locator("#source option:checked").inner_text()
                await expect(page.locator('.frame[data-action="Heartbeat"]')).to_have_count(6, timeout=5000)
                # Stepped through…
                await page.click("#step-next")
                await page.click("#step-next")
                current = await page.locator(".frame.current").get_attribute("data-action")
                stepped = await page.locator("#status").inner_text()
                # …and filtered like the live view.
                await page.fill("#action-filter", "status")
                await expect(page.locator("tr.row.frame:visible")).to_have_count(2, timeout=2000)  # the call, its answer
                visible = await page.locator("tr.row.frame:visible .frame").first.get_attribute("data-action")
                await page.screenshot(path=str(SCREENSHOTS / "charger-recorded.png"))
                await browser.close()
            return history, status, pause_hidden, chosen, current, stepped, visible

    history, status, pause_hidden, chosen, current, stepped, visible = asyncio.run(scenario())
    assert any('"Heartbeat"' in e.get("text", "") for e in history), "the history of the decoded identity"
    assert pause_hidden
    for shown in (status, chosen):
        assert "recorded" in shown and "frames" in shown and "relay" in shown and " – " in shown, shown
    assert current == "BootNotification"  # the second frame: the boot's answer
    assert "frame 2 of" in stepped
    assert visible == "StatusNotification"


def test_a_mirrors_frames_sit_in_their_originals_row_and_a_failed_login_is_said(start_relay):
    """A shadow mirror doubles every call; its copies and answers sit, collapsed, in the row of the charger frame
    they copy, never in a row of their own. A wrong password brings the form back saying so."""
    identity = "CP-DAILY-MIRROR"

    async def scenario():
        async with Backend(subprotocols=("ocpp1.6",), ask_after_boot=False) as primary, Backend(
            subprotocols=("ocpp1.6",), ask_after_boot=False
        ) as shadow:
            config = console_config(f"mirrors:\n  - name: shadow\n    upstream: {shadow.url}\n    mode: shadow\n")
            relay = start_console_relay(start_relay, primary.url, config)
            async with async_playwright() as playwright:
                browser = await playwright.chromium.launch(executable_path=CHROMIUM, headless=True)
                login = await browser.new_page()
                await login.goto(relay.console_url + "/")
                await login.fill("input[name=user]", USER)
                await login.fill("input[name=password]", PASSWORD + "-wrong")
                await login.click("button[type=submit]")
                said = await login.locator("#login-error").inner_text()
                page = await logged_in_page(browser, relay)
                await page.goto(relay.console_url + f"/#/charger/{identity}")
                await page.wait_for_selector("#frames")
                await asyncio.sleep(0.5)
                ws, cp, task = await connected(relay, identity)
                for _ in range(4):
                    await cp.call(call16.Heartbeat())
                await expect(page.locator("#presence")).to_contain_text("connected since", timeout=3000)
                heartbeat_rows = page.locator("tr.row.frame", has=page.locator('.cell.charger .frame[data-action="Heartbeat"][data-leg="charger"]'))
                await expect(heartbeat_rows).to_have_count(4, timeout=3000)
                mirrored = page.locator('tr.row.frame details.mirror-frames[data-mirror="shadow"]')
                await expect(mirrored).to_have_count(5, timeout=3000)  # the boot and four heartbeats
                await expect(page.locator('details.mirror-frames[data-mirror="shadow"] .frame')).to_have_count(10, timeout=3000)
                # No row holds only a mirror's frame.
                alone = await page.locator("tr.row.frame").evaluate_all(
                    "rows => rows.filter(r => !r.querySelector('.frame:not(details .frame)')).length")
                # Each copy is in its original's row: the same message id.
                pairs = await page.locator("tr.row.frame").evaluate_all(
                    """rows => rows.filter(r => r.querySelector('details.mirror-frames')).map(r => [
                         r.querySelector('.cell.charger .frame').dataset.messageId,
                         [...r.querySelectorAll('details.mirror-frames .frame')].map(f => f.dataset.messageId)])""")
                closed = await mirrored.first.evaluate("d => d.open")
                await mirrored.first.locator("summary").click()
                await page.screenshot(path=str(SCREENSHOTS / "charger-mirrored.png"))
                await browser.close()
            await ws.close()
            task.cancel()
            return said, alone, pairs, closed

    said, alone, pairs, closed = asyncio.run(scenario())
    assert said == "Wrong user name or password."
    assert alone == 0
    assert len(pairs) == 5 and all(set(ids) == {original} for original, ids in pairs), pairs
    assert closed is False


def test_the_chargers_page_stays_readable_at_200_chargers(start_relay):
    """200 connected chargers behind a long route name and upstream: one line per charger, every column readable."""
    count = 200

    async def scenario():
        async with Backend(subprotocols=["ocpp1.6"], ask_after_boot=False) as backend:
            config = console_config(
                "routes:\n  - name: pilot-fleet-north-west-depot-migration\n    chargers: ['glob:CP-FLEET-*']\n"
                f"    upstream: {backend.url}\n")
            relay = start_console_relay(start_relay, backend.url, config)
            sockets = [await open_charger(relay.url, f"CP-FLEET-{n:04d}", ["ocpp1.6"]) for n in range(count)]
            async with async_playwright() as playwright:
                browser = await playwright.chromium.launch(executable_path=CHROMIUM, headless=True)
                page = await logged_in_page(browser, relay)
                await page.goto(relay.console_url + "/#/chargers")
                rows = page.locator("#chargers tbody tr")
                await expect(rows).to_have_count(count, timeout=10000)
                heights = await rows.evaluate_all("rows => rows.map(r => r.getBoundingClientRect().height)")
                route = await rows.first.locator("td").nth(2).get_attribute("title")
                await page.screenshot(path=str(SCREENSHOTS / "chargers.png"))
                await browser.close()
            for ws in sockets:
                await ws.close()
            return heights, route

    heights, route = asyncio.run(scenario())
    assert max(heights) < 1.3 * min(heights) and max(heights) < 40, (min(heights), max(heights))
    assert "pilot-fleet-north-west-depot-migration" in route, route  # the whole text on hover
