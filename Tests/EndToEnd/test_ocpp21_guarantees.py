"""The relay's guarantees hold for every pair with an OCPP 2.1 peer: a charger that hangs up right after its stop
leaves the transaction stopped on the backend (what the relay queued is delivered before the backend's leg goes),
and a relay killed mid-transaction and started again ends the right transaction, with the 2.1 token it aliased
still mapped back. Real peers from the pinned `ocpp` package (v21 for the 2.1 side); the recordings are
schema-checked."""

import asyncio
import json
import signal

import pytest
from conftest import recordings_show
from ocpp.v16 import call as call16
from ocpp.v201 import call as call201
from ocpp.v21 import call as call21
from peers import Backend, Charger16, Station201, Tap, now, open_charger
from peers21 import Station21, speak_21
from test_ocpp21 import LONG, relay_for, wait_for
from test_reverse_translation import energy
from test_translation import MAPPINGS, validate_recording

# (charger version, backend version): every pair with a 2.1 peer.
PAIRS = [("2.1", "2.0.1"), ("2.1", "1.6"), ("1.6", "2.1"), ("2.0.1", "2.1")]
STATION_CLASSES = {"2.1": Station21, "2.0.1": Station201, "1.6": Charger16}
CALLS = {"2.1": call21, "2.0.1": call201, "1.6": call16}


def backend_for(version):
    backend = Backend(subprotocols=[f"ocpp{version}"], ask_after_boot=False)
    return speak_21(backend) if version == "2.1" else backend


async def connect(relay_url, identity, version):
    """A charger of `version` connected through the relay and booted: (socket, charger, task)."""
    ws = await open_charger(relay_url, identity, [f"ocpp{version}"])
    assert ws.subprotocol == f"ocpp{version}"
    cp = STATION_CLASSES[version](identity, Tap(ws))
    task = asyncio.create_task(cp.start())
    if version == "1.6":
        await cp.call(call16.BootNotification(charge_point_model="E2E", charge_point_vendor="ocpp-relay-tests"))
    else:
        await cp.call(CALLS[version].BootNotification(charging_station={"model": "E2E", "vendor_name": "ocpp-relay-tests"}, reason="PowerUp"))
    return ws, cp, task


def token_for(version):
    return LONG if version == "2.1" else {"id_token": "TAG-1", "type": "ISO14443"}


async def start_transaction(cp, version):
    """Starts a transaction; returns what names it on the charger's side (1.6: its integer id)."""
    if version == "1.6":
        started = await cp.call(call16.StartTransaction(connector_id=1, id_tag="TAG-1", meter_start=100, timestamp=now()))
        return started.transaction_id
    await cp.call(CALLS[version].TransactionEvent(
        event_type="Started", timestamp=now(), trigger_reason="Authorized", seq_no=0, id_token=token_for(version),
        transaction_info={"transaction_id": "TX-G", "charging_state": "Charging"}, evse={"id": 1, "connector_id": 1},
        meter_value=energy(100, "Transaction.Begin")))
    return "TX-G"


def raw(action, payload, message_id):
    return json.dumps([2, message_id, action, payload])


def reading(wh, context=None):
    sample = {"value": wh, "measurand": "Energy.Active.Import.Register", "unitOfMeasure": {"unit": "Wh"}}
    if context:
        sample["context"] = context
    return [{"timestamp": now(), "sampledValue": [sample]}]


def update_and_stop(version, transaction, seq=1):
    """Raw frames for a reading inside the transaction and its stop (sent without waiting for the answers)."""
    if version == "1.6":
        sample = {"value": "300", "measurand": "Energy.Active.Import.Register", "unit": "Wh"}
        return [
            raw("MeterValues", {"connectorId": 1, "transactionId": transaction, "meterValue": [{"timestamp": now(), "sampledValue": [sample]}]}, "u1"),
            raw("StopTransaction", {"meterStop": 420, "timestamp": now(), "transactionId": transaction, "reason": "Local"}, "s1"),
        ]
    event = {"timestamp": now(), "transactionInfo": {"transactionId": transaction}}
    return [
        raw("TransactionEvent", {**event, "eventType": "Updated", "triggerReason": "MeterValuePeriodic", "seqNo": seq, "meterValue": reading(300)}, "u1"),
        raw("TransactionEvent", {**event, "eventType": "Ended", "triggerReason": "StopAuthorized", "seqNo": seq + 1,
                                 "transactionInfo": {"transactionId": transaction, "stoppedReason": "Local"},
                                 "meterValue": reading(420, "Transaction.End")}, "s1"),
    ]


