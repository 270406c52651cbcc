"""Several relays, one translation state in PostgreSQL, behind HAProxy: a charger whose relay dies continues its
transaction through another; the newest connection of a charger wins across relays; PostgreSQL restarting loses
and repeats nothing. Real PostgreSQL and HAProxy from Debian's packages, started here on loopback."""

import asyncio
import json
import os
import signal
import subprocess
import time

import pytest
import websockets
from conftest import BINARY, free_port, http_get, recordings_show
from ocpp.v16 import call as call16
from peers import Backend, Charger16, Tap, now, open_charger
from servers import PASSWORD, HAProxy, Postgres
from test_translation import MAPPINGS, validate_recording


@pytest.fixture
def postgres():
    server = Postgres()
    yield server
    server.close()


def relay_config(postgres):
    return f"translation:\n  state: {postgres.url}\n  state_password_env: RELAY_DB_PASSWORD\n"


def start_fleet_relay(start_relay, backend, postgres, tmp_path, n):
    metrics = free_port()
    relay = start_relay(
        backend.url, "--upstream-version", "2.0.1", "--mappings", MAPPINGS, "--metrics-listen", f"127.0.0.1:{metrics}",
        config=relay_config(postgres), env={"RELAY_DB_PASSWORD": PASSWORD}, recordings=tmp_path / f"recordings-{n}",
    )
    relay.metrics = metrics
    relay.port = int(relay.url.split(":")[-1].split("/")[0])
    return relay


def connected(relay):
    status, body = http_get(f"http://127.0.0.1:{relay.metrics}/metrics")
    for line in body.splitlines():
        if line.startswith("ocpp_relay_connected_chargers "):
            return int(float(line.split()[1]))
    return 0


async def connect_until(url, identity, seconds=20):
    """A 1.6 charger connected (retrying while the balancer still sends it to a dead relay)."""
    deadline = time.monotonic() + seconds
    while True:
        try:
            ws = await open_charger(url, identity, ["ocpp1.6"])
            cp = Charger16(identity, Tap(ws))
            task = asyncio.create_task(cp.start())
            return ws, cp, task
        except (OSError, websockets.exceptions.InvalidStatus, websockets.exceptions.InvalidMessage, asyncio.TimeoutError):
            if time.monotonic() > deadline:
                raise
            await asyncio.sleep(0.2)


def meter(transaction_id, wh):
    return call16.MeterValues(
        connector_id=1, transaction_id=transaction_id,
        meter_value=[{"timestamp": now(), "sampled_value": [{"value": str(wh), "measurand": "Energy.Active.Import.Register", "unit": "Wh"}]}],
    )


async def start_transaction(url, identity, tag):
    ws, cp, task = await connect_until(url, identity)
    await cp.call(call16.BootNotification(charge_point_model="E2E", charge_point_vendor="ocpp-relay-tests"))
    start = await cp.call(call16.StartTransaction(connector_id=1, id_tag=tag, meter_start=100, timestamp=now()))
    await cp.call(meter(start.transaction_id, 150))
    return ws, cp, task, start


async def finish_transaction(url, identity, start, stop_wh):
    ws, cp, task = await connect_until(url, identity)
    results = [await cp.call(meter(start.transaction_id, stop_wh - 50))]
    results.append(await cp.call(call16.StopTransaction(meter_stop=stop_wh, timestamp=now(), transaction_id=start.transaction_id)))
    await ws.close()
    task.cancel()
    return results


def transactions(backend, identity):
    """The 2.0.1 transactions the backend saw for a charger: id → [(eventType, seqNo)]."""
    seen = {}
    for event in backend.events.get(identity, []):
        seen.setdefault(event["transaction_info"]["transaction_id"], []).append((event["event_type"], event["seq_no"]))
    return seen


def holder(relays):
    return next(r for r in relays if r.alive() and connected(r) > 0)


