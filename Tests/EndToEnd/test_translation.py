"""Translation: a real OCPP 1.6 charger on a real OCPP 2.0.1 backend through the relay. Both peers come from
the pinned `ocpp` package and reject any message that breaks the official schemas; the recording is
checked against the schemas too, frame by frame, on both legs."""

import asyncio
import json
import pathlib
import signal

import jsonschema
import pytest
import ocpp
from conftest import ROOT, recordings_show
from ocpp.v16 import call as call16
from ocpp.v201 import call as call201
from peers import Backend, Charger16, Tap, now, open_charger, session_16

SCHEMAS = pathlib.Path(ocpp.__file__).parent
MAPPINGS = str(ROOT / "Mappings")


def schema(version, action, response):
    if version == "1.6":
        return json.loads((SCHEMAS / "v16" / "schemas" / f"{action}{'Response' if response else ''}.json").read_text())
    folder = SCHEMAS / {"2.0.1": "v201", "2.1": "v21"}[version] / "schemas"
    path = folder / f"{action}{'Response' if response else 'Request'}.json"
    if not path.exists() and not response:  # a SEND's message (2.1's NotifyPeriodicEventStream) has no "Request"
        path = folder / f"{action}.json"
    return json.loads(path.read_text())


def validate_recording(entries, expected_errors=()):
    """Every CALL and CALLRESULT on both legs is valid against its version's schema, and no call was answered with a
    CALLERROR unless its action is in `expected_errors` (a translation that degrades into an error must fail the
    test); returns counts."""
    pending = {}
    checked = {"1.6": 0, "2.0.1": 0, "2.1": 0}
    for e in entries:
        if "text" not in e:
            continue
        frame = json.loads(e["text"])
        if frame[0] == 2:
            pending[(e["connection"], e["leg"], frame[1])] = frame[2]
            jsonschema.validate(frame[3], schema(e["version"], frame[2], response=False))
        elif frame[0] == 3:
            action = pending.pop((e["connection"], e["leg"], frame[1]))
            jsonschema.validate(frame[2], schema(e["version"], action, response=True))
        elif frame[0] == 6:  # an OCPP 2.1 SEND: never answered
            jsonschema.validate(frame[3], schema(e["version"], frame[2], response=False))
        elif frame[0] == 4:
            action = pending.pop((e["connection"], e["leg"], frame[1]), None)
            assert action in expected_errors, f"{action} answered with a CALLERROR on the {e['leg']} leg: {e['text']}"
        checked[e["version"]] += 1
    return checked


def start_translating_relay(start_relay, backend):
    return start_relay(backend.url, "--upstream-version", "2.0.1", "--mappings", MAPPINGS)


async def booted_16_charger(relay_url, backend, identity):
    """A 1.6 charger connected through the relay and booted: (its socket, the charger, its task, the backend's side)."""
    ws = await open_charger(relay_url, identity, ["ocpp1.6"])
    cp = Charger16(identity, Tap(ws))
    cp._ensure()
    task = asyncio.create_task(cp.start())
    await cp.call(call16.BootNotification(charge_point_model="E2E", charge_point_vendor="ocpp-relay-tests"))
    (backend_cp, _), = backend.sessions[identity]
    return ws, cp, task, backend_cp


