"""OCPP 2.1 through the relay, every direction: a real 2.1 charging station (the pinned `ocpp` package's v21
ChargePoint) on 2.0.1 and 1.6 central systems, and 1.6 and 2.0.1 chargers on a 2.1 central system (its v21
handlers). Every peer rejects any message that breaks its version's official schemas; the recording is checked
against the schemas too, frame by frame, on both legs."""

import asyncio

import pytest
from conftest import recordings_show
from ocpp.exceptions import NotSupportedError
from ocpp.v16 import call as call16
from ocpp.v201 import call as call201
from ocpp.v21 import call as call21
from peers import Backend, Station201, Tap, now, open_charger
from peers21 import Station21, send_frame, send_id, speak_21
from test_reverse_translation import energy
from test_translation import MAPPINGS, booted_16_charger, validate_recording

# A 50-character token of a type 2.0.1 lacks: 2.1 allows 255 characters and any type.
LONG = {"id_token": "VIN-" + "7" * 46, "type": "VIN"}
TYPES_201 = {"Central", "eMAID", "ISO14443", "ISO15693", "KeyCode", "Local", "MacAddress", "NoAuthorization"}


def relay_for(start_relay, backend, version, config=None):
    return start_relay(backend.url, "--upstream-version", version, "--mappings", MAPPINGS, config=config)


async def booted_station21(relay_url, identity):
    """A 2.1 station connected through the relay and booted: (its socket, the station, its task, boot result)."""
    ws = await open_charger(relay_url, identity, ["ocpp2.1"])
    assert ws.subprotocol == "ocpp2.1"
    station = Station21(identity, Tap(ws))
    task = asyncio.create_task(station.start())
    boot = await station.call(
        call21.BootNotification(charging_station={"model": "E2E-21", "vendor_name": "ocpp-relay-tests"}, reason="PowerUp")
    )
    return ws, station, task, boot


def event21(event_type, trigger, seq, transaction_id, **fields):
    info = {"transaction_id": transaction_id}
    for key in ("charging_state", "stopped_reason", "remote_start_id"):
        if key in fields:
            info[key] = fields.pop(key)
    return call21.TransactionEvent(event_type=event_type, timestamp=now(), trigger_reason=trigger, seq_no=seq, transaction_info=info, **fields)


async def wait_for(predicate, timeout=5):
    for _ in range(int(timeout / 0.02)):
        if predicate():
            return
        await asyncio.sleep(0.02)
    raise AssertionError("timed out waiting")


async def station21_session(relay_url, backend, identity, upstream):
    """The session the issue names, from a 2.1 station: boot, a long token of a 2.1-only type, a transaction with
    meter values and a field 2.0.1 lacks, a SEND, a 2.1-only message, a remote start and stop."""
    ws, station, task, boot = await booted_station21(relay_url, identity)
    r = {"boot": boot}
    r["available"] = await station.call(call21.StatusNotification(timestamp=now(), connector_status="Available", evse_id=1, connector_id=1))
    r["authorize"] = await station.call(call21.Authorize(id_token=LONG))
    r["started"] = await station.call(
        event21("Started", "Authorized", 0, "TX-21", id_token=LONG, evse={"id": 1, "connector_id": 1},
                meter_value=energy(1000, "Transaction.Begin"), charging_state="Charging", evse_sleep=False)
    )
    # RunningCost is a 2.1 trigger: 2.0.1 gets its nearest value.
    r["updated"] = await station.call(event21("Updated", "RunningCost", 1, "TX-21", meter_value=energy(1500)))
    r["meter"] = await station.call(call21.MeterValues(evse_id=1, meter_value=energy(1600)))
    # A SEND is never answered and has no counterpart in older versions: recorded, not forwarded.
    await send_frame(ws, [6, send_id(), "NotifyPeriodicEventStream", {"id": 1, "pending": 0, "basetime": now(), "data": [{"t": 0, "v": "1600"}]}])
    # A message only 2.1 has: the relay answers it (the older backend never hears of it).
    r["der_alarm"] = await station.call(call21.NotifyDERAlarm(control_type="FreqDroop", timestamp=now()))
    (cp, _), = backend.sessions[identity]
    if upstream == "2.0.1":
        alias = backend.events[identity][0]["id_token"]
        r["remote_start"] = await cp.call(call201.RequestStartTransaction(id_token=alias, remote_start_id=5, evse_id=1))
        r["remote_stop"] = await cp.call(call201.RequestStopTransaction(transaction_id="TX-21"))
    else:
        alias = backend.starts[0]["id_tag"]
        r["remote_start"] = await cp.call(call16.RemoteStartTransaction(id_tag=alias, connector_id=1))
        r["remote_stop"] = await cp.call(call16.RemoteStopTransaction(transaction_id=backend.started[0]))
    r["ended"] = await station.call(
        event21("Ended", "RemoteStop", 2, "TX-21", meter_value=energy(2000, "Transaction.End"), stopped_reason="Remote")
    )
    r["heartbeat"] = await station.call(call21.Heartbeat())
    await ws.close()
    task.cancel()
    await backend.closed(identity)
    return station, r, alias


