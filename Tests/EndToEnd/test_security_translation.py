"""The 1.6 Security Whitepaper, Plug & Charge over 1.6, reservations, the early StartTransaction answer and password
rotation, translated in both directions between real peers of the pinned `ocpp` package (which validate every message
against the official schemas, the Whitepaper's included); every recorded frame of both legs is checked again."""

import asyncio
import datetime
import json

from ocpp.v16 import call as call16
from ocpp.v201 import call as call201
from peers import Backend, Tap, now, open_charger
from security_peers import PNC, SecureBackend16, SecureBackend201, SecureCharger16, SecureStation201
from test_reverse_translation import start_reverse_relay
from test_security import basic, password_hash
from test_translation import MAPPINGS, validate_recording
from conftest import recordings_show

CERT = "-----BEGIN CERTIFICATE-----\nMIIB4TCCAYegAwIBAgIUQ2VydGlmaWNhdGU=\n-----END CERTIFICATE-----"
EMAID = "DEABCC1234567X"
OCSP = {"hashAlgorithm": "SHA256", "issuerNameHash": "a1b2c3", "issuerKeyHash": "d4e5f6", "serialNumber": "0a1f", "responderURL": "http://ocsp.example.com"}


def secure_backend(version):
    backend = Backend(subprotocols=[version], ask_after_boot=False)
    backend.classes = {"ocpp1.6": SecureBackend16, "ocpp2.0.1": SecureBackend201}
    return backend


async def secure_16_charger(relay_url, backend, identity, headers=None):
    ws = await open_charger(relay_url, identity, ["ocpp1.6"], headers)
    cp = SecureCharger16(identity, Tap(ws))
    cp._ensure()
    task = asyncio.create_task(cp.start())
    await cp.call(call16.BootNotification(charge_point_model="E2E", charge_point_vendor="ocpp-relay-tests"))
    backend_cp, _ = backend.sessions[identity][-1]
    return ws, cp, task, backend_cp


def notes(cp, action):
    return [fields for name, fields in cp.remote_starts if name == action]


def test_certificates_logs_and_signed_firmware_of_a_16_charger_on_a_201_backend(start_relay):
    """The backend manages the charger's certificates (1.6 types natively, V2G types through Plug & Charge), asks for
    a new certificate, fetches the security log and installs signed firmware; the notifications come back."""

    async def scenario():
        async with secure_backend("ocpp2.0.1") as backend:
            relay = start_relay(backend.url, "--upstream-version", "2.0.1", "--mappings", MAPPINGS)
            ws, cp, task, backend_cp = await secure_16_charger(relay.url, backend, "CP-CERTS")
            r = {}
            r["install"] = await backend_cp.call(call201.InstallCertificate(certificate_type="CSMSRootCertificate", certificate=CERT))
            r["installed"] = await backend_cp.call(call201.GetInstalledCertificateIds(certificate_type=["CSMSRootCertificate", "V2GRootCertificate"]))
            r["delete"] = await backend_cp.call(call201.DeleteCertificate(certificate_hash_data={"hash_algorithm": "SHA256", "issuer_name_hash": "a1b2c3", "issuer_key_hash": "d4e5f6", "serial_number": "0a1f"}))
            r["trigger"] = await backend_cp.call(call201.TriggerMessage(requested_message="SignChargingStationCertificate"))
            r["log"] = await backend_cp.call(call201.GetLog(log={"remote_location": "https://logs.example.com/up"}, log_type="SecurityLog", request_id=7))
            await cp.call(call16.LogStatusNotification(status="Uploaded", request_id=7))
            firmware = {"location": "https://fw.example.com/cp.bin", "retrieve_date_time": now(), "signing_certificate": CERT, "signature": "MEUCIQDx"}
            r["firmware"] = await backend_cp.call(call201.UpdateFirmware(request_id=8, firmware=firmware))
            await cp.call(call16.SignedFirmwareStatusNotification(status="SignatureVerified", request_id=8))
            await cp.call(call16.SignedFirmwareStatusNotification(status="Installed", request_id=8))
            await ws.close()
            task.cancel()
            return relay, backend_cp, cp, r

    relay, backend_cp, cp, r = asyncio.run(scenario())
    assert r["install"].status == "Accepted"
    assert notes(cp, "InstallCertificate") == [{"certificate_type": "CentralSystemRootCertificate", "certificate": CERT}]
    # One answer from a native 1.6 query and a wrapped Plug & Charge one.
    assert r["installed"].status == "Accepted"
    types = [entry["certificate_type"] for entry in r["installed"].certificate_hash_data_chain]
    assert types == ["CSMSRootCertificate", "V2GRootCertificate"]
    assert notes(cp, "PnC.GetInstalledCertificateIds") == [{"data": {"certificateType": ["V2GRootCertificate"]}}]
    assert r["delete"].status == "Accepted" and r["trigger"].status == "Accepted"
    assert notes(cp, "ExtendedTriggerMessage") == [{"requested_message": "SignChargePointCertificate"}]
    assert r["log"].status == "Accepted" and r["log"].filename == "security.log"
    assert notes(cp, "GetLog")[0]["log_type"] == "SecurityLog"
    assert "LogStatusNotification.Uploaded.7" in backend_cp.actions
    assert r["firmware"].status == "Accepted"
    signed = notes(cp, "SignedUpdateFirmware")[0]
    assert signed["request_id"] == 8 and signed["firmware"]["signature"] == "MEUCIQDx" and signed["firmware"]["signing_certificate"] == CERT
    assert backend_cp.actions[-2:] == ["FirmwareStatusNotification.SignatureVerified.8", "FirmwareStatusNotification.Installed.8"]
    relay.stop()
    validate_recording(recordings_show(relay.recordings)[0])


