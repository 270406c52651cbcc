"""Verdicts: every frame judged against its version's schema. Raw WebSocket chargers of 1.6, 2.0.1 and 2.1 send frames
that break each kind of rule (and valid ones that look suspicious) through the relay to the `ocpp` package's
backend; `recordings verdicts` groups them by vendor, model and firmware; `validation.reject_invalid_calls` has the
relay refuse them with the CALLERROR each version prescribes."""

import asyncio
import json
import re
import subprocess

import websockets

from conftest import BINARY, free_port, http_get, recordings_list
from peers import Backend
from peers21 import speak_21

NOW = "2026-12-07T10:00:00.000Z"


def boot16(vendor, model, firmware):
    return ["BootNotification", {"chargePointVendor": vendor, "chargePointModel": model, "firmwareVersion": firmware}]


def boot2x(vendor, model, firmware, reason="PowerUp"):
    return ["BootNotification", {"reason": reason, "chargingStation": {"vendorName": vendor, "model": model, "firmwareVersion": firmware}}]


# What each charger sends, in order: (action, payload) pairs.
CHARGERS = {
    ("CP-V16-A", "ocpp1.6"): [
        boot16("ACME", "W1", "fw-1.0"),
        ["StatusNotification", {"connectorId": "1", "errorCode": "NoError", "status": "Available"}],  # type
        ["StatusNotification", {"connectorId": 1, "errorCode": "NoError", "status": "Broken"}],  # enumeration
        ["Authorize", {"idTag": "X" * 25}],  # maxLength
        ["MeterValues", {"meterValue": [{"timestamp": NOW, "sampledValue": [{"value": "1"}]}]}],  # required
        ["Heartbeat", {"unexpected": 1}],  # additional property
        ["StartTransaction", {"connectorId": 1, "idTag": "T", "meterStart": 0, "timestamp": "yesterday"}],  # format
        # Valid, if suspicious: a large number, an unknown vendor's DataTransfer.
        ["MeterValues", {"connectorId": 1, "meterValue": [{"timestamp": NOW, "sampledValue": [{"value": "99999999999"}]}]}],
        ["DataTransfer", {"vendorId": "nobody.example", "data": ""}],
    ],
    ("CP-V16-B", "ocpp1.6"): [
        boot16("ACME", "W1", "fw-2.0"),
        ["StatusNotification", {"connectorId": 1, "errorCode": "NoError", "status": "Available"}],
        ["Heartbeat", {}],
    ],
    ("CS-V201", "ocpp2.0.1"): [
        boot2x("Volt", "S2", "fw-3", reason="Because"),  # enumeration
        ["StatusNotification", {"timestamp": NOW, "connectorStatus": "Available", "evseId": "1", "connectorId": 1}],  # type
        ["Heartbeat", {}],
        ["NotifyEvent", {"generatedAt": NOW, "seqNo": 0, "eventData": []}],  # minItems
    ],
    ("CS-V21", "ocpp2.1"): [
        boot2x("Volt", "S3", "fw-4"),
        ["StatusNotification", {"timestamp": NOW, "connectorStatus": "Available", "evseId": 1}],  # required
        ["Heartbeat", {}],
    ],
}


async def play(relay_url, identity, subprotocol, frames):
    """Sends each frame and waits for its answer; returns the answers."""
    answers = []
    async with websockets.connect(f"{relay_url}/{identity}", subprotocols=[subprotocol], ping_interval=None) as ws:
        for n, (action, payload) in enumerate(frames):
            await ws.send(json.dumps([2, f"m{n}", action, payload]))
            while True:
                answer = json.loads(await asyncio.wait_for(ws.recv(), 10))
                if answer[0] != 2:
                    break
            answers.append(answer)
    return answers


def verdicts(recordings):
    out = subprocess.run(
        [BINARY, "recordings", "verdicts", str(recordings), "--format", "jsonl"], capture_output=True, text=True, timeout=60
    )
    assert out.returncode == 0, out.stderr
    return [json.loads(line) for line in out.stdout.splitlines()]