def test_a_16_charger_runs_a_session_on_a_201_backend(start_relay):
    async def scenario():
        async with Backend(subprotocols=["ocpp2.0.1"]) as backend:
            relay = start_translating_relay(start_relay, backend)
            ws = await open_charger(relay.url, "CP-TRANSLATE", ["ocpp1.6"])
            assert ws.subprotocol == "ocpp1.6"
            cp = Charger16("CP-TRANSLATE", Tap(ws))
            task = asyncio.create_task(cp.start())
            results = await session_16(cp)
            for _ in range(100):
                if "CP-TRANSLATE" in backend.answers:
                    break
                await asyncio.sleep(0.02)
            await ws.close()
            task.cancel()
            await backend.closed("CP-TRANSLATE")
            return relay, backend, results

    relay, backend, results = asyncio.run(scenario())
    # The charger got a valid 1.6 answer to every call (a CALLERROR would be None here).
    assert all(r is not None for r in results), results
    boot, status, authorize, start, m1, m2, m3, stop, heartbeat = results
    assert boot.status == "Accepted" and boot.interval == 300
    assert authorize.id_tag_info["status"] == "Accepted"
    assert isinstance(start.transaction_id, int) and start.transaction_id > 0
    # The backend saw a 2.0.1 session: boot, status, authorize, one transaction with meter values.
    (cp201, _), = backend.sessions["CP-TRANSLATE"]
    assert cp201.actions == [
        "BootNotification", "StatusNotification", "Authorize", "TransactionEvent.Started",
        "TransactionEvent.Updated", "TransactionEvent.Updated", "TransactionEvent.Updated", "TransactionEvent.Ended", "Heartbeat",
    ]
    events = backend.events["CP-TRANSLATE"]
    assert len({e["transaction_info"]["transaction_id"] for e in events}) == 1
    assert [e["seq_no"] for e in events] == [0, 1, 2, 3, 4]
    assert events[0]["trigger_reason"] == "Authorized" and events[0]["id_token"]["type"] == "ISO14443"
    assert events[-1]["transaction_info"]["stopped_reason"] == "Local"
    assert backend.boots["CP-TRANSLATE"]["vendor_name"] == "ocpp-relay-tests"
    # The backend's own GetVariables was answered from the charger's configuration.
    answer = backend.answers["CP-TRANSLATE"]
    assert answer.get_variable_result[0]["attribute_status"] == "Accepted"
    assert answer.get_variable_result[0]["attribute_value"] == "300"
    relay.stop()
    entries, _ = recordings_show(relay.recordings)
    checked = validate_recording(entries)
    assert checked["1.6"] >= 20 and checked["2.0.1"] >= 20
    opened = [e for e in entries if e.get("event") == "open"][0]
    assert opened["subprotocol"] == "ocpp1.6" and opened["upstreamSubprotocol"] == "ocpp2.0.1"


def test_remote_start_and_stop_and_configuration_fan_out(start_relay):
    async def scenario():
        async with Backend(subprotocols=["ocpp2.0.1"], ask_after_boot=False) as backend:
            relay = start_translating_relay(start_relay, backend)
            ws, cp, task, backend_cp = await booted_16_charger(relay.url, backend, "CP-REMOTE")
            started = await backend_cp.call(
                call201.RequestStartTransaction(id_token={"id_token": "APP-42", "type": "Central"}, remote_start_id=4242, evse_id=1)
            )
            assert started.status == "Accepted"
            assert cp.remote_starts == [("APP-42", 1)]
            start = await cp.call(call16.StartTransaction(connector_id=1, id_tag="APP-42", meter_start=10, timestamp=now()))
            event = backend.events["CP-REMOTE"][-1]
            stopped = await backend_cp.call(call201.RequestStopTransaction(transaction_id=event["transaction_info"]["transaction_id"]))
            assert stopped.status == "Accepted"
            assert cp.remote_starts[-1] == ("stop", start.transaction_id)
            fanned = await backend_cp.call(
                call201.SetVariables(
                    set_variable_data=[
                        {"attribute_value": "120", "component": {"name": "OCPPCommCtrlr"}, "variable": {"name": "HeartbeatInterval"}},
                        {"attribute_value": "30", "component": {"name": "SampledDataCtrlr"}, "variable": {"name": "TxUpdatedInterval"}},
                        {"attribute_value": "1", "component": {"name": "NoSuchCtrlr"}, "variable": {"name": "X"}},
                    ]
                )
            )
            await ws.close()
            task.cancel()
            return relay, event, fanned, cp.configuration

    relay, event, fanned, configuration = asyncio.run(scenario())
    assert event["trigger_reason"] == "RemoteStart"
    assert event["transaction_info"]["remote_start_id"] == 4242
    assert event["id_token"] == {"id_token": "APP-42", "type": "Central"}
    assert [r["attribute_status"] for r in fanned.set_variable_result] == ["Accepted", "Accepted", "UnknownComponent"]
    assert configuration["HeartbeatInterval"] == "120" and configuration["MeterValueSampleInterval"] == "30"
    relay.stop()
    entries, _ = recordings_show(relay.recordings)
    validate_recording(entries)
    sent = [json.loads(e["text"]) for e in entries if "text" in e and e["leg"] == "charger" and e["dir"] == "out"]
    assert [f[2] for f in sent if f[0] == 2] == ["RemoteStartTransaction", "RemoteStopTransaction", "ChangeConfiguration", "ChangeConfiguration"]