def test_plug_and_charge_of_a_16_charger_is_unwrapped_for_the_201_backend(start_relay):
    """A contract authorization in a Plug & Charge DataTransfer reaches the backend as a 2.0.1 Authorize with its
    certificate hash data; the answer goes back wrapped; the transaction that follows carries the eMAID as such; the
    backend's V2G certificate reaches the charger wrapped."""

    async def scenario():
        async with secure_backend("ocpp2.0.1") as backend:
            relay = start_relay(backend.url, "--upstream-version", "2.0.1", "--mappings", MAPPINGS)
            ws, cp, task, backend_cp = await secure_16_charger(relay.url, backend, "CP-PNC")
            authorize = {"idToken": {"idToken": EMAID, "type": "eMAID"}, "iso15118CertificateHashData": [OCSP]}
            r = {"authorize": await cp.call(call16.DataTransfer(vendor_id=PNC, message_id="Authorize", data=json.dumps(authorize)))}
            ev = {"iso15118SchemaVersion": "urn:iso:15118:2:2013:MsgDef", "action": "Install", "exiRequest": "gAQCBBwYgcMGDg=="}
            r["ev"] = await cp.call(call16.DataTransfer(vendor_id=PNC, message_id="Get15118EVCertificate", data=json.dumps(ev)))
            r["start"] = await cp.call(call16.StartTransaction(connector_id=1, id_tag=EMAID, meter_start=100, timestamp=now()))
            r["signed"] = await backend_cp.call(call201.CertificateSigned(certificate_chain=CERT, certificate_type="V2GCertificate"))
            await ws.close()
            task.cancel()
            return relay, backend, backend_cp, cp, r

    relay, backend, backend_cp, cp, r = asyncio.run(scenario())
    assert r["authorize"].status == "Accepted"
    assert json.loads(r["authorize"].data) == {"idTokenInfo": {"status": "Accepted"}, "certificateStatus": "Accepted"}
    contract = backend.contracts[0]
    assert contract["id_token"] == {"id_token": EMAID, "type": "eMAID"}
    assert contract["iso15118_certificate_hash_data"][0]["responder_url"] == "http://ocsp.example.com"
    assert json.loads(r["ev"].data)["exiResponse"] == "gAQCBBwYgcMGDgAA"
    assert "Get15118EVCertificate.Install" in backend_cp.actions
    assert r["start"].id_tag_info["status"] == "Accepted"
    started = backend.events["CP-PNC"][0]
    assert started["id_token"] == {"id_token": EMAID, "type": "eMAID"}
    assert r["signed"].status == "Accepted"
    assert notes(cp, "PnC.CertificateSigned") == [{"data": {"certificateChain": CERT, "certificateType": "V2GCertificate"}}]
    relay.stop()
    validate_recording(recordings_show(relay.recordings)[0])


