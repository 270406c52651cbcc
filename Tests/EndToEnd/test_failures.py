"""Refusals, lost connections, close codes and credentials: what the charger sees and what is recorded."""

import asyncio
import gzip
import socket

import pytest
import websockets
from conftest import free_port, recordings_show
from peers import Backend, handshake_status, open_charger, run_charger


def refusal_status(relay_url, identity, headers=None):
    return asyncio.run(handshake_status(relay_url, identity, headers))


def test_upstream_down_is_502_and_recorded(start_relay):
    relay = start_relay(f"ws://127.0.0.1:{free_port()}/ocpp")
    status, _ = refusal_status(relay.url, "CP-DOWN")
    assert status == 502
    assert relay.alive()
    relay.stop()
    entries, _ = recordings_show(relay.recordings)
    refused = [e for e in entries if e.get("event") == "close"]
    assert len(refused) == 1 and refused[0]["refused"] and refused[0]["code"] == 502
    assert refused[0]["charger"] == "CP-DOWN"


@pytest.mark.parametrize("status", [401, 403, 404])
def test_upstream_refusal_reaches_the_charger_with_the_same_status(start_relay, status):
    async def scenario():
        async with Backend(refuse=status) as backend:
            relay = start_relay(backend.url)
            try:
                await open_charger(relay.url, "CP-REFUSED", ["ocpp1.6"])
            except websockets.exceptions.InvalidStatus as error:
                return relay, error.response.status_code, dict(error.response.headers.raw_items())
            return relay, 101, {}

    relay, got, headers = asyncio.run(scenario())
    assert got == status
    if status == 401:
        assert headers.get("WWW-Authenticate") == 'Basic realm="test-backend"'
    relay.stop()
    entries, _ = recordings_show(relay.recordings)
    closes = [e for e in entries if e.get("event") == "close"]
    assert [(c["refused"], c["code"]) for c in closes] == [(True, status)]


OFFER_NONE = "compression:\n  upstream: off\n"
OFFER = "compression:\n  upstream: offer\n"


@pytest.mark.parametrize(
    "config,answer,why",
    [
        (OFFER_NONE, "x-unknown-extension", "extension 'x-unknown-extension', which was not offered"),
        (OFFER_NONE, "permessage-deflate; server_max_window_bits=7", "extension 'permessage-deflate', which was not offered"),
        (OFFER, "x-unknown-extension", "extension 'x-unknown-extension', which was not offered"),
        (OFFER, "permessage-deflate; server_max_window_bits=7", "permessage-deflate answer is invalid"),
        (OFFER, "permessage-deflate; server_max_window_bits=13", "server_max_window_bits=13 is more than the 12 offered"),
    ],
)
def test_an_upstream_answering_outside_the_relays_offer_fails_the_dial(start_relay, config, answer, why):
    """RFC 6455 §4.1 and RFC 7692 §5: the client fails the connection when the server names an extension it did not
    offer, or parameters outside its offer (`compression.upstream: offer`: permessage-deflate with a 12-bit window;
    `off`: nothing): the charger is refused (502) and the recording says why."""

    async def scenario():
        async with Backend() as backend:
            backend.answer_extensions = answer
            relay = start_relay(backend.url, config=config)
            try:
                await open_charger(relay.url, "CP-EXT", ["ocpp1.6"])
            except websockets.exceptions.InvalidStatus as error:
                return relay, error.response.status_code, error.response.body.decode()
            return relay, 101, ""

    relay, status, body = asyncio.run(scenario())
    assert status == 502
    assert why in body, body
    assert relay.alive()
    relay.stop()
    entries, _ = recordings_show(relay.recordings)
    closes = [e for e in entries if e.get("event") == "close"]
    assert [(c["refused"], c["code"], c["charger"]) for c in closes] == [(True, 502, "CP-EXT")]


def test_upstream_that_never_answers_is_504(start_relay):
    silent = socket.socket()
    silent.bind(("127.0.0.1", 0))
    silent.listen(8)
    try:
        relay = start_relay(f"ws://127.0.0.1:{silent.getsockname()[1]}/ocpp", config="timeouts:\n  upstream: 500ms\n")
        status, _ = refusal_status(relay.url, "CP-SLOW")
        assert status == 504
        assert relay.alive()
    finally:
        silent.close()


