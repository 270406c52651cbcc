"""The fixtures shipped in Recordings/fixtures/ (recorded through the relay between real peers, cut and
redacted by Tests/EndToEnd/make_fixtures.py) still replay cleanly against live peers."""

import asyncio
import json

from conftest import ROOT
from peers import Backend
from test_replay import replay_against
from test_translation import MAPPINGS

FIXTURES = ROOT / "Recordings" / "fixtures"


def test_the_shipped_fixtures_have_headers():
    for path in sorted(FIXTURES.glob("*.jsonl")):
        header = json.loads(path.read_text().splitlines()[0])
        assert header["fixture"] == 1 and header["charger"] and header["version"] in ("1.6", "2.0.1"), path
        assert header.get("vendor") and header.get("model") and header.get("recorded"), path
        assert "redacted" in header["source"], path


def test_the_16_and_201_sessions_replay_against_live_backends():
    for name, subprotocols in (("charging-1.6", ["ocpp1.6"]), ("charging-2.0.1", ["ocpp2.0.1"])):
        code, out, err, _ = asyncio.run(replay_against(lambda: Backend(subprotocols=subprotocols), FIXTURES / f"{name}.jsonl"))
        assert code == 0, name + out + err


def test_the_translated_session_replays_on_both_legs(start_relay):
    fixture = FIXTURES / "translated-1.6-to-2.0.1.jsonl"
    # The 2.0.1 side, straight against a 2.0.1 backend.
    code, out, err, _ = asyncio.run(replay_against(lambda: Backend(subprotocols=["ocpp2.0.1"]), fixture, "--leg", "upstream"))
    assert code == 0, out + err

    # The 1.6 side, through a translating relay to a 2.0.1 backend: a regression test of the translation.
    async def through_relay():
        async with Backend(subprotocols=["ocpp2.0.1"]) as backend:
            relay = start_relay(backend.url, "--upstream-version", "2.0.1", "--mappings", MAPPINGS)

            process = await asyncio.create_subprocess_exec(
                __import__("conftest").BINARY, "replay", str(fixture), "--as", "charger", "--target", relay.url,
                stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
            )
            stdout, stderr = await asyncio.wait_for(process.communicate(), 60)
            return process.returncode, stdout.decode(), stderr.decode()

    code, out, err = asyncio.run(through_relay())
    assert code == 0, out + err