def test_a_16_reservation_that_expires_is_reported_to_the_201_backend(start_relay):
    async def scenario():
        async with secure_backend("ocpp2.0.1") as backend:
            relay = start_relay(backend.url, "--upstream-version", "2.0.1", "--mappings", MAPPINGS)
            ws, cp, task, backend_cp = await secure_16_charger(relay.url, backend, "CP-RESERVE")
            expiry = (datetime.datetime.now(datetime.timezone.utc) + datetime.timedelta(seconds=1)).strftime("%Y-%m-%dT%H:%M:%SZ")
            reserved = await backend_cp.call(call201.ReserveNow(id=31, expiry_date_time=expiry, id_token={"id_token": "TAG-R", "type": "ISO14443"}, evse_id=1))
            await cp.call(call16.StatusNotification(connector_id=1, error_code="NoError", status="Reserved", timestamp=now()))
            await asyncio.sleep(2.2)  # the expiry passes unused; the charger frees the connector
            await cp.call(call16.StatusNotification(connector_id=1, error_code="NoError", status="Available", timestamp=now()))
            await ws.close()
            task.cancel()
            return relay, backend_cp, reserved

    relay, backend_cp, reserved = asyncio.run(scenario())
    assert reserved.status == "Accepted"
    updates = [a for a in backend_cp.actions if a.startswith("ReservationStatusUpdate")]
    assert updates == ["ReservationStatusUpdate.31.Expired"]
    assert backend_cp.actions.index(updates[0]) < len(backend_cp.actions) - 1, "the update comes before the status"
    relay.stop()
    validate_recording(recordings_show(relay.recordings)[0])


def test_an_early_start_answer_is_withdrawn_when_the_201_backend_refuses_the_token(start_relay):
    """translation.early_start_answer: the charger gets its transaction at once; a token the backend then refuses
    ends it with RemoteStopTransaction."""
    config = f"translation:\n  mappings: {MAPPINGS}\n  early_start_answer: true\nupstream_version: '2.0.1'\n"

    async def scenario():
        async with secure_backend("ocpp2.0.1") as backend:
            backend.blocked.add("TAG-BLOCKED")
            relay = start_relay(backend.url, config=config)
            ws, cp, task, backend_cp = await secure_16_charger(relay.url, backend, "CP-EARLY")
            start = await cp.call(call16.StartTransaction(connector_id=1, id_tag="TAG-BLOCKED", meter_start=100, timestamp=now()))
            for _ in range(200):
                if notes(cp, "stop") or ("stop", start.transaction_id) in cp.remote_starts:
                    break
                await asyncio.sleep(0.02)
            await ws.close()
            task.cancel()
            return relay, cp, start

    relay, cp, start = asyncio.run(scenario())
    assert start.id_tag_info["status"] == "Accepted"
    assert ("stop", start.transaction_id) in cp.remote_starts
    relay.stop()
    validate_recording(recordings_show(relay.recordings)[0])


