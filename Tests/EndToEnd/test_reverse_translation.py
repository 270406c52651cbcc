"""Translation the other way: a real OCPP 2.0.1 charging station on a real OCPP 1.6 central system through the
relay. Both peers come from the pinned `ocpp` package and reject any message that breaks the official schemas;
the recording is checked against the schemas too, frame by frame, on both legs."""

import asyncio
import signal

from conftest import recordings_show
from ocpp.v16 import call as call16
from ocpp.v201 import call as call201
from peers import Backend, Station201, Tap, now, open_charger
from test_translation import MAPPINGS, state_store, validate_recording  # noqa: F401 (a fixture)

TOKEN = {"id_token": "TAG-1", "type": "ISO14443"}


def start_reverse_relay(start_relay, backend, config=None):
    return start_relay(backend.url, "--upstream-version", "1.6", "--mappings", MAPPINGS, config=config)


async def booted_station(relay_url, identity):
    """A 2.0.1 station connected through the relay and booted: (its socket, the station, its task, boot result)."""
    ws = await open_charger(relay_url, identity, ["ocpp2.0.1"])
    assert ws.subprotocol == "ocpp2.0.1"
    station = Station201(identity, Tap(ws))
    task = asyncio.create_task(station.start())
    boot = await station.call(
        call201.BootNotification(charging_station={"model": "E2E-201", "vendor_name": "ocpp-relay-tests", "serial_number": identity[:25]}, reason="PowerUp")
    )
    return ws, station, task, boot


def energy(wh, context=None):
    sample = {"value": wh, "measurand": "Energy.Active.Import.Register", "unit_of_measure": {"unit": "Wh"}}
    if context:
        sample["context"] = context
    return [{"timestamp": now(), "sampled_value": [sample]}]


def event(event_type, trigger, seq, transaction_id, **fields):
    info = {"transaction_id": transaction_id}
    for key in ("charging_state", "stopped_reason", "remote_start_id"):
        if key in fields:
            info[key] = fields.pop(key)
    return call201.TransactionEvent(event_type=event_type, timestamp=now(), trigger_reason=trigger, seq_no=seq, transaction_info=info, **fields)


def statuses(backend, identity):
    return [status for connector, status, _ in backend.statuses.get(identity, []) if connector == 1]


