"""Crashes, shutdown, hostile input: the relay never loses a forwarded frame and never falls over."""

import asyncio
import gzip
import http.client
import signal
import time

import pytest
import websockets
from conftest import free_port, http_get, metric, recordings_list, recordings_show
from peers import Backend, Charger16, Tap, open_charger, raw_websocket, session_16
from ocpp.v16 import call as call16


def texts(entries, leg, direction, charger=None):
    return [e["text"] for e in entries if "text" in e and e["leg"] == leg and e["dir"] == direction and (charger is None or e["charger"] == charger)]


def test_kill_9_loses_no_forwarded_frame(start_relay):
    """Every frame that reached a peer is in the recording after the relay is killed with SIGKILL."""

    async def scenario():
        async with Backend() as backend:
            relay = start_relay(backend.url)
            ws = await open_charger(relay.url, "CP-KILL", ["ocpp1.6"])
            tap = Tap(ws)
            cp = Charger16("CP-KILL", tap)
            task = asyncio.create_task(cp.start())
            await session_16(cp)
            for _ in range(20):
                await cp.call(call16.Heartbeat())
            relay.process.send_signal(signal.SIGKILL)
            relay.process.wait()
            task.cancel()
            await backend.closed("CP-KILL")
            (_, backend_tap), = backend.sessions["CP-KILL"]
            return relay, tap, backend_tap

    relay, charger_tap, backend_tap = asyncio.run(scenario())
    assert len(backend_tap.received) > 25
    entries, warnings = recordings_show(relay.recordings)
    # Forwarded to the backend: recorded as sent on the upstream leg, in order.
    assert texts(entries, "upstream", "out") == backend_tap.received
    # Forwarded to the charger: recorded as sent on the charger leg, in order.
    assert texts(entries, "charger", "out") == charger_tap.received
    # The segment was never finished, and the listing still finds the connection.
    segments = list(relay.recordings.glob("*.ocrec.gz"))
    assert len(segments) == 1
    with pytest.raises(EOFError):
        gzip.open(segments[0]).read()
    listing = recordings_list(relay.recordings)
    assert [row.split()[0] for row in listing[1:]] == ["CP-KILL"]
    charger, start, still_open, last_seen, frames = listing[1].split()[:5]
    assert still_open == "open/last"  # never closed: the relay died
    assert int(frames) == sum(1 for e in entries if "text" in e)
    assert texts(entries, "charger", "in")[:5] == charger_tap.sent[:5]


@pytest.mark.parametrize("stop", [signal.SIGTERM, signal.SIGINT])
def test_sigterm_closes_both_legs_with_1001_and_finishes_the_recording(start_relay, stop):
    async def scenario():
        async with Backend(ask_after_boot=False) as backend:
            relay = start_relay(backend.url, config="timeouts:\n  shutdown: 60s\n")
            chargers = [await open_charger(relay.url, f"CP-TERM-{i}", ["ocpp1.6"]) for i in range(3)]
            for ws in chargers:
                await ws.send('[2,"1","Heartbeat",{}]')
                await asyncio.wait_for(ws.recv(), 10)
            relay.process.send_signal(stop)
            codes = []
            for ws in chargers:
                try:
                    await asyncio.wait_for(ws.recv(), 10)
                except websockets.exceptions.ConnectionClosed as closed:
                    codes.append(closed.rcvd.code if closed.rcvd else None)
            # Its peers answered the closes: the relay exits without waiting for timeouts.shutdown (60 s here).
            exit_code = await asyncio.get_running_loop().run_in_executor(None, relay.process.wait, 30)
            for i in range(3):
                await backend.closed(f"CP-TERM-{i}")
            return relay, backend, codes, exit_code

    relay, backend, codes, exit_code = asyncio.run(scenario())
    assert codes == [1001, 1001, 1001]
    assert exit_code == 0
    assert {backend.closes[f"CP-TERM-{i}"][0] for i in range(3)} == {1001}
    # The segment is a complete gzip file, and its index says it ended cleanly.
    (segment,) = relay.recordings.glob("*.ocrec.gz")
    data = gzip.open(segment).read()
    assert data.startswith(b"OCPPREC\x01")
    (index,) = relay.recordings.glob("*.idx")
    assert '"type":"end"' in index.read_text().splitlines()[-1]
    entries, warnings = recordings_show(relay.recordings)
    assert warnings == ""
    closes = [(e["charger"], e["leg"], e["code"], e["initiator"]) for e in entries if e.get("event") == "close"]
    assert sorted(closes) == sorted([(f"CP-TERM-{i}", leg, 1001, "relay") for i in range(3) for leg in ("charger", "upstream")])