def stopped_on_backend(backend, identity, upstream):
    """The backend's record of the stop: the 1.6 StopTransaction, or the 2.x Ended event."""
    if upstream == "1.6":
        return backend.stops[-1] if backend.stops else None
    ended = [e for e in backend.events.get(identity, []) if e["event_type"] == "Ended"]
    return ended[-1] if ended else None


def stop_reading(stop, upstream):
    if upstream == "1.6":
        return stop["meter_stop"]
    return stop["meter_value"][-1]["sampled_value"][0]["value"]


@pytest.mark.parametrize("charger,upstream", PAIRS)
def test_a_charger_that_hangs_up_right_after_its_stop_leaves_the_transaction_stopped(start_relay, charger, upstream):
    identity = f"HANGUP-{charger}-{upstream}".replace(".", "")

    async def scenario():
        async with backend_for(upstream) as backend:
            relay = relay_for(start_relay, backend, upstream)
            ws, cp, task = await connect(relay.url, identity, charger)
            transaction = await start_transaction(cp, charger)
            # The backend takes half a second for what the reading becomes; the stop queues behind it.
            backend.event_delay = backend.meter_values_delay = 0.5
            for frame in update_and_stop(charger, transaction):
                await ws.send(frame)
            await ws.close()
            task.cancel()
            await backend.closed(identity, timeout=15)
            return relay, backend

    relay, backend = asyncio.run(scenario())
    stop = stopped_on_backend(backend, identity, upstream)
    assert stop is not None, "the backend never heard of the stop"
    assert stop_reading(stop, upstream) == 420
    assert backend.closes[identity][0] == 1000
    relay.stop()
    validate_recording(recordings_show(relay.recordings)[0])


@pytest.mark.parametrize("charger,upstream", PAIRS)
def test_a_relay_killed_mid_transaction_ends_the_right_transaction(start_relay, charger, upstream):
    identity = f"KILLED-{charger}-{upstream}".replace(".", "")

    async def scenario():
        async with backend_for(upstream) as backend:
            relay = relay_for(start_relay, backend, upstream)
            ws, cp, task = await connect(relay.url, identity, charger)
            transaction = await start_transaction(cp, charger)
            await wait_for(lambda: backend.starts or backend.events.get(identity))
            relay.process.send_signal(signal.SIGKILL)
            relay.process.wait()
            task.cancel()
            # A new relay process on the same recordings folder (and so the same state database).
            relay2 = relay_for(start_relay, backend, upstream)
            ws2, cp2, task2 = await connect(relay2.url, identity, charger)
            (backend_cp, _) = backend.sessions[identity][-1]
            remote = None
            if charger == "2.1":
                # The alias the backend knows still names the station's own long token.
                if upstream == "1.6":
                    remote = await backend_cp.call(call16.RemoteStartTransaction(id_tag=backend.starts[0]["id_tag"], connector_id=2))
                else:
                    alias = backend.events[identity][0]["id_token"]
                    remote = await backend_cp.call(call201.RequestStartTransaction(id_token=alias, remote_start_id=9, evse_id=2))
            for frame in update_and_stop(charger, transaction):
                await ws2.send(frame)
            await wait_for(lambda: stopped_on_backend(backend, identity, upstream))
            await ws2.close()
            task2.cancel()
            await backend.closed(identity, timeout=15)
            return relay2, backend, cp2, remote

    relay2, backend, cp2, remote = asyncio.run(scenario())
    stop = stopped_on_backend(backend, identity, upstream)
    assert stop is not None and stop_reading(stop, upstream) == 420
    if upstream == "1.6":
        assert stop["transaction_id"] == backend.started[0]
    else:
        events = backend.events[identity]
        assert stop["transaction_info"]["transaction_id"] == events[0]["transaction_info"]["transaction_id"]
        assert [e["seq_no"] for e in events] == list(range(len(events)))
    if charger == "2.1":
        assert remote.status == "Accepted"
        assert dict(cp2.commands)["RequestStartTransaction"]["id_token"] == LONG
    relay2.stop()
    validate_recording(recordings_show(relay2.recordings)[0])
