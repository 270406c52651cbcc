"""Backend restarts within `timeouts.reconnect_grace`: the relay keeps its chargers while it dials the backend again.

The backend is the `ocpp` package's, as its own process (netns_backend.py) so that it can be killed with SIGKILL and
started again on the same port, or in-process where a graceful restart (a close with 1001) is what is tested. The
chargers are the `ocpp` package's too: every message either side sends is checked against the OCA schemas."""

import asyncio
import json
import os
import pathlib
import re
import signal
import subprocess
import sys
import time
import urllib.request

import pytest
import websockets
from ocpp.v16 import call as call16
from websockets.asyncio.client import connect

from conftest import free_port, http_get, metric, recordings_show
from peers import Backend, Charger16, handshake_status, now

HERE = os.path.dirname(__file__)


class BackendProcess:
    """netns_backend.py on loopback at `port`: what it received and sent, with monotonic times. Its lines go to a
    file (a pipe nobody reads would stall it once full)."""

    count = 0

    def __init__(self, folder, port=0, refuse=None, meter_values_delay=0):
        BackendProcess.count += 1
        self.output = pathlib.Path(folder) / f"backend-{BackendProcess.count}.jsonl"
        args = [sys.executable, os.path.join(HERE, "netns_backend.py"), "127.0.0.1", str(port)]
        if refuse:
            args.append(str(refuse))
        with open(self.output, "w") as out:
            env = {**os.environ, "BACKEND_METER_VALUES_DELAY": str(meter_values_delay)}
            self.process = subprocess.Popen(args, stdout=out, text=True, cwd=HERE, env=env)
        deadline = time.monotonic() + 20
        while not self.output.read_text().strip() and time.monotonic() < deadline:
            time.sleep(0.02)
        self.port = json.loads(self.output.read_text().splitlines()[0])["port"]
        self.url = f"ws://127.0.0.1:{self.port}/ocpp"

    def kill(self):
        """SIGKILL: the backend's connections die without a close frame. Returns its lines."""
        self.process.send_signal(signal.SIGKILL)
        self.process.wait(timeout=10)
        return [json.loads(line) for line in self.output.read_text().splitlines() if line.strip()]


async def transaction_charger(relay_url, identity, stop, report, warm=None):
    """Boots, starts a transaction and sends MeterValues 1, 2, 3… until `stop`, then stops the transaction. Any
    disconnection is reported (the test expects none)."""
    try:
        async with connect(f"{relay_url}/{identity}", subprotocols=["ocpp1.6"], ping_interval=None) as ws:
            cp = Charger16(identity, ws)
            reader = asyncio.create_task(cp.start())
            await cp.call(call16.BootNotification(charge_point_vendor="Grace", charge_point_model="G1"))
            started = await cp.call(
                call16.StartTransaction(connector_id=1, id_tag="TAG-1", meter_start=0, timestamp=now())
            )
            sequence = 0
            while not stop.is_set():
                sequence += 1
                await cp.call(
                    call16.MeterValues(
                        connector_id=1,
                        transaction_id=started.transaction_id,
                        meter_value=[{"timestamp": now(), "sampled_value": [{"value": str(sequence)}]}],
                    )
                )
                if warm is not None and sequence == 1:
                    warm.add(identity)
                await asyncio.sleep(0.3)
            await cp.call(
                call16.StopTransaction(
                    meter_stop=sequence, timestamp=now(), transaction_id=started.transaction_id
                )
            )
            report[identity] = {"sent": sequence, "closed": ws.close_code}
            reader.cancel()
    except Exception as error:  # a disconnection or an unanswered call: the test says which charger
        report[identity] = {"error": repr(error)}


async def heartbeat_charger(relay_url, identity, stop, answers):
    """Sends a Heartbeat every quarter second and keeps the moments answers came."""
    async with connect(f"{relay_url}/{identity}", subprotocols=["ocpp1.6"], ping_interval=None) as ws:
        cp = Charger16(identity, ws)
        reader = asyncio.create_task(cp.start())
        await cp.call(call16.BootNotification(charge_point_vendor="Grace", charge_point_model="H1"))
        while not stop.is_set():
            answer = await cp.call(call16.Heartbeat())
            answers.append((time.monotonic(), answer.current_time))
            await asyncio.sleep(0.25)
        reader.cancel()