def row(rows, side="charger", **wanted):
    found = [r for r in rows if r["side"] == side and all(r[k] == v for k, v in wanted.items())]
    assert len(found) == 1, (wanted, rows)
    return found[0]


def test_verdicts_group_invalid_frames_by_model_and_firmware_with_their_reasons(start_relay):
    async def scenario():
        async with speak_21(Backend(subprotocols=["ocpp1.6", "ocpp2.0.1", "ocpp2.1"], ask_after_boot=False)) as backend:
            relay = start_relay(backend.url)
            await asyncio.gather(*(play(relay.url, i, p, f) for (i, p), f in CHARGERS.items()))
            relay.stop()
            return relay

    relay = asyncio.run(scenario())
    rows = verdicts(relay.recordings)
    status = row(rows, firmware="fw-1.0", action="StatusNotification")
    assert (status["frames"], status["invalid"], status["model"], status["version"]) == (2, 2, "W1", "1.6"), status
    reasons = " | ".join(r["reason"] for r in status["reasons"])
    assert "connectorId is a string where the schema wants an integer" in reasons, reasons
    assert "status is not one of the schema's values" in reasons, reasons
    assert all(r["example"]["charger"] == "CP-V16-A" and '"StatusNotification"' in r["example"]["text"] for r in status["reasons"])
    expected = {
        "Authorize": "idTag is longer than 20 characters",
        "MeterValues": "connectorId is required and missing",
        "Heartbeat": "unexpected is not a member the schema knows",
        "StartTransaction": "timestamp is not a valid date-time",
    }
    for action, reason in expected.items():
        r = row(rows, firmware="fw-1.0", action=action)
        assert r["invalid"] == 1 and r["reasons"][0]["reason"] == reason, r
    # The suspicious but valid ones are valid.
    assert row(rows, firmware="fw-1.0", action="MeterValues")["frames"] == 2
    assert row(rows, firmware="fw-1.0", action="DataTransfer")["invalid"] == 0
    # The same model on another firmware speaks valid OCPP.
    assert sum(r["invalid"] for r in rows if r["side"] == "charger" and r["firmware"] == "fw-2.0") == 0
    # 2.0.1 and 2.1 stations are judged against their own schemas.
    boot = row(rows, model="S2", action="BootNotification")
    assert boot["version"] == "2.0.1" and boot["invalid"] == 1 and "reason is not one of" in boot["reasons"][0]["reason"]
    assert row(rows, model="S2", action="StatusNotification")["reasons"][0]["reason"].startswith("evseId is a string")
    assert "eventData has fewer than 1 elements" in row(rows, model="S2", action="NotifyEvent")["reasons"][0]["reason"]
    v21 = row(rows, model="S3", action="StatusNotification")
    assert v21["version"] == "2.1" and v21["reasons"][0]["reason"] == "connectorId is required and missing", v21
    assert row(rows, model="S3", action="BootNotification")["invalid"] == 0
    # The backend's answers are judged too. The ocpp package's 1.6 backend answers a malformed call with
    # FormatViolation, 2.x's spelling of 1.6's FormationViolation: flagged; its 2.0.1 and 2.1 answers are valid.
    backend_rows = [r for r in rows if r["side"] == "backend"]
    flagged = [r for r in backend_rows if r["invalid"]]
    assert {r["action"] for r in flagged} == {"Heartbeat.error", "StatusNotification.error"}, backend_rows
    for r in flagged:
        assert r["version"] == "1.6" and r["reasons"][0]["reason"] == "errorCode is not one of the schema's values", r
        assert '"FormatViolation"' in r["reasons"][0]["example"]["text"], r
    # The text report says the same for people.
    text = subprocess.run([BINARY, "recordings", "verdicts", str(relay.recordings)], capture_output=True, text=True, timeout=60).stdout
    assert "charger ACME / W1 / fw-1.0 (OCPP 1.6): 1 charger(s)" in text, text
    assert "idTag is longer than 20 characters" in text and "e.g. CP-V16-A" in text


