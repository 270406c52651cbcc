"""Bad input on a translated route gets OCPP's answer, never a wrong frame and never silence: a value that reads one
way only (a number sent as a numeric string) is mended and translated, anything else that breaks the sender's
schema is refused with the CALLERROR OCPP prescribes for the fault, in the sender's spelling. Both directions, with
peers from the pinned `ocpp` package that validate everything they receive."""

import asyncio
import json

import jsonschema
from conftest import recordings_show
from ocpp.exceptions import OCPPError
from ocpp.v16 import call as call16
from ocpp.v201 import call as call201
from peers import Backend, now
from test_reverse_translation import TOKEN, booted_station, energy, event, start_reverse_relay
from test_translation import booted_16_charger, schema, start_translating_relay


async def answer(peer, payload):
    """Sends `payload` unchecked; ("result", payload) or ("error", code)."""
    try:
        result = await peer.call(payload, suppress=False, skip_schema_validation=True)
    except OCPPError as error:
        return "error", error.code
    return "result", result


def relay_output(entries):
    """Every frame the relay sent, on either leg, is valid for that leg's version; returns its CALLERRORs as
    (leg, action, code)."""
    calls = {}
    errors = []
    for e in entries:
        if "text" not in e:
            continue
        frame = json.loads(e["text"])
        key = (e["connection"], e["leg"], frame[1])
        if frame[0] == 2:
            calls[key] = frame[2]
            if e["dir"] == "out":
                jsonschema.validate(frame[3], schema(e["version"], frame[2], response=False))
        elif e["dir"] == "out" and frame[0] == 3:
            jsonschema.validate(frame[2], schema(e["version"], calls[key], response=True))
        elif e["dir"] == "out" and frame[0] == 4:
            errors.append((e["leg"], calls.get(key), frame[2]))
    return errors


def test_a_16_chargers_bad_calls_get_ocpp_answers_and_the_201_backend_only_valid_ones(start_relay):
    async def scenario():
        async with Backend(subprotocols=["ocpp2.0.1"], ask_after_boot=False) as backend:
            relay = start_translating_relay(start_relay, backend)
            ws, cp, task, _ = await booted_16_charger(relay.url, backend, "CP-BAD")
            r = {}
            start = await cp.call(call16.StartTransaction(connector_id=1, id_tag="TAG-1", meter_start=0, timestamp=now()))
            tx = start.transaction_id
            # A reading sent as a number (1.6 wants a string): read as the number it is.
            r["number"] = await answer(cp, call16.MeterValues(connector_id=1, transaction_id=tx, meter_value=[
                {"timestamp": now(), "sampled_value": [{"value": 250, "measurand": "Energy.Active.Import.Register"}]}]))
            events = len(backend.events["CP-BAD"])
            # No meterValue at all, a status that is not a string, an idTag too long: refused, nothing goes upstream.
            r["missing"] = await answer(cp, call16.MeterValues(connector_id=1, transaction_id=tx, meter_value=None))
            r["type"] = await answer(cp, call16.StatusNotification(connector_id=1, error_code="NoError", status=7))
            r["long"] = await answer(cp, call16.Authorize(id_tag="T" * 25))
            r["events_after_refusals"] = len(backend.events["CP-BAD"]) - events
            # meterStop as a numeric string: the transaction still ends on the backend, with the reading as a number.
            r["stop"] = await answer(cp, call16.StopTransaction(meter_stop="500", timestamp=now(), transaction_id=tx))
            await ws.close()
            task.cancel()
            await backend.closed("CP-BAD")
            return relay, backend, r

    relay, backend, r = asyncio.run(scenario())
    assert r["number"][0] == "result"
    assert r["missing"] == ("error", "OccurenceConstraintViolation")  # 1.6's spelling
    assert r["type"] == ("error", "TypeConstraintViolation")
    assert r["long"] == ("error", "PropertyConstraintViolation")
    assert r["events_after_refusals"] == 0
    assert r["stop"][0] == "result"
    updated, ended = backend.events["CP-BAD"][1], backend.events["CP-BAD"][-1]
    assert updated["meter_value"][0]["sampled_value"][0]["value"] == 250
    assert ended["event_type"] == "Ended"
    assert ended["meter_value"][-1]["sampled_value"][0]["value"] == 500
    relay.stop()
    entries, _ = recordings_show(relay.recordings)
    refusals = relay_output(entries)
    assert sorted(code for _, _, code in refusals) == [
        "OccurenceConstraintViolation", "PropertyConstraintViolation", "TypeConstraintViolation"
    ]
    assert all(leg == "charger" for leg, _, _ in refusals)
    notes = [e["message"] for e in entries if "message" in e]
    assert any("normalised" in n and "meterStop" in n for n in notes), notes
    assert any("invalid" in n and "meterValue" in n for n in notes), notes