@pytest.mark.parametrize("upstream", ["2.0.1", "1.6"])
def test_a_21_station_runs_a_session_on_an_older_backend(start_relay, upstream):
    identity = f"CS21-ON-{upstream.replace('.', '')}"

    async def scenario():
        async with Backend(subprotocols=[f"ocpp{upstream}"]) as backend:
            relay = relay_for(start_relay, backend, upstream)
            station, results, alias = await station21_session(relay.url, backend, identity, upstream)
            return relay, backend, station, results, alias

    relay, backend, station, r, alias = asyncio.run(scenario())
    assert all(value is not None for value in r.values()), r
    assert r["boot"].status == "Accepted"
    assert r["authorize"].id_token_info["status"] == "Accepted"
    assert r["started"].id_token_info["status"] == "Accepted"
    assert r["der_alarm"] is not None
    # The station gets its own long token back in the remote start: the alias is the relay's business.
    start = dict(station.commands)["RequestStartTransaction"]
    assert start["id_token"] == LONG
    assert r["remote_start"].status == "Accepted" and r["remote_stop"].status == "Accepted"
    assert dict(station.commands)["RequestStopTransaction"]["transaction_id"] == "TX-21"
    if upstream == "2.0.1":
        started, updated, ended = backend.events[identity]
        token = started["id_token"]
        assert len(token["id_token"]) <= 36 and token["id_token"] != LONG["id_token"][:36] and token["type"] in TYPES_201
        assert "evse_sleep" not in started  # a field 2.0.1 lacks: left out (and noted)
        assert updated["trigger_reason"] == "MeterValuePeriodic"
        assert ended["transaction_info"]["stopped_reason"] == "Remote"
    else:
        (first,) = backend.starts
        assert len(first["id_tag"]) <= 20 and first["meter_start"] == 1000
        assert backend.stops[0]["meter_stop"] == 2000 and backend.stops[0]["transaction_id"] == backend.started[0]
    relay.stop()
    entries, _ = recordings_show(relay.recordings)
    checked = validate_recording(entries)
    assert checked["2.1"] >= 18 and checked[upstream] >= 10
    opened = [e for e in entries if e.get("event") == "open"][0]
    assert opened["subprotocol"] == "ocpp2.1" and opened["upstreamSubprotocol"] == f"ocpp{upstream}"
    notes = [e.get("message", "") for e in entries if "message" in e]
    assert any("SEND" in n and "NotifyPeriodicEventStream" in n for n in notes), notes
    assert any("NotifyDERAlarm" in n and "answered by the relay" in n for n in notes), notes
    assert any("lossy" in n and "VIN" in n for n in notes), notes  # the token's type, never silently
    # Nothing of the SEND or of the 2.1-only message reached the backend.
    upstream_texts = [e["text"] for e in entries if e.get("leg") == "upstream" and "text" in e]
    assert not any("NotifyPeriodicEventStream" in t or "NotifyDERAlarm" in t for t in upstream_texts)