def test_reject_invalid_calls_answers_with_each_versions_callerror_and_never_forwards(start_relay):
    metrics = free_port()

    async def scenario():
        async with speak_21(Backend(subprotocols=["ocpp1.6", "ocpp2.0.1", "ocpp2.1"], ask_after_boot=False)) as backend:
            relay = start_relay(
                backend.url, "--metrics-listen", f"127.0.0.1:{metrics}",
                config="validation:\n  reject_invalid_calls: true\n",
            )
            a16 = await play(relay.url, "CP-REJ-16", "ocpp1.6", CHARGERS[("CP-V16-A", "ocpp1.6")])
            a201 = await play(relay.url, "CS-REJ-201", "ocpp2.0.1", CHARGERS[("CS-V201", "ocpp2.0.1")])
            a21 = await play(relay.url, "CS-REJ-21", "ocpp2.1", CHARGERS[("CS-V21", "ocpp2.1")])
            received = {
                identity: [json.loads(f)[2] for cp, tap in sessions for f in tap.received if json.loads(f)[0] == 2]
                for identity, sessions in backend.sessions.items()
            }
            scraped = http_get(f"http://127.0.0.1:{metrics}/metrics")[1]
            relay.stop()
            return a16, a201, a21, received, scraped

    a16, a201, a21, received, scraped = asyncio.run(scenario())
    codes16 = [a[2] for a in a16 if a[0] == 4]
    assert codes16 == [
        "TypeConstraintViolation", "PropertyConstraintViolation", "PropertyConstraintViolation",
        "OccurenceConstraintViolation", "FormationViolation", "FormationViolation",
    ], a16
    assert all("refused by the relay" in a[3] for a in a16 if a[0] == 4)
    # What was refused never reached the backend; the valid calls did.
    assert received["CP-REJ-16"] == ["BootNotification", "MeterValues", "DataTransfer"], received
    assert [a[2] for a in a201 if a[0] == 4] == [
        "PropertyConstraintViolation", "TypeConstraintViolation", "OccurrenceConstraintViolation"
    ], a201
    assert received["CS-REJ-201"] == ["Heartbeat"], received
    assert [a[2] for a in a21 if a[0] == 4] == ["OccurrenceConstraintViolation"], a21
    assert 'ocpp_relay_validation_refused_calls_total{version="1.6",action="StatusNotification"} 2' in scraped, scraped