def test_a_password_rotated_by_the_201_backend_replaces_the_relays_own(start_relay, tmp_path):
    """The relay checks the charger's password (auth.passwords). The backend rotates it (SetVariables
    BasicAuthPassword); the 1.6 charger accepts it as AuthorizationKey in hex; from then on the relay admits the new
    password and refuses the old one, also after a restart."""
    old, new = "old-password-0001", "n3w-Secret-2026!"
    config = f"""
upstream_version: "2.0.1"
translation:
  mappings: {MAPPINGS}
  state: {tmp_path / "state.sqlite"}
auth:
  passwords:
    CP-ROTATE: "{password_hash(old)}"
"""

    async def connect(relay, backend, password):
        return await secure_16_charger(relay.url, backend, "CP-ROTATE", {"Authorization": basic("CP-ROTATE", password)})

    async def scenario():
        async with secure_backend("ocpp2.0.1") as backend:
            relay = start_relay(backend.url, config=config)
            ws, cp, task, backend_cp = await connect(relay, backend, old)
            cp.configuration["AuthorizationKey"] = old.encode().hex()
            item = {"component": {"name": "SecurityCtrlr"}, "variable": {"name": "BasicAuthPassword"}, "attribute_value": new}
            result = await backend_cp.call(call201.SetVariables(set_variable_data=[item]))
            key = cp.configuration["AuthorizationKey"]
            await ws.close()
            task.cancel()
            await asyncio.sleep(0.5)  # the new password's hash is being stored
            refused = await status_of(relay, old)
            ws, cp, task, _ = await connect(relay, backend, new)
            await ws.close()
            task.cancel()
            relay.stop()
            restarted = start_relay(backend.url, config=config)
            after_restart = await status_of(restarted, new)
            old_after_restart = await status_of(restarted, old)
            return relay, result, key, refused, after_restart, old_after_restart

    async def status_of(relay, password):
        from peers import handshake_status

        status, _ = await handshake_status(relay.url, "CP-ROTATE", {"Authorization": basic("CP-ROTATE", password)})
        return status

    relay, result, key, refused, after_restart, old_after_restart = asyncio.run(scenario())
    assert result.set_variable_result[0]["attribute_status"] == "Accepted"
    assert bytes.fromhex(key).decode() == new, "1.6 wants the AuthorizationKey in hex"
    assert refused == 401, "the old password no longer opens the door"
    assert after_restart == 101 and old_after_restart == 401
    assert new not in relay.log()
    validate_recording(recordings_show(relay.recordings)[0])