@pytest.mark.parametrize("compression", ["", "compression:\n  chargers: accept\n  upstream: offer\n"], ids=["plain", "compressed"])
def test_a_backend_killed_and_restarted_within_the_grace_loses_no_charger_and_no_message(start_relay, tmp_path, compression):
    """50 chargers mid-transaction and 5 that only beat their hearts; the backend is killed with SIGKILL and
    started again 1.5 s later. No charger is disconnected; every MeterValues reaches a backend, in order, and once,
    except a call the killed backend received and never answered (sent again on the new connection, as a charger's
    own retry would); Heartbeats are answered by the relay meanwhile. The same with both legs compressed (the
    peers offer permessage-deflate): what waited for the new connection is compressed for it."""
    # MeterValues answered after 1 s: the kill finds calls received and not answered, which are sent again.
    first = BackendProcess(tmp_path, meter_values_delay=1.0)
    port = first.port
    relay = start_relay(
        first.url,
        config="timeouts:\n  reconnect_grace: 15s\n  ping: 2s\nlimits:\n  redial_rate: 200\n" + compression,
    )
    report, answers = {}, []
    lines = []  # the killed backend's, then the restarted one's

    async def scenario():
        stop = asyncio.Event()
        warm = set()
        tasks = [
            asyncio.create_task(transaction_charger(relay.url, f"CP-GRACE-{i:02d}", stop, report, warm)) for i in range(50)
        ]
        tasks += [asyncio.create_task(heartbeat_charger(relay.url, f"CP-BEAT-{i}", stop, answers)) for i in range(5)]
        # Every charger in its transaction, its meter values flowing (however loaded the machine), then the kill.
        deadline = time.monotonic() + 60
        while len(warm) < 50 and time.monotonic() < deadline and not report:
            await asyncio.sleep(0.1)
        await asyncio.sleep(0.7)
        killed_at = time.monotonic()
        lines.append(first.kill())
        await asyncio.sleep(1.5)
        second = BackendProcess(tmp_path, port)
        restarted_at = time.monotonic()
        await asyncio.sleep(3)
        stop.set()
        await asyncio.wait_for(asyncio.gather(*tasks), 60)
        await asyncio.sleep(0.5)
        lines.append(second.kill())
        return killed_at, restarted_at

    killed_at, restarted_at = asyncio.run(scenario())
    errors = {identity: r for identity, r in report.items() if "error" in r}
    assert not errors, f"chargers disconnected or unanswered: {errors}\n{relay.log()[-3000:]}"
    assert len(report) == 50

    # Heartbeats while the backend was down were answered (by the relay, with its clock).
    during = [at for at, _ in answers if killed_at + 0.3 < at < restarted_at]
    assert len(during) >= 5, (len(during), killed_at, restarted_at)

    # Every MeterValues reached a backend: in order, once, but for calls the killed backend never answered.
    killed_lines, restarted_lines = lines
    unanswered = {json.loads(line["frame"])[1] for line in killed_lines if "frame" in line} - {
        json.loads(line["sent"])[1] for line in killed_lines if "sent" in line
    }
    for i in range(50):
        identity = f"CP-GRACE-{i:02d}"
        frames = [
            json.loads(line["frame"])
            for line in killed_lines + restarted_lines
            if line.get("identity") == identity and "frame" in line
        ]
        meter = [f for f in frames if f[0] == 2 and f[2] == "MeterValues"]
        ids = [f[1] for f in meter]
        twice = {m for m in ids if ids.count(m) > 1}
        assert twice <= unanswered, f"{identity}: answered calls delivered twice: {twice - unanswered}"
        assert all(ids.count(m) == 2 for m in twice), identity
        sequence = [int(f[3]["meterValue"][0]["sampledValue"][0]["value"]) for f in meter]
        assert list(dict.fromkeys(sequence)) == list(range(1, report[identity]["sent"] + 1)), (identity, sequence)
        assert [f[2] for f in frames].count("StartTransaction") == 1
        assert [f[2] for f in frames].count("StopTransaction") == 1

    resent = sum(int(n) for n in re.findall(r"(\d+) unanswered call\(s\) sent again", relay.log()))
    # Each charger has a MeterValues in flight about three quarters of the time (answered after 1 s, sent 0.3 s
    # after the last answer): the kill finds most of them.
    assert resent >= 10, resent

    # The relay says what it did: the grace, the redial and what it sent again, in the log and the recording.
    log = relay.log()
    assert "the charger is kept for 15 s" in log, log[-3000:]
    assert re.search(r"upstream connected again after [0-9.]+ s \(\d+ redial\(s\)\)", log), log[-3000:]
    relay.stop()
    entries, _ = recordings_show(relay.recordings, "--charger", "CP-GRACE-00")
    notes = [e["message"] for e in entries if "message" in e]
    assert any("timeouts.reconnect_grace" in note for note in notes), notes
    assert any("upstream connected again" in note for note in notes), notes


