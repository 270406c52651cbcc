"""permessage-deflate (RFC 7692) on the relay's legs, with the pinned peers compressing (the `websockets` library
under `ocpp` offers and accepts it by default; the relay with `compression.chargers: accept` and
`compression.upstream: offer`): negotiated per leg, the same texts arriving and recorded, the size limit applied to
the inflated message, corrupt data refused."""

import asyncio
import base64
import os
import struct
import zlib

import pytest
import websockets
from conftest import recordings_show
from peers import Backend, open_charger, run_charger

BOTH = "compression:\n  chargers: accept\n  upstream: offer\n"
CHARGERS_ONLY = "compression:\n  chargers: accept\n  upstream: off\n"


def texts(entries, leg, direction):
    return [e["text"] for e in entries if "text" in e and e["leg"] == leg and e["dir"] == direction]


def offered_upstream(backend, identity):
    return [h.get("Sec-WebSocket-Extensions", "") for path, h in backend.requests if path.endswith(identity)]


@pytest.mark.parametrize(
    "version,config,upstream_compressed",
    [("1.6", BOTH, True), ("2.0.1", BOTH, True), ("1.6", CHARGERS_ONLY, False)],
)
def test_a_session_with_compressed_legs_arrives_whole_and_is_recorded_as_text(
    start_relay, version, config, upstream_compressed
):
    identity = f"CP-PMD-{version}-{int(upstream_compressed)}"

    async def scenario():
        async with Backend() as backend:
            relay = start_relay(backend.url, config=config)
            ws = await open_charger(relay.url, identity + "-probe", ["ocpp1.6"])
            agreed = ws.response.headers.get("Sec-WebSocket-Extensions")
            await ws.close()
            results, charger_tap, _ = await run_charger(relay.url, identity, version)
            await backend.closed(identity)
            return relay, backend, agreed, results, charger_tap

    relay, backend, agreed, results, charger_tap = asyncio.run(scenario())
    assert agreed is not None and agreed.startswith("permessage-deflate")
    offers = offered_upstream(backend, identity)
    assert offers and all(("permessage-deflate" in o) == upstream_compressed for o in offers)
    assert all(r is not None for r in results)
    (_, backend_tap), = backend.sessions[identity]
    # The same texts, both ways, though each leg compressed them with its own context.
    assert backend_tap.received == charger_tap.sent
    assert charger_tap.received == backend_tap.sent
    assert relay.stop() == 0
    entries, warnings = recordings_show(relay.recordings)
    assert warnings == ""
    mine = [e for e in entries if e.get("charger") == identity]
    assert texts(mine, "charger", "in") == charger_tap.sent
    assert texts(mine, "upstream", "out") == charger_tap.sent
    assert texts(mine, "charger", "out") == backend_tap.sent


def test_a_translated_session_with_compressed_legs(start_relay):
    async def scenario():
        async with Backend() as backend:
            relay = start_relay(backend.url, "--upstream-version", "2.0.1", config=BOTH)
            results, _, subprotocol = await run_charger(relay.url, "CP-PMD-TR", "1.6")
            await backend.closed("CP-PMD-TR")
            return relay, backend, results, subprotocol

    relay, backend, results, subprotocol = asyncio.run(scenario())
    assert subprotocol == "ocpp1.6"
    assert all(r is not None for r in results)
    assert "permessage-deflate" in offered_upstream(backend, "CP-PMD-TR")[0]
    (_, backend_tap), = backend.sessions["CP-PMD-TR"]
    assert any('"TransactionEvent"' in m for m in backend_tap.received)
    assert relay.stop() == 0


@pytest.mark.parametrize("config", [None, "compression:\n  chargers: off\n  upstream: off\n"], ids=["default", "off"])
def test_compression_off_negotiates_nothing_on_either_leg(start_relay, config):
    """Off by default for now: a compressed connection holds 67 KiB idle against 17.6 (zlib's states per leg)."""

    async def scenario():
        async with Backend() as backend:
            relay = start_relay(backend.url, config=config)
            ws = await open_charger(relay.url, "CP-PMD-OFF", ["ocpp1.6"])
            agreed = ws.response.headers.get("Sec-WebSocket-Extensions")
            await ws.close()
            return relay, backend, agreed

    relay, backend, agreed = asyncio.run(scenario())
    assert agreed is None
    assert all("permessage-deflate" not in o for o in offered_upstream(backend, "CP-PMD-OFF"))
    assert relay.stop() == 0