def test_malformed_and_binary_frames_are_forwarded_as_they_came_and_recorded(start_relay):
    sent = ["this is not json", '[2,"1"]', '{"not":"an array"}', '[9,"x",{}]', b"\x00\x01\xfe\xff binary", '[2,"ok","Heartbeat",{}]']

    async def scenario():
        async with Backend(ask_after_boot=False) as backend:
            relay = start_relay(backend.url)
            ws = await open_charger(relay.url, "CP-BAD", ["ocpp1.6"])
            for message in sent:
                await ws.send(message)
            answer = await asyncio.wait_for(ws.recv(), 5)
            while '"ok"' not in answer:
                answer = await asyncio.wait_for(ws.recv(), 5)
            await ws.close()
            await backend.closed("CP-BAD")
            (_, backend_tap), = backend.sessions["CP-BAD"]
            return relay, backend_tap

    relay, backend_tap = asyncio.run(scenario())
    assert backend_tap.received == sent
    assert relay.alive()
    relay.stop()
    entries, _ = recordings_show(relay.recordings)
    charger_in = [e.get("text", e.get("binary")) for e in entries if e.get("leg") == "charger" and e.get("dir") == "in"]
    import base64

    assert charger_in == [m if isinstance(m, str) else base64.b64encode(m).decode() for m in sent]


def test_fragmented_messages_are_joined(start_relay):
    async def scenario():
        async with Backend(ask_after_boot=False) as backend:
            relay = start_relay(backend.url)
            ws = await open_charger(relay.url, "CP-FRAG", ["ocpp1.6"])
            await ws.send(['[2,"f1",', '"Heartbeat"', ",{}]"])
            answer = await asyncio.wait_for(ws.recv(), 5)
            await ws.close()
            (_, backend_tap), = backend.sessions["CP-FRAG"]
            return relay, backend_tap, answer

    relay, backend_tap, answer = asyncio.run(scenario())
    assert backend_tap.received == ['[2,"f1","Heartbeat",{}]']
    assert answer.startswith('[3,"f1",')


def test_oversized_frame_closes_that_charger_with_1009_and_no_other(start_relay):
    async def scenario():
        async with Backend(ask_after_boot=False) as backend:
            relay = start_relay(backend.url, "--max-frame-size", "64KiB")
            big = await open_charger(relay.url, "CP-BIG", ["ocpp1.6"])
            small = await open_charger(relay.url, "CP-SMALL", ["ocpp1.6"])
            await big.send('[2,"big","DataTransfer",{"vendorId":"x","data":"' + "A" * 100_000 + '"}]')
            with pytest.raises(websockets.exceptions.ConnectionClosed) as closed:
                await asyncio.wait_for(big.recv(), 5)
            await small.send('[2,"s1","Heartbeat",{}]')
            answer = await asyncio.wait_for(small.recv(), 5)
            await small.close()
            await backend.closed("CP-BIG")
            await backend.closed("CP-SMALL")
            return relay, backend, closed.value, answer

    relay, backend, closed, answer = asyncio.run(scenario())
    assert closed.rcvd.code == 1009
    assert answer.startswith('[3,"s1",')
    assert relay.alive()
    # The backend never saw the oversized frame; its leg was closed cleanly.
    (_, big_tap), = backend.sessions["CP-BIG"]
    assert big_tap.received == []
    assert backend.closes["CP-BIG"][0] == 1001
    relay.stop()
    entries, _ = recordings_show(relay.recordings)
    errors = [e for e in entries if e.get("event") == "error" and e["charger"] == "CP-BIG"]
    assert errors and "1009" in errors[0]["message"]


