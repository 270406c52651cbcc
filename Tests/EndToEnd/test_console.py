"""The console in a real browser: Debian's Chromium, headless, driven by Playwright, against the built relay with real
OCPP peers (the pinned `ocpp` package) on loopback. Each page's screenshot is taken; with UPDATE_SCREENSHOTS=1 they
replace those in Tests/EndToEnd/screenshots/ that the README shows."""

import asyncio
import base64
import json
import os
import pathlib
import re
import socket
import tempfile
import time
import urllib.error
import urllib.request

from ocpp.v16 import call as call16
from ocpp.v201 import call as call201
from peers import Backend, Charger16, Tap, open_charger, session_16
from test_security import basic, password_hash
from test_translation import MAPPINGS

from playwright.async_api import async_playwright, expect

CHROMIUM = os.environ.get("CHROMIUM", "/usr/bin/chromium")
# The README's screenshots: refreshed with UPDATE_SCREENSHOTS=1 (otherwise taken into a temporary folder, so that a
# test run leaves the work tree as it was).
SCREENSHOTS = (
    pathlib.Path(__file__).parent / "screenshots"
    if os.environ.get("UPDATE_SCREENSHOTS")
    else pathlib.Path(tempfile.mkdtemp(prefix="console-screenshots-"))
)
USER, PASSWORD = "operator", "console-password-2026"
TOKEN = "console-token-0123456789abcdef"


def console_config(extra=""):
    return f"""
console:
  listen: "127.0.0.1:0"
  users:
    {USER}: "{password_hash(PASSWORD)}"
  token_env: CONSOLE_TEST_TOKEN
{extra}"""


def start_console_relay(start_relay, upstream, config, *args):
    relay = start_relay(upstream, *args, config=config, env={"CONSOLE_TEST_TOKEN": TOKEN})
    assert relay.console_url, relay.log()
    return relay


def http(url, headers=None, data=None):
    """(status, body text, headers) of a request, error statuses included."""
    request = urllib.request.Request(url, headers=headers or {}, data=data)
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            return response.status, response.read().decode(), dict(response.headers)
    except urllib.error.HTTPError as error:
        return error.code, error.read().decode(), dict(error.headers)


async def logged_in_page(browser, relay):
    """A browser page logged in through the console's own login form."""
    page = await browser.new_page(viewport={"width": 1400, "height": 900})
    response = await page.goto(relay.console_url + "/")
    assert response.status == 401, "the console's page needs a login"
    await page.fill("input[name=user]", USER)
    await page.fill("input[name=password]", PASSWORD)
    await page.click("button[type=submit]")
    await page.wait_for_selector("header nav")
    return page


async def connected_16_charger(relay, identity, headers=None):
    ws = await open_charger(relay.url, identity, ["ocpp1.6"], headers)
    cp = Charger16(identity, Tap(ws))
    cp._ensure()
    task = asyncio.create_task(cp.start())
    return ws, cp, task