def test_authorization_is_forwarded_and_the_password_never_recorded(start_relay):
    # "CP-AUTH:s3cret-passw0rd" in base64
    authorization = "Basic Q1AtQVVUSDpzM2NyZXQtcGFzc3cwcmQ="

    async def scenario():
        async with Backend(ask_after_boot=False) as backend:
            relay = start_relay(backend.url)
            await run_charger(relay.url, "CP-AUTH", "1.6", headers={"Authorization": authorization})
            return relay, backend

    relay, backend = asyncio.run(scenario())
    relay.stop()
    path, headers = backend.requests[0]
    assert path == "/ocpp/CP-AUTH"
    assert headers["Authorization"] == authorization
    raw = b"".join(gzip.open(p).read() for p in relay.recordings.glob("*.ocrec.gz"))
    index = b"".join(p.read_bytes() for p in relay.recordings.glob("*.idx"))
    log = relay.log().encode()
    for secret in (b"s3cret-passw0rd", authorization.encode(), b"Q1AtQVVUSDpzM2NyZXQtcGFzc3cwcmQ"):
        assert secret not in raw and secret not in index and secret not in log, secret
    entries, _ = recordings_show(relay.recordings)
    opened = [e for e in entries if e.get("event") == "open"][0]
    assert opened["authorization"] is True and opened["user"] == "CP-AUTH"


def test_close_code_and_reason_pass_through_both_ways(start_relay):
    async def scenario():
        async with Backend(ask_after_boot=False) as backend:
            relay = start_relay(backend.url)
            # The charger closes: the backend sees its code and reason.
            ws = await open_charger(relay.url, "CP-CLOSE", ["ocpp1.6"])
            await ws.close(code=4001, reason="charger maintenance")
            await backend.closed("CP-CLOSE")
            # The backend closes: the charger sees its code and reason.
            ws2 = await open_charger(relay.url, "CP-KICKED", ["ocpp1.6"])
            await ws2.send('[2,"1","Heartbeat",{}]')
            await asyncio.wait_for(ws2.recv(), 10)
            (_, tap), = backend.sessions["CP-KICKED"]
            await tap.connection.close(code=4002, reason="moved to another backend")
            with pytest.raises(websockets.exceptions.ConnectionClosed) as closed:
                await asyncio.wait_for(ws2.recv(), 10)
            await backend.closed("CP-KICKED")
            return relay, backend, closed.value

    relay, backend, kicked = asyncio.run(scenario())
    assert backend.closes["CP-CLOSE"] == (4001, "charger maintenance")
    assert (kicked.rcvd.code, kicked.rcvd.reason) == (4002, "moved to another backend")
    relay.stop()
    entries, _ = recordings_show(relay.recordings)
    closes = [(e["charger"], e["leg"], e["initiator"], e["code"], e["reason"]) for e in entries if e.get("event") == "close"]
    assert closes == [
        ("CP-CLOSE", "charger", "charger", 4001, "charger maintenance"),
        ("CP-CLOSE", "upstream", "relay", 4001, "charger maintenance"),
        ("CP-KICKED", "upstream", "upstream", 4002, "moved to another backend"),
        ("CP-KICKED", "charger", "relay", 4002, "moved to another backend"),
    ]


def test_upstream_dropping_the_connection_drops_the_charger(start_relay):
    async def scenario():
        async with Backend(ask_after_boot=False) as backend:
            backend.drop_after = 2
            relay = start_relay(backend.url)
            ws = await open_charger(relay.url, "CP-DROP", ["ocpp1.6"])
            await ws.send('[2,"1","Heartbeat",{}]')
            await asyncio.wait_for(ws.recv(), 10)
            await ws.send('[2,"2","Heartbeat",{}]')
            with pytest.raises(websockets.exceptions.ConnectionClosed):
                while True:
                    await asyncio.wait_for(ws.recv(), 5)
            return relay, ws.close_code

    relay, code = asyncio.run(scenario())
    # A lost upstream is mirrored as a lost connection: no close frame, as if the charger had been direct.
    assert code == 1006
    assert relay.alive()
    relay.stop()
    entries, _ = recordings_show(relay.recordings)
    closes = [(e["leg"], e["code"]) for e in entries if e.get("event") == "close"]
    assert closes == [("upstream", 1006), ("charger", 1006)]