@pytest.mark.parametrize(
    "raw_id, identity, upstream_segment",
    [
        ("..%2F..%2Fetc%2Fpasswd", "../../etc/passwd", "..%2F..%2Fetc%2Fpasswd"),
        ("..", "..", "%2E%2E"),
        ("CP%20with%20space", "CP with space", "CP%20with%20space"),
        ("Z%C3%A4hler", "Zähler", "Z%C3%A4hler"),
        ("X" * 300, "X" * 300, "X" * 300),
    ],
)
def test_hostile_identities_are_data_not_paths(start_relay, raw_id, identity, upstream_segment):
    async def scenario():
        async with Backend(ask_after_boot=False) as backend:
            relay = start_relay(backend.url)
            ws = await open_charger(relay.url, raw_id, ["ocpp1.6"])
            await ws.send('[2,"1","Heartbeat",{}]')
            await asyncio.wait_for(ws.recv(), 5)
            await ws.close()
            await backend.closed(upstream_segment)  # the backend knows it by its path segment
            return relay, backend

    relay, backend = asyncio.run(scenario())
    assert backend.requests[0][0] == "/ocpp/" + upstream_segment
    relay.stop()
    # Nothing but segment files and their indexes, all directly inside the recordings folder.
    created = list(relay.recordings.parent.rglob("*"))
    assert all(p.parent == relay.recordings or p.parent == relay.recordings.parent for p in created)
    assert {p.suffix for p in relay.recordings.iterdir()} <= {".gz", ".idx"}
    entries, _ = recordings_show(relay.recordings, "--charger", identity)
    assert [e["charger"] for e in entries if e.get("event") == "open"] == [identity]


@pytest.mark.parametrize("path, status", [("/ocpp/", 404), ("/ocpp/%00", 400), ("/ocpp/a%zz", 400), ("/ocpp/" + "Y" * 2000, 400)])
def test_invalid_identities_are_refused_clearly(start_relay, path, status):
    async def scenario():
        async with Backend(ask_after_boot=False) as backend:
            relay = start_relay(backend.url)
            base = relay.url.rsplit("/ocpp", 1)[0]
            try:
                await websockets.connect(base + path, subprotocols=["ocpp1.6"], open_timeout=5)
            except websockets.exceptions.InvalidStatus as error:
                return relay, backend, error.response.status_code
            return relay, backend, 101

    relay, backend, got = asyncio.run(scenario())
    assert got == status
    assert backend.requests == []  # never dialled upstream
    assert relay.alive()


def test_plain_http_gets_426(start_relay):
    relay = start_relay("ws://127.0.0.1:9/ocpp")
    host, port = relay.url.split("//")[1].split("/")[0].split(":")
    connection = http.client.HTTPConnection(host, int(port), timeout=5)
    connection.request("GET", "/ocpp/CP1")
    response = connection.getresponse()
    assert response.status == 426
    assert b"WebSocket" in response.read()