@pytest.fixture(params=["sqlite", "postgresql"])
def state_store(request):
    """The translation state store a test's relays use, each test run against both implementations: (extra
    relay configuration, environment)."""
    if request.param == "sqlite":
        yield "", {}
        return
    from servers import PASSWORD, Postgres

    server = Postgres()
    yield (f"translation:\n  state: {server.url}\n  state_password_env: RELAY_DB_PASSWORD\n", {"RELAY_DB_PASSWORD": PASSWORD})
    server.close()


def test_a_relay_restarted_mid_transaction_ends_the_right_transaction(start_relay, tmp_path, state_store):
    config, env = state_store

    def start_translating_relay(start_relay, backend):
        return start_relay(backend.url, "--upstream-version", "2.0.1", "--mappings", MAPPINGS, config=config or None, env=env)

    async def scenario():
        async with Backend(subprotocols=["ocpp2.0.1"], ask_after_boot=False) as backend:
            relay = start_translating_relay(start_relay, backend)
            ws = await open_charger(relay.url, "CP-RESTART", ["ocpp1.6"])
            cp = Charger16("CP-RESTART", Tap(ws))
            task = asyncio.create_task(cp.start())
            await cp.call(call16.BootNotification(charge_point_model="E2E", charge_point_vendor="ocpp-relay-tests"))
            start = await cp.call(call16.StartTransaction(connector_id=1, id_tag="04A2B3C4", meter_start=100, timestamp=now()))
            relay.process.send_signal(signal.SIGKILL)
            relay.process.wait()
            task.cancel()
            # A new relay process on the same recordings folder (and so the same state database).
            relay2 = start_translating_relay(start_relay, backend)
            ws2 = await open_charger(relay2.url, "CP-RESTART", ["ocpp1.6"])
            cp2 = Charger16("CP-RESTART", Tap(ws2))
            task2 = asyncio.create_task(cp2.start())
            stop = await cp2.call(call16.StopTransaction(meter_stop=900, timestamp=now(), transaction_id=start.transaction_id))
            await ws2.close()
            task2.cancel()
            return relay2, backend, start, stop

    relay2, backend, start, stop = asyncio.run(scenario())
    assert stop is not None
    started, ended = backend.events["CP-RESTART"]
    assert started["event_type"] == "Started" and ended["event_type"] == "Ended"
    assert ended["transaction_info"]["transaction_id"] == started["transaction_info"]["transaction_id"]
    assert ended["seq_no"] == started["seq_no"] + 1
    assert ended["meter_value"][-1]["sampled_value"][0]["value"] == 900
    relay2.stop()
    validate_recording(recordings_show(relay2.recordings)[0])