def test_the_console_lists_chargers_and_shows_their_frames_and_translations_live(start_relay):
    """A 1.6 charger on a 2.0.1 backend: the chargers page lists it while it is connected, its page shows each frame
    within a second, the 2.0.1 translation beside the 1.6 original, calls paired with their answers."""

    async def scenario():
        async with Backend(subprotocols=["ocpp2.0.1"], ask_after_boot=False) as backend:
            relay = start_console_relay(start_relay, backend.url, console_config(), "--upstream-version", "2.0.1", "--mappings", MAPPINGS)
            async with async_playwright() as playwright:
                browser = await playwright.chromium.launch(executable_path=CHROMIUM, headless=True)
                page = await logged_in_page(browser, relay)
                await page.goto(relay.console_url + "/#/chargers")
                ws, cp, task = await connected_16_charger(relay, "CP-CONSOLE-1")
                row = page.locator('#chargers tr[data-charger="CP-CONSOLE-1"]')
                await expect(row).to_be_visible(timeout=5000)
                await expect(row).to_contain_text("1.6")
                await expect(row).to_contain_text("2.0.1")
                await page.screenshot(path=str(SCREENSHOTS / "chargers.png"))

                await row.locator("a").click()
                await page.wait_for_selector("#frames")
                await asyncio.sleep(0.5)  # the stream is open
                sent = time.monotonic()
                await cp.call(call16.BootNotification(charge_point_model="E2E", charge_point_vendor="console-tests"))
                boot_row = page.locator("#frame-rows tr", has=page.locator('.cell.charger .frame[data-action="BootNotification"]')).first
                await expect(boot_row).to_be_visible(timeout=1000)
                seen_after = time.monotonic() - sent
                # The translation sits beside its original: the 2.0.1 BootNotification in the upstream column.
                translated = boot_row.locator('.cell.upstream .frame.translated[data-action="BootNotification"]')
                await expect(translated).to_contain_text('"chargingStation"')
                await expect(boot_row.locator(".cell.charger")).to_contain_text('"chargePointVendor"')
                # The answer, paired with its call.
                answered = page.locator('.frame[data-action="BootNotification"]', has_text="answered in").first
                await expect(answered).to_be_visible(timeout=3000)
                results = await session_16(cp, wait_for_question=False)
                await expect(page.locator('.frame[data-action="StopTransaction"]').first).to_be_visible(timeout=3000)
                # Pause holds new frames back; filtering by action hides others.
                heartbeats = page.locator('.cell.charger .frame[data-action="Heartbeat"]')
                await asyncio.sleep(0.5)
                before = await heartbeats.count()
                await page.click("#pause")
                await cp.call(call16.Heartbeat())
                await asyncio.sleep(0.5)
                heartbeats_paused = await heartbeats.count() - before
                await page.click("#pause")
                await expect(heartbeats).to_have_count(before + 2, timeout=2000)  # the call and its answer
                await page.screenshot(path=str(SCREENSHOTS / "charger.png"), full_page=False)

                await ws.close()
                task.cancel()
                await page.goto(relay.console_url + "/#/chargers")
                await expect(page.locator('#chargers tr[data-charger="CP-CONSOLE-1"]')).to_have_count(0, timeout=5000)
                # The same view of the past connection, read from the recordings.
                await page.goto(relay.console_url + "/#/charger/CP-CONSOLE-1")
                await expect(page.locator("#source option").nth(1)).to_be_attached(timeout=5000)
                value = await page.locator("#source option").nth(1).get_attribute("value")
                await page.select_option("#source", value)
                await expect(page.locator('.cell.charger .frame[data-action="StartTransaction"]').first).to_be_visible(timeout=5000)
                await browser.close()
            return relay, seen_after, heartbeats_paused, results

    relay, seen_after, heartbeats_paused, results = asyncio.run(scenario())
    assert seen_after < 1.0, f"the frame showed after {seen_after:.2f} s"
    assert heartbeats_paused == 0
    assert results[-1] is not None


def test_the_mirrors_and_relay_pages_show_a_seeded_divergence_and_the_relay(start_relay):
    """A shadow mirror that blocks a token the upstream accepts: the mirrors page counts the divergence and shows its
    fields; the relay page shows the uptime, the configuration without secrets and the metrics over time."""
    identity = "CP-CONSOLE-MIRROR"
    blocked = "TAG-" + identity[-10:]

    async def scenario():
        async with Backend(subprotocols=("ocpp1.6",), ask_after_boot=False) as primary, Backend(
            subprotocols=("ocpp2.0.1",), ask_after_boot=False
        ) as shadow:
            shadow.blocked.add(blocked)
            config = console_config(
                f"mirrors:\n  - name: new-csms\n    upstream: {shadow.url}\n    upstream_version: '2.0.1'\n    mode: shadow\n"
                f"translation:\n  mappings: {MAPPINGS}\n"
            )
            relay = start_console_relay(start_relay, primary.url, config)
            ws, cp, task = await connected_16_charger(relay, identity)
            await session_16(cp)
            async with async_playwright() as playwright:
                browser = await playwright.chromium.launch(executable_path=CHROMIUM, headless=True)
                page = await logged_in_page(browser, relay)
                await page.goto(relay.console_url + "/#/chargers")
                mirror_state = page.locator(f'#chargers tr[data-charger="{identity}"] .dot.up')
                await expect(mirror_state).to_have_count(1, timeout=5000)
                await page.goto(relay.console_url + "/#/mirrors")
                authorize = page.locator('#mirror-rows tr[data-mirror="new-csms"][data-action="Authorize"]')
                await expect(authorize).to_be_visible(timeout=5000)
                diverged = await authorize.locator("td").nth(3).inner_text()
                divergence = page.locator(f'.divergence[data-action="Authorize"][data-charger="{identity}"]').first
                await divergence.locator("strong").click()
                await expect(divergence.locator(".details")).to_contain_text("Blocked")
                await page.screenshot(path=str(SCREENSHOTS / "mirrors.png"))
                # Through to the diverging message, in the charger's recorded connection.
                await divergence.locator("a.message-link").click()
                highlighted = page.locator('.cell.charger .frame.highlight[data-action="Authorize"]')
                await expect(highlighted.first).to_be_visible(timeout=5000)
                await page.goto(relay.console_url + "/#/relay")
                await expect(page.locator("#uptime")).to_contain_text("min")
                await expect(page.locator('#charts [data-metric="ocpp_relay_connected_chargers"] .value')).to_have_text("1", timeout=10000)
                await expect(page.locator('#charts [data-metric="ocpp_relay_mirror_messages_total"] .value')).not_to_have_text("0 · 0/s")
                configuration = await page.locator("#configuration").inner_text()
                await page.screenshot(path=str(SCREENSHOTS / "relay.png"), full_page=True)
                await browser.close()
            await ws.close()
            task.cancel()
            return diverged, configuration

    diverged, configuration = asyncio.run(scenario())
    assert diverged == "1"
    assert "mirrors[new-csms]" in configuration and "console.users" in configuration
    assert "pbkdf2" not in configuration and TOKEN not in configuration