def test_clients_that_never_finish_their_handshake_are_dropped(start_relay):
    """Slowloris: a socket that sends nothing, or half a request, is closed after timeouts.handshake."""

    async def scenario():
        async with Backend(ask_after_boot=False) as backend:
            relay = start_relay(backend.url, config="timeouts:\n  handshake: 700ms\n")
            host, port = relay.url.split("//")[1].split("/")[0].split(":")
            started = time.monotonic()
            silent_reader, silent = await asyncio.open_connection(host, int(port))
            partial_reader, partial = await asyncio.open_connection(host, int(port))
            partial.write(b"GET /ocpp/CP-SLOW HTTP/1.1\r\nHost: relay\r\nUpgrade: websocket\r\n")
            # A charger that completes its handshake in time is served as usual, and stays.
            charger = await open_charger(relay.url, "CP-FAST", ["ocpp1.6"])
            closed_after = []
            for reader in (silent_reader, partial_reader):
                assert await asyncio.wait_for(reader.read(), 30) == b""  # the relay closed it
                closed_after.append(time.monotonic() - started)
            for writer in (silent, partial):
                writer.close()
            await charger.send('[2,"h","Heartbeat",{}]')
            answer = await asyncio.wait_for(charger.recv(), 5)
            await charger.close()
            return relay, backend, closed_after, answer

    relay, backend, closed_after, answer = asyncio.run(scenario())
    # Not before the handshake timeout (700 ms; the lower bound cannot be met early by a slow machine).
    assert all(t >= 0.65 for t in closed_after), closed_after
    assert answer.startswith('[3,"h",')
    assert list(backend.sessions) == ["CP-FAST"]  # the half request never dialled upstream
    assert "handshake timed out" in relay.log()
    assert relay.alive()


def scraped(port, name):
    """A metric's value from the relay's /metrics (0 while the endpoint is not up yet)."""
    try:
        _, body = http_get(f"http://127.0.0.1:{port}/metrics")
    except OSError:
        return 0.0
    return metric(body, name)


def test_a_storm_dials_a_slot_at_a_time_and_a_silent_client_holds_no_slot(start_relay):
    """limits.handshakes bounds the handshakes at once: in a storm the others wait their turn (none is refused, none
    dropped) and the backend never sees more upgrades at once; a client that never sends its request holds no slot."""

    async def scenario():
        async with Backend(ask_after_boot=False) as backend:
            backend.upgrade_delay = 0.4
            metrics_port = free_port()
            relay = start_relay(
                backend.url,
                config=f"event_loops: 1\nlimits:\n  handshakes: 1\nmetrics:\n  listen: 127.0.0.1:{metrics_port}\n",
            )
            host, port = relay.url.split("//")[1].split("/")[0].split(":")
            _, silent = await asyncio.open_connection(host, int(port))  # slowloris: holds no slot
            started = time.monotonic()
            storm_task = asyncio.gather(*(open_charger(relay.url, f"CP-STORM-{i}", ["ocpp1.6"]) for i in range(5)))
            # While the first upgrade takes its time, the others are seen waiting for their slot.
            waiting = 0.0
            while waiting < 4 and not storm_task.done():
                await asyncio.sleep(0.05)
                waiting = await asyncio.to_thread(scraped, metrics_port, "ocpp_relay_handshakes_waiting")
            chargers = await storm_task
            storm = time.monotonic() - started
            after = {
                name: await asyncio.to_thread(scraped, metrics_port, name)
                for name in ("ocpp_relay_handshakes_waiting", "ocpp_relay_handshakes_waited_total")
            }
            answers = []
            for charger in chargers:
                await charger.send('[2,"h","Heartbeat",{}]')
                answers.append(await asyncio.wait_for(charger.recv(), 5))
                await charger.close()
            silent.close()
            return backend, storm, answers, waiting, after

    backend, storm, answers, waiting, after = asyncio.run(scenario())
    assert waiting == 4  # the metrics say so while it happens
    assert after == {"ocpp_relay_handshakes_waiting": 0, "ocpp_relay_handshakes_waited_total": 4}
    assert backend.most_upgrading == 1  # one upstream handshake at a time
    assert sorted(backend.sessions) == [f"CP-STORM-{i}" for i in range(5)]
    assert all(answer.startswith('[3,"h",') for answer in answers)
    assert storm >= 5 * 0.4 - 0.05, storm  # one after the other, each waiting for the one before