def test_a_small_frame_inflating_past_the_limit_is_closed_with_1009(start_relay):
    async def scenario():
        async with Backend() as backend:
            relay = start_relay(backend.url, config=BOTH + "limits:\n  max_frame_size: 65536\n")
            ws = await open_charger(relay.url, "CP-PMD-BOMB", ["ocpp1.6"])
            await ws.send('[2,"1","DataTransfer",{"vendorId":"' + "a" * 1_000_000 + '"}]')
            try:
                await asyncio.wait_for(ws.recv(), 10)
            except websockets.exceptions.ConnectionClosed as closed:
                return relay, backend, closed.rcvd.code if closed.rcvd else None
            return relay, backend, None

    relay, backend, code = asyncio.run(scenario())
    assert code == 1009
    assert relay.alive()
    assert relay.stop() == 0
    # Nothing of it reached the backend.
    assert not any('"DataTransfer"' in m for _, tap in backend.sessions.get("CP-PMD-BOMB", []) for m in tap.received)


async def raw_compressed_charger(relay_url, identity):
    """A charger's upgrade offering permessage-deflate, written by hand: the socket, once the relay agreed."""
    host, port = relay_url.split("//")[1].split("/")[0].split(":")
    reader, writer = await asyncio.open_connection(host, int(port))
    key = base64.b64encode(os.urandom(16)).decode()
    writer.write(
        f"GET /ocpp/{identity} HTTP/1.1\r\nHost: relay\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
        f"Sec-WebSocket-Key: {key}\r\nSec-WebSocket-Version: 13\r\nSec-WebSocket-Protocol: ocpp1.6\r\n"
        "Sec-WebSocket-Extensions: permessage-deflate; client_max_window_bits\r\n\r\n".encode()
    )
    head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), 10)
    assert head.startswith(b"HTTP/1.1 101"), head
    assert b"permessage-deflate" in head.lower()
    return reader, writer


def masked_frame(payload, rsv1=True, opcode=1):
    mask = os.urandom(4)
    first = 0x80 | (0x40 if rsv1 else 0) | opcode
    body = bytes(b ^ mask[i % 4] for i, b in enumerate(payload))
    assert len(payload) < 126
    return bytes([first, 0x80 | len(payload)]) + mask + body


async def read_close(reader):
    """The code of the close frame the relay sends, past the (unmasked, short) frames before it."""
    while True:
        head = await asyncio.wait_for(reader.readexactly(2), 10)
        length = head[1] & 0x7F
        assert length < 126, head
        body = await asyncio.wait_for(reader.readexactly(length), 10)
        if head[0] & 0x0F == 0x8:
            return struct.unpack("!H", body[:2])[0]


def test_corrupt_compressed_data_closes_the_charger_with_1007(start_relay):
    async def scenario():
        async with Backend() as backend:
            relay = start_relay(backend.url, config=BOTH)
            reader, writer = await raw_compressed_charger(relay.url, "CP-PMD-BAD")
            # A valid compressed message first: it reaches the backend as its text.
            deflate = zlib.compressobj(wbits=-15)
            good = deflate.compress(b'[2,"1","Heartbeat",{}]') + deflate.flush(zlib.Z_SYNC_FLUSH)
            writer.write(masked_frame(good[:-4]))
            await writer.drain()
            await asyncio.sleep(0.5)
            writer.write(masked_frame(b"\xff\xff\xff\xff\x00"))
            await writer.drain()
            code = await read_close(reader)
            writer.close()
            await backend.closed("CP-PMD-BAD")
            return relay, backend, code

    relay, backend, code = asyncio.run(scenario())
    assert code == 1007
    (_, backend_tap), = backend.sessions["CP-PMD-BAD"]
    assert backend_tap.received == ['[2,"1","Heartbeat",{}]']
    assert relay.alive()
    assert relay.stop() == 0