@pytest.mark.parametrize("charger", ["1.6", "2.0.1"])
def test_an_older_charger_runs_a_session_on_a_21_backend(start_relay, charger):
    identity = f"CS{charger.replace('.', '')}-ON-21"

    async def scenario():
        async with speak_21(Backend(subprotocols=["ocpp2.1"])) as backend:
            relay = relay_for(start_relay, backend, "2.1")
            answers = {}
            if charger == "1.6":
                ws, cp, task, backend_cp = await booted_16_charger(relay.url, backend, identity)
                answers["authorize"] = await cp.call(call16.Authorize(id_tag="TAG-1"))
                answers["start"] = await cp.call(call16.StartTransaction(connector_id=1, id_tag="TAG-1", meter_start=100, timestamp=now()))
                number = answers["start"].transaction_id
                answers["meter"] = await cp.call(call16.MeterValues(connector_id=1, transaction_id=number, meter_value=[
                    {"timestamp": now(), "sampled_value": [{"value": "150", "measurand": "Energy.Active.Import.Register", "unit": "Wh"}]}]))
                transaction = backend.events[identity][0]["transaction_info"]["transaction_id"]
                answers["remote_stop"] = await backend_cp.call(call21.RequestStopTransaction(transaction_id=transaction))
                answers["stop"] = await cp.call(call16.StopTransaction(meter_stop=200, timestamp=now(), transaction_id=number, reason="Remote"))
            else:
                ws = await open_charger(relay.url, identity, ["ocpp2.0.1"])
                cp = Station201(identity, Tap(ws))
                task = asyncio.create_task(cp.start())
                await cp.call(call201.BootNotification(charging_station={"model": "E2E-201", "vendor_name": "ocpp-relay-tests"}, reason="PowerUp"))
                (backend_cp, _), = backend.sessions[identity]
                token = {"id_token": "TAG-1", "type": "ISO14443"}
                answers["authorize"] = await cp.call(call201.Authorize(id_token=token))
                answers["start"] = await cp.call(call201.TransactionEvent(
                    event_type="Started", timestamp=now(), trigger_reason="Authorized", seq_no=0, id_token=token,
                    transaction_info={"transaction_id": "TX-201", "charging_state": "Charging"}, evse={"id": 1, "connector_id": 1},
                    meter_value=energy(100, "Transaction.Begin")))
                answers["meter"] = await cp.call(call201.MeterValues(evse_id=1, meter_value=energy(150)))
                # 2.1 requires what 2.0.1 never sent: the relay fills it.
                answers["monitoring"] = await cp.call(call201.NotifyMonitoringReport(request_id=1, seq_no=0, generated_at=now(), monitor=[
                    {"component": {"name": "EVSE"}, "variable": {"name": "Power"},
                     "variable_monitoring": [{"id": 1, "transaction": False, "value": 22000, "type": "UpperThreshold", "severity": 5}]}]))
                answers["remote_stop"] = await backend_cp.call(call21.RequestStopTransaction(transaction_id="TX-201"))
                answers["stop"] = await cp.call(call201.TransactionEvent(
                    event_type="Ended", timestamp=now(), trigger_reason="RemoteStop", seq_no=1,
                    transaction_info={"transaction_id": "TX-201", "stopped_reason": "Remote"}, meter_value=energy(200, "Transaction.End")))
            answers["remote_start"] = await backend_cp.call(call21.RequestStartTransaction(
                id_token={"id_token": "APP-7", "type": "Central"}, remote_start_id=3, evse_id=1))
            # A command only 2.1 has: refused, as OCPP says, in 2.1's spelling.
            with pytest.raises(NotSupportedError):
                await backend_cp.call(call21.SetDefaultTariff(evse_id=0, tariff={"tariff_id": "T1", "currency": "EUR"}), suppress=False)
            answers["heartbeat"] = await cp.call(call16.Heartbeat() if charger == "1.6" else call201.Heartbeat())
            await ws.close()
            task.cancel()
            await backend.closed(identity)
            return relay, backend, answers

    relay, backend, a = asyncio.run(scenario())
    assert all(value is not None for value in a.values()), a
    assert a["remote_stop"].status == "Accepted" and a["remote_start"].status == "Accepted"
    kinds = [e["event_type"] for e in backend.events[identity]]
    assert kinds[0] == "Started" and kinds[-1] == "Ended"
    if charger == "2.0.1":
        (monitor,) = backend.reports[identity]
        assert monitor["variable_monitoring"][0]["event_notification_type"] == "CustomMonitor"
    relay.stop()
    entries, _ = recordings_show(relay.recordings)
    checked = validate_recording(entries, expected_errors=("SetDefaultTariff",))
    assert checked["2.1"] >= 10 and checked[charger] >= 8
    notes = [e.get("message", "") for e in entries if "message" in e]
    assert any("eventNotificationType" in n for n in notes) or charger == "1.6", notes