def test_every_backend_command_and_charger_notification_translates_schema_valid(start_relay):
    """Each 2.0.1 command of §2.1 reaches the 1.6 charger (which validates it) and its answer reaches the
    backend (which validates it); the 1.6-only notifications arrive as their 2.0.1 counterparts."""

    profile = {
        "id": 5, "stack_level": 1, "charging_profile_purpose": "TxDefaultProfile", "charging_profile_kind": "Absolute",
        "charging_schedule": [{"id": 1, "charging_rate_unit": "A", "charging_schedule_period": [{"start_period": 0, "limit": 16.0}]}],
    }
    token = {"id_token": "04A2B3C4", "type": "ISO14443"}
    commands = [
        ("Reset", call201.Reset(type="Immediate"), "Accepted"),
        ("ChangeAvailability", call201.ChangeAvailability(operational_status="Inoperative", evse={"id": 1}), "Accepted"),
        ("UnlockConnector", call201.UnlockConnector(evse_id=1, connector_id=1), "Unlocked"),
        ("TriggerMessage", call201.TriggerMessage(requested_message="StatusNotification", evse={"id": 1}), "Accepted"),
        ("ClearCache", call201.ClearCache(), "Accepted"),
        ("SetChargingProfile", call201.SetChargingProfile(evse_id=1, charging_profile=profile), "Accepted"),
        ("GetChargingProfiles (installed)", call201.GetChargingProfiles(request_id=60, charging_profile={"charging_profile_purpose": "TxDefaultProfile"}), "Accepted"),
        ("ClearChargingProfile", call201.ClearChargingProfile(charging_profile_id=5), "Accepted"),
        ("GetCompositeSchedule", call201.GetCompositeSchedule(duration=3600, evse_id=1), "Accepted"),
        ("ReserveNow", call201.ReserveNow(id=3, expiry_date_time="2026-11-27T08:00:00Z", id_token=token, evse_id=1), "Accepted"),
        ("CancelReservation", call201.CancelReservation(reservation_id=3), "Accepted"),
        ("SendLocalList", call201.SendLocalList(version_number=8, update_type="Full", local_authorization_list=[{"id_token": token, "id_token_info": {"status": "Accepted"}}]), "Accepted"),
        ("GetLocalListVersion", call201.GetLocalListVersion(), None),
        ("GetLog", call201.GetLog(log_type="DiagnosticsLog", request_id=61, log={"remote_location": "ftp://logs.example/x"}), "Accepted"),
        ("UpdateFirmware", call201.UpdateFirmware(request_id=62, firmware={"location": "https://fw.example/1.bin", "retrieve_date_time": "2026-11-28T00:00:00Z"}), "Accepted"),
        ("DataTransfer", call201.DataTransfer(vendor_id="com.example", message_id="Ping", data={"n": 1}), "Accepted"),
        ("GetTransactionStatus", call201.GetTransactionStatus(), None),
        ("GetChargingProfiles (cleared)", call201.GetChargingProfiles(request_id=63, charging_profile={"charging_profile_purpose": "TxDefaultProfile"}), "NoProfiles"),
        ("SetDisplayMessage", call201.SetDisplayMessage(message={"id": 1, "priority": "NormalCycle", "message": {"format": "UTF8", "content": "hi"}}), "NotSupportedMessageFormat"),
        ("GetBaseReport", call201.GetBaseReport(request_id=64, report_base="FullInventory"), "Accepted"),
    ]

    async def scenario():
        async with Backend(subprotocols=["ocpp2.0.1"], ask_after_boot=False) as backend:
            relay = start_translating_relay(start_relay, backend)
            ws, cp, task, backend_cp = await booted_16_charger(relay.url, backend, "CP-ALL")
            answers = {}
            for name, request, _ in commands:
                answers[name] = await backend_cp.call(request, suppress=False)
            # Charger-initiated messages without a transaction or with request ids.
            notes = [
                await cp.call(call16.DataTransfer(vendor_id="com.example", message_id="Hello", data="hi")),
                await cp.call(call16.DiagnosticsStatusNotification(status="Uploaded")),
                await cp.call(call16.FirmwareStatusNotification(status="Downloaded")),
                await cp.call(call16.MeterValues(connector_id=0, meter_value=[{"timestamp": now(), "sampled_value": [{"value": "52000", "unit": "Wh"}]}])),
            ]
            for _ in range(100):
                if "NotifyReport" in backend_cp.actions:
                    break
                await asyncio.sleep(0.02)
            await ws.close()
            task.cancel()
            return relay, backend, backend_cp, answers, notes, cp.remote_starts

    relay, backend, backend_cp, answers, notes, received = asyncio.run(scenario())
    for name, _, expected in commands:
        if expected is not None:
            assert answers[name].status == expected, name
    assert answers["GetLocalListVersion"].version_number == 7
    assert answers["GetTransactionStatus"].messages_in_queue is False
    assert answers["GetLog"].filename == "diagnostics.zip"
    assert answers["GetCompositeSchedule"].schedule["evse_id"] == 1
    assert [name for name, _ in received] == [
        "Reset", "ChangeAvailability", "UnlockConnector", "TriggerMessage", "ClearCache", "SetChargingProfile",
        "ClearChargingProfile", "GetCompositeSchedule", "ReserveNow", "CancelReservation", "SendLocalList",
        "GetLocalListVersion", "GetDiagnostics", "UpdateFirmware", "DataTransfer",
    ]
    assert dict(received)["SetChargingProfile"]["profile"]["charging_profile_purpose"] == "TxDefaultProfile"
    assert dict(received)["DataTransfer"]["data"] == '{"n":1}'
    assert all(n is not None for n in notes)
    assert notes[0].status == "Accepted"
    assert "LogStatusNotification.Uploaded.61" in backend_cp.actions
    assert "FirmwareStatusNotification.Downloaded.62" in backend_cp.actions
    assert "MeterValues.0" in backend_cp.actions
    assert "ReportChargingProfiles" in backend_cp.actions
    reported = {(r["component"]["name"], r["variable"]["name"]) for r in backend.reports["CP-ALL"]}
    assert ("OCPPCommCtrlr", "HeartbeatInterval") in reported and ("TxCtrlr", "TxStartPoint") in reported
    relay.stop()
    entries, _ = recordings_show(relay.recordings)
    validate_recording(entries)


