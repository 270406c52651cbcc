"""Nothing the relay answered, or was asked to deliver, is lost when a translated charger goes: its backend leg
stays until what the relay queued for the backend is delivered and answered (`timeouts.drain`), then closes the way
the charger did. Real peers from the pinned `ocpp` package on both sides; the recordings are schema-checked."""

import asyncio
import json

import pytest
from conftest import recordings_show
from ocpp.v16 import call as call16
from ocpp.v201 import call as call201
from peers import Backend, now
from test_reverse_translation import TOKEN, booted_station, energy, event, start_reverse_relay
from test_translation import booted_16_charger, start_translating_relay, validate_recording


async def sent(tap, text, timeout=5):
    """Waits until a frame containing `text` left through `tap`."""
    for _ in range(int(timeout / 0.01)):
        if any(text in frame for frame in tap.sent):
            return
        await asyncio.sleep(0.01)
    raise AssertionError(f"{text} was never sent")


def upstream_close_after(entries, action):
    """Whether the recording closes the upstream leg after the backend answered the relay's `action`."""
    calls = {}
    answered = None
    for index, e in enumerate(entries):
        if e.get("leg") != "upstream":
            continue
        if "text" in e:
            frame = json.loads(e["text"])
            if frame[0] == 2:
                calls[frame[1]] = frame[2]
            elif frame[0] == 3 and calls.get(frame[1]) == action:
                answered = index
        elif e.get("event") == "close" and answered is not None:
            return index > answered
    return False


@pytest.mark.parametrize("delay", [0.5, 0])
def test_a_201_station_that_hangs_up_after_ended_leaves_its_transaction_stopped_on_the_16_backend(start_relay, delay):
    """The station starts a transaction, sends TransactionEvent Ended and closes at once, while the MeterValues made
    from its Started event's reading is still unanswered (the backend takes `delay` for MeterValues): the backend
    gets the StopTransaction, after the MeterValues, before the relay lets its connection go."""

    async def scenario():
        async with Backend(subprotocols=["ocpp1.6"], ask_after_boot=False) as backend:
            backend.meter_values_delay = delay
            relay = start_reverse_relay(start_relay, backend)
            ws, station, task, _ = await booted_station(relay.url, "CS-DRAIN")
            started = await station.call(
                event("Started", "Authorized", 0, "TX-D", id_token=TOKEN, evse={"id": 1, "connector_id": 1},
                      meter_value=energy(1000, "Transaction.Begin"), charging_state="Charging")
            )
            ended = asyncio.create_task(
                station.call(event("Ended", "StopAuthorized", 1, "TX-D", id_token=TOKEN,
                                   meter_value=energy(1800, "Transaction.End"), stopped_reason="Local"))
            )
            await sent(station._connection, '"Ended"')
            await ws.close()
            ended.cancel()
            task.cancel()
            await backend.closed("CS-DRAIN", timeout=15)
            (cp16, _), = backend.sessions["CS-DRAIN"]
            return relay, backend, started, cp16.actions

    relay, backend, started, actions = asyncio.run(scenario())
    assert started.id_token_info["status"] == "Accepted"
    number = backend.started[0]
    assert [s["transaction_id"] for s in backend.stops] == [number]
    assert backend.stops[0]["meter_stop"] == 1800
    # In order, on the one connection: the start, its reading, the stop.
    assert [a for a in actions if a in ("StartTransaction", "MeterValues", "StopTransaction")] == [
        "StartTransaction", "MeterValues", "StopTransaction"
    ]
    assert backend.closes["CS-DRAIN"][0] == 1000
    relay.stop()
    entries, _ = recordings_show(relay.recordings)
    validate_recording(entries)
    assert upstream_close_after(entries, "StopTransaction")


def test_a_16_charger_that_hangs_up_after_stop_transaction_leaves_its_transaction_ended_on_the_201_backend(start_relay):
    """The 1.6 charger's StopTransaction waits in the lane behind the relay's own TransactionEvent (a charging state
    change the backend takes 0.5 s to answer); the charger closes without waiting: the backend still gets the Ended
    event before its connection closes."""

    async def scenario():
        async with Backend(subprotocols=["ocpp2.0.1"], ask_after_boot=False) as backend:
            relay = start_translating_relay(start_relay, backend)
            ws, cp, task, backend_cp = await booted_16_charger(relay.url, backend, "CP-DRAIN")
            start = await cp.call(call16.StartTransaction(connector_id=1, id_tag="TAG-1", meter_start=0, timestamp=now()))
            backend.event_delay = 0.5
            await cp.call(call16.StatusNotification(connector_id=1, error_code="NoError", status="SuspendedEV", timestamp=now()))
            stop = asyncio.create_task(
                cp.call(call16.StopTransaction(meter_stop=420, timestamp=now(), transaction_id=start.transaction_id, reason="Local"))
            )
            await sent(cp._connection, '"StopTransaction"')
            await ws.close()
            stop.cancel()
            task.cancel()
            await backend.closed("CP-DRAIN", timeout=15)
            return relay, backend

    relay, backend = asyncio.run(scenario())
    events = backend.events["CP-DRAIN"]
    assert [e["event_type"] for e in events] == ["Started", "Updated", "Ended"]
    ended = events[-1]
    assert ended["transaction_info"]["stopped_reason"] == "Local"
    reading = ended["meter_value"][-1]["sampled_value"][0]
    assert reading["value"] == 420 and reading["context"] == "Transaction.End"
    assert backend.closes["CP-DRAIN"][0] == 1000
    relay.stop()
    entries, _ = recordings_show(relay.recordings)
    validate_recording(entries)
    assert upstream_close_after(entries, "TransactionEvent")