def test_chargers_over_the_connection_limit_get_503_and_the_others_are_unaffected(start_relay):
    async def scenario():
        async with Backend(ask_after_boot=False) as backend:
            relay = start_relay(backend.url, config="limits:\n  max_connections: 2\n")
            first = await open_charger(relay.url, "CP-L1", ["ocpp1.6"])
            second = await open_charger(relay.url, "CP-L2", ["ocpp1.6"])
            with pytest.raises(websockets.exceptions.InvalidStatus) as refused:
                await open_charger(relay.url, "CP-L3", ["ocpp1.6"])
            await second.send('[2,"h","Heartbeat",{}]')
            answer = await asyncio.wait_for(second.recv(), 5)
            await first.close()
            await backend.closed("CP-L1")
            third = None
            for _ in range(200):  # a slot is free again once the relay has seen both legs of CP-L1 go
                try:
                    third = await open_charger(relay.url, "CP-L3", ["ocpp1.6"])
                    break
                except websockets.exceptions.InvalidStatus:
                    await asyncio.sleep(0.05)
            await third.send('[2,"t","Heartbeat",{}]')
            later = await asyncio.wait_for(third.recv(), 5)
            await second.close()
            await third.close()
            return relay, backend, refused.value.response, answer, later

    relay, backend, response, answer, later = asyncio.run(scenario())
    assert response.status_code == 503
    assert response.headers["Retry-After"] == "30"
    assert b"max_connections" in response.body
    assert answer.startswith('[3,"h",') and later.startswith('[3,"t",')
    assert [len(backend.sessions[i]) for i in ("CP-L1", "CP-L2", "CP-L3")] == [1, 1, 1]  # the refused one never dialled
    assert "connection limit reached" in relay.log()


def test_a_charger_that_stops_answering_pings_is_dropped_and_the_backend_sees_it_go(start_relay):
    """A vanished charger must not look connected to the backend (the relay answers the backend's pings)."""
    async def scenario():
        async with Backend(ask_after_boot=False) as backend:
            relay = start_relay(backend.url, config="timeouts:\n  ping: 300ms\n")
            _, dead = await raw_websocket(relay.url, "CP-DEAD")
            # From here on the dead charger reads nothing and answers nothing; the live one answers pings.
            live = await open_charger(relay.url, "CP-LIVE", ["ocpp1.6"])
            reader = asyncio.create_task(live.recv())
            # The backend sees the dead charger go (seen before this test closes the dead charger's socket).
            await backend.closed("CP-DEAD", timeout=30)
            dead_upstream_state = backend.sessions["CP-DEAD"][0][1].connection.state.name
            # The live one kept answering the relay's pings for at least as long.
            await asyncio.sleep(0.6)
            await live.send('[2,"h","Heartbeat",{}]')
            answer = await asyncio.wait_for(reader, 5)
            await live.close()
            dead.close()
            await backend.closed("CP-LIVE")
            return relay, dead_upstream_state, answer

    relay, dead_upstream_state, answer = asyncio.run(scenario())
    assert dead_upstream_state == "CLOSED"
    assert answer.startswith('[3,"h",')  # the live charger stayed, answering the relay's pings
    relay.stop()
    entries, _ = recordings_show(relay.recordings, "--charger", "CP-DEAD")
    assert any(e.get("event") == "error" and "no answer to a ping" in e.get("message", "") for e in entries)
    closes = {e["leg"]: e["code"] for e in entries if e.get("event") == "close"}
    assert closes == {"charger": 1006, "upstream": 1006}
    assert "no answer to a ping" in relay.log()


def test_a_reconnecting_charger_replaces_its_old_connection(start_relay):
    async def scenario():
        async with Backend(ask_after_boot=False) as backend:
            relay = start_relay(backend.url)
            first = await open_charger(relay.url, "CP-DUP", ["ocpp1.6"])
            await first.send('[2,"a","Heartbeat",{}]')
            await asyncio.wait_for(first.recv(), 10)
            second = await open_charger(relay.url, "CP-DUP", ["ocpp1.6"])
            with pytest.raises(websockets.exceptions.ConnectionClosed) as closed:
                await asyncio.wait_for(first.recv(), 5)
            await second.send('[2,"b","Heartbeat",{}]')
            answer = await asyncio.wait_for(second.recv(), 5)
            await second.close()
            await backend.closed("CP-DUP")
            return relay, backend, closed.value, answer

    relay, backend, closed, answer = asyncio.run(scenario())
    assert closed.rcvd.code == 1000
    assert answer.startswith('[3,"b",')
    assert len(backend.sessions["CP-DUP"]) == 2


