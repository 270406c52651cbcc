"""Pass-through: real 1.6 and 2.0.1 chargers and backends (the `ocpp` package) through the relay."""

import asyncio

import pytest
from conftest import recordings_list, recordings_show
from peers import Backend, open_charger, run_charger


def frames(entries, charger=None, leg=None, direction=None):
    return [
        e["text"]
        for e in entries
        if "text" in e
        and (charger is None or e["charger"] == charger)
        and (leg is None or e["leg"] == leg)
        and (direction is None or e["dir"] == direction)
    ]


@pytest.mark.parametrize("version", ["1.6", "2.0.1"])
def test_session_arrives_byte_exact_and_is_recorded(start_relay, version):
    async def scenario():
        async with Backend() as backend:
            relay = start_relay(backend.url)
            results, charger_tap, subprotocol = await run_charger(relay.url, "CP-E2E-1", version)
            await backend.closed("CP-E2E-1")
            return relay, backend, results, charger_tap, subprotocol

    relay, backend, results, charger_tap, subprotocol = asyncio.run(scenario())
    assert subprotocol == ("ocpp1.6" if version == "1.6" else "ocpp2.0.1")
    # The charger got an answer to every call, and the backend's own request was answered.
    assert all(r is not None for r in results)
    assert "CP-E2E-1" in backend.answers and backend.answers["CP-E2E-1"] is not None
    # Byte-exact in both directions: what one side sent is what the other received.
    (_, backend_tap), = backend.sessions["CP-E2E-1"]
    assert backend_tap.received == charger_tap.sent
    assert charger_tap.received == backend_tap.sent
    # The charger's close code reached the backend.
    assert backend.closes["CP-E2E-1"][0] == 1000
    assert relay.stop() == 0

    entries, warnings = recordings_show(relay.recordings)
    assert warnings == ""
    short = "1.6" if version == "1.6" else "2.0.1"
    # Every frame on both legs, in order, with the exact text.
    assert frames(entries, leg="charger", direction="in") == charger_tap.sent
    assert frames(entries, leg="upstream", direction="out") == charger_tap.sent
    assert frames(entries, leg="upstream", direction="in") == backend_tap.sent
    assert frames(entries, leg="charger", direction="out") == backend_tap.sent
    assert {e["version"] for e in entries if "text" in e} == {short}
    opens = [e for e in entries if e.get("event") == "open"]
    assert len(opens) == 1
    assert opens[0]["charger"] == "CP-E2E-1"
    assert opens[0]["path"] == "/ocpp/CP-E2E-1"
    assert opens[0]["subprotocol"] == ("ocpp1.6" if version == "1.6" else "ocpp2.0.1")
    assert opens[0]["upstream"] == f"{backend.url}/CP-E2E-1"
    closes = [e for e in entries if e.get("event") == "close"]
    assert [(c["leg"], c["initiator"], c["code"]) for c in closes] == [("charger", "charger", 1000), ("upstream", "relay", 1000)]
    # Times are RFC 3339 UTC with milliseconds, and never go backwards.
    times = [e["time"] for e in entries]
    assert all(len(t) == 24 and t.endswith("Z") for t in times)
    assert times == sorted(times)

    listing = recordings_list(relay.recordings)
    assert listing[0].split()[:5] == ["CHARGER", "START", "END", "FRAMES", "BYTES"]
    row = listing[1].split()
    assert row[0] == "CP-E2E-1"
    assert int(row[3]) == len(charger_tap.sent) * 2 + len(backend_tap.sent) * 2


def test_upstream_chooses_the_subprotocol(start_relay):
    """The charger offers 2.0.1 and 1.6; the backend speaks only 1.6; the charger gets 1.6."""

    async def scenario():
        async with Backend(subprotocols=["ocpp1.6"], ask_after_boot=False) as backend:
            relay = start_relay(backend.url)
            ws = await open_charger(relay.url, "CP-NEGOTIATE", ["ocpp2.0.1", "ocpp1.6"])
            subprotocol = ws.subprotocol
            await ws.close()
            await backend.closed("CP-NEGOTIATE")
            return relay, backend, subprotocol

    relay, backend, subprotocol = asyncio.run(scenario())
    assert subprotocol == "ocpp1.6"
    path, headers = backend.requests[0]
    assert headers["Sec-WebSocket-Protocol"] == "ocpp2.0.1, ocpp1.6"
    relay.stop()


def test_many_chargers_at_once_without_cross_talk(start_relay):
    count = 40

    async def scenario():
        async with Backend() as backend:
            relay = start_relay(backend.url)
            ids = [f"CP-MANY-{i:03d}" for i in range(count)]
            outcomes = await asyncio.gather(
                *(run_charger(relay.url, cid, "1.6" if i % 2 == 0 else "2.0.1") for i, cid in enumerate(ids))
            )
            for cid in ids:
                await backend.closed(cid)
            return relay, backend, ids, outcomes

    relay, backend, ids, outcomes = asyncio.run(scenario())
    assert relay.stop() == 0
    entries, _ = recordings_show(relay.recordings)
    for i, (cid, (results, tap, subprotocol)) in enumerate(zip(ids, outcomes)):
        assert all(r is not None for r in results), cid
        (_, backend_tap), = backend.sessions[cid]
        # Each backend session saw exactly its own charger's frames, and the reverse.
        assert backend_tap.received == tap.sent, cid
        assert tap.received == backend_tap.sent, cid
        serial = backend.boots[cid].get("charge_point_serial_number") or backend.boots[cid].get("serial_number")
        assert serial == cid[:25]
        assert frames(entries, charger=cid, leg="charger", direction="in") == tap.sent
        assert frames(entries, charger=cid, leg="charger", direction="out") == tap.received
    assert len(recordings_list(relay.recordings)) == count + 1


def test_show_filters_one_charger(start_relay):
    async def scenario():
        async with Backend(ask_after_boot=False) as backend:
            relay = start_relay(backend.url)
            a = await run_charger(relay.url, "CP-A", "1.6")
            b = await run_charger(relay.url, "CP-B", "2.0.1")
            return relay, a, b

    relay, a, b = asyncio.run(scenario())
    relay.stop()
    only_b, _ = recordings_show(relay.recordings, "--charger", "CP-B")
    assert {e["charger"] for e in only_b} == {"CP-B"}
    assert frames(only_b, leg="charger", direction="in") == b[1].sent
    text = __import__("subprocess").run(
        [__import__("conftest").BINARY, "recordings", "show", str(relay.recordings), "--charger", "CP-A"],
        capture_output=True, text=True,
    ).stdout
    # The text view names actions, also on results.
    assert "BootNotification.result" in text and "StartTransaction" in text and "CP-B" not in text