def test_a_201_station_runs_charging_sessions_on_a_16_backend(start_relay):
    async def scenario():
        async with Backend(subprotocols=["ocpp1.6"]) as backend:
            relay = start_reverse_relay(start_relay, backend)
            ws, station, task, boot = await booted_station(relay.url, "CS-REVERSE")
            results = {"boot": boot}
            results["available"] = await station.call(call201.StatusNotification(timestamp=now(), connector_status="Available", evse_id=1, connector_id=1))
            results["authorize"] = await station.call(call201.Authorize(id_token=TOKEN))
            # Token first: the Started event opens the 1.6 transaction and its answer carries the backend's verdict.
            results["started"] = await station.call(
                event("Started", "Authorized", 0, "TX-A", id_token=TOKEN, evse={"id": 1, "connector_id": 1}, meter_value=energy(1000, "Transaction.Begin"), charging_state="Charging")
            )
            results["updated"] = await station.call(event("Updated", "MeterValuePeriodic", 1, "TX-A", meter_value=energy(1500)))
            results["ended"] = await station.call(
                event("Ended", "StopAuthorized", 2, "TX-A", id_token=TOKEN, meter_value=energy(2000, "Transaction.End"), stopped_reason="Local")
            )
            results["occupied"] = await station.call(call201.StatusNotification(timestamp=now(), connector_status="Occupied", evse_id=1, connector_id=1))
            # Cable first: the station starts without a token; the 1.6 transaction opens when the token comes.
            results["plugged"] = await station.call(
                event("Started", "CablePluggedIn", 0, "TX-B", evse={"id": 1, "connector_id": 1}, meter_value=energy(2000, "Transaction.Begin"), charging_state="EVConnected")
            )
            long_token = {"id_token": "0123456789ABCDEF0123456789ABCDEF", "type": "Central"}
            results["authorized"] = await station.call(event("Updated", "Authorized", 1, "TX-B", id_token=long_token, charging_state="Charging"))
            results["metered"] = await station.call(event("Updated", "MeterValuePeriodic", 2, "TX-B", meter_value=energy(2600)))
            results["long_token"] = long_token
            results["disconnected"] = await station.call(
                event("Ended", "EVCommunicationLost", 3, "TX-B", meter_value=energy(2900, "Transaction.End"), stopped_reason="EVDisconnected")
            )
            results["heartbeat"] = await station.call(call201.Heartbeat())
            results["data"] = await station.call(call201.DataTransfer(vendor_id="org.example", message_id="ping", data={"n": 1}))
            for _ in range(200):
                if "CS-REVERSE" in backend.answers:
                    break
                await asyncio.sleep(0.02)
            await ws.close()
            task.cancel()
            await backend.closed("CS-REVERSE")
            return relay, backend, results

    relay, backend, r = asyncio.run(scenario())
    assert all(value is not None for value in r.values()), r
    long_token = r.pop("long_token")
    assert r["boot"].status == "Accepted" and r["boot"].interval == 300
    assert r["authorize"].id_token_info["status"] == "Accepted"
    assert r["started"].id_token_info["status"] == "Accepted"
    assert r["authorized"].id_token_info["status"] == "Accepted"
    (cp16, _), = backend.sessions["CS-REVERSE"]
    assert backend.boots["CS-REVERSE"]["vendor"] == "ocpp-relay-tests" and backend.boots["CS-REVERSE"]["model"] == "E2E-201"
    # Two 1.6 transactions, with the station's readings in Wh and the backend's ids on every message.
    first, second = backend.starts
    assert first["connector_id"] == 1 and first["id_tag"] == "TAG-1" and first["meter_start"] == 1000
    assert second["meter_start"] == 2000
    assert len(second["id_tag"]) <= 20 and second["id_tag"] != long_token["id_token"][:20]  # an alias, never a truncation
    a, b = backend.started
    assert [s["transaction_id"] for s in backend.stops] == [a, b]
    assert backend.stops[0]["meter_stop"] == 2000 and "reason" not in backend.stops[0]
    assert backend.stops[1]["meter_stop"] == 2900 and backend.stops[1]["reason"] == "EVDisconnected"
    metered = [m for m in backend.meter_values if m.get("transaction_id") == a]
    assert any(s["value"] == "1500" for m in metered for v in m["meter_value"] for s in v["sampled_value"])
    assert any(m.get("transaction_id") == b for m in backend.meter_values)
    # The 1.6 statuses the relay synthesised from connector status and transaction state.
    seen = statuses(backend, "CS-REVERSE")
    assert seen[0] == "Available" and "Charging" in seen and "Preparing" in seen and "Finishing" in seen
    assert seen.index("Preparing") < len(seen) - 1 - seen[::-1].index("Charging")
    # The backend's own GetConfiguration was answered from the station's device model.
    answer = backend.answers["CS-REVERSE"]
    assert answer.configuration_key == [{"key": "HeartbeatInterval", "readonly": False, "value": "300"}]
    relay.stop()
    entries, _ = recordings_show(relay.recordings)
    checked = validate_recording(entries)
    assert checked["1.6"] >= 20 and checked["2.0.1"] >= 20
    opened = [e for e in entries if e.get("event") == "open"][0]
    assert opened["subprotocol"] == "ocpp2.0.1" and opened["upstreamSubprotocol"] == "ocpp1.6"
    # The alias is noted as lossy in the recording (the operator provisions it on the backend).
    assert any("lossy" in e.get("message", "") and second["id_tag"] in e.get("message", "") for e in entries)