def test_a_backend_down_past_the_grace_closes_its_chargers_as_before(start_relay, tmp_path):
    """The grace runs out: the chargers are dropped as a lost upstream drops them (no close frame), not before the
    grace; the console showed them in grace meanwhile, and the metrics count the chargers given up."""
    backend = BackendProcess(tmp_path)
    metrics_port, console_port = free_port(), free_port()
    relay = start_relay(
        backend.url,
        config=(
            f"timeouts:\n  reconnect_grace: 2s\nmetrics:\n  listen: 127.0.0.1:{metrics_port}\n"
            f"console:\n  listen: 127.0.0.1:{console_port}\n  token_env: GRACE_TOKEN\n"
        ),
        env={"GRACE_TOKEN": "grace-token"},
    )

    async def scenario():
        chargers = []
        for i in range(3):
            ws = await connect(f"{relay.url}/CP-PAST-{i}", subprotocols=["ocpp1.6"], ping_interval=None)
            await ws.send(f'[2,"boot-{i}","BootNotification",{{"chargePointVendor":"V","chargePointModel":"M"}}]')
            assert json.loads(await asyncio.wait_for(ws.recv(), 10))[1] == f"boot-{i}"
            chargers.append(ws)
        backend.kill()
        killed = time.monotonic()
        await asyncio.sleep(0.8)
        request = urllib.request.Request(
            f"http://127.0.0.1:{console_port}/api/chargers", headers={"Authorization": "Bearer grace-token"}
        )
        with urllib.request.urlopen(request, timeout=10) as response:
            listed = json.loads(response.read())
        # A call held meanwhile is never answered: the charger's own retry applies on its next connection.
        await chargers[0].send('[2,"held","MeterValues",{"connectorId":1,"meterValue":[{"timestamp":"2026-12-07T10:00:00Z","sampledValue":[{"value":"1"}]}]}]')
        ended = []
        for ws in chargers:
            try:
                while True:
                    frame = await asyncio.wait_for(ws.recv(), 10)
                    assert json.loads(frame)[1] != "held", "a held call was answered"
            except websockets.ConnectionClosed:
                ended.append((time.monotonic() - killed, ws.close_code))
        return ended, listed

    ended, listed = asyncio.run(scenario())
    for after, code in ended:
        assert 1.8 <= after < 4.5, ended
        assert code == 1006, ended  # dropped as a lost upstream drops a charger: no close frame
    rows = listed if isinstance(listed, list) else listed.get("chargers", listed)
    text = json.dumps(rows)
    assert text.count("upstreamRedialingSince") >= 3 and '"upstreamRedialingSince": null' not in text, text
    metrics = http_get(f"http://127.0.0.1:{metrics_port}/metrics")[1]
    assert metric(metrics, "ocpp_relay_upstream_grace_given_up_total", reason="expired") == 3, metrics
    assert metric(metrics, "ocpp_relay_upstream_grace_chargers") == 0
    assert metric(metrics, "ocpp_relay_upstream_grace_messages_total", outcome="held") == 1


def test_a_redial_refused_with_401_closes_the_charger_with_that_status(start_relay):
    """The backend comes back refusing the charger: the charger is closed with 1008 naming the 401, and its next
    connection gets the 401 itself."""

    async def scenario():
        async with Backend(subprotocols=["ocpp1.6"], ask_after_boot=False) as backend:
            port = backend.port
            relay = start_relay(backend.url, config="timeouts:\n  reconnect_grace: 10s\n")
            ws = await connect(f"{relay.url}/CP-REFUSED", subprotocols=["ocpp1.6"], ping_interval=None)
            await ws.send('[2,"boot","BootNotification",{"chargePointVendor":"V","chargePointModel":"M"}]')
            await asyncio.wait_for(ws.recv(), 10)
        # The backend closed its connections with 1001 (going away); it comes back refusing everyone.
        async with Backend(subprotocols=["ocpp1.6"], refuse=401, port=port):
            try:
                while True:
                    await asyncio.wait_for(ws.recv(), 10)
            except websockets.ConnectionClosed:
                pass
            status, _ = await handshake_status(relay.url, "CP-REFUSED")
        return ws.close_code, ws.close_reason, status

    code, reason, status = asyncio.run(scenario())
    assert code == 1008 and "401" in reason, (code, reason)
    assert status == 401