def test_mappings_check_validates_the_tables_against_the_schemas(tmp_path):
    import shutil
    import subprocess

    from conftest import BINARY

    ok = subprocess.run([BINARY, "mappings", "check", MAPPINGS, "--schemas", str(SCHEMAS)], capture_output=True, text=True)
    assert ok.returncode == 0, ok.stdout + ok.stderr
    assert "mappings OK" in ok.stdout
    broken = tmp_path / "Mappings"
    shutil.copytree(MAPPINGS, broken)
    enums = (broken / "enums.yaml").read_text().replace("    Preparing: Occupied", "    Preparing: Busy")
    (broken / "enums.yaml").write_text(enums)
    messages = (broken / "messages.yaml").read_text().replace("      reservationId: id", "      reservationNumber: id")
    (broken / "messages.yaml").write_text(messages)
    reverse = (broken / "messages-201-on-16.yaml").read_text().replace("      reservationId: reservationId", "      reservationNumber: reservationId")
    (broken / "messages-201-on-16.yaml").write_text(reverse)
    step = (broken / "messages-21-on-201.yaml").read_text().replace("      TxResumed: ChargingStateChanged", "      TxResumed: Resumed")
    (broken / "messages-21-on-201.yaml").write_text(step)
    bad = subprocess.run([BINARY, "mappings", "check", str(broken), "--schemas", str(SCHEMAS)], capture_output=True, text=True)
    assert bad.returncode == 1
    # The schemas' facts are built in: the check needs no package folder.
    plain = subprocess.run([BINARY, "mappings", "check", str(broken)], capture_output=True, text=True)
    assert plain.returncode == 1 and plain.stdout == bad.stdout
    line = next(i + 1 for i, text in enumerate(enums.splitlines()) if text == "connector_status_16_to_201:")
    assert f"enums.yaml:{line}: error: connector_status_16_to_201: Busy is not a 2.0.1 StatusNotificationRequest connectorStatus value" in bad.stdout
    assert "ReserveNow.request: reservationNumber is not a field of 1.6 ReserveNow" in bad.stdout
    line = next(i + 1 for i, text in enumerate(reverse.splitlines()) if text == "  CancelReservation:")
    assert f"messages-201-on-16.yaml:{line}: error: CancelReservation.request: reservationNumber is not a field of 2.0.1 CancelReservationRequest" in bad.stdout
    line = next(i + 1 for i, text in enumerate(step.splitlines()) if text == "  trigger_reason:")
    assert f"messages-21-on-201.yaml:{line}: error: enums.trigger_reason: Resumed is not a 2.0.1 value of TransactionEventRequest triggerReason" in bad.stdout
    shown = subprocess.run([BINARY, "mappings", "show", MAPPINGS], capture_output=True, text=True)
    assert "StartTransaction" in shown.stdout and "TransactionEvent (transform startTransaction)" in shown.stdout
    reverse_shown = shown.stdout.split("charger (2.0.1) → backend (1.6)")[1]
    assert "TransactionEvent" in reverse_shown and "StartTransaction (transform transactionEvent)" in reverse_shown