def test_backend_commands_reach_a_201_station(start_relay):
    """Each 1.6 command reaches the 2.0.1 station (which validates it) as its 2.0.1 counterpart, and the station's
    answer reaches the backend (which validates it)."""

    async def scenario():
        async with Backend(subprotocols=["ocpp1.6"], ask_after_boot=False) as backend:
            relay = start_reverse_relay(start_relay, backend)
            ws, station, task, _ = await booted_station(relay.url, "CS-COMMANDS")
            (cp, _), = backend.sessions["CS-COMMANDS"]
            answers = {}
            answers["remote_start"] = await cp.call(call16.RemoteStartTransaction(id_tag="APP-42", connector_id=1))
            remote = station.commands[-1][1]
            answers["started"] = await station.call(
                event("Started", "RemoteStart", 0, "TX-R", id_token=remote["id_token"], evse={"id": 1, "connector_id": 1},
                      meter_value=energy(10, "Transaction.Begin"), remote_start_id=remote["remote_start_id"], charging_state="Charging")
            )
            number = backend.started[-1]
            answers["remote_stop"] = await cp.call(call16.RemoteStopTransaction(transaction_id=number))
            answers["unknown_stop"] = await cp.call(call16.RemoteStopTransaction(transaction_id=number + 1000))
            answers["tx_profile"] = await cp.call(call16.SetChargingProfile(connector_id=1, cs_charging_profiles={
                "charging_profile_id": 7, "stack_level": 1, "charging_profile_purpose": "TxProfile", "charging_profile_kind": "Absolute",
                "transaction_id": number,
                "charging_schedule": {"charging_rate_unit": "A", "charging_schedule_period": [{"start_period": 0, "limit": 10.0}]}}))
            answers["ended"] = await station.call(event("Ended", "RemoteStop", 1, "TX-R", meter_value=energy(500, "Transaction.End"), stopped_reason="Remote"))
            answers["reset"] = await cp.call(call16.Reset(type="Hard"))
            answers["availability"] = await cp.call(call16.ChangeAvailability(connector_id=1, type="Inoperative"))
            answers["unlock"] = await cp.call(call16.UnlockConnector(connector_id=1))
            answers["trigger_status"] = await cp.call(call16.TriggerMessage(requested_message="StatusNotification", connector_id=1))
            answers["trigger_boot"] = await cp.call(call16.TriggerMessage(requested_message="BootNotification"))
            answers["clear_cache"] = await cp.call(call16.ClearCache())
            answers["configuration"] = await cp.call(call16.GetConfiguration(key=["HeartbeatInterval", "StopTransactionOnInvalidId", "NoSuchKey"]))
            answers["change"] = await cp.call(call16.ChangeConfiguration(key="HeartbeatInterval", value="120"))
            answers["change_unknown"] = await cp.call(call16.ChangeConfiguration(key="NoSuchKey", value="1"))
            answers["default_profile"] = await cp.call(call16.SetChargingProfile(connector_id=1, cs_charging_profiles={
                "charging_profile_id": 8, "stack_level": 0, "charging_profile_purpose": "TxDefaultProfile", "charging_profile_kind": "Recurring",
                "recurrency_kind": "Daily",
                "charging_schedule": {"charging_rate_unit": "W", "start_schedule": now(), "duration": 86400,
                                      "charging_schedule_period": [{"start_period": 0, "limit": 11000.0}, {"start_period": 3600, "limit": 7400.0}]}}))
            answers["clear_profile"] = await cp.call(call16.ClearChargingProfile(id=8))
            answers["composite"] = await cp.call(call16.GetCompositeSchedule(connector_id=1, duration=3600, charging_rate_unit="A"))
            answers["reserve"] = await cp.call(call16.ReserveNow(connector_id=1, expiry_date=now(), id_tag="TAG-1", reservation_id=3))
            answers["cancel"] = await cp.call(call16.CancelReservation(reservation_id=3))
            answers["local_list"] = await cp.call(call16.SendLocalList(list_version=2, update_type="Full", local_authorization_list=[
                {"id_tag": "TAG-1", "id_tag_info": {"status": "Accepted"}}, {"id_tag": "TAG-9"}]))
            answers["list_version"] = await cp.call(call16.GetLocalListVersion())
            answers["diagnostics"] = await cp.call(call16.GetDiagnostics(location="ftp://logs.example/"))
            log_request = station.commands[-1][1]["request_id"]
            answers["log_status"] = await station.call(call201.LogStatusNotification(status="Uploading", request_id=log_request))
            answers["firmware"] = await cp.call(call16.UpdateFirmware(location="https://fw.example/fw.bin", retrieve_date=now()))
            firmware_request = station.commands[-1][1]["request_id"]
            answers["firmware_status"] = await station.call(call201.FirmwareStatusNotification(status="Downloading", request_id=firmware_request))
            answers["firmware_scheduled"] = await station.call(call201.FirmwareStatusNotification(status="DownloadScheduled", request_id=firmware_request))
            answers["data"] = await cp.call(call16.DataTransfer(vendor_id="org.example", message_id="ping", data="hello"))
            await ws.close()
            task.cancel()
            return relay, backend, cp, station, answers

    relay, backend, cp, station, a = asyncio.run(scenario())
    assert all(value is not None for value in a.values()), a
    commands = dict(station.commands)
    assert a["remote_start"].status == "Accepted"
    start = dict(station.commands)["RequestStartTransaction"]
    assert start["id_token"] == {"id_token": "APP-42", "type": "Central"} and start["evse_id"] == 1
    assert backend.starts[-1]["id_tag"] == "APP-42"
    assert a["remote_stop"].status == "Accepted" and commands["RequestStopTransaction"]["transaction_id"] == "TX-R"
    assert a["unknown_stop"].status == "Rejected"
    assert a["tx_profile"].status == "Accepted"
    profiles = [fields for action, fields in station.commands if action == "SetChargingProfile"]
    assert profiles[0]["profile"]["transaction_id"] == "TX-R" and profiles[0]["profile"]["charging_schedule"][0]["id"] == 7
    assert profiles[1]["profile"]["charging_profile_purpose"] == "TxDefaultProfile"
    assert a["reset"].status == "Accepted" and commands["Reset"]["type"] == "Immediate"  # Scheduled → Accepted
    assert a["availability"].status == "Accepted" and commands["ChangeAvailability"]["evse"] == {"id": 1, "connector_id": 1}
    assert a["unlock"].status == "Unlocked"
    assert a["trigger_status"].status == "Accepted" and commands["TriggerMessage"]["requested_message"] == "StatusNotification"
    assert a["trigger_boot"].status == "Accepted" and cp.actions.count("BootNotification") == 2
    assert a["clear_cache"].status == "Accepted"
    keys = {k["key"]: k.get("value") for k in a["configuration"].configuration_key}
    assert keys == {"HeartbeatInterval": "300", "StopTransactionOnInvalidId": "true"} and a["configuration"].unknown_key == ["NoSuchKey"]
    assert a["change"].status == "Accepted" and station.variables[("OCPPCommCtrlr", "HeartbeatInterval", None)] == "120"
    assert a["change_unknown"].status == "NotSupported"
    assert a["default_profile"].status == "Accepted" and a["clear_profile"].status == "Accepted"
    assert a["composite"].status == "Accepted" and a["composite"].connector_id == 1
    assert a["composite"].charging_schedule["charging_schedule_period"][0]["limit"] == 16.0
    assert a["reserve"].status == "Accepted" and commands["ReserveNow"]["id"] == 3
    assert a["cancel"].status == "Accepted"
    assert a["local_list"].status == "Accepted" and commands["SendLocalList"]["version_number"] == 2
    assert len(commands["SendLocalList"]["entries"]) == 2
    assert a["list_version"].list_version == 7
    assert a["diagnostics"].file_name == "diagnostics.zip" and commands["GetLog"]["log"]["remote_location"] == "ftp://logs.example/"
    assert commands["UpdateFirmware"]["firmware"]["location"] == "https://fw.example/fw.bin"
    assert "DiagnosticsStatusNotification.Uploading" in cp.actions and "FirmwareStatusNotification.Downloading" in cp.actions
    assert not any("DownloadScheduled" in action for action in cp.actions)  # 1.6 has no such status
    assert a["data"].status == "Accepted" and commands["DataTransfer"]["data"] == "hello"
    relay.stop()
    validate_recording(recordings_show(relay.recordings)[0])