def test_a_charger_whose_relay_dies_continues_its_transaction_through_another(start_relay, postgres, tmp_path):
    async def scenario():
        async with Backend(subprotocols=["ocpp2.0.1"], ask_after_boot=False) as backend:
            relays = [start_fleet_relay(start_relay, backend, postgres, tmp_path, n) for n in range(3)]
            balancer = HAProxy([(r.port, r.metrics) for r in relays])
            try:
                ws, cp, task, start = await start_transaction(balancer.url, "CP-FLEET-1", "04A2B3C4")
                first = holder(relays)
                first.process.send_signal(signal.SIGKILL)
                first.process.wait()
                task.cancel()
                results = await finish_transaction(balancer.url, "CP-FLEET-1", start, 900)
            finally:
                balancer.close()
            return backend, relays, first, results

    backend, relays, first, results = asyncio.run(scenario())
    assert all(r is not None for r in results)
    (transaction, events), = transactions(backend, "CP-FLEET-1").items()
    assert [e for e, _ in events] == ["Started", "Updated", "Updated", "Ended"]
    assert [s for _, s in events] == sorted(s for _, s in events) and len({s for _, s in events}) == 4
    ended = backend.events["CP-FLEET-1"][-1]
    assert ended["meter_value"][-1]["sampled_value"][0]["value"] == 900
    for relay in relays:
        if relay.alive():
            relay.stop()
            validate_recording(recordings_show(relay.recordings)[0])
    # The charger's history across the relays reads as one: both connections, in time order, from three folders.
    folders = [str(r.recordings) for r in relays if r.recordings.exists()]
    entries, _ = recordings_show(*folders, "--charger", "CP-FLEET-1")
    frames = [e for e in entries if "text" in e and e["leg"] == "charger" and e["dir"] == "in"]
    actions = [json.loads(e["text"])[2] for e in frames if json.loads(e["text"])[0] == 2]
    assert actions == ["BootNotification", "StartTransaction", "MeterValues", "MeterValues", "StopTransaction"]
    assert [e["time"] for e in frames] == sorted(e["time"] for e in frames)
    assert len({e["connection"] for e in frames}) == 2
    listed = subprocess.run([BINARY, "recordings", "list", *folders], capture_output=True, text=True, timeout=60)
    assert listed.returncode == 0 and listed.stdout.count("CP-FLEET-1") == 2, listed.stdout


def test_thirty_chargers_keep_their_transactions_when_a_relay_dies(start_relay, postgres, tmp_path):
    ids = [f"CP-MANY-{n:02d}" for n in range(30)]

    async def scenario():
        async with Backend(subprotocols=["ocpp2.0.1"], ask_after_boot=False) as backend:
            relays = [start_fleet_relay(start_relay, backend, postgres, tmp_path, n) for n in range(3)]
            balancer = HAProxy([(r.port, r.metrics) for r in relays])
            try:
                opened = await asyncio.gather(*(start_transaction(balancer.url, i, f"TAG-{i[-2:]}") for i in ids))
                spread = [connected(r) for r in relays]
                victim = max(relays, key=connected)
                victim.process.send_signal(signal.SIGKILL)
                victim.process.wait()
                for _, _, task, _ in opened:
                    task.cancel()
                await asyncio.gather(
                    *(finish_transaction(balancer.url, i, start, 1000 + n) for n, (i, (_, _, _, start)) in enumerate(zip(ids, opened)))
                )
            finally:
                balancer.close()
            return backend, spread

    backend, spread = asyncio.run(scenario())
    assert sum(1 for count in spread if count > 0) >= 2, spread  # the balancer spread the chargers
    for n, identity in enumerate(ids):
        (transaction, events), = transactions(backend, identity).items()
        assert [e for e, _ in events][0] == "Started" and [e for e, _ in events][-1] == "Ended", (identity, events)
        assert len({s for _, s in events}) == len(events)
        assert backend.events[identity][-1]["meter_value"][-1]["sampled_value"][0]["value"] == 1000 + n


def test_the_newest_connection_wins_across_relays(start_relay, postgres, tmp_path):
    async def scenario():
        async with Backend(subprotocols=["ocpp2.0.1"], ask_after_boot=False) as backend:
            a, b = (start_fleet_relay(start_relay, backend, postgres, tmp_path, n) for n in range(2))
            ws_a, cp_a, task_a, start = await start_transaction(a.url, "CP-TWICE", "TAG-TWICE")
            # The same charger through relay B: A hears of it and closes its connection.
            ws_b, cp_b, task_b = await connect_until(b.url, "CP-TWICE")
            began = time.monotonic()
            await asyncio.wait_for(ws_a.wait_closed(), 10)
            closed_after = time.monotonic() - began
            stop = await cp_b.call(call16.StopTransaction(meter_stop=500, timestamp=now(), transaction_id=start.transaction_id))
            await ws_b.close()
            task_a.cancel()
            task_b.cancel()
            return backend, ws_a, closed_after, stop

    backend, ws_a, closed_after, stop = asyncio.run(scenario())
    assert closed_after < 5 and ws_a.close_reason == "connected through another relay"
    assert stop is not None
    (transaction, events), = transactions(backend, "CP-TWICE").items()
    assert [e for e, _ in events] == ["Started", "Updated", "Ended"]