def test_pings_are_answered_on_each_leg(start_relay):
    async def scenario():
        async with Backend(ask_after_boot=False) as backend:
            relay = start_relay(backend.url)
            ws = await open_charger(relay.url, "CP-PING", ["ocpp1.6"])
            latency = await asyncio.wait_for(await ws.ping(), 5)
            await ws.send('[2,"1","Heartbeat",{}]')
            await asyncio.wait_for(ws.recv(), 10)
            (cp, backend_tap), = backend.sessions["CP-PING"]
            upstream_latency = await asyncio.wait_for(await backend_tap.connection.ping(), 5)
            await ws.close()
            return latency, upstream_latency

    latency, upstream_latency = asyncio.run(scenario())
    # Each leg's ping was answered (by the relay: pings are not forwarded); the wait_for above bounds the time.
    assert latency >= 0 and upstream_latency >= 0


def test_a_flooding_charger_is_slowed_to_its_message_rate_and_the_others_are_not(start_relay):
    config = "limits:\n  messages_per_second: 100\n  message_burst: 20\n"
    flood = 300

    async def scenario():
        async with Backend(ask_after_boot=False) as backend:
            relay = start_relay(backend.url, config=config)
            flooder = await open_charger(relay.url, "CP-FLOOD", ["ocpp1.6"])
            polite = await open_charger(relay.url, "CP-POLITE", ["ocpp1.6"])
            started = time.monotonic()
            for i in range(flood):  # as fast as the socket takes them, answers unread
                await flooder.send(f'[2,"f{i}","Heartbeat",{{}}]')
            for i in range(10):
                await polite.send(f'[2,"p{i}","Heartbeat",{{}}]')
                await asyncio.wait_for(polite.recv(), 10)
            polite_done = time.monotonic()
            answers = [await asyncio.wait_for(flooder.recv(), 30) for _ in range(flood)]
            flood_done = time.monotonic()
            flood_seconds = flood_done - started
            await flooder.close()
            await polite.close()
            return relay, backend, flood_seconds, polite_done < flood_done, answers

    relay, backend, flood_seconds, polite_first, answers = asyncio.run(scenario())
    # Nothing is dropped: every message reached the backend and was answered, in order…
    (_, tap), = backend.sessions["CP-FLOOD"]
    assert tap.received == [f'[2,"f{i}","Heartbeat",{{}}]' for i in range(flood)]
    assert [a.split('"')[1] for a in answers] == [f"f{i}" for i in range(flood)]
    # …at about the configured rate ((300 - 20) / 100 = 2.8 s; without a limit it takes a fraction of a second)…
    assert flood_seconds >= 2.5
    # …while the other charger was served in between: its ten round trips were over before the flood was.
    assert polite_first
    assert "more than 100.0 messages/s" in relay.log()