def test_a_token_the_backend_rejects_at_start_ends_the_transaction(start_relay):
    async def scenario():
        async with Backend(subprotocols=["ocpp1.6"], ask_after_boot=False) as backend:
            backend.blocked.add("BAD-TAG")
            relay = start_reverse_relay(start_relay, backend)
            ws, station, task, _ = await booted_station(relay.url, "CS-BLOCKED")
            bad = {"id_token": "BAD-TAG", "type": "ISO14443"}
            started = await station.call(
                event("Started", "Authorized", 0, "TX-X", id_token=bad, evse={"id": 1, "connector_id": 1}, meter_value=energy(0, "Transaction.Begin"), charging_state="EVConnected")
            )
            # What a 2.0.1 station does with StopTxOnInvalidId: it ends the transaction, deauthorized.
            ended = await station.call(event("Ended", "Deauthorized", 1, "TX-X", stopped_reason="DeAuthorized", meter_value=energy(0, "Transaction.End")))
            for _ in range(200):
                if backend.stops:
                    break
                await asyncio.sleep(0.02)
            await ws.close()
            task.cancel()
            return relay, backend, started, ended

    relay, backend, started, ended = asyncio.run(scenario())
    assert started.id_token_info["status"] == "Blocked"
    assert backend.stops[-1]["transaction_id"] == backend.started[-1] and backend.stops[-1]["reason"] == "DeAuthorized"
    relay.stop()
    validate_recording(recordings_show(relay.recordings)[0])