def test_redials_are_spread_at_the_configured_rate(start_relay):
    """20 chargers lose their backend at once (a graceful restart, 1001); with limits.redial_rate 10 the new
    connections reach the restarted backend over about two seconds, not at once, and no charger notices."""

    async def scenario():
        async with Backend(subprotocols=["ocpp1.6"], ask_after_boot=False) as backend:
            port = backend.port
            relay = start_relay(backend.url, config="timeouts:\n  reconnect_grace: 20s\nlimits:\n  redial_rate: 10\n")
            chargers = []
            for i in range(20):
                ws = await connect(f"{relay.url}/CP-RATE-{i:02d}", subprotocols=["ocpp1.6"], ping_interval=None)
                await ws.send('[2,"boot","BootNotification",{"chargePointVendor":"V","chargePointModel":"M"}]')
                await asyncio.wait_for(ws.recv(), 10)
                chargers.append(ws)
        async with Backend(subprotocols=["ocpp1.6"], ask_after_boot=False, port=port) as restarted:
            deadline = time.monotonic() + 15
            while len(restarted.opened) < 20 and time.monotonic() < deadline:
                await asyncio.sleep(0.05)
            opened = sorted(restarted.opened.values())
            for i, ws in enumerate(chargers):
                await ws.send(f'[2,"after-{i}","Heartbeat",{{}}]')
                assert json.loads(await asyncio.wait_for(ws.recv(), 10)) [1] == f"after-{i}"
            beats = sum(1 for identity, cps in restarted.sessions.items() for cp, tap in cps if any('"Heartbeat"' in f for f in tap.received))
            for ws in chargers:
                await ws.close()
        return opened, [ws.close_code for ws in chargers], beats

    opened, codes, beats = asyncio.run(scenario())
    assert len(opened) == 20, opened
    spread = opened[-1] - opened[0]
    assert 1.5 <= spread < 6, spread  # 19 slots of 0.1 s, plus the backoff's jitter
    assert beats == 20, "every charger's Heartbeat after the restart reached the restarted backend"
    assert all(code == 1000 for code in codes), codes


def test_a_translated_charger_continues_its_transaction_across_a_backend_restart(start_relay):
    """A 1.6 charger on a 2.0.1 backend: the backend restarts (a graceful close, 1001) mid-transaction. The
    translation continues with its state: the backend sees the transaction started once, every meter value once
    (sent during the restart included) and ended once, under the same transaction id."""
    from test_translation import MAPPINGS

    async def scenario():
        async with Backend(subprotocols=["ocpp2.0.1"], ask_after_boot=False) as first:
            port = first.port
            relay = start_relay(
                first.url, "--upstream-version", "2.0.1", "--mappings", MAPPINGS,
                config="timeouts:\n  reconnect_grace: 15s\n",
            )
            ws = await connect(f"{relay.url}/CP-GRACE-TX", subprotocols=["ocpp1.6"], ping_interval=None)
            cp = Charger16("CP-GRACE-TX", ws)
            reader = asyncio.create_task(cp.start())
            await cp.call(call16.BootNotification(charge_point_vendor="Grace", charge_point_model="T1"))
            started = await cp.call(call16.StartTransaction(connector_id=1, id_tag="TAG-TX", meter_start=0, timestamp=now()))

            async def meter(value):
                await cp.call(
                    call16.MeterValues(
                        connector_id=1, transaction_id=started.transaction_id,
                        meter_value=[{"timestamp": now(), "sampled_value": [{"value": str(value)}]}],
                    )
                )

            for value in (100, 200):
                await meter(value)
        # The backend is gone: the next MeterValues is held until it is back.
        held = asyncio.create_task(meter(300))
        await asyncio.sleep(1)
        assert not held.done()
        async with Backend(subprotocols=["ocpp2.0.1"], ask_after_boot=False, port=port) as second:
            await asyncio.wait_for(held, 15)
            await meter(400)
            await cp.call(call16.StopTransaction(meter_stop=500, timestamp=now(), transaction_id=started.transaction_id))
            reader.cancel()
            await ws.close()
            return first.events.get("CP-GRACE-TX", []) + second.events.get("CP-GRACE-TX", []), ws.close_code

    events, code = asyncio.run(scenario())
    assert code == 1000
    kinds = [e["event_type"] for e in events]
    assert kinds.count("Started") == 1 and kinds.count("Ended") == 1, kinds
    ids = {e["transaction_info"]["transaction_id"] for e in events}
    assert len(ids) == 1, ids
    values = [
        sampled["value"]
        for e in events if e["event_type"] == "Updated"
        for reading in e.get("meter_value", []) for sampled in reading["sampled_value"]
    ]
    assert values == [100, 200, 300, 400], values