def test_without_credentials_every_page_and_call_is_401_and_no_secret_shows(start_relay):
    """Pages, files and API need a login or the bearer token; wrong passwords and expired sessions are refused; the
    charger's password, its Authorization header, a rotated password and the console's own never appear."""
    charger_password = "charger-password-0001"
    rotated = "n3w-Secret-2026!"
    config = console_config(
        f"""  session_ttl: 3s
upstream_version: "2.0.1"
translation:
  mappings: {MAPPINGS}
auth:
  passwords:
    CP-CONSOLE-SECRET: "{password_hash(charger_password)}"
"""
    )

    async def scenario():
        async with Backend(subprotocols=["ocpp2.0.1"], ask_after_boot=False) as backend:
            relay = start_console_relay(start_relay, backend.url, config)
            base = relay.console_url
            paths = ["/", "/console.js", "/console.css", "/api/chargers", "/api/relay", "/api/mirrors", "/api/metrics",
                     "/api/session", "/api/chargers/CP-CONSOLE-SECRET/events", "/api/chargers/CP-CONSOLE-SECRET/history", "/nowhere"]
            anonymous = {path: http(base + path)[0] for path in paths}
            wrong = http(base + "/api/login", {"Content-Type": "application/json"}, json.dumps({"user": USER, "password": "guess"}).encode())[0]
            wrong_token = http(base + "/api/chargers", {"Authorization": "Bearer not-the-token"})[0]
            with_token = http(base + "/api/chargers", {"Authorization": f"Bearer {TOKEN}"})[0]
            # A browser watching the charger while the backend rotates its password.
            async with async_playwright() as playwright:
                browser = await playwright.chromium.launch(executable_path=CHROMIUM, headless=True)
                page = await logged_in_page(browser, relay)
                await page.goto(base + "/#/charger/CP-CONSOLE-SECRET")
                await page.wait_for_selector("#frames")
                await asyncio.sleep(0.5)
                ws, cp, task = await connected_16_charger(relay, "CP-CONSOLE-SECRET", {"Authorization": basic("CP-CONSOLE-SECRET", charger_password)})
                cp.configuration["AuthorizationKey"] = charger_password.encode().hex()
                await cp.call(call16.BootNotification(charge_point_model="E2E", charge_point_vendor="console-tests"))
                backend_cp, _ = backend.sessions["CP-CONSOLE-SECRET"][-1]
                item = {"component": {"name": "SecurityCtrlr"}, "variable": {"name": "BasicAuthPassword"}, "attribute_value": rotated}
                await backend_cp.call(call201.SetVariables(set_variable_data=[item]))
                await expect(page.locator('.frame[data-action="ChangeConfiguration"]').first).to_be_visible(timeout=3000)
                # The rotated password is marked as redacted, with the same mark on both sides of the translation
                # (2.0.1 BasicAuthPassword, 1.6 AuthorizationKey as its hex).
                marks = {}
                for action in ("SetVariables", "ChangeConfiguration"):
                    text = await page.locator(f'.frame[data-action="{action}"]').first.inner_text()
                    marks[action] = re.findall(r"\[redacted [^\]]+\]", text)
                shown = await page.content()
                cookies = await page.context.cookies()
                await browser.close()
            api = {path: http(base + path, {"Authorization": f"Bearer {TOKEN}"})[1] for path in paths if "events" not in path}
            await asyncio.sleep(3.5)  # the session's lifetime passes
            cookie = "; ".join(f"{c['name']}={c['value']}" for c in cookies)
            expired = http(base + "/api/chargers", {"Cookie": cookie})[0]
            await ws.close()
            task.cancel()
            return anonymous, wrong, wrong_token, with_token, shown, api, expired, cookies, marks

    anonymous, wrong, wrong_token, with_token, shown, api, expired, cookies, marks = asyncio.run(scenario())
    assert len(marks["SetVariables"]) == 1 and marks["SetVariables"] == marks["ChangeConfiguration"], marks
    assert set(anonymous.values()) == {401}, anonymous
    assert wrong == 401 and wrong_token == 401 and with_token == 200
    assert expired == 401, "a session ends after console.session_ttl"
    assert all(c["httpOnly"] and c["sameSite"] == "Strict" for c in cookies)
    header = basic("CP-CONSOLE-SECRET", charger_password).split()[1]
    everything = shown + "".join(api.values())
    for secret in (charger_password, rotated, rotated.encode().hex().upper(), header, PASSWORD, TOKEN, "pbkdf2"):
        assert secret not in everything, secret
    assert "ChangeConfiguration" in shown and "AuthorizationKey" in shown


