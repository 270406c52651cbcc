"""Peers that implement the OCA's 1.6 Security Whitepaper and Plug & Charge over 1.6 (ISO 15118 messages in
DataTransfer, vendorId org.openchargealliance.iso15118pnc), and the same messages natively in 2.0.1: each handler
answers what a real device would and remembers what came (`notes`). The `ocpp` package validates every message
against the official schemas, the Whitepaper's included."""

import json

from ocpp.routing import on
from ocpp.v16 import call_result as result16
from ocpp.v16.enums import Action as Action16
from ocpp.v201 import call_result as result201
from ocpp.v201.enums import Action as Action201

from peers import Backend16, Backend201, Charger16, Station201

PNC = "org.openchargealliance.iso15118pnc"
CSMS_ROOT_HASH = {"hash_algorithm": "SHA256", "issuer_name_hash": "a1b2c3", "issuer_key_hash": "d4e5f6", "serial_number": "0a1f"}
V2G_ROOT_HASH = {"hashAlgorithm": "SHA256", "issuerNameHash": "0102", "issuerKeyHash": "0304", "serialNumber": "05"}


class SecureCharger16(Charger16):
    """A 1.6 charger with the Security Whitepaper and Plug & Charge: it holds one CSMS root, and answers wrapped
    V2G messages with wrapped 2.0.1 answers."""

    @on(Action16.install_certificate)
    async def on_install_certificate(self, certificate_type, certificate):
        self._note("InstallCertificate", certificate_type=certificate_type, certificate=certificate)
        return result16.InstallCertificate(status="Accepted")

    @on(Action16.get_installed_certificate_ids)
    async def on_get_installed_certificate_ids(self, certificate_type):
        self._note("GetInstalledCertificateIds", certificate_type=certificate_type)
        if certificate_type == "CentralSystemRootCertificate":
            return result16.GetInstalledCertificateIds(status="Accepted", certificate_hash_data=[CSMS_ROOT_HASH])
        return result16.GetInstalledCertificateIds(status="NotFound")

    @on(Action16.delete_certificate)
    async def on_delete_certificate(self, certificate_hash_data):
        self._note("DeleteCertificate", certificate_hash_data=certificate_hash_data)
        return result16.DeleteCertificate(status="Accepted")

    @on(Action16.extended_trigger_message)
    async def on_extended_trigger_message(self, requested_message, connector_id=None):
        self._note("ExtendedTriggerMessage", requested_message=requested_message)
        return result16.ExtendedTriggerMessage(status="Accepted")

    @on(Action16.get_log)
    async def on_get_log(self, log, log_type, request_id, **kwargs):
        self._note("GetLog", log=log, log_type=log_type, request_id=request_id)
        return result16.GetLog(status="Accepted", filename="security.log")

    @on(Action16.signed_update_firmware)
    async def on_signed_update_firmware(self, request_id, firmware, **kwargs):
        self._note("SignedUpdateFirmware", request_id=request_id, firmware=firmware)
        return result16.SignedUpdateFirmware(status="Accepted")

    @on(Action16.data_transfer)
    async def on_data_transfer(self, vendor_id, message_id=None, data=None):
        if vendor_id != PNC:
            return await super().on_data_transfer(vendor_id, message_id, data)
        self._note(f"PnC.{message_id}", data=json.loads(data))
        if message_id == "GetInstalledCertificateIds":
            inner = {"status": "Accepted", "certificateHashDataChain": [{"certificateType": "V2GRootCertificate", "certificateHashData": V2G_ROOT_HASH}]}
        else:
            inner = {"status": "Accepted"}
        return result16.DataTransfer(status="Accepted", data=json.dumps(inner))