def test_events_before_the_backends_id_wait_for_it(start_relay):
    """The backend takes longer to answer StartTransaction than the station may wait: the station is answered, its
    next events queue behind StartTransaction and go out with the backend's id once it comes."""

    async def scenario():
        async with Backend(subprotocols=["ocpp1.6"], ask_after_boot=False) as backend:
            # Silent for longer than the first connection lasts: the relay answers the station's Started after half
            # timeouts.call (5 s, at its next 1 s tick), and the drain closes the upstream 1 s after the station left
            # (by about 6 s), well before the backend's answer (8 s) and the StartTransaction's own timeout (10 s).
            # With 5 s of silence and a 6 s timeout, the backend's answer raced that close.
            backend.start_delay = 8
            relay = start_reverse_relay(start_relay, backend, config="timeouts:\n  call: 10s\n  drain: 1s\n")
            ws, station, task, _ = await booted_station(relay.url, "CS-QUEUE")
            started = await station.call(
                event("Started", "Authorized", 0, "TX-Q", id_token=TOKEN, evse={"id": 1, "connector_id": 1}, meter_value=energy(100, "Transaction.Begin"), charging_state="Charging")
            )
            updates = [await station.call(event("Updated", "MeterValuePeriodic", seq, "TX-Q", meter_value=energy(100 + 50 * seq))) for seq in (1, 2)]
            ended = await station.call(event("Ended", "StopAuthorized", 3, "TX-Q", id_token=TOKEN, meter_value=energy(300, "Transaction.End"), stopped_reason="Local"))
            queued = len(backend.started) == 0  # the station was answered before the backend's id existed
            for _ in range(300):
                if backend.stops:
                    break
                await asyncio.sleep(0.02)
            await ws.close()
            task.cancel()
            return relay, backend, started, updates, ended, queued

    relay, backend, started, updates, ended, queued = asyncio.run(scenario())
    assert queued and started is not None and all(u is not None for u in updates) and ended is not None
    number = backend.started[0]
    assert [m["transaction_id"] for m in backend.meter_values] == [number] * len(backend.meter_values) and len(backend.meter_values) >= 3
    assert backend.stops[0]["transaction_id"] == number and backend.stops[0]["meter_stop"] == 300
    (cp, _), = backend.sessions["CS-QUEUE"]
    transaction = [action for action in cp.actions if action in ("StartTransaction", "MeterValues", "StopTransaction")]
    assert transaction[0] == "StartTransaction" and transaction[-1] == "StopTransaction" and transaction.count("StartTransaction") == 1
    relay.stop()
    validate_recording(recordings_show(relay.recordings)[0])


def test_a_relay_killed_mid_transaction_keeps_every_mapping(start_relay, state_store):
    config, env = state_store

    def start_reverse_relay(start_relay, backend):
        return start_relay(backend.url, "--upstream-version", "1.6", "--mappings", MAPPINGS, config=config or None, env=env)

    async def scenario():
        async with Backend(subprotocols=["ocpp1.6"], ask_after_boot=False) as backend:
            relay = start_reverse_relay(start_relay, backend)
            ws, station, task, _ = await booted_station(relay.url, "CS-KILLED")
            await station.call(
                event("Started", "Authorized", 0, "TX-K", id_token=TOKEN, evse={"id": 1, "connector_id": 1}, meter_value=energy(700, "Transaction.Begin"), charging_state="Charging")
            )
            relay.process.send_signal(signal.SIGKILL)
            relay.process.wait()
            task.cancel()
            # A new relay process on the same recordings folder (and so the same state database).
            relay2 = start_reverse_relay(start_relay, backend)
            ws2 = await open_charger(relay2.url, "CS-KILLED", ["ocpp2.0.1"])
            station2 = Station201("CS-KILLED", Tap(ws2))
            task2 = asyncio.create_task(station2.start())
            updated = await station2.call(event("Updated", "MeterValuePeriodic", 1, "TX-K", meter_value=energy(900)))
            ended = await station2.call(event("Ended", "StopAuthorized", 2, "TX-K", id_token=TOKEN, meter_value=energy(1200, "Transaction.End"), stopped_reason="Local"))
            for _ in range(200):
                if backend.stops:
                    break
                await asyncio.sleep(0.02)
            await ws2.close()
            task2.cancel()
            return relay2, backend, updated, ended

    relay2, backend, updated, ended = asyncio.run(scenario())
    assert updated is not None and ended is not None
    number, = backend.started
    assert backend.meter_values[-1]["transaction_id"] == number
    stop, = backend.stops
    assert (stop["meter_stop"], stop["transaction_id"], stop["id_tag"]) == (1200, number, "TAG-1")
    assert stop["transaction_data"][0]["sampled_value"][0]["value"] == "1200"
    relay2.stop()
    validate_recording(recordings_show(relay2.recordings)[0])


