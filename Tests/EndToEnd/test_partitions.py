"""Partitions: packets dropped silently between the relay and its backend (no RST, no FIN), made with a network
namespace for the backend, a veth pair into it and the blackhole qdisc on both ends (needs root, as CI has)."""

import asyncio
import datetime
import json
import os
import subprocess
import sys
import time

import pytest
import websockets

from conftest import ROOT, recordings_show

HERE = os.path.dirname(__file__)
PING = 0.5  # timeouts.ping of the relays under test, in seconds


def ip(*args, namespace=None):
    prefix = ["ip", "netns", "exec", namespace] if namespace else []
    subprocess.run([*prefix, *args], check=True, capture_output=True, text=True)


@pytest.fixture
def backend_namespace():
    """A network namespace holding the backend, reached over a veth pair: (namespace, address, partition, heal)."""
    suffix = f"{os.getpid() % 10000}"
    namespace, host_dev, ns_dev = f"ocppr-{suffix}", f"ocr{suffix}h", f"ocr{suffix}n"
    subnet = 16 + os.getpid() % 200
    host_ip, ns_ip = f"10.{subnet}.77.1", f"10.{subnet}.77.2"
    ip("ip", "netns", "add", namespace)
    try:
        ip("ip", "link", "add", host_dev, "type", "veth", "peer", "name", ns_dev)
        ip("ip", "link", "set", ns_dev, "netns", namespace)
        ip("ip", "addr", "add", f"{host_ip}/30", "dev", host_dev)
        ip("ip", "link", "set", host_dev, "up")
        ip("ip", "addr", "add", f"{ns_ip}/30", "dev", ns_dev, namespace=namespace)
        ip("ip", "link", "set", ns_dev, "up", namespace=namespace)
        ip("ip", "link", "set", "lo", "up", namespace=namespace)

        def partition():
            ip("tc", "qdisc", "add", "dev", host_dev, "root", "blackhole")
            ip("tc", "qdisc", "add", "dev", ns_dev, "root", "blackhole", namespace=namespace)

        def heal():
            ip("tc", "qdisc", "del", "dev", host_dev, "root")
            ip("tc", "qdisc", "del", "dev", ns_dev, "root", namespace=namespace)

        yield namespace, ns_ip, partition, heal
    finally:
        subprocess.run(["ip", "link", "del", host_dev], capture_output=True)
        subprocess.run(["ip", "netns", "del", namespace], capture_output=True)


class NamespacedBackend:
    """netns_backend.py in the namespace; `frames` are what it received, with its receive times."""

    def __init__(self, namespace, address):
        self.process = subprocess.Popen(
            ["ip", "netns", "exec", namespace, sys.executable, os.path.join(HERE, "netns_backend.py"), address],
            stdout=subprocess.PIPE, text=True, cwd=HERE,
        )
        self.port = json.loads(self.process.stdout.readline())["port"]
        self.url = f"ws://{address}:{self.port}/ocpp"

    def stop(self):
        self.process.kill()
        out, _ = self.process.communicate(timeout=10)
        return [json.loads(line) for line in out.splitlines()]