class SecureBackend201(Backend201):
    """A 2.0.1 CSMS that validates contracts (Plug & Charge), issues EV certificates and hears reservations end."""

    @on(Action201.authorize)
    async def on_authorize(self, id_token, **kwargs):
        self.actions.append(f"Authorize.{id_token['type']}")
        self.backend.contracts.append(dict(id_token=id_token, **kwargs))
        return result201.Authorize(id_token_info={"status": "Accepted"}, certificate_status="Accepted")

    @on(Action201.get_15118_ev_certificate)
    async def on_get_15118_ev_certificate(self, iso15118_schema_version, action, exi_request, **kwargs):
        self.actions.append(f"Get15118EVCertificate.{action}")
        return result201.Get15118EVCertificate(status="Accepted", exi_response="gAQCBBwYgcMGDgAA")

    @on(Action201.reservation_status_update)
    async def on_reservation_status_update(self, reservation_id, reservation_update_status, **kwargs):
        self.actions.append(f"ReservationStatusUpdate.{reservation_id}.{reservation_update_status}")
        return result201.ReservationStatusUpdate()


class SecureBackend16(Backend16):
    """A 1.6 central system with the Security Whitepaper and Plug & Charge over DataTransfer."""

    @on(Action16.security_event_notification)
    async def on_security_event(self, type, timestamp, **kwargs):
        self.actions.append(f"SecurityEventNotification.{type}")
        return result16.SecurityEventNotification()

    @on(Action16.sign_certificate)
    async def on_sign_certificate(self, csr):
        self.actions.append("SignCertificate")
        self.backend.csrs.append(csr)
        return result16.SignCertificate(status="Accepted")

    @on(Action16.log_status_notification)
    async def on_security_log_status(self, status, request_id=None):
        self.actions.append(f"LogStatusNotification.{status}.{request_id}")
        return result16.LogStatusNotification()

    @on(Action16.signed_firmware_status_notification)
    async def on_signed_firmware_status(self, status, request_id=None):
        self.actions.append(f"SignedFirmwareStatusNotification.{status}.{request_id}")
        return result16.SignedFirmwareStatusNotification()

    @on(Action16.data_transfer)
    async def on_data_transfer(self, vendor_id, message_id=None, data=None):
        if vendor_id != PNC:
            return await super().on_data_transfer(vendor_id, message_id=message_id, data=data)
        request = json.loads(data)
        self.actions.append(f"PnC.{message_id}")
        self.backend.contracts.append(request)
        if message_id == "Authorize":
            inner = {"idTokenInfo": {"status": "Accepted"}, "certificateStatus": "Accepted"}
        elif message_id == "Get15118EVCertificate":
            inner = {"status": "Accepted", "exiResponse": "gAQCBBwYgcMGDgAA"}
        else:
            inner = {"status": "Accepted"}
        return result16.DataTransfer(status="Accepted", data=json.dumps(inner))


class SecureStation201(Station201):
    """A 2.0.1 station that also takes certificates, and a new Basic-auth password."""

    def __init__(self, identity, connection):
        super().__init__(identity, connection)
        self.variables[("SecurityCtrlr", "BasicAuthPassword", None)] = "old-password-0001"

    @on(Action201.certificate_signed)
    async def on_certificate_signed(self, certificate_chain, **kwargs):
        self._note("CertificateSigned", certificate_chain=certificate_chain, **kwargs)
        return result201.CertificateSigned(status="Accepted")

    @on(Action201.install_certificate)
    async def on_install_certificate(self, certificate_type, certificate, **kwargs):
        self._note("InstallCertificate", certificate_type=certificate_type)
        return result201.InstallCertificate(status="Accepted")

    @on(Action201.get_installed_certificate_ids)
    async def on_get_installed_certificate_ids(self, **kwargs):
        self._note("GetInstalledCertificateIds", **kwargs)
        chain = [{"certificate_type": "CSMSRootCertificate", "certificate_hash_data": CSMS_ROOT_HASH}]
        return result201.GetInstalledCertificateIds(status="Accepted", certificate_hash_data_chain=chain)
