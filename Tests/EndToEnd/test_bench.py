"""The benchmark runs from a fresh clone (a short run: it is a measurement, never a pass/fail on figures)."""

import json
import subprocess

from conftest import BINARY, ROOT


def test_the_benchmark_runs_and_reports_every_target(tmp_path):
    output = tmp_path / "bench.json"
    out = subprocess.run(
        [BINARY, "bench", "--quick", "-o", str(output), "--mappings", str(ROOT / "Mappings")],
        capture_output=True, text=True, timeout=600,
    )
    assert out.returncode == 0, out.stdout + out.stderr
    assert "relay/nginx CPU per round trip" in out.stdout
    figures = json.loads(output.read_text())
    assert "mirrored relay/relay CPU per MeterValues round trip" in out.stdout
    for target in ("direct", "nginx", "relay", "relay-mirrored", "relay-translating"):
        assert figures["targets"][target]["latency_us"]["p50"] > 0, target
    for target in ("nginx", "relay", "relay-mirrored", "relay-translating"):
        assert figures["targets"][target]["cpu_us_per_round_trip_closed"]["median"] > 0, target
        assert figures["targets"][target]["storm"]["errors"] == 0, target
        # MeterValues inside a transaction went through every proxy (translated by the translating relay).
        meter_values = figures["targets"][target]["meter_values_in_transaction"]
        assert meter_values["cpu_us_per_round_trip_closed"]["median"] > 0, target
        assert meter_values["round_trips_per_second_closed"]["median"] > 0, target
    # 2.0.1 chargers: their transaction traffic through nginx and translated for the 1.6 backend by the relay.
    assert "reverse relay/nginx CPU per 2.0.1 TransactionEvent (meter values) round trip" in out.stdout
    for target in ("nginx-2.0.1", "relay-reverse"):
        meter_values = figures["targets"][target]["meter_values_in_transaction"]
        assert meter_values["cpu_us_per_round_trip_closed"]["median"] > 0, target
        assert meter_values["round_trips_per_second_closed"]["median"] > 0, target
    # Every pair with an OCPP 2.1 peer, beside nginx carrying the same chargers' traffic.
    for pair, baseline in (("relay-2.1-on-2.0.1", "nginx-2.1"), ("relay-2.1-on-1.6", "nginx-2.1"),
                           ("relay-1.6-on-2.1", "nginx"), ("relay-2.0.1-on-2.1", "nginx-2.0.1")):
        assert f"{pair}/{baseline} CPU per" in out.stdout, pair
        for target in (pair, baseline):
            meter_values = figures["targets"][target]["meter_values_in_transaction"]
            assert meter_values["cpu_us_per_round_trip_closed"]["median"] > 0, target
    # The translating relay with its state in PostgreSQL (the bench starts its own server), and the database's CPU.
    assert "PostgreSQL's CPU per translated MeterValues round trip" in out.stdout
    pg = figures["targets"]["relay-translating-pg"]
    assert pg["meter_values_in_transaction"]["cpu_us_per_round_trip_closed"]["median"] > 0
    # Measured in 10 ms clock ticks: a quick run may see none of PostgreSQL's (one write per 64 round trips).
    assert pg["database_cpu_us_per_meter_values_round_trip_closed"]["median"] >= 0
    assert figures["compression"]["ratio"] > 1
    # The replayer's own cost: a recorded day as 20 chargers against the bench's backend, every answer as recorded.
    replayer = figures["replayer"]
    assert replayer["chargers"] == 20 and replayer["round_trips"] == 20 * 129 and replayer["differences"] == 0
    assert replayer["cpu_us_per_round_trip"] > 0 and "µs CPU per round trip" in out.stdout