def test_a_201_stations_and_a_16_backends_bad_calls_get_ocpp_answers(start_relay):
    async def scenario():
        async with Backend(subprotocols=["ocpp1.6"], ask_after_boot=False) as backend:
            relay = start_reverse_relay(start_relay, backend)
            ws, station, task, _ = await booted_station(relay.url, "CS-BAD")
            (cp16, _), = backend.sessions["CS-BAD"]
            r = {}
            r["started"] = await answer(station, event("Started", "Authorized", 0, "TX-B", id_token=TOKEN,
                                                        evse={"id": 1, "connector_id": 1},
                                                        meter_value=energy(1000, "Transaction.Begin"),
                                                        charging_state="Charging"))
            # A reading as a numeric string (2.0.1 wants a number) and a seqNo as one: mended, in step as ever.
            r["string_reading"] = await answer(station, event("Updated", "MeterValuePeriodic", "1", "TX-B",
                                                              meter_value=energy("1500")))
            meter_values = len(backend.meter_values)
            # Without seqNo, or with an evse that is not an object: refused, nothing goes upstream.
            r["missing"] = await answer(station, event("Updated", "MeterValuePeriodic", None, "TX-B",
                                                       meter_value=energy(1600)))
            r["type"] = await answer(station, call201.StatusNotification(timestamp=now(), connector_status="Occupied",
                                                                        evse_id="one", connector_id=1))
            r["meter_values_after_refusals"] = len(backend.meter_values) - meter_values
            # The backend's bad commands: an idTag too long, a RemoteStopTransaction without its transaction.
            r["long_tag"] = await answer(cp16, call16.RemoteStartTransaction(id_tag="T" * 25, connector_id=1))
            r["no_transaction"] = await answer(cp16, call16.RemoteStopTransaction(transaction_id=None))
            r["station_commands"] = list(station.commands)
            r["ended"] = await answer(station, event("Ended", "StopAuthorized", 2, "TX-B", id_token=TOKEN,
                                                     meter_value=energy(2000, "Transaction.End"), stopped_reason="Local"))
            await ws.close()
            task.cancel()
            await backend.closed("CS-BAD")
            return relay, backend, r

    relay, backend, r = asyncio.run(scenario())
    assert r["started"][0] == "result" and r["string_reading"][0] == "result" and r["ended"][0] == "result"
    assert r["missing"] == ("error", "OccurrenceConstraintViolation")  # 2.0.1's spelling
    assert r["type"] == ("error", "TypeConstraintViolation")
    assert r["meter_values_after_refusals"] == 0
    assert r["long_tag"] == ("error", "PropertyConstraintViolation")
    assert r["no_transaction"] == ("error", "OccurenceConstraintViolation")  # to the 1.6 backend, 1.6's spelling
    assert r["station_commands"] == []
    readings = [s["value"] for m in backend.meter_values for v in m["meter_value"] for s in v["sampled_value"]]
    assert "1500" in readings
    number = backend.started[0]
    assert [s["transaction_id"] for s in backend.stops] == [number] and backend.stops[0]["meter_stop"] == 2000
    relay.stop()
    entries, _ = recordings_show(relay.recordings)
    refusals = relay_output(entries)
    assert sorted((leg, code) for leg, _, code in refusals) == [
        ("charger", "OccurrenceConstraintViolation"), ("charger", "TypeConstraintViolation"),
        ("upstream", "OccurenceConstraintViolation"), ("upstream", "PropertyConstraintViolation"),
    ]