def test_twenty_stations_at_once_keep_their_transactions_apart(start_relay):
    async def one(relay_url, backend, n):
        identity = f"CS-MANY-{n:02d}"
        ws, station, task, boot = await booted_station(relay_url, identity)
        token = {"id_token": f"TAG-{n:02d}", "type": "ISO14443"}
        await station.call(event("Started", "Authorized", 0, f"TX-{n}", id_token=token, evse={"id": 1, "connector_id": 1}, meter_value=energy(n * 100, "Transaction.Begin"), charging_state="Charging"))
        await station.call(event("Updated", "MeterValuePeriodic", 1, f"TX-{n}", meter_value=energy(n * 100 + 50)))
        await station.call(event("Ended", "StopAuthorized", 2, f"TX-{n}", id_token=token, meter_value=energy(n * 100 + 99, "Transaction.End"), stopped_reason="Local"))
        # A station stays connected; its StopTransaction may still wait behind its MeterValues upstream.
        for _ in range(250):
            if any(s["meter_stop"] == n * 100 + 99 for s in backend.stops):
                break
            await asyncio.sleep(0.02)
        await ws.close()
        task.cancel()

    async def scenario():
        async with Backend(subprotocols=["ocpp1.6"], ask_after_boot=False) as backend:
            relay = start_reverse_relay(start_relay, backend)
            await asyncio.gather(*(one(relay.url, backend, n) for n in range(1, 21)))
            for _ in range(250):
                if len(backend.stops) == 20:
                    break
                await asyncio.sleep(0.02)
            return relay, backend

    relay, backend = asyncio.run(scenario())
    assert len(backend.started) == 20 and sorted(backend.stopped) == sorted(backend.started)
    by_tag = {s["id_tag"]: s for s in backend.starts}
    stop_by_id = {s["transaction_id"]: s for s in backend.stops}
    for n in range(1, 21):
        start = by_tag[f"TAG-{n:02d}"]
        assert start["meter_start"] == n * 100
    assert sorted(s["meter_stop"] for s in stop_by_id.values()) == sorted(n * 100 + 99 for n in range(1, 21))
    relay.stop()
    validate_recording(recordings_show(relay.recordings)[0])


def test_a_charger_of_a_version_the_relay_does_not_speak_is_refused_clearly_and_recorded(start_relay):
    """(A 2.1 charger was refused here until the relay translated 2.1: test_ocpp21.py.)"""

    async def scenario():
        async with Backend(subprotocols=["ocpp1.6"], ask_after_boot=False) as backend:
            relay = start_reverse_relay(start_relay, backend)
            import websockets
            try:
                await open_charger(relay.url, "CS-30", ["ocpp3.0"])
                status = 101
            except websockets.exceptions.InvalidStatus as error:
                status = error.response.status_code
            return relay, status

    relay, status = asyncio.run(scenario())
    assert status == 400
    relay.stop()
    entries, _ = recordings_show(relay.recordings)
    refused = [e for e in entries if e.get("refused")]
    assert refused and "cannot serve a charger offering ocpp3.0" in refused[0]["reason"]