def test_a_table_override_from_config_changes_the_translation(start_relay, tmp_path):
    overrides = tmp_path / "overrides.yaml"
    overrides.write_text("enums.yaml:\n  reset_type_201_to_16:\n    values:\n      Immediate: Hard\n")

    async def scenario():
        async with Backend(subprotocols=["ocpp2.0.1"], ask_after_boot=False) as backend:
            relay = start_relay(
                backend.url, config=f"upstream_version: '2.0.1'\ntranslation:\n  mappings: {MAPPINGS}\n  overrides: {overrides}\n"
            )
            ws, cp, task, backend_cp = await booted_16_charger(relay.url, backend, "CP-OVERRIDE")
            answer = await backend_cp.call(call201.Reset(type="Immediate"))
            await ws.close()
            task.cancel()
            return relay, answer, cp.remote_starts

    relay, answer, received = asyncio.run(scenario())
    assert answer.status == "Accepted"
    assert received == [("Reset", {"type": "Hard"})]
    relay.stop()
    validate_recording(recordings_show(relay.recordings)[0])


def test_charger_faults_reach_the_backend_as_events(start_relay):
    async def scenario():
        async with Backend(subprotocols=["ocpp2.0.1"], ask_after_boot=False) as backend:
            relay = start_translating_relay(start_relay, backend)
            ws = await open_charger(relay.url, "CP-FAULT", ["ocpp1.6"])
            cp = Charger16("CP-FAULT", Tap(ws))
            task = asyncio.create_task(cp.start())
            await cp.call(call16.BootNotification(charge_point_model="E2E", charge_point_vendor="ocpp-relay-tests"))
            answers = [
                await cp.call(call16.StatusNotification(connector_id=1, error_code="HighTemperature", status="Faulted", info="82 C", timestamp=now())),
                await cp.call(call16.StatusNotification(connector_id=1, error_code="NoError", status="Available", timestamp=now())),
                await cp.call(call16.StatusNotification(connector_id=0, error_code="NoError", status="Unavailable")),
            ]
            for _ in range(100):
                if len(backend.notified.get("CP-FAULT", [])) >= 3:
                    break
                await asyncio.sleep(0.02)
            await ws.close()
            task.cancel()
            return relay, backend, answers

    relay, backend, answers = asyncio.run(scenario())
    assert all(a is not None for a in answers)
    raised, cleared, station = backend.notified["CP-FAULT"]
    assert (raised["component"]["name"], raised["variable"]["name"], raised["actual_value"]) == ("TemperatureSensor", "Problem", "true")
    assert raised["tech_code"] == "HighTemperature" and raised["tech_info"] == "82 C"
    assert cleared["cleared"] is True and cleared["actual_value"] == "false"
    assert (station["component"]["name"], station["actual_value"]) == ("ChargingStation", "Unavailable")
    relay.stop()
    entries, _ = recordings_show(relay.recordings)
    validate_recording(entries)