def test_a_viewer_that_never_reads_costs_no_cpu_per_message_and_no_memory_beyond_its_buffer(start_relay):
    """A client opens a charger's live stream and never reads it: once the sockets' buffers are full, the relay drops
    what its buffer cannot hold, spends about the same CPU per relayed message as with nobody watching, and keeps its
    memory."""
    identity = "CP-CONSOLE-SLOW"
    messages = 1500

    def cpu_seconds(pid):
        fields = pathlib.Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")

    def rss_mib(pid):
        for line in pathlib.Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
        return 0

    async def burst(cp):
        for _ in range(messages):
            await cp.call(call16.DataTransfer(vendor_id="org.example", message_id="x", data="y" * 2000))

    async def scenario():
        async with Backend(subprotocols=["ocpp1.6"], ask_after_boot=False) as backend:
            relay = start_console_relay(start_relay, backend.url, console_config("limits:\n  messages_per_second: 0\n"))
            pid = relay.process.pid
            ws, cp, task = await connected_16_charger(relay, identity)
            await burst(cp)  # warm up
            rounds = {"nobody": [], "slow viewer": []}
            port = int(relay.console_url.rsplit(":", 1)[1])
            rss_before = rss_mib(pid)
            for _ in range(2):  # interleaved rounds; the best of each is compared
                start = cpu_seconds(pid)
                await burst(cp)
                rounds["nobody"].append((cpu_seconds(pid) - start) / messages)
                # Opens the stream with a tiny receive buffer, then never reads.
                slow = socket.create_connection(("127.0.0.1", port))
                slow.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
                request = f"GET /api/chargers/{identity}/events HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {TOKEN}\r\n\r\n"
                slow.sendall(request.encode())
                await asyncio.sleep(0.3)
                await burst(cp)  # fills the socket's buffers: from now on the stream cannot write
                start = cpu_seconds(pid)
                await burst(cp)
                rounds["slow viewer"].append((cpu_seconds(pid) - start) / messages)
                rss_after = rss_mib(pid)
                slow.close()
                await asyncio.sleep(0.5)
            await ws.close()
            task.cancel()
            return rounds, rss_before, rss_after

    rounds, rss_before, rss_after = asyncio.run(scenario())
    nobody, watched = min(rounds["nobody"]), min(rounds["slow viewer"])
    print(f"relay CPU per message: nobody watching {nobody * 1e6:.0f} us, a viewer that never reads {watched * 1e6:.0f} us")
    assert watched <= nobody * 1.5 + 20e-6, (nobody, watched)
    assert rss_after - rss_before < 48, f"memory grew {rss_after - rss_before:.1f} MiB"