def test_bad_input_from_and_to_21_peers_gets_ocpp_answers_in_21s_spelling(start_relay):
    """A 2.1 station's bad calls are judged against 2.1's schema (a 255-character token is fine, a seqNo that is no
    number is not) and refused as OCPP prescribes, nothing going to the 2.0.1 backend; a 2.1 backend's bad command to
    a 1.6 charger is refused the same way, in 2.1's spelling."""
    from test_bad_input import answer, relay_output

    async def scenario():
        r = {}
        async with Backend(subprotocols=["ocpp2.0.1"], ask_after_boot=False) as backend:
            relay = relay_for(start_relay, backend, "2.0.1")
            ws, station, task, _ = await booted_station21(relay.url, "CS21-BAD")
            r["longest"] = await answer(station, call21.Authorize(id_token={"id_token": "T" * 255, "type": "Central"}))
            r["too_long"] = await answer(station, call21.Authorize(id_token={"id_token": "T" * 256, "type": "Central"}))
            r["type"] = await answer(station, event21("Started", "Authorized", "zero", "TX-BAD"))
            r["missing"] = await answer(station, call21.MeterValues(evse_id=1, meter_value=None))
            r["upstream_calls"] = list(backend.sessions["CS21-BAD"][0][0].actions)
            await ws.close()
            task.cancel()
            await backend.closed("CS21-BAD")
            entries = recordings_show(relay.recordings)[0]
        async with speak_21(Backend(subprotocols=["ocpp2.1"], ask_after_boot=False)) as backend21:
            relay21 = relay_for(start_relay, backend21, "2.1")
            ws16, cp16, task16, backend_cp = await booted_16_charger(relay21.url, backend21, "CP16-BAD")
            r["command_missing"] = await answer(backend_cp, call21.RequestStopTransaction(transaction_id=None))
            r["command_type"] = await answer(backend_cp, call21.Reset(type=5))
            await ws16.close()
            task16.cancel()
            await backend21.closed("CP16-BAD")
        return relay, relay21, r, entries

    relay, relay21, r, entries = asyncio.run(scenario())
    assert r["longest"][0] == "result"  # 2.1 allows 255 characters: the backend saw an alias
    assert r["too_long"] == ("error", "PropertyConstraintViolation")
    assert r["type"] == ("error", "TypeConstraintViolation")
    assert r["missing"] == ("error", "OccurrenceConstraintViolation")
    assert r["upstream_calls"] == ["BootNotification", "Authorize"]
    assert r["command_missing"] == ("error", "OccurrenceConstraintViolation")
    assert r["command_type"] == ("error", "TypeConstraintViolation")
    assert {(leg, code) for leg, _, code in relay_output(entries)} == {
        ("charger", "PropertyConstraintViolation"), ("charger", "TypeConstraintViolation"),
        ("charger", "OccurrenceConstraintViolation"),
    }
    relay21.stop()
    assert {code for leg, _, code in relay_output(recordings_show(relay21.recordings)[0]) if leg == "upstream"} == {
        "OccurrenceConstraintViolation", "TypeConstraintViolation"
    }