def test_routes_migrate_some_chargers_to_the_new_backend(start_relay, tmp_path):
    """The fleet's way to migrate: chargers a route names go (translated) to the 2.0.1 backend, the rest
    pass through to the old 1.6 backend."""
    import subprocess

    from conftest import BINARY

    async def scenario():
        async with Backend(subprotocols=["ocpp1.6"], ask_after_boot=False) as old, Backend(subprotocols=["ocpp2.0.1"], ask_after_boot=False) as new:
            config = (
                f"upstream: {old.url}\nupstream_version: '1.6'\ntranslation:\n  mappings: {MAPPINGS}\n"
                f"routes:\n  - name: pilot\n    chargers: ['glob:NEW-*']\n    upstream: {new.url}\n    upstream_version: '2.0.1'\n"
            )
            relay = start_relay(old.url, config=config)
            for identity in ("NEW-1", "OLD-1"):
                ws = await open_charger(relay.url, identity, ["ocpp1.6"])
                cp = Charger16(identity, Tap(ws))
                task = asyncio.create_task(cp.start())
                await cp.call(call16.BootNotification(charge_point_model="E2E", charge_point_vendor="ocpp-relay-tests"))
                await cp.call(call16.Heartbeat())
                await ws.close()
                task.cancel()
            return relay, old, new, config

    relay, old, new, config = asyncio.run(scenario())
    assert list(new.sessions) == ["NEW-1"] and list(old.sessions) == ["OLD-1"]
    (new_cp, _), = new.sessions["NEW-1"]
    (old_cp, old_tap), = old.sessions["OLD-1"]
    assert new_cp.actions == ["BootNotification", "Heartbeat"] and old_cp.actions == ["BootNotification", "Heartbeat"]
    relay.stop()
    entries = recordings_show(relay.recordings)[0]
    validate_recording(entries)
    upstream_texts = [e["text"] for e in entries if e.get("charger") == "NEW-1" and e.get("leg") == "upstream" and "text" in e]
    assert '"chargingStation"' in upstream_texts[0]  # the 2.0.1 BootNotification the relay made
    path = tmp_path / "routes.yaml"
    path.write_text(config)
    which = subprocess.run([BINARY, "routes", "which", "NEW-9", "--config", str(path)], capture_output=True, text=True)
    assert which.returncode == 0 and which.stdout.strip().endswith("(2.0.1) by route pilot (matched glob:NEW-*)")


OCMF = (
    'OCMF|{"FV":"1.0","GI":"ABL SBC-301","GS":"808829900001","GV":"1.4p3","PG":"T12345","IS":true,"IL":"VERIFIED",'
    '"IT":"ISO14443","ID":"1F2D3A4B5C6D7E","RD":[{"TM":"2026-11-27T06:00:00,000+0000 S","TX":"B","RV":1.2345,'
    '"RI":"1-b:1.8.0","RU":"kWh","RT":"AC","ST":"G"}]}|{"SA":"ECDSA-secp256r1-SHA256","SD":"3045022100D28C5A8F"}'
)


