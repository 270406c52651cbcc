"""Replay: record a session through the relay between real peers, cut it into a fixture, redact it, and
replay either side against live peers from the pinned `ocpp` package."""

import asyncio
import json
import os
import subprocess
import time
import xml.etree.ElementTree as ElementTree

import websockets

from conftest import BINARY, ROOT
from peers import Backend, run_charger
from test_translation import MAPPINGS, validate_recording


def ocpp_relay(*args, timeout=120):
    return subprocess.run([BINARY, *args], capture_output=True, text=True, timeout=timeout)


def record_session(start_relay, identity="CP-REPLAY", version="1.6", ask_after_boot=True):
    async def scenario():
        async with Backend(ask_after_boot=ask_after_boot) as backend:
            relay = start_relay(backend.url)
            await run_charger(relay.url, identity, version)
            await backend.closed(identity)
            return relay, backend

    relay, backend = asyncio.run(scenario())
    assert relay.stop() == 0
    return relay.recordings, backend


def cut(recordings, tmp_path, *args, name="fixture.jsonl"):
    path = tmp_path / name
    out = ocpp_relay("recordings", "cut", str(recordings), *args, "-o", str(path))
    assert out.returncode == 0, out.stderr
    return path


async def replay_against(backend_factory, fixture, *args):
    async with backend_factory() as backend:
        process = await asyncio.create_subprocess_exec(
            BINARY, "replay", str(fixture), "--as", "charger", "--target", backend.url, *args,
            stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
        )
        stdout, stderr = await asyncio.wait_for(process.communicate(), 60)
        return process.returncode, stdout.decode(), stderr.decode(), backend


def test_a_recorded_session_replays_as_the_charger_and_learns_the_transaction_id(start_relay, tmp_path):
    recordings, original = record_session(start_relay)
    fixture = cut(recordings, tmp_path, "--charger", "CP-REPLAY")
    lines = fixture.read_text().splitlines()
    header = json.loads(lines[0])
    assert header["fixture"] == 1 and header["charger"] == "CP-REPLAY" and header["version"] == "1.6"
    assert header["vendor"] == "ocpp-relay-tests" and header["model"] == "E2E" and header["relayVersion"]
    report = tmp_path / "report.xml"
    code, out, err, backend = asyncio.run(replay_against(Backend, fixture, "--report", "junit", str(report)))
    assert code == 0, out + err
    assert "replay passed" in out
    # The live backend handed out another transaction id than the recorded one; the replay used it.
    recorded_id = original.started[0]
    assert backend.started and backend.started[0] != recorded_id
    assert backend.stopped == backend.started
    # One JUnit test case for the fixture, passed, with its exchanges counted.
    cases = ElementTree.parse(report).getroot().findall(".//testcase")
    assert [case.get("name") for case in cases] == ["fixture"]
    assert cases[0].find("failure") is None and "exchanges" in cases[0].find("system-out").text


def test_a_backend_that_answers_differently_fails_and_the_diff_names_the_field(start_relay, tmp_path):
    recordings, _ = record_session(start_relay)
    fixture = cut(recordings, tmp_path, "--charger", "CP-REPLAY")

    class BlockingBackend(Backend):
        def __init__(self):
            super().__init__()
            self.blocked = {"TAG-CP-REPLAY"}

    code, out, err, _ = asyncio.run(replay_against(BlockingBackend, fixture))
    assert code == 1, out + err
    assert 'Authorize.result idTagInfo.status: expected "Accepted", got "Blocked"' in out
    assert "replay failed" in out


def test_replaying_the_backend_for_a_real_charger(start_relay, tmp_path):
    recordings, _ = record_session(start_relay, identity="CP-BACKEND")
    fixture = cut(recordings, tmp_path, "--charger", "CP-BACKEND")

    async def scenario():
        process = await asyncio.create_subprocess_exec(
            BINARY, "replay", str(fixture), "--as", "backend", "--listen", "127.0.0.1:0",
            stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
        )
        line = (await asyncio.wait_for(process.stdout.readline(), 30)).decode()
        assert line.startswith("listening on "), line
        url = line.split()[-1] + "/ocpp"
        results, tap, _ = await run_charger(url, "CP-BACKEND", "1.6")
        stdout, stderr = await asyncio.wait_for(process.communicate(), 60)
        return process.returncode, stdout.decode(), stderr.decode(), results, tap

    code, out, err, results, tap = asyncio.run(scenario())
    assert code == 0, out + err
    assert all(r is not None for r in results)
    # The replayed backend also sent its recorded GetConfiguration, and the charger answered it.
    assert any('"GetConfiguration"' in m for m in tap.received)


