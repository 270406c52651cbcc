"""/metrics after a known session, /healthz and /readyz, scraped over HTTP like Prometheus and a load balancer would."""

import asyncio
import collections
import json
import re
import socket
import time
import urllib.error
import urllib.request

from peers import Backend, open_charger, run_charger


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def get(url):
    try:
        with urllib.request.urlopen(url, timeout=10) as response:
            return response.status, response.read().decode()
    except urllib.error.HTTPError as error:
        return error.code, error.read().decode()


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