def test_signed_meter_values_reach_the_201_backend_byte_exact(start_relay):
    """A calibration-law charger's OCMF signed readings: each becomes the signedMeterValue of its reading in the
    2.0.1 TransactionEvents, byte for byte, and stays readable from the recording."""

    async def scenario():
        async with Backend(subprotocols=["ocpp2.0.1"], ask_after_boot=False) as backend:
            relay = start_translating_relay(start_relay, backend)
            ws, cp, task, _ = await booted_16_charger(relay.url, backend, "CP-OCMF")
            start = await cp.call(call16.StartTransaction(connector_id=1, id_tag="04A2B3C4", meter_start=1000, timestamp=now()))
            signed = {"value": OCMF, "format": "SignedData", "measurand": "Energy.Active.Import.Register", "unit": "Wh"}
            await cp.call(call16.MeterValues(connector_id=1, transaction_id=start.transaction_id, meter_value=[
                {"timestamp": now(), "sampled_value": [{"value": "1234.5", "measurand": "Energy.Active.Import.Register", "unit": "Wh"}, signed]}]))
            await cp.call(call16.StopTransaction(meter_stop=1300, timestamp=now(), transaction_id=start.transaction_id, transaction_data=[
                {"timestamp": now(), "sampled_value": [{"value": "1300", "context": "Transaction.End"},
                                                         {**signed, "context": "Transaction.End"}]}]))
            await ws.close()
            task.cancel()
            return relay, backend

    relay, backend = asyncio.run(scenario())
    updated = [e for e in backend.events["CP-OCMF"] if e["event_type"] == "Updated"][0]
    sample = updated["meter_value"][0]["sampled_value"][0]
    assert sample["value"] == 1234.5
    assert sample["signed_meter_value"]["signed_meter_data"] == OCMF
    assert sample["signed_meter_value"]["encoding_method"] == "OCMF"
    assert sample["signed_meter_value"]["signing_method"] == "ECDSA-secp256r1-SHA256"
    ended = backend.events["CP-OCMF"][-1]
    assert any(s.get("signed_meter_value", {}).get("signed_meter_data") == OCMF for v in ended["meter_value"] for s in v["sampled_value"])
    relay.stop()
    entries, _ = recordings_show(relay.recordings)
    validate_recording(entries)
    upstream = [json.loads(e["text"]) for e in entries if e.get("leg") == "upstream" and e.get("dir") == "out" and "text" in e]
    recorded = [s["signedMeterValue"]["signedMeterData"] for f in upstream if f[0] == 2 and f[2] == "TransactionEvent"
                for v in f[3].get("meterValue", []) for s in v["sampledValue"] if "signedMeterValue" in s]
    assert recorded == [OCMF, OCMF]


def test_security_events_and_certificate_signing_reach_the_201_backend(start_relay):
    """The 1.6 Security Whitepaper's charger messages on a 2.0.1 backend: a security event, and a certificate
    signing round trip (SignCertificate from the charger, CertificateSigned from the backend)."""
    csr = "-----BEGIN CERTIFICATE REQUEST-----\nMIIBszCCARwCAQAwczELMAkGA1UEBhMCREUx\n-----END CERTIFICATE REQUEST-----"
    chain = "-----BEGIN CERTIFICATE-----\nMIIB4TCCAYegAwIBAgIUQ2VydGlmaWNhdGU=\n-----END CERTIFICATE-----"

    async def scenario():
        async with Backend(subprotocols=["ocpp2.0.1"], ask_after_boot=False) as backend:
            relay = start_translating_relay(start_relay, backend)
            ws, cp, task, backend_cp = await booted_16_charger(relay.url, backend, "CP-SECURE")
            event = await cp.call(call16.SecurityEventNotification(type="FirmwareUpdated", timestamp=now(), tech_info="v2.1.0"))
            signing = await cp.call(call16.SignCertificate(csr=csr))
            signed = await backend_cp.call(call201.CertificateSigned(certificate_chain=chain, certificate_type="ChargingStationCertificate"))
            await ws.close()
            task.cancel()
            return relay, backend, backend_cp, cp, event, signing, signed

    relay, backend, backend_cp, cp, event, signing, signed = asyncio.run(scenario())
    assert event is not None and "SecurityEventNotification.FirmwareUpdated" in backend_cp.actions
    assert signing.status == "Accepted" and backend.csrs == [csr]
    assert "SignCertificate.ChargingStationCertificate" in backend_cp.actions
    assert signed.status == "Accepted" and ("CertificateSigned", {"certificate_chain": chain}) in cp.remote_starts
    relay.stop()
    validate_recording(recordings_show(relay.recordings)[0])