def test_transaction_messages_left_unsent_go_out_on_the_next_connection(start_relay):
    """The backend is slow to answer StartTransaction, so the station was answered from the relay's outbox; it leaves
    before the backend's id came, and the backend is still silent when `timeouts.drain` has passed. When it returns,
    the relay sends StartTransaction, the readings and the stop again with their message ids (a 1.6 backend can spot
    the repeat), and the stop carries the backend's id."""

    async def scenario():
        async with Backend(subprotocols=["ocpp1.6"], ask_after_boot=False) as backend:
            # Silent for longer than the first connection lasts: the relay answers the station's Started after half
            # timeouts.call (5 s, at its next 1 s tick), and the drain closes the upstream 1 s after the station left
            # (by about 6 s), well before the backend's answer (8 s) and the StartTransaction's own timeout (10 s).
            # With 5 s of silence and a 6 s timeout, the backend's answer raced that close.
            backend.start_delay = 8
            relay = start_reverse_relay(start_relay, backend, config="timeouts:\n  call: 10s\n  drain: 1s\n")
            ws, station, task, _ = await booted_station(relay.url, "CS-OUTBOX")
            await station.call(
                event("Started", "Authorized", 0, "TX-O", id_token=TOKEN, evse={"id": 1, "connector_id": 1}, meter_value=energy(10, "Transaction.Begin"), charging_state="Charging")
            )
            await station.call(event("Updated", "MeterValuePeriodic", 1, "TX-O", meter_value=energy(20)))
            await station.call(event("Ended", "StopAuthorized", 2, "TX-O", id_token=TOKEN, meter_value=energy(30, "Transaction.End"), stopped_reason="Local"))
            await ws.close()
            task.cancel()
            await backend.closed("CS-OUTBOX", timeout=20)  # noticed when its 8 s of silence end
            stopped_before = list(backend.stops)
            backend.start_delay = 0
            ws2 = await open_charger(relay.url, "CS-OUTBOX", ["ocpp2.0.1"])
            task2 = asyncio.create_task(Station201("CS-OUTBOX", Tap(ws2)).start())
            for _ in range(250):
                if backend.stops:
                    break
                await asyncio.sleep(0.02)
            await ws2.close()
            task2.cancel()
            return relay, backend, stopped_before

    relay, backend, stopped_before = asyncio.run(scenario())
    assert stopped_before == []
    stop, = backend.stops
    # The backend answered the first StartTransaction after the relay had gone: the repeat is a second start
    # with the same message id, and the stop names the id the backend gave last.
    assert stop["transaction_id"] == backend.started[-1] and stop["meter_stop"] == 30
    (_, first_tap), (_, second_tap) = backend.sessions["CS-OUTBOX"]
    ids = lambda tap, action: [m.split(",")[1] for m in tap.received if f'"{action}"' in m]
    assert ids(first_tap, "StartTransaction") == ids(second_tap, "StartTransaction")
    assert len(ids(second_tap, "MeterValues")) >= 1 and len(ids(second_tap, "StopTransaction")) == 1
    relay.stop()
    entries = recordings_show(relay.recordings)[0]
    validate_recording(entries)
    assert any("undelivered when timeouts.drain passed" in e.get("message", "") for e in entries)


def test_a_201_station_with_a_16_shadow_mirror(start_relay):
    """Migration the other way round: a 2.0.1 station stays on its 2.0.1 backend while a 1.6 backend shadows it,
    translated; the mirror's 1.6 transaction is complete and its answers are compared."""
    from test_mirrors import mirror_config, report, until

    async def scenario():
        async with Backend(subprotocols=["ocpp2.0.1"], ask_after_boot=False) as primary, Backend(
            subprotocols=["ocpp1.6"], ask_after_boot=False
        ) as shadow:
            relay = start_relay(primary.url, config=mirror_config(shadow, name="old-csms", version="1.6"))
            ws, station, task, boot = await booted_station(relay.url, "CS-MIRRORED")
            await station.call(call201.StatusNotification(timestamp=now(), connector_status="Occupied", evse_id=1, connector_id=1))
            await station.call(
                event("Started", "Authorized", 0, "TX-M", id_token=TOKEN, evse={"id": 1, "connector_id": 1}, meter_value=energy(100, "Transaction.Begin"), charging_state="Charging")
            )
            await station.call(event("Updated", "MeterValuePeriodic", 1, "TX-M", meter_value=energy(400)))
            await station.call(event("Ended", "StopAuthorized", 2, "TX-M", id_token=TOKEN, meter_value=energy(700, "Transaction.End"), stopped_reason="Local"))
            await until(lambda: shadow.stops, what="the shadow's StopTransaction")
            await ws.close()
            task.cancel()
            return relay, primary, shadow, boot

    relay, primary, shadow, boot = asyncio.run(scenario())
    assert boot.status == "Accepted"
    (primary_cp, _), = primary.sessions["CS-MIRRORED"]
    assert "TransactionEvent.Ended" in primary_cp.actions
    start, = shadow.starts
    assert start["id_tag"] == "TAG-1" and start["meter_start"] == 100
    assert shadow.stops[0]["transaction_id"] == shadow.started[0] and shadow.stops[0]["meter_stop"] == 700
    relay.stop()
    rows = report(relay.recordings)
    assert rows["BootNotification"]["matched"] == 1 and rows["TransactionEvent"]["matched"] + rows["TransactionEvent"].get("diverged", 0) == 3
    entries, _ = recordings_show(relay.recordings)
    mirror_frames = [e for e in entries if e.get("leg") == "mirror"]
    assert any('"StartTransaction"' in e.get("text", "") for e in mirror_frames)


