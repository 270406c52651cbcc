"""/metrics after a known session, /healthz and /readyz, scraped over HTTP like Prometheus and a load balancer would."""

import asyncio
import collections
import json
import re
import socket
import time

import pytest
import websockets
from conftest import free_port
from conftest import http_get as get
from peers import Backend, handshake_status, open_charger, run_charger


def samples(text):
    """Prometheus text → {(name, frozenset(labels)): value}."""
    out = {}
    for line in text.splitlines():
        if not line or line.startswith("#"):
            continue
        match = re.match(r'^([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(.*)\})? (\S+)$', line)
        assert match, line
        name, labels, value = match.groups()
        pairs = frozenset(re.findall(r'(\w+)="([^"]*)"', labels or ""))
        out[(name, pairs)] = float(value)
    return out


def value(metrics, name, **labels):
    return metrics.get((name, frozenset(labels.items())), 0.0)


def test_metrics_after_a_known_session_and_health_endpoints(start_relay):
    metrics_port = free_port()
    base = f"http://127.0.0.1:{metrics_port}"

    async def scenario():
        async with Backend() as backend:
            relay = start_relay(backend.url, "--metrics-listen", f"127.0.0.1:{metrics_port}")
            ready_before = get(base + "/readyz")
            _, tap, _ = await run_charger(relay.url, "CP-METRICS", "1.6")
            try:
                await open_charger(relay.url, "", ["ocpp1.6"])  # no identity: 404 from the relay
            except Exception:
                pass
            await backend.closed("CP-METRICS")
            scraped = get(base + "/metrics")
            return relay, backend, tap, ready_before, scraped

    relay, backend, tap, ready_before, (status, text) = asyncio.run(scenario())
    assert ready_before == (200, "ready\n")
    assert status == 200
    m = samples(text)

    # What the charger sent and received, counted the way the relay labels it.
    sent = [json.loads(f) for f in tap.sent]
    received = [json.loads(f) for f in tap.received]
    call_action = {f[1]: f[2] for f in sent + received if f[0] == 2}
    expected = collections.Counter()
    for direction, frames in (("charger_to_upstream", sent), ("upstream_to_charger", received)):
        for f in frames:
            kind = {2: "call", 3: "result", 4: "error"}[f[0]]
            expected[(direction, kind, call_action[f[1]])] += 1
    assert expected[("charger_to_upstream", "call", "BootNotification")] == 1
    assert expected[("upstream_to_charger", "call", "GetConfiguration")] == 1
    for (direction, kind, action), count in expected.items():
        assert value(m, "ocpp_relay_messages_total", direction=direction, type=kind, action=action) == count, (direction, kind, action)
    relayed = sum(v for (name, _), v in m.items() if name == "ocpp_relay_messages_total")
    assert relayed == len(sent) + len(received)

    charger_calls = sum(1 for f in sent if f[0] == 2)
    assert value(m, "ocpp_relay_call_duration_seconds_count", answered_by="upstream") == charger_calls
    assert value(m, "ocpp_relay_call_duration_seconds_count", answered_by="charger") == 1
    assert value(m, "ocpp_relay_connections_accepted_total") == 1
    assert value(m, "ocpp_relay_connections_refused_total", status="404", by="relay") == 1
    assert value(m, "ocpp_relay_connected_chargers") == 0
    assert value(m, "ocpp_relay_recording_written_bytes_total") > 100

    # Liveness stays; readiness follows the upstream.
    assert get(base + "/healthz") == (200, "ok\n")
    time.sleep(5.2)  # past the readiness cache
    status, body = get(base + "/readyz")
    assert status == 503 and "upstream unreachable" in body
    assert get(base + "/nothing")[0] == 404