def test_a_partitioned_backend_is_noticed_within_two_pings_and_its_unsent_frames_never_arrive(start_relay, backend_namespace):
    """A MeterValues sent into a partition sits in the kernel's send queue. The relay drops the silent upstream after
    its ping goes unanswered, and tells the charger; the charger will send it again on its next connection. Had the
    dead connection been closed gracefully, the queued frame would reach the backend when the partition heals, a
    second copy; reset, it never does."""
    namespace, address, partition, heal = backend_namespace
    backend = NamespacedBackend(namespace, address)
    try:
        relay = start_relay(backend.url, config=f"timeouts:\n  ping: {int(PING * 1000)}ms\n")

        async def scenario():
            charger = await websockets.connect(f"{relay.url}/CP-PARTITION", subprotocols=["ocpp1.6"], ping_interval=None)
            await charger.send('[2,"boot","BootNotification",{"chargePointVendor":"V","chargePointModel":"M"}]')
            assert json.loads(await asyncio.wait_for(charger.recv(), 10))[1] == "boot"
            partition()
            await charger.send(
                '[2,"into-the-partition","MeterValues",{"connectorId":1,"meterValue":[{"timestamp":"2026-12-07T10:00:00Z",'
                '"sampledValue":[{"value":"1234"}]}]}]'
            )
            # The relay notices the silent backend (ping unanswered) and drops it; the charger's connection goes too.
            began = time.monotonic()
            with pytest.raises(websockets.ConnectionClosed):
                while True:
                    await asyncio.wait_for(charger.recv(), 10)
            dropped_after = time.monotonic() - began
            heal()
            healed_at = time.monotonic()
            await asyncio.sleep(4)  # several retransmission timeouts: a graceful close would have delivered by now
            return dropped_after, healed_at

        dropped_after, healed_at = asyncio.run(scenario())
    finally:
        frames = backend.stop()
    # Noticed within two ping intervals of the backend's last frame (the boot's answer, just before the partition),
    # whatever the phase of the loop's shared timer; a fifth of a second more for scheduling.
    assert dropped_after < 2 * PING + 0.2, dropped_after
    received = [f["frame"] for f in frames if "frame" in f]
    assert any('"boot"' in frame for frame in received), received
    late = [f for f in frames if "frame" in f and "into-the-partition" in f["frame"]]
    assert late == [], f"delivered {late[0]['at'] - healed_at:.2f} s after the partition healed"
    relay.stop()
    assert "no answer to a ping" in relay.log() and "connection reset" in relay.log()


def test_with_a_grace_a_partitioned_backend_keeps_the_charger_and_its_call_arrives_once_after_the_heal(
    start_relay, backend_namespace
):
    """The same partition with `timeouts.reconnect_grace`: the relay notices the silent backend within two ping
    intervals and resets that leg (its queued MeterValues is discarded), keeps the charger, and redials until the
    partition heals; the MeterValues, never answered, goes out again on the new connection: the backend receives it
    exactly once and the charger gets its answer, without ever being disconnected."""
    namespace, address, partition, heal = backend_namespace
    backend = NamespacedBackend(namespace, address)
    try:
        relay = start_relay(
            backend.url,
            config=f"timeouts:\n  ping: {int(PING * 1000)}ms\n  reconnect_grace: 30s\n  upstream: 1s\n",
        )

        async def scenario():
            charger = await websockets.connect(f"{relay.url}/CP-PARTITION-GRACE", subprotocols=["ocpp1.6"], ping_interval=None)
            await charger.send('[2,"boot","BootNotification",{"chargePointVendor":"V","chargePointModel":"M"}]')
            assert json.loads(await asyncio.wait_for(charger.recv(), 10))[1] == "boot"
            partition()
            await charger.send(
                '[2,"into-the-partition","MeterValues",{"connectorId":1,"meterValue":[{"timestamp":"2026-12-07T10:00:00Z",'
                '"sampledValue":[{"value":"1234"}]}]}]'
            )
            await asyncio.sleep(3 * PING)
            # Kept: the relay answers the charger's Heartbeat while the backend is unreachable.
            await charger.send('[2,"beat","Heartbeat",{}]')
            beat = json.loads(await asyncio.wait_for(charger.recv(), 5))
            heal()
            answer = json.loads(await asyncio.wait_for(charger.recv(), 20))
            await charger.close()
            return beat, answer

        beat, answer = asyncio.run(scenario())
    finally:
        frames = backend.stop()
    assert beat[:2] == [3, "beat"] and "currentTime" in beat[2], beat
    assert answer[:2] == [3, "into-the-partition"], answer
    received = [f["frame"] for f in frames if "frame" in f]
    assert sum('"into-the-partition"' in frame for frame in received) == 1, received
    assert not any('"beat"' in frame for frame in received), "the relay answered the Heartbeat itself"
    relay.stop()
    entries, _ = recordings_show(relay.recordings)
    times = {
        name: next(datetime.datetime.fromisoformat(e["time"].replace("Z", "+00:00")) for e in entries if match(e))
        for name, match in {
            "sent": lambda e: "into-the-partition" in e.get("text", ""),
            "reset": lambda e: "connection reset" in e.get("message", ""),
        }.items()
    }
    noticed = (times["reset"] - times["sent"]).total_seconds()
    assert noticed < 2 * PING + 0.2, noticed
    assert not any(e.get("event") == "close" and e.get("leg") == "charger" and e.get("initiator") == "relay" for e in entries)