def show(recordings):
    out = subprocess.run([BINARY, "recordings", "show", str(recordings), "--format", "jsonl"], capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    return [json.loads(line) for line in out.stdout.splitlines()]


def invalid_column(recordings):
    """{charger: its INVALID cell} of `recordings list` (every connection closed)."""
    listing = recordings_list(recordings)
    column = listing[0].split().index("INVALID")
    return {row.split()[0]: row.split()[column] for row in listing[1:]}


def counted(scraped, name):
    """{(version, leg, action or None): value} of a counter in a Prometheus scrape."""
    found = {}
    for line in scraped.splitlines():
        if line.startswith(f"ocpp_relay_{name}_total{{"):
            labels = dict(re.findall(r'(\w+)="([^"]*)"', line.split("}")[0]))
            found[(labels["version"], labels["leg"], labels.get("action"))] = int(float(line.rsplit(" ", 1)[1]))
    return found


def test_live_verdicts_are_recorded_beside_their_frames_counted_and_marked_in_the_console(start_relay):
    """The relay judges every frame as it records it: each invalid frame is followed in the recording by its verdict,
    counted by version, leg and action, marked with its reason on the console's charger page, and grouped on the
    console's verdicts page as `recordings verdicts` groups it afterwards."""
    from playwright.async_api import async_playwright, expect
    from test_console import CHROMIUM, SCREENSHOTS, TOKEN, console_config, http, logged_in_page, start_console_relay

    metrics = free_port()

    async def scenario():
        async with speak_21(Backend(subprotocols=["ocpp1.6", "ocpp2.0.1", "ocpp2.1"], ask_after_boot=False)) as backend:
            relay = start_console_relay(start_relay, backend.url, console_config(), "--metrics-listen", f"127.0.0.1:{metrics}")
            async with async_playwright() as playwright:
                browser = await playwright.chromium.launch(executable_path=CHROMIUM, headless=True)
                page = await logged_in_page(browser, relay)
                await page.goto(relay.console_url + "/#/charger/CP-V16-A")
                await page.wait_for_selector("#frames")
                await asyncio.sleep(0.5)  # the stream is open
                await asyncio.gather(*(play(relay.url, i, p, f) for (i, p), f in CHARGERS.items()))
                status = page.locator('.cell.charger .frame.invalid[data-action="StatusNotification"]')
                await expect(status).to_have_count(2, timeout=5000)
                await expect(status.first.locator(".verdict")).to_contain_text("connectorId is a string where the schema wants an integer")
                await expect(page.locator('.cell.charger .frame.invalid[data-action="Authorize"] .verdict')).to_contain_text("idTag is longer than 20")
                marked = await page.locator(".frame.invalid").count()
                # The valid frames carry no mark: the boot, the suspicious MeterValues, the backend's answers.
                await expect(page.locator('.frame.invalid[data-action="BootNotification"]')).to_have_count(0)
                await expect(page.locator('.frame.invalid[data-action="DataTransfer"]')).to_have_count(0)
                await page.screenshot(path=str(SCREENSHOTS / "charger-verdicts.png"))
                await page.goto(relay.console_url + "/#/verdicts")
                w1 = page.locator('#verdict-rows tr[data-model="W1"][data-firmware="fw-1.0"][data-action="StatusNotification"]')
                await expect(w1.locator("td").nth(3)).to_have_text("2", timeout=5000)
                await expect(w1).to_contain_text("status is not one of the schema's values")
                await expect(page.locator('#invalid-frames .divergence[data-charger="CS-V21"]')).to_have_count(1)
                # The counts of valid frames reach the board each second (an invalid frame's at once).
                await asyncio.sleep(1.5)
                console_rows = json.loads(http(relay.console_url + "/api/verdicts", {"Authorization": f"Bearer {TOKEN}"})[1])["rows"]
                await page.screenshot(path=str(SCREENSHOTS / "verdicts.png"), full_page=True)
                await browser.close()
            scraped = http_get(f"http://127.0.0.1:{metrics}/metrics")[1]
            relay.stop()
            return relay, marked, console_rows, scraped

    relay, marked, console_rows, scraped = asyncio.run(scenario())
    assert marked == 8, marked  # CP-V16-A's six invalid frames and the backend's two misspelt CALLERRORs
    report = verdicts(relay.recordings)
    # Live and afterwards, the same grouping and the same figures.
    key = lambda r: (r["side"], r["vendor"], r["model"], r["firmware"], r["version"], r["action"], r["frames"], r["invalid"])
    assert sorted(map(key, console_rows)) == sorted(map(key, report)), (console_rows, report)
    invalid = counted(scraped, "invalid_frames")
    assert invalid[("1.6", "charger", "StatusNotification")] == 2, invalid
    assert invalid[("2.0.1", "charger", "BootNotification")] == 1 and invalid[("2.1", "charger", "StatusNotification")] == 1
    assert sum(invalid.values()) == sum(r["invalid"] for r in report) == 12, invalid
    assert invalid[("1.6", "upstream", "StatusNotification.error")] == 1, invalid
    judged = counted(scraped, "frames_judged")
    assert sum(judged.values()) == sum(r["frames"] for r in report), (judged, report)
    assert judged[("1.6", "upstream", None)] > 0, judged  # the backend's answers
    # `recordings list` says how many of each connection's frames were invalid.
    assert invalid_column(relay.recordings) == {"CP-V16-A": "8", "CP-V16-B": "0", "CS-V201": "3", "CS-V21": "1"}
    # In the recording, each invalid frame is followed by its verdict, and only invalid frames are.
    lines = show(relay.recordings)
    verdict_lines = [(n, line) for n, line in enumerate(lines) if line.get("event") == "verdict"]
    assert len(verdict_lines) == 12, verdict_lines
    for n, verdict in verdict_lines:
        frame = lines[n - 1] if lines[n - 1].get("dir") == verdict["frame"]["dir"] else lines[n - 2]
        assert (frame["time"], frame["leg"], frame["charger"]) == (verdict["time"], verdict["frame"]["leg"], verdict["charger"]), (frame, verdict)
        sent = json.loads(frame["text"])
        assert sent[2] == verdict["action"] if sent[0] == 2 else verdict["action"].endswith(".error"), (frame, verdict)
        assert verdict["reasons"], verdict


def test_verdicts_judge_each_leg_of_a_translated_connection_in_its_version_and_can_be_turned_off(start_relay):
    """A 1.6 charger on a 2.0.1 backend: its frames are judged as 1.6, the backend's as 2.0.1. With
    `validation.verdicts: 0` nothing is judged (and the frames flow as before)."""
    from test_translation import MAPPINGS

    frames = [boot16("ACME", "T1", "fw-9"), ["StatusNotification", {"connectorId": "1", "errorCode": "NoError", "status": "Available"}], ["Heartbeat", {}]]

    async def scenario():
        async with Backend(subprotocols=["ocpp2.0.1"], ask_after_boot=False) as backend:
            translated = start_relay(backend.url, "--upstream-version", "2.0.1", "--mappings", MAPPINGS)
            answers = await play(translated.url, "CP-TR-V", "ocpp1.6", frames)
            translated.stop()
        async with Backend(subprotocols=["ocpp1.6"], ask_after_boot=False) as backend:
            off = start_relay(backend.url, config="validation:\n  verdicts: 0\n", recordings=translated.recordings.parent / "off")
            off_answers = await play(off.url, "CP-OFF", "ocpp1.6", CHARGERS[("CP-V16-A", "ocpp1.6")])
            off.stop()
        return translated, answers, off, off_answers

    translated, answers, off, off_answers = asyncio.run(scenario())
    assert [a[0] for a in answers] == [3, 4, 3] or [a[0] for a in answers] == [3, 3, 3], answers
    lines = show(translated.recordings)
    verdict_lines = [line for line in lines if line.get("event") == "verdict"]
    assert [(v["frame"]["leg"], v["version"], v["action"]) for v in verdict_lines] == [("charger", "1.6", "StatusNotification")], verdict_lines
    rows = verdicts(translated.recordings)
    assert {r["version"] for r in rows if r["side"] == "backend"} == {"2.0.1"}, rows
    assert row(rows, model="T1", action="StatusNotification")["invalid"] == 1
    # A fixture cut from that recording says, when replayed, that its recorded frames break the schema.
    fixture = translated.recordings.parent / "tr.jsonl"
    out = subprocess.run([BINARY, "recordings", "cut", str(translated.recordings), "--charger", "CP-TR-V", "-o", str(fixture)], capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    replayed = subprocess.run([BINARY, "replay", str(fixture), "--as", "charger", "--target", "ws://127.0.0.1:9/ocpp"], capture_output=True, text=True, timeout=60)
    assert "fixture tr: 1 recorded frame(s) break their version's schema, replayed as recorded" in replayed.stdout, replayed
    assert "(charger in) StatusNotification: connectorId is a string where the schema wants an integer" in replayed.stdout
    # Turned off: no verdict in the recording, the frames all there and answered.
    assert len(off_answers) == len(CHARGERS[("CP-V16-A", "ocpp1.6")])
    off_lines = show(off.recordings)
    assert not [line for line in off_lines if line.get("event") == "verdict"]
    assert invalid_column(off.recordings) == {"CP-OFF": "-"}  # not judged, rather than 0
    assert len([line for line in off_lines if line.get("leg") == "charger" and line.get("dir") == "in"]) == len(off_answers)