def test_the_upstream_leg_of_a_translated_recording_replays_against_a_201_backend(start_relay, tmp_path):
    async def scenario():
        async with Backend(subprotocols=["ocpp2.0.1"]) as backend:
            relay = start_relay(backend.url, "--upstream-version", "2.0.1", "--mappings", MAPPINGS)
            await run_charger(relay.url, "CP-XLATE", "1.6")
            await backend.closed("CP-XLATE")
            return relay

    relay = asyncio.run(scenario())
    relay.stop()
    fixture = cut(relay.recordings, tmp_path, "--charger", "CP-XLATE")
    assert json.loads(fixture.read_text().splitlines()[0])["upstreamVersion"] == "2.0.1"
    code, out, err, backend = asyncio.run(
        replay_against(lambda: Backend(subprotocols=["ocpp2.0.1"]), fixture, "--leg", "upstream")
    )
    assert code == 0, out + err
    (cp, _), = backend.sessions["CP-XLATE"]
    assert cp.actions[:2] == ["BootNotification", "StatusNotification"] and "TransactionEvent.Ended" in cp.actions


def test_cutting_one_transaction_keeps_the_boot_in_front(start_relay, tmp_path):
    # The backend asks (GetConfiguration) after the boot, before or during the transaction: the cut keeps its
    # question either way, because the live backend asks again on replay.
    recordings, original = record_session(start_relay, identity="CP-CUT")
    fixture = cut(recordings, tmp_path, "--charger", "CP-CUT", "--transaction", str(original.started[0]))
    texts = [json.loads(line).get("text") for line in fixture.read_text().splitlines()[1:]]
    actions = [json.loads(t)[2] for t in texts if t and json.loads(t)[0] == 2]
    assert actions[0] == "BootNotification"
    assert "StartTransaction" in actions and "StopTransaction" in actions
    assert "Authorize" not in actions and "Heartbeat" not in actions
    assert actions.count("GetConfiguration") == actions.count("BootNotification")  # on both legs, like the boot
    code, out, err, _ = asyncio.run(replay_against(Backend, fixture))
    assert code == 0, out + err


def test_redaction_keeps_fixtures_schema_valid_and_pseudonyms_stable(start_relay, tmp_path):
    # Two chargers' sessions: both start their transaction with the tag TAG-1, each authorizes its own tag.
    recordings, _ = record_session(start_relay, identity="CP-REDACT")
    record_session(start_relay, identity="CP-OTHER")
    fixture = cut(recordings, tmp_path, "--charger", "CP-REDACT")
    other = cut(recordings, tmp_path, "--charger", "CP-OTHER", name="other.jsonl")

    def redact(source, key, name):
        target = tmp_path / name
        env = dict(os.environ, OCPP_RELAY_REDACT_KEY=key)
        out = subprocess.run([BINARY, "recordings", "redact", str(source), "-o", str(target)], capture_output=True, text=True, env=env)
        assert out.returncode == 0, out.stderr
        return [json.loads(line) for line in target.read_text().splitlines()[1:]]

    def tags(entries, action):
        frames = [json.loads(e["text"]) for e in entries if "text" in e and e["leg"] == "charger" and e["dir"] == "in"]
        return {f[3]["idTag"] for f in frames if f[0] == 2 and f[2] == action}

    first = redact(fixture, "test-secret-key", "redacted-a.jsonl")
    second = redact(other, "test-secret-key", "redacted-b.jsonl")
    rekeyed = redact(fixture, "another-key", "redacted-c.jsonl")
    assert "TAG-CP-REDACT" in fixture.read_text()
    assert "TAG-CP-REDACT" not in json.dumps(first) and "TAG-CP-OTHER" not in json.dumps(second)
    validate_recording(first)
    validate_recording(second)
    # The same key gives the same pseudonym for the same tag in every file, and different tags stay different…
    assert tags(first, "StartTransaction") == tags(second, "StartTransaction") != {"TAG-1"}
    assert tags(first, "Authorize") != tags(second, "Authorize")
    (pseudonym,) = tags(first, "Authorize")
    assert len(pseudonym) == len("TAG-CP-REDACT")
    # …another key gives other pseudonyms.
    assert tags(rekeyed, "StartTransaction") != tags(first, "StartTransaction")
    # Integers (transaction ids) are untouched.
    starts = [json.loads(e["text"]) for e in first if "text" in e and '"transactionId"' in e["text"]]
    assert starts and all(isinstance(f[-1].get("transactionId", 0), int) for f in starts if f[0] in (2, 3))
    no_key = subprocess.run([BINARY, "recordings", "redact", str(fixture)], capture_output=True, text=True, env={"PATH": os.environ["PATH"]})
    assert no_key.returncode != 0 and "give a key" in no_key.stderr