def test_a_partitioned_state_database_is_noticed_bounds_every_wait_and_refuses_new_chargers(start_relay, backend_namespace):
    """PostgreSQL (the shared translation state) in a network namespace behind a veth pair, partitioned with the
    blackhole qdisc: `/readyz` turns 503 and the log says the database is unreachable; a charger connecting
    meanwhile is refused with 502 within timeouts.upstream; a connected charger's StartTransaction, whose answer
    waits for a state write, is answered once the write's bound has passed, not when the partition ends; after the
    heal, /readyz is 200 again and chargers connect."""
    from ocpp.v16 import call as call16
    from conftest import free_port, http_get
    from peers import Backend, Charger16, now
    from servers import PASSWORD, Postgres
    from test_translation import MAPPINGS

    namespace, address, partition, heal = backend_namespace
    host_subnet = address.rsplit(".", 1)[0] + ".0/30"
    postgres = Postgres(namespace=namespace, address=address, clients=host_subnet)
    metrics = free_port()
    try:
        async def scenario():
            async with Backend(subprotocols=["ocpp2.0.1"], ask_after_boot=False) as backend:
                relay = start_relay(
                    backend.url, "--upstream-version", "2.0.1", "--mappings", MAPPINGS,
                    "--metrics-listen", f"127.0.0.1:{metrics}",
                    config=(
                        f"translation:\n  state: {postgres.url}\n  state_password_env: RELAY_DB_PASSWORD\n"
                        "timeouts:\n  upstream: 2s\n"
                    ),
                    env={"RELAY_DB_PASSWORD": PASSWORD},
                )
                ready = lambda: http_get(f"http://127.0.0.1:{metrics}/readyz")
                assert ready()[0] == 200, ready()
                ws = await websockets.connect(f"{relay.url}/CP-PG-PART", subprotocols=["ocpp1.6"], ping_interval=None)
                cp = Charger16("CP-PG-PART", ws)
                reader = asyncio.create_task(cp.start())
                await cp.call(call16.BootNotification(charge_point_vendor="V", charge_point_model="M"))
                partition()
                began = time.monotonic()
                start = await cp.call(call16.StartTransaction(connector_id=1, id_tag="TAG", meter_start=0, timestamp=now()))
                answered_after = time.monotonic() - began
                deadline = time.monotonic() + 20
                while ready()[0] == 200 and time.monotonic() < deadline:
                    await asyncio.sleep(0.5)
                during = ready()
                refused_began = time.monotonic()
                with pytest.raises(websockets.InvalidStatus) as refused:
                    await websockets.connect(f"{relay.url}/CP-PG-NEW", subprotocols=["ocpp1.6"], open_timeout=15)
                refused_after = time.monotonic() - refused_began
                heal()
                deadline = time.monotonic() + 30
                while ready()[0] != 200 and time.monotonic() < deadline:
                    await asyncio.sleep(0.5)
                after = ready()
                again = await websockets.connect(f"{relay.url}/CP-PG-NEW", subprotocols=["ocpp1.6"], open_timeout=15)
                await again.close()
                reader.cancel()
                await ws.close()
                return relay, start, answered_after, during, refused.value.response.status_code, refused_after, after

        relay, start, answered_after, during, status, refused_after, after = asyncio.run(scenario())
    finally:
        postgres.close()
    assert start.transaction_id is not None and 1.5 < answered_after < 6, answered_after
    assert during[0] == 503 and "state database unreachable" in during[1], during
    assert status == 502 and refused_after < 6, (status, refused_after)
    assert after[0] == 200, after
    relay.stop()
    log = relay.log()
    assert "the state database is unreachable" in log and "the state database is reachable again" in log, log[-3000:]