def test_a_peer_that_never_answers_the_close_holds_shutdown_for_timeouts_shutdown_and_readyz_says_so(start_relay):
    """SIGTERM with a charger that reads nothing: /readyz is 503 from the moment the shutdown starts, and the relay
    exits (0, recording finished) once timeouts.shutdown is over, not before and not never."""
    import urllib.error

    from conftest import free_port, http_get

    metrics_port = free_port()

    def readyz():
        try:
            return http_get(f"http://127.0.0.1:{metrics_port}/readyz")
        except (urllib.error.URLError, ConnectionError):
            return None, "gone"

    async def scenario():
        async with Backend(ask_after_boot=False) as backend:
            relay = start_relay(
                backend.url,
                config=f"timeouts:\n  shutdown: 2s\n  close: 30s\nmetrics:\n  listen: '127.0.0.1:{metrics_port}'\n",
            )
            _, writer = await raw_websocket(relay.url, "CP-DEAF")
            loop = asyncio.get_running_loop()
            before = await loop.run_in_executor(None, readyz)
            started = time.monotonic()
            relay.process.send_signal(signal.SIGTERM)
            # The signal takes a moment to arrive; from then on, and for the whole drain, readiness is 503.
            during = None
            while relay.alive() and time.monotonic() - started < 30:
                answer = await loop.run_in_executor(None, readyz)
                if answer[0] == 503:
                    during = answer
                    break
                await asyncio.sleep(0.02)
            still_draining = relay.alive()
            exit_code = await loop.run_in_executor(None, relay.process.wait, 30)
            waited = time.monotonic() - started
            writer.close()
            return relay, before, during, still_draining, exit_code, waited

    relay, before, during, still_draining, exit_code, waited = asyncio.run(scenario())
    assert before == (200, "ready\n")
    assert during is not None and "shutting down" in during[1], during
    assert still_draining  # 503 came while connections were still being closed, not after
    assert exit_code == 0
    assert waited >= 1.9  # it waited for the charger's close for timeouts.shutdown (the ceiling above bounds it)
    (segment,) = relay.recordings.glob("*.ocrec.gz")
    assert gzip.open(segment).read().startswith(b"OCPPREC")  # finished: a complete gzip stream


def test_an_upstream_that_stops_answering_pings_is_dropped_and_the_charger_sees_it_go(start_relay):
    async def scenario():
        async with Backend(ask_after_boot=False) as backend:
            relay = start_relay(backend.url, config="timeouts:\n  ping: 300ms\n")
            ws = await open_charger(relay.url, "CP-UPDEAD", ["ocpp1.6"])
            await ws.send('[2,"1","Heartbeat",{}]')
            await asyncio.wait_for(ws.recv(), 10)
            (_, tap), = backend.sessions["CP-UPDEAD"]
            tap.connection.transport.pause_reading()  # the backend reads nothing more, pings included
            with pytest.raises(websockets.exceptions.ConnectionClosed) as closed:
                while True:
                    await asyncio.wait_for(ws.recv(), 30)
            tap.connection.transport.resume_reading()
            return relay, closed.value

    relay, closed = asyncio.run(scenario())
    assert closed.rcvd is None  # mirrored as a lost connection (1006), as the charger would see a dead backend
    relay.stop()
    entries, _ = recordings_show(relay.recordings, "--charger", "CP-UPDEAD")
    errors = [e for e in entries if e.get("event") == "error"]
    assert any(e["leg"] == "upstream" and "no answer to a ping" in e["message"] for e in errors), errors
    assert {e["leg"]: e["code"] for e in entries if e.get("event") == "close"} == {"upstream": 1006, "charger": 1006}


def test_a_segment_is_rolled_by_age(start_relay):
    async def scenario():
        async with Backend(ask_after_boot=False) as backend:
            relay = start_relay(backend.url, config="recordings:\n  roll_age: 1s\n")
            ws = await open_charger(relay.url, "CP-AGE", ["ocpp1.6"])
            for i in range(3):
                await ws.send(f'[2,"{i}","Heartbeat",{{}}]')
                await asyncio.wait_for(ws.recv(), 10)
                await asyncio.sleep(1.1)  # past roll_age: the next write starts a new segment
            await ws.close()
            await backend.closed("CP-AGE")
            return relay

    relay = asyncio.run(scenario())
    assert relay.stop() == 0
    segments = sorted(relay.recordings.glob("*.ocrec.gz"))
    assert len(segments) >= 3, segments
    for segment in segments:
        assert gzip.open(segment).read().startswith(b"OCPPREC")  # each one finished
    entries, warnings = recordings_show(relay.recordings)
    assert warnings == ""
    # The connection continues across segments: every heartbeat and answer is there once, in order.
    ids = [e["text"].split('"')[1] for e in entries if "text" in e and e["leg"] == "charger" and e["dir"] == "in"]
    assert ids == ["0", "1", "2"]