def test_postgresql_restarting_loses_and_repeats_nothing(start_relay, postgres, tmp_path):
    async def scenario():
        async with Backend(subprotocols=["ocpp2.0.1"], ask_after_boot=False) as backend:
            relay = start_fleet_relay(start_relay, backend, postgres, tmp_path, 0)
            ws, cp, task, start = await start_transaction(relay.url, "CP-PG", "TAG-PG")
            postgres.restart()
            results = [await cp.call(meter(start.transaction_id, 200 + 10 * n)) for n in range(3)]
            results.append(await cp.call(call16.StopTransaction(meter_stop=400, timestamp=now(), transaction_id=start.transaction_id)))
            # A second transaction after the restart gets its own UUID.
            again = await cp.call(call16.StartTransaction(connector_id=1, id_tag="TAG-PG", meter_start=400, timestamp=now()))
            await ws.close()
            task.cancel()
            await asyncio.sleep(1.5)  # the state writer's retries reach the database again
            return backend, relay, start, results, again

    backend, relay, start, results, again = asyncio.run(scenario())
    assert all(r is not None for r in results) and again is not None and again.transaction_id != start.transaction_id
    seen = transactions(backend, "CP-PG")
    assert len(seen) == 2
    first = [events for events in seen.values() if events[0][0] == "Started" and events[-1][0] == "Ended"]
    assert len(first) == 1 and [s for _, s in first[0]] == list(range(len(first[0])))
    stored = postgres.sql("SELECT count(*) FROM ocpp_relay_state WHERE key = 'CP-PG'", database="relay")
    assert stored.strip() == "1"
    relay.stop()
    validate_recording(recordings_show(relay.recordings)[0])


def test_a_relay_that_cannot_reach_its_database_does_not_start(start_relay, tmp_path):
    from conftest import BINARY
    import subprocess

    port = free_port()
    config = tmp_path / "relay.yaml"
    config.write_text(f"translation:\n  state: postgresql://relay@127.0.0.1:{port}/relay?sslmode=disable\n")
    out = subprocess.run(
        [BINARY, "serve", "--listen", "127.0.0.1:0", "--upstream", "ws://127.0.0.1:9/ocpp", "--upstream-version", "2.0.1",
         "--recordings", str(tmp_path / "recordings"), "--config", str(config)],
        capture_output=True, text=True, timeout=60,
    )
    assert out.returncode != 0
    assert "cannot reach the translation state database postgresql://relay@127.0.0.1" in out.stderr
    assert "listening on" not in out.stdout


def test_a_charger_connecting_while_the_database_answers_nothing_is_refused_with_502(start_relay, postgres, tmp_path):
    """PostgreSQL frozen (SIGSTOP: its sockets stay open and answer nothing, as behind a partition): a charger that
    connects meanwhile gets 502 within timeouts.upstream instead of waiting for ever; once the database answers
    again, the next connection is accepted."""
    def database_processes():
        postmaster = int(open(f"{postgres.data}/postmaster.pid").readline())
        children = subprocess.run(["pgrep", "-P", str(postmaster)], capture_output=True, text=True).stdout.split()
        return [postmaster, *map(int, children)]

    async def scenario():
        async with Backend(subprotocols=["ocpp2.0.1"], ask_after_boot=False) as backend:
            relay = start_relay(
                backend.url, "--upstream-version", "2.0.1", "--mappings", MAPPINGS,
                config=relay_config(postgres) + "timeouts:\n  upstream: 2s\n", env={"RELAY_DB_PASSWORD": PASSWORD},
            )
            pids = database_processes()  # the relay's own connections included
            for pid in pids:
                os.kill(pid, signal.SIGSTOP)
            try:
                began = time.monotonic()
                with pytest.raises(websockets.InvalidStatus) as refused:
                    await websockets.connect(f"{relay.url}/CP-PG-FROZEN", subprotocols=["ocpp1.6"], open_timeout=15)
                waited = time.monotonic() - began
            finally:
                for pid in pids:
                    os.kill(pid, signal.SIGCONT)
            ws, _, task = await connect_until(relay.url, "CP-PG-FROZEN")
            await ws.close()
            task.cancel()
            return relay, refused.value.response.status_code, waited

    relay, status, waited = asyncio.run(scenario())
    assert status == 502 and 1.5 < waited < 6, (status, waited)
    relay.stop()
    assert "cannot read the translation state; charger refused" in relay.log()
    assert "no answer from the state database within 2000 ms" in relay.log()
    # The refusal is recorded too, with its status and why.
    entries, _ = recordings_show(relay.recordings, "--charger", "CP-PG-FROZEN")
    refusals = [e for e in entries if e.get("event") == "close" and e.get("code") == 502]
    assert refusals and "database is unreachable" in refusals[0].get("reason", ""), entries