def test_a_station_replaced_by_its_newer_connection_first_delivers_what_waits_then_the_new_one_dials(start_relay):
    """The station's Ended event waits upstream (the backend is slow with MeterValues) when the station connects
    again without closing the old connection: the old connection delivers the StopTransaction and closes, and only
    then does the relay dial the backend for the new one, which starts from the latest state."""

    async def scenario():
        async with Backend(subprotocols=["ocpp1.6"], ask_after_boot=False) as backend:
            backend.meter_values_delay = 0.5
            relay = start_reverse_relay(start_relay, backend)
            ws, station, task, _ = await booted_station(relay.url, "CS-AGAIN")
            await station.call(
                event("Started", "Authorized", 0, "TX-R", id_token=TOKEN, evse={"id": 1, "connector_id": 1},
                      meter_value=energy(500, "Transaction.Begin"), charging_state="Charging")
            )
            ended = asyncio.create_task(
                station.call(event("Ended", "StopAuthorized", 1, "TX-R", id_token=TOKEN,
                                   meter_value=energy(900, "Transaction.End"), stopped_reason="Local"))
            )
            await sent(station._connection, '"Ended"')
            # The station comes back on a new connection; the old one is still open.
            again, station2, task2, boot = await booted_station(relay.url, "CS-AGAIN")
            ended.cancel()
            task.cancel()
            heartbeat = await station2.call(call201.Heartbeat())
            await again.close()
            task2.cancel()
            await backend.closed("CS-AGAIN", timeout=15)
            return relay, backend, boot, heartbeat, ws.close_code

    relay, backend, boot, heartbeat, old_close = asyncio.run(scenario())
    assert boot.status == "Accepted" and heartbeat is not None
    assert old_close == 1000
    number = backend.started[0]
    assert [s["transaction_id"] for s in backend.stops] == [number] and backend.stops[0]["meter_stop"] == 900
    # The old connection delivered the stop, then closed; the new one arrived after.
    first, second = backend.sessions["CS-AGAIN"]
    assert "StopTransaction" in first[0].actions and "StopTransaction" not in second[0].actions
    assert [kind for identity, kind in backend.timeline if identity == "CS-AGAIN"] == ["open", "close", "open", "close"]
    relay.stop()
    entries, _ = recordings_show(relay.recordings)
    validate_recording(entries)


def test_a_mirror_still_answers_what_it_was_sent_when_the_charger_hangs_up(start_relay):
    """A shadow backend answers MeterValues after a second; the charger hangs up as soon as its primary answered:
    the relay keeps the shadow's connection until it has answered (within timeouts.drain), so its answer is compared
    (matched), not counted as unanswered."""
    from test_mirrors import charger, mirror_config, report

    async def scenario():
        async with Backend(subprotocols=["ocpp1.6"], ask_after_boot=False) as primary, Backend(
            subprotocols=["ocpp1.6"], ask_after_boot=False
        ) as shadow:
            shadow.meter_values_delay = 1
            relay = start_relay(primary.url, config=mirror_config(shadow))
            ws, tap, cp, task = await charger(relay, "CP-MIRROR-DRAIN")
            await cp.call(call16.BootNotification(charge_point_model="E2E", charge_point_vendor="ocpp-relay-tests"))
            start = await cp.call(call16.StartTransaction(connector_id=1, id_tag="TAG-1", meter_start=0, timestamp=now()))
            await cp.call(call16.MeterValues(connector_id=1, transaction_id=start.transaction_id, meter_value=[
                {"timestamp": now(), "sampled_value": [{"value": "120", "measurand": "Energy.Active.Import.Register"}]}]))
            await ws.close()
            task.cancel()
            await shadow.closed("CP-MIRROR-DRAIN", timeout=15)
            return relay, shadow

    relay, shadow = asyncio.run(scenario())
    (shadow_cp, _), = shadow.sessions["CP-MIRROR-DRAIN"]
    assert "MeterValues" in shadow_cp.actions
    relay.stop()
    rows = report(relay.recordings)
    assert rows["MeterValues"]["matched"] == 1 and rows["MeterValues"]["unanswered"] == 0, rows["MeterValues"]