def test_security_and_plug_and_charge_of_a_201_station_reach_a_16_backend_with_the_extensions(start_relay):
    config = f"upstream_version: '1.6'\nupstream_extensions: [security, pnc]\ntranslation:\n  mappings: {MAPPINGS}\n"

    async def scenario():
        async with secure_backend("ocpp1.6") as backend:
            relay = start_relay(backend.url, config=config)
            ws = await open_charger(relay.url, "CS-SECURE", ["ocpp2.0.1"])
            station = SecureStation201("CS-SECURE", Tap(ws))
            task = asyncio.create_task(station.start())
            await station.call(call201.BootNotification(charging_station={"model": "E2E", "vendor_name": "tests"}, reason="PowerUp"))
            backend_cp, _ = backend.sessions["CS-SECURE"][-1]
            r = {}
            r["event"] = await station.call(call201.SecurityEventNotification(type="TamperDetectionActivated", timestamp=now()))
            r["csr"] = await station.call(call201.SignCertificate(csr="MIICijCCAXICAQAw", certificate_type="ChargingStationCertificate"))
            r["signed"] = await backend_cp.call(call16.CertificateSigned(certificate_chain=CERT))
            r["installed"] = await backend_cp.call(call16.GetInstalledCertificateIds(certificate_type="CentralSystemRootCertificate"))
            r["trigger"] = await backend_cp.call(call16.ExtendedTriggerMessage(requested_message="SignChargePointCertificate"))
            r["log"] = await backend_cp.call(call16.GetLog(log={"remote_location": "https://logs.example.com/up"}, log_type="SecurityLog", request_id=70))
            log_request = [f for a, f in station.commands if a == "GetLog"][0]["request_id"]
            await station.call(call201.LogStatusNotification(status="Uploaded", request_id=log_request))
            firmware = {"location": "https://fw.example.com/cs.bin", "retrieve_date_time": now(), "signing_certificate": CERT, "signature": "MEUCIQ"}
            r["firmware"] = await backend_cp.call(call16.SignedUpdateFirmware(request_id=80, firmware=firmware))
            firmware_request = [f for a, f in station.commands if a == "UpdateFirmware"][0]["request_id"]
            await station.call(call201.FirmwareStatusNotification(status="InstallScheduled", request_id=firmware_request))
            r["authorize"] = await station.call(call201.Authorize(id_token={"id_token": EMAID, "type": "eMAID"}, iso15118_certificate_hash_data=[
                {"hash_algorithm": "SHA256", "issuer_name_hash": "a1b2c3", "issuer_key_hash": "d4e5f6", "serial_number": "0a1f", "responder_url": "http://ocsp.example.com"}]))
            r["ev"] = await station.call(call201.Get15118EVCertificate(iso15118_schema_version="urn:iso:15118:2:2013:MsgDef", action="Install", exi_request="gAQCBBwYgcMGDg=="))
            key = "n3w-Secret-2026!".encode().hex()
            r["rotate"] = await backend_cp.call(call16.ChangeConfiguration(key="AuthorizationKey", value=key))
            await ws.close()
            task.cancel()
            return relay, backend, backend_cp, station, r

    relay, backend, backend_cp, station, r = asyncio.run(scenario())
    assert "SecurityEventNotification.TamperDetectionActivated" in backend_cp.actions
    assert r["csr"].status == "Accepted" and backend.csrs == ["MIICijCCAXICAQAw"]
    assert r["signed"].status == "Accepted"
    assert ("CertificateSigned", {"certificate_chain": CERT, "certificate_type": "ChargingStationCertificate"}) in station.commands
    assert r["installed"].status == "Accepted" and r["installed"].certificate_hash_data[0]["serial_number"] == "0a1f"
    assert r["trigger"].status == "Accepted"
    assert ("TriggerMessage", {"requested_message": "SignChargingStationCertificate", "evse": None}) in station.commands
    assert r["log"].status == "Accepted"
    assert "LogStatusNotification.Uploaded.70" in backend_cp.actions, "the backend hears its own requestId"
    assert r["firmware"].status == "Accepted"
    assert "SignedFirmwareStatusNotification.InstallScheduled.80" in backend_cp.actions
    assert r["authorize"].id_token_info["status"] == "Accepted" and r["authorize"].certificate_status == "Accepted"
    assert "PnC.Authorize" in backend_cp.actions
    assert backend.contracts[0]["iso15118CertificateHashData"][0]["responderURL"] == "http://ocsp.example.com"
    assert r["ev"].status == "Accepted" and r["ev"].exi_response == "gAQCBBwYgcMGDgAA"
    assert r["rotate"].status == "Accepted"
    rotated = [f for a, f in station.commands if a == "SetVariables"][0]["data"][0]
    assert rotated["attribute_value"] == "n3w-Secret-2026!" and rotated["variable"]["name"] == "BasicAuthPassword"
    relay.stop()
    validate_recording(recordings_show(relay.recordings)[0])


def test_security_messages_of_a_201_station_on_a_plain_16_backend_are_answered_by_the_relay(start_relay):
    async def scenario():
        async with Backend(subprotocols=["ocpp1.6"], ask_after_boot=False) as backend:
            relay = start_reverse_relay(start_relay, backend)
            ws = await open_charger(relay.url, "CS-PLAIN", ["ocpp2.0.1"])
            station = SecureStation201("CS-PLAIN", Tap(ws))
            task = asyncio.create_task(station.start())
            await station.call(call201.BootNotification(charging_station={"model": "E2E", "vendor_name": "tests"}, reason="PowerUp"))
            r = {"event": await station.call(call201.SecurityEventNotification(type="TamperDetectionActivated", timestamp=now()))}
            r["csr"] = await station.call(call201.SignCertificate(csr="MIICijCCAXICAQAw"))
            r["status"] = await station.call(call201.GetCertificateStatus(ocsp_request_data={"hash_algorithm": "SHA256", "issuer_name_hash": "a", "issuer_key_hash": "b", "serial_number": "c", "responder_url": "http://ocsp"}))
            await ws.close()
            task.cancel()
            return relay, backend, r

    relay, backend, r = asyncio.run(scenario())
    assert r["csr"].status == "Rejected" and r["csr"].status_info["reason_code"] == "NoSecurityExtension"
    assert r["status"].status == "Failed"
    backend_cp, _ = backend.sessions["CS-PLAIN"][-1]
    assert not any(a.startswith("Security") or a.startswith("DataTransfer") for a in backend_cp.actions)
    relay.stop()
    validate_recording(recordings_show(relay.recordings)[0])