def test_failure_metric_families_count_what_happened(start_relay):
    """upstream_failures_total by reason, connections_refused_total by the upstream, translation notes and rate
    limiting, each caused once on purpose and counted."""
    from ocpp.v16 import call as call16
    from peers import Charger16, Tap

    metrics_port = free_port()
    silent = socket.socket()
    silent.bind(("127.0.0.1", 0))
    silent.listen(8)
    dead_port = free_port()

    async def scenario():
        async with Backend(ask_after_boot=False) as backend, Backend(refuse=403) as refusing, \
                Backend(ask_after_boot=False) as dropping, Backend(subprotocols=["ocpp2.0.1"], ask_after_boot=False) as new:
            dropping.drop_after = 1
            config = f"""
metrics:
  listen: "127.0.0.1:{metrics_port}"
timeouts:
  upstream: 500ms
limits:
  messages_per_second: 5
  message_burst: 2
routes:
  - {{name: down, chargers: ["glob:DOWN-*"], upstream: "ws://127.0.0.1:{dead_port}/ocpp"}}
  - {{name: slow, chargers: ["glob:SLOW-*"], upstream: "ws://127.0.0.1:{silent.getsockname()[1]}/ocpp"}}
  - {{name: refusing, chargers: ["glob:REF-*"], upstream: "{refusing.url}"}}
  - {{name: dropping, chargers: ["glob:DROP-*"], upstream: "{dropping.url}"}}
  - {{name: new, chargers: ["glob:XL-*"], upstream: "{new.url}", upstream_version: "2.0.1"}}
"""
            relay = start_relay(backend.url, config=config)
            statuses = {
                cp: (await handshake_status(relay.url, cp))[0] for cp in ("DOWN-1", "SLOW-1", "REF-1")
            }
            # An upstream that drops the connection after the first frame.
            dropped = await open_charger(relay.url, "DROP-1", ["ocpp1.6"])
            await dropped.send('[2,"1","Heartbeat",{}]')
            with pytest.raises(websockets.exceptions.ConnectionClosed):
                while True:
                    await asyncio.wait_for(dropped.recv(), 10)
            # A translated boot with a field 2.0.1 has no place for (meterType): a lossy note.
            ws = await open_charger(relay.url, "XL-1", ["ocpp1.6"])
            cp = Charger16("XL-1", Tap(ws))
            task = asyncio.create_task(cp.start())
            await cp.call(call16.BootNotification(charge_point_model="M", charge_point_vendor="V", meter_type="Inepro"))
            # A charger over its message rate (5/s, burst 2): slowed, every message still answered.
            flooder = await open_charger(relay.url, "FLOOD-1", ["ocpp1.6"])
            for i in range(8):
                await flooder.send(f'[2,"f{i}","Heartbeat",{{}}]')
            answers = [await asyncio.wait_for(flooder.recv(), 30) for _ in range(8)]
            await flooder.close()
            await ws.close()
            task.cancel()
            await backend.closed("FLOOD-1")
            scraped = get(f"http://127.0.0.1:{metrics_port}/metrics")
            return statuses, answers, scraped

    try:
        statuses, answers, (status, text) = asyncio.run(scenario())
    finally:
        silent.close()
    assert statuses == {"DOWN-1": 502, "SLOW-1": 504, "REF-1": 403}
    assert len(answers) == 8
    m = samples(text)
    assert value(m, "ocpp_relay_upstream_failures_total", reason="unreachable") == 1
    assert value(m, "ocpp_relay_upstream_failures_total", reason="timeout") == 1
    assert value(m, "ocpp_relay_upstream_failures_total", reason="lost") == 1
    assert value(m, "ocpp_relay_connections_refused_total", status="403", by="upstream") == 1
    assert value(m, "ocpp_relay_connections_refused_total", status="502", by="relay") == 1
    assert value(m, "ocpp_relay_connections_refused_total", status="504", by="relay") == 1
    assert value(m, "ocpp_relay_translation_diagnostics_total", kind="lossy") >= 1
    assert value(m, "ocpp_relay_rate_limited_total") == 1