def test_a_pending_boot_then_an_accepted_one(start_relay):
    """The 1.6 backend answers the first boot Pending (and may query the station meanwhile), the next Accepted: the
    station hears both as the backend said them."""

    async def scenario():
        async with Backend(subprotocols=["ocpp1.6"], ask_after_boot=False) as backend:
            backend.boot_statuses = ["Pending"]
            backend.boot_interval = 1
            relay = start_reverse_relay(start_relay, backend)
            ws, station, task, first = await booted_station(relay.url, "CS-PENDING")
            (cp, _), = backend.sessions["CS-PENDING"]
            asked = await cp.call(call16.GetConfiguration(key=["HeartbeatInterval"]))
            second = await station.call(
                call201.BootNotification(charging_station={"model": "E2E-201", "vendor_name": "ocpp-relay-tests"}, reason="PowerUp")
            )
            status = await station.call(call201.StatusNotification(timestamp=now(), connector_status="Available", evse_id=1, connector_id=1))
            await ws.close()
            task.cancel()
            return relay, cp, first, asked, second, status

    relay, cp, first, asked, second, status = asyncio.run(scenario())
    assert first.status == "Pending" and first.interval == 1
    assert asked.configuration_key == [{"key": "HeartbeatInterval", "readonly": False, "value": "300"}]
    assert second.status == "Accepted" and status is not None
    assert cp.actions[:2] == ["BootNotification", "BootNotification"]
    relay.stop()
    validate_recording(recordings_show(relay.recordings)[0])


def test_a_201_stations_signed_readings_reach_the_16_backend_byte_exact(start_relay):
    from test_translation import OCMF

    async def scenario():
        async with Backend(subprotocols=["ocpp1.6"], ask_after_boot=False) as backend:
            relay = start_reverse_relay(start_relay, backend)
            ws, station, task, _ = await booted_station(relay.url, "CS-OCMF")
            await station.call(
                event("Started", "Authorized", 0, "TX-S", id_token=TOKEN, evse={"id": 1, "connector_id": 1}, meter_value=energy(1000, "Transaction.Begin"), charging_state="Charging")
            )
            signed = {"value": 1234.5, "measurand": "Energy.Active.Import.Register", "unit_of_measure": {"unit": "Wh"},
                      "signed_meter_value": {"signed_meter_data": OCMF, "signing_method": "ECDSA-secp256r1-SHA256", "encoding_method": "OCMF", "public_key": ""}}
            await station.call(event("Updated", "MeterValuePeriodic", 1, "TX-S", meter_value=[{"timestamp": now(), "sampled_value": [signed]}]))
            await ws.close()
            task.cancel()
            return relay, backend

    relay, backend = asyncio.run(scenario())
    samples = [s for m in backend.meter_values for v in m["meter_value"] for s in v["sampled_value"]]
    assert {"value": "1234.5", "measurand": "Energy.Active.Import.Register", "unit": "Wh"}.items() <= samples[-2].items()
    assert samples[-1]["format"] == "SignedData" and samples[-1]["value"] == OCMF
    relay.stop()
    validate_recording(recordings_show(relay.recordings)[0])