def test_unusable_recordings_exit_2_with_a_clear_message(start_relay, tmp_path):
    recordings, _ = record_session(start_relay, identity="CP-TRUNC")
    fixture = cut(recordings, tmp_path, "--charger", "CP-TRUNC")
    text = fixture.read_text()
    truncated = tmp_path / "truncated.jsonl"
    truncated.write_text(text[: len(text) // 2])
    out = ocpp_relay("replay", str(truncated), "--as", "charger", "--target", "ws://127.0.0.1:9/ocpp")
    assert out.returncode == 2
    assert "is not JSON" in out.stderr and "truncated.jsonl" in out.stderr
    (segment,) = recordings.glob("*.ocrec.gz")
    cut_segment = tmp_path / "cut" / segment.name
    cut_segment.parent.mkdir()
    cut_segment.write_bytes(segment.read_bytes()[:40])
    out = ocpp_relay("replay", str(cut_segment), "--as", "charger", "--target", "ws://127.0.0.1:9/ocpp")
    assert out.returncode == 2 and "no recorded frames" in out.stderr
    out = ocpp_relay("replay", str(fixture), "--as", "charger", "--target", "ws://127.0.0.1:9/ocpp")
    assert out.returncode == 2 and "cannot connect" in out.stderr


def test_rules_ignore_what_a_user_declares_volatile(start_relay, tmp_path):
    recordings, _ = record_session(start_relay, identity="CP-RULES")
    fixture = cut(recordings, tmp_path, "--charger", "CP-RULES")

    class OtherInterval(Backend):
        def __init__(self):
            super().__init__()
            self.boot_interval = 60

    code, out, _, _ = asyncio.run(replay_against(OtherInterval, fixture))
    assert code == 1 and "BootNotification.result interval: expected 300, got 60" in out
    code, out, err, _ = asyncio.run(replay_against(OtherInterval, fixture, "--rules", str(ROOT / "Config" / "replay-rules.yaml")))
    assert code == 0, out + err


def test_cutting_a_time_window(start_relay, tmp_path):
    recordings, _ = record_session(start_relay, identity="CP-WINDOW")
    whole = cut(recordings, tmp_path, "--charger", "CP-WINDOW")
    times = [json.loads(line)["time"] for line in whole.read_text().splitlines()[1:]]
    start, end = times[6], times[14]
    window = cut(recordings, tmp_path, "--charger", "CP-WINDOW", "--from", start, "--to", end, name="window.jsonl")
    kept = [json.loads(line)["time"] for line in window.read_text().splitlines()[1:]]
    assert kept and all(start <= t <= end for t in kept)
    assert len(kept) == sum(1 for t in times if start <= t <= end)
    assert "window" in json.loads(window.read_text().splitlines()[0])["source"]
    bad = ocpp_relay("recordings", "cut", str(recordings), "--charger", "CP-WINDOW", "--from", "yesterday")
    assert bad.returncode != 0 and "RFC 3339" in bad.stderr


def test_a_backend_that_closes_mid_replay_ends_it_with_a_report(start_relay, tmp_path):
    """The live backend closes cleanly right after answering StartTransaction: the replayer reports the calls it
    could not send and exits 1 at once, instead of waiting (or spinning) on a closed connection."""
    recordings, _ = record_session(start_relay)
    fixture = cut(recordings, tmp_path, "--charger", "CP-REPLAY")

    async def closing_backend(ws):
        async for text in ws:
            message = json.loads(text)
            if message[0] != 2:
                continue
            action, answers = message[2], {
                "BootNotification": {"status": "Accepted", "currentTime": "2030-01-01T00:00:00Z", "interval": 300},
                "Heartbeat": {"currentTime": "2030-01-01T00:00:00Z"},
                "Authorize": {"idTagInfo": {"status": "Accepted"}},
                "StartTransaction": {"idTagInfo": {"status": "Accepted"}, "transactionId": 42},
            }
            await ws.send(json.dumps([3, message[1], answers.get(action, {})]))
            if action == "StartTransaction":
                await ws.close(1000)
                return

    async def scenario():
        async with websockets.serve(closing_backend, "127.0.0.1", 0, subprotocols=["ocpp1.6"]) as server:
            port = server.sockets[0].getsockname()[1]
            began = time.monotonic()
            process = await asyncio.create_subprocess_exec(
                BINARY, "replay", str(fixture), "--as", "charger", "--target", f"ws://127.0.0.1:{port}/ocpp",
                stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
            )
            stdout, stderr = await asyncio.wait_for(process.communicate(), 30)
            return process.returncode, stdout.decode() + stderr.decode(), time.monotonic() - began

    code, out, seconds = asyncio.run(scenario())
    assert code == 1, out
    assert seconds < 10, seconds
    assert "closed by the peer with" in out and "CALLs not sent" in out, out
