"""Real OCPP peers for the end-to-end tests, built on the `ocpp` package (mobilityhouse), which
validates every message it sends and receives against the official OCA JSON schemas.

A `Backend` is a CSMS speaking 1.6 and 2.0.1; `run_charger_16` / `run_charger_201` play a charging
session as a charger. Both keep the exact text of every frame they sent and received (`Tap`), so tests
can compare what one peer sent with what the other received, byte for byte.
"""

import asyncio
import datetime
import http
import itertools
import time

import websockets

from ocpp.routing import on
from ocpp.v16 import ChargePoint as ChargePoint16
from ocpp.v16 import call as call16
from ocpp.v16 import call_result as result16
from ocpp.v16.enums import Action as Action16
from ocpp.v16.enums import AuthorizationStatus, RegistrationStatus
from ocpp.v201 import ChargePoint as ChargePoint201
from ocpp.v201 import call as call201
from ocpp.v201 import call_result as result201
from ocpp.v201.enums import Action as Action201
from websockets.asyncio.client import connect
from websockets.asyncio.server import serve


def now():
    return datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="milliseconds").replace("+00:00", "Z")


class Tap:
    """Wraps a websockets connection and keeps the text of every frame, in order."""

    def __init__(self, connection):
        self.connection = connection
        self.sent = []
        self.received = []

    async def recv(self):
        message = await self.connection.recv()
        self.received.append(message)
        return message

    async def send(self, message):
        self.sent.append(message)
        await self.connection.send(message)


# ---------------------------------------------------------------- backend


class Backend16(ChargePoint16):
    transaction_ids = itertools.count(1)

    def __init__(self, identity, connection, backend):
        super().__init__(identity, connection)
        self.backend = backend
        self.actions = []

    @on(Action16.boot_notification)
    async def on_boot(self, charge_point_vendor, charge_point_model, **kwargs):
        self.actions.append("BootNotification")
        self.backend.boots[self.id] = dict(vendor=charge_point_vendor, model=charge_point_model, **kwargs)
        status = self.backend.boot_statuses.pop(0) if self.backend.boot_statuses else RegistrationStatus.accepted
        return result16.BootNotification(current_time=now(), interval=self.backend.boot_interval, status=status)

    @on(Action16.heartbeat)
    async def on_heartbeat(self):
        self.actions.append("Heartbeat")
        await asyncio.sleep(self.backend.delay)
        return result16.Heartbeat(current_time=now())

    @on(Action16.status_notification)
    async def on_status(self, connector_id, error_code, status, **kwargs):
        self.actions.append("StatusNotification")
        self.backend.statuses.setdefault(self.id, []).append((connector_id, status, error_code))
        return result16.StatusNotification()

    @on(Action16.authorize)
    async def on_authorize(self, id_tag):
        self.actions.append("Authorize")
        status = AuthorizationStatus.blocked if id_tag in self.backend.blocked else AuthorizationStatus.accepted
        return result16.Authorize(id_tag_info={"status": status})

    @on(Action16.start_transaction)
    async def on_start(self, connector_id, id_tag, meter_start, timestamp, **kwargs):
        self.actions.append("StartTransaction")
        self.backend.starts.append(dict(connector_id=connector_id, id_tag=id_tag, meter_start=meter_start, timestamp=timestamp, **kwargs))
        await asyncio.sleep(self.backend.start_delay)
        transaction_id = next(self.transaction_ids)
        self.backend.started.append(transaction_id)
        status = AuthorizationStatus.blocked if id_tag in self.backend.blocked else AuthorizationStatus.accepted
        return result16.StartTransaction(transaction_id=transaction_id, id_tag_info={"status": status})

    @on(Action16.meter_values)
    async def on_meter_values(self, connector_id, meter_value, **kwargs):
        self.actions.append("MeterValues")
        self.backend.meter_values.append(dict(connector_id=connector_id, meter_value=meter_value, **kwargs))
        await asyncio.sleep(self.backend.meter_values_delay)
        return result16.MeterValues()

    @on(Action16.diagnostics_status_notification)
    async def on_diagnostics_status(self, status):
        self.actions.append(f"DiagnosticsStatusNotification.{status}")
        return result16.DiagnosticsStatusNotification()

    @on(Action16.firmware_status_notification)
    async def on_firmware_status(self, status):
        self.actions.append(f"FirmwareStatusNotification.{status}")
        return result16.FirmwareStatusNotification()

    @on(Action16.data_transfer)
    async def on_data_transfer(self, vendor_id, **kwargs):
        self.actions.append("DataTransfer")
        return result16.DataTransfer(status="Accepted")

    @on(Action16.stop_transaction)
    async def on_stop(self, meter_stop, timestamp, transaction_id, **kwargs):
        self.actions.append("StopTransaction")
        self.backend.stopped.append(transaction_id)
        self.backend.stops.append(dict(meter_stop=meter_stop, transaction_id=transaction_id, **kwargs))
        return result16.StopTransaction(id_tag_info={"status": AuthorizationStatus.accepted})


class Backend2x:
    """The CSMS handlers 2.0.1 and 2.1 share (2.1 keeps 2.0.1's messages): each answers with the result classes of the
    version its ChargePoint speaks (`self._call_result`), so the same handler serves `Backend201` and `Backend21`."""

    def __init__(self, identity, connection, backend):
        super().__init__(identity, connection)
        self.backend = backend
        self.actions = []

    @on(Action201.boot_notification)
    async def on_boot(self, charging_station, reason, **kwargs):
        self.actions.append("BootNotification")
        self.backend.boots[self.id] = charging_station
        return self._call_result.BootNotification(current_time=now(), interval=self.backend.boot_interval, status="Accepted")

    @on(Action201.heartbeat)
    async def on_heartbeat(self, **kwargs):
        self.actions.append("Heartbeat")
        return self._call_result.Heartbeat(current_time=now())

    @on(Action201.status_notification)
    async def on_status(self, **kwargs):
        self.actions.append("StatusNotification")
        return self._call_result.StatusNotification()

    @on(Action201.authorize)
    async def on_authorize(self, id_token, **kwargs):
        self.actions.append("Authorize")
        self.backend.tokens.append(id_token)
        status = "Blocked" if id_token["id_token"] in self.backend.blocked else "Accepted"
        return self._call_result.Authorize(id_token_info={"status": status})

    @on(Action201.data_transfer)
    async def on_data_transfer(self, vendor_id, **kwargs):
        self.actions.append("DataTransfer")
        return self._call_result.DataTransfer(status="Accepted", data={"echo": kwargs.get("data")})

    @on(Action201.log_status_notification)
    async def on_log_status(self, status, **kwargs):
        self.actions.append(f"LogStatusNotification.{status}.{kwargs.get('request_id')}")
        return self._call_result.LogStatusNotification()

    @on(Action201.firmware_status_notification)
    async def on_firmware_status(self, status, **kwargs):
        self.actions.append(f"FirmwareStatusNotification.{status}.{kwargs.get('request_id')}")
        return self._call_result.FirmwareStatusNotification()

    @on(Action201.meter_values)
    async def on_meter_values(self, evse_id, meter_value, **kwargs):
        self.actions.append(f"MeterValues.{evse_id}")
        return self._call_result.MeterValues()

    @on(Action201.report_charging_profiles)
    async def on_report_charging_profiles(self, request_id, charging_limit_source, charging_profile, evse_id, **kwargs):
        self.actions.append("ReportChargingProfiles")
        return self._call_result.ReportChargingProfiles()

    @on(Action201.notify_event)
    async def on_notify_event(self, generated_at, seq_no, event_data, **kwargs):
        self.actions.append("NotifyEvent")
        self.backend.notified.setdefault(self.id, []).extend(event_data)
        return self._call_result.NotifyEvent()

    @on(Action201.notify_report)
    async def on_notify_report(self, request_id, generated_at, seq_no, **kwargs):
        self.actions.append("NotifyReport")
        self.backend.reports.setdefault(self.id, []).extend(kwargs.get("report_data") or [])
        return self._call_result.NotifyReport()

    @on(Action201.security_event_notification)
    async def on_security_event(self, type, timestamp, **kwargs):
        self.actions.append(f"SecurityEventNotification.{type}")
        return self._call_result.SecurityEventNotification()

    @on(Action201.sign_certificate)
    async def on_sign_certificate(self, csr, **kwargs):
        self.actions.append(f"SignCertificate.{kwargs.get('certificate_type')}")
        self.backend.csrs.append(csr)
        return self._call_result.SignCertificate(status="Accepted")

    @on(Action201.transaction_event)
    async def on_transaction_event(self, event_type, **kwargs):
        self.actions.append(f"TransactionEvent.{event_type}")
        self.backend.events.setdefault(self.id, []).append(dict(event_type=event_type, **kwargs))
        await asyncio.sleep(self.backend.event_delay)
        if kwargs.get("id_token"):
            status = "Blocked" if kwargs["id_token"]["id_token"] in self.backend.blocked else "Accepted"
            return self._call_result.TransactionEvent(id_token_info={"status": status})
        return self._call_result.TransactionEvent()


class Backend201(Backend2x, ChargePoint201):
    pass


class Backend:
    """A CSMS on loopback. `refuse` makes it answer the upgrade with an HTTP status instead."""

    def __init__(self, subprotocols=("ocpp1.6", "ocpp2.0.1"), refuse=None, ask_after_boot=True, ssl=None, port=0):
        self.delay = 0  # seconds a 1.6 Heartbeat waits for its answer
        self.ssl = ssl  # an ssl.SSLContext: the backend speaks wss://
        self.peer_certificates = []  # the client certificates seen (wss with client authentication)
        self.subprotocols = list(subprotocols)
        self.refuse = refuse
        self.ask_after_boot = ask_after_boot
        self.sessions = {}  # identity -> list of (charge point, tap)
        self.boots = {}
        self.requests = []  # (path, headers)
        self.closes = {}  # identity -> (code, reason)
        self.errors = []  # (identity, exception) the backend's own side raised: re-raised when the backend stops
        self._closed = {}  # identity -> asyncio.Event set when its latest connection is over
        self.answers = {}  # identity -> answer to the backend's own request
        self.events = {}  # identity -> TransactionEvent payloads (2.0.1)
        self.reports = {}  # identity -> NotifyReport reportData entries (2.0.1)
        self.notified = {}  # identity -> NotifyEvent eventData entries (2.0.1)
        self.started = []  # 1.6 transaction ids handed out
        self.stopped = []  # 1.6 transaction ids stopped
        self.starts = []  # 1.6 StartTransaction payloads
        self.stops = []  # 1.6 StopTransaction payloads
        self.meter_values = []  # 1.6 MeterValues payloads
        self.statuses = {}  # identity -> (connectorId, status, errorCode) of 1.6 StatusNotifications
        self.start_delay = 0  # seconds a 1.6 StartTransaction waits for its answer
        self.meter_values_delay = 0  # seconds a 1.6 MeterValues waits for its answer
        self.event_delay = 0  # seconds a 2.0.1 TransactionEvent waits for its answer
        self.timeline = []  # (identity, "open" | "close") as connections come and go
        self.opened = {}  # identity -> time.monotonic() its latest connection opened
        self.blocked = set()  # idTags Authorize answers Blocked
        self.boot_interval = 300
        self.boot_statuses = []  # 1.6 BootNotification answers to give first (then Accepted)
        self.csrs = []  # certificate signing requests the backend got (SignCertificate)
        self.tokens = []  # 2.x idTokens Authorize carried
        self.contracts = []  # Plug & Charge requests the backend got (Authorize with contract data, wrapped messages)
        self.drop_after = None  # drop the TCP connection after this many received frames
        self.upgrade_delay = 0  # seconds the upgrade request waits for its answer
        self.answer_extensions = None  # a Sec-WebSocket-Extensions value the upgrade's answer names, asked or not
        self.upgrading = 0  # upgrade requests waiting for their answer now
        self.most_upgrading = 0  # and the most at once
        self.server = None
        self.port = port or None
        self.classes = {"ocpp1.6": Backend16, "ocpp2.0.1": Backend201}  # the peer class per subprotocol

    async def _process_request(self, connection, request):
        self.requests.append((request.path, dict(request.headers.raw_items())))
        self.upgrading += 1
        self.most_upgrading = max(self.most_upgrading, self.upgrading)
        try:
            await asyncio.sleep(self.upgrade_delay)
        finally:
            self.upgrading -= 1
        if self.ssl is not None:
            self.peer_certificates.append(connection.transport.get_extra_info("peercert"))
        if self.refuse:
            response = connection.respond(http.HTTPStatus(self.refuse), "refused by the test backend\n")
            if self.refuse == 401:
                response.headers["WWW-Authenticate"] = 'Basic realm="test-backend"'
            return response
        return None

    def _process_response(self, connection, request, response):
        if self.answer_extensions is not None and response.status_code == 101:
            # Instead of what the server agreed (websockets accepts permessage-deflate when offered).
            if "Sec-WebSocket-Extensions" in response.headers:
                del response.headers["Sec-WebSocket-Extensions"]
            response.headers["Sec-WebSocket-Extensions"] = self.answer_extensions
        return response

    async def _handle(self, connection):
        identity = connection.request.path.rstrip("/").split("/")[-1]
        tap = Tap(connection)
        cls = self.classes.get(connection.subprotocol, Backend16)
        cp = cls(identity, tap, self)
        self.sessions.setdefault(identity, []).append((cp, tap))
        self.timeline.append((identity, "open"))
        self.opened[identity] = time.monotonic()
        self._closed.setdefault(identity, asyncio.Event()).clear()
        task = asyncio.create_task(cp.start())
        try:
            if self.ask_after_boot:
                while "BootNotification" not in cp.actions:
                    if task.done():  # the charger left before it booted: nothing to ask
                        return
                    await asyncio.sleep(0.01)
                if issubclass(cls, Backend16):
                    answer = await cp.call(call16.GetConfiguration(key=["HeartbeatInterval"]))
                else:
                    answer = await cp.call(
                        cp._call.GetVariables(
                            get_variable_data=[
                                {"component": {"name": "OCPPCommCtrlr"}, "variable": {"name": "HeartbeatInterval"}}
                            ]
                        )
                    )
                self.answers[identity] = answer
            if self.drop_after is not None:
                while len(tap.received) < self.drop_after:
                    await asyncio.sleep(0.01)
                connection.transport.abort()
            await task
        except websockets.exceptions.ConnectionClosed:
            pass  # the charger (or the relay) went away: an ordinary end
        except Exception as error:  # a schema failure, a call nobody answered: the test must hear of it
            self.errors.append((identity, error))
        finally:
            task.cancel()
            self.timeline.append((identity, "close"))
            self.closes[identity] = (connection.close_code, connection.close_reason)
            self._closed[identity].set()

    async def closed(self, identity, timeout=10):
        """Waits until the latest connection of `identity` is over (its close code and reason are then in `closes`)."""
        event = self._closed.get(identity)
        deadline = asyncio.get_running_loop().time() + timeout
        while event is None:
            if asyncio.get_running_loop().time() > deadline:
                raise AssertionError(f"{identity} never connected to the backend")
            await asyncio.sleep(0.01)
            event = self._closed.get(identity)
        await asyncio.wait_for(event.wait(), timeout)

    async def __aenter__(self):
        self.server = await serve(
            self._handle,
            "127.0.0.1",
            self.port or 0,
            subprotocols=self.subprotocols,
            process_request=self._process_request,
            process_response=self._process_response,
            ping_interval=None,
            ssl=self.ssl,
        )
        self.port = self.server.sockets[0].getsockname()[1]
        return self

    async def __aexit__(self, exc_type, *exc):
        self.server.close()
        await asyncio.wait_for(self.server.wait_closed(), 30)
        if exc_type is None and self.errors:
            raise AssertionError(f"the test backend failed: {self.errors!r}")

    @property
    def url(self):
        return f"{'wss' if self.ssl else 'ws'}://127.0.0.1:{self.port}/ocpp"


# ---------------------------------------------------------------- chargers


class Charger16(ChargePoint16):
    """A 1.6 charger that accepts remote starts and configuration changes, and remembers them."""

    configuration = None
    remote_starts = None

    def _ensure(self):
        if self.configuration is None:
            self.configuration = {"HeartbeatInterval": "300", "MeterValueSampleInterval": "60"}
            self.remote_starts = []

    @on(Action16.remote_start_transaction)
    async def on_remote_start(self, id_tag, connector_id=None, **kwargs):
        self._ensure()
        self.remote_starts.append((id_tag, connector_id))
        return result16.RemoteStartTransaction(status="Accepted")

    @on(Action16.remote_stop_transaction)
    async def on_remote_stop(self, transaction_id):
        self._ensure()
        self.remote_starts.append(("stop", transaction_id))
        return result16.RemoteStopTransaction(status="Accepted")

    @on(Action16.change_configuration)
    async def on_change_configuration(self, key, value):
        self._ensure()
        if key not in self.configuration:
            return result16.ChangeConfiguration(status="NotSupported")
        self.configuration[key] = value
        return result16.ChangeConfiguration(status="Accepted")

    # The remaining 1.6 commands a backend can send: accept each, and remember what came.
    def _note(self, action, **fields):
        self._ensure()
        self.remote_starts.append((action, fields))

    @on(Action16.reset)
    async def on_reset(self, type):
        self._note("Reset", type=type)
        return result16.Reset(status="Accepted")

    @on(Action16.change_availability)
    async def on_change_availability(self, connector_id, type):
        self._note("ChangeAvailability", connector_id=connector_id, type=type)
        return result16.ChangeAvailability(status="Accepted")

    @on(Action16.unlock_connector)
    async def on_unlock_connector(self, connector_id):
        self._note("UnlockConnector", connector_id=connector_id)
        return result16.UnlockConnector(status="Unlocked")

    @on(Action16.trigger_message)
    async def on_trigger_message(self, requested_message, connector_id=None):
        self._note("TriggerMessage", requested_message=requested_message)
        return result16.TriggerMessage(status="Accepted")

    @on(Action16.clear_cache)
    async def on_clear_cache(self):
        self._note("ClearCache")
        return result16.ClearCache(status="Accepted")

    @on(Action16.set_charging_profile)
    async def on_set_charging_profile(self, connector_id, cs_charging_profiles):
        self._note("SetChargingProfile", connector_id=connector_id, profile=cs_charging_profiles)
        return result16.SetChargingProfile(status="Accepted")

    @on(Action16.clear_charging_profile)
    async def on_clear_charging_profile(self, **kwargs):
        self._note("ClearChargingProfile", **kwargs)
        return result16.ClearChargingProfile(status="Accepted")

    @on(Action16.get_composite_schedule)
    async def on_get_composite_schedule(self, connector_id, duration, charging_rate_unit=None):
        self._note("GetCompositeSchedule", connector_id=connector_id)
        return result16.GetCompositeSchedule(
            status="Accepted", connector_id=connector_id, schedule_start=now(),
            charging_schedule={"duration": duration, "charging_rate_unit": charging_rate_unit or "A", "charging_schedule_period": [{"start_period": 0, "limit": 16.0}]},
        )

    @on(Action16.reserve_now)
    async def on_reserve_now(self, connector_id, expiry_date, id_tag, reservation_id, parent_id_tag=None):
        self._note("ReserveNow", reservation_id=reservation_id, id_tag=id_tag)
        return result16.ReserveNow(status="Accepted")

    @on(Action16.cancel_reservation)
    async def on_cancel_reservation(self, reservation_id):
        self._note("CancelReservation", reservation_id=reservation_id)
        return result16.CancelReservation(status="Accepted")

    @on(Action16.send_local_list)
    async def on_send_local_list(self, list_version, update_type, local_authorization_list=None):
        self._note("SendLocalList", list_version=list_version, entries=local_authorization_list)
        return result16.SendLocalList(status="Accepted")

    @on(Action16.get_local_list_version)
    async def on_get_local_list_version(self):
        self._note("GetLocalListVersion")
        return result16.GetLocalListVersion(list_version=7)

    @on(Action16.get_diagnostics)
    async def on_get_diagnostics(self, location, **kwargs):
        self._note("GetDiagnostics", location=location)
        return result16.GetDiagnostics(file_name="diagnostics.zip")

    @on(Action16.update_firmware)
    async def on_update_firmware(self, location, retrieve_date, **kwargs):
        self._note("UpdateFirmware", location=location)
        return result16.UpdateFirmware()

    @on(Action16.data_transfer)
    async def on_data_transfer(self, vendor_id, message_id=None, data=None):
        self._note("DataTransfer", vendor_id=vendor_id, data=data)
        return result16.DataTransfer(status="Accepted", data="pong")

    @on(Action16.certificate_signed)
    async def on_certificate_signed(self, certificate_chain):
        self._note("CertificateSigned", certificate_chain=certificate_chain)
        return result16.CertificateSigned(status="Accepted")

    @on(Action16.get_configuration)
    async def on_get_configuration(self, key=None, **kwargs):
        self._ensure()
        keys = key or list(self.configuration)
        return result16.GetConfiguration(
            configuration_key=[{"key": k, "readonly": False, "value": self.configuration[k]} for k in keys if k in self.configuration],
            unknown_key=[k for k in keys if k not in self.configuration] or None,
        )


class Charger201(ChargePoint201):
    @on(Action201.get_variables)
    async def on_get_variables(self, get_variable_data, **kwargs):
        return result201.GetVariables(
            get_variable_result=[
                {
                    "attribute_status": "Accepted",
                    "attribute_value": "300",
                    "component": {"name": "OCPPCommCtrlr"},
                    "variable": {"name": "HeartbeatInterval"},
                }
            ]
        )


class Station201(ChargePoint201):
    """A 2.0.1 charging station that accepts every CSMS command and remembers what came (`commands`), with a small
    device model for GetVariables / SetVariables."""

    def __init__(self, identity, connection):
        super().__init__(identity, connection)
        self.commands = []
        self.variables = {("OCPPCommCtrlr", "HeartbeatInterval", None): "300", ("TxCtrlr", "StopTxOnInvalidId", None): "true",
                          ("SampledDataCtrlr", "TxUpdatedMeasurands", None): "Energy.Active.Import.Register,Power.Active.Import"}

    def _note(self, action, **fields):
        self.commands.append((action, fields))

    @on(Action201.request_start_transaction)
    async def on_request_start(self, id_token, remote_start_id, **kwargs):
        self._note("RequestStartTransaction", id_token=id_token, remote_start_id=remote_start_id, **kwargs)
        return result201.RequestStartTransaction(status="Accepted")

    @on(Action201.request_stop_transaction)
    async def on_request_stop(self, transaction_id):
        self._note("RequestStopTransaction", transaction_id=transaction_id)
        return result201.RequestStopTransaction(status="Accepted")

    @on(Action201.reset)
    async def on_reset(self, type, **kwargs):
        self._note("Reset", type=type)
        return result201.Reset(status="Scheduled")

    @on(Action201.change_availability)
    async def on_change_availability(self, operational_status, evse=None):
        self._note("ChangeAvailability", operational_status=operational_status, evse=evse)
        return result201.ChangeAvailability(status="Accepted")

    @on(Action201.unlock_connector)
    async def on_unlock_connector(self, evse_id, connector_id):
        self._note("UnlockConnector", evse_id=evse_id, connector_id=connector_id)
        return result201.UnlockConnector(status="Unlocked")

    @on(Action201.trigger_message)
    async def on_trigger_message(self, requested_message, evse=None, **kwargs):
        self._note("TriggerMessage", requested_message=requested_message, evse=evse)
        return result201.TriggerMessage(status="Accepted")

    @on(Action201.clear_cache)
    async def on_clear_cache(self, **kwargs):
        self._note("ClearCache")
        return result201.ClearCache(status="Accepted")

    @on(Action201.get_variables)
    async def on_get_variables(self, get_variable_data, **kwargs):
        results = []
        for item in get_variable_data:
            key = (item["component"]["name"], item["variable"]["name"], item["variable"].get("instance"))
            result = {"component": item["component"], "variable": item["variable"]}
            if key in self.variables:
                result.update(attribute_status="Accepted", attribute_value=self.variables[key])
            else:
                result.update(attribute_status="UnknownVariable")
            results.append(result)
        return result201.GetVariables(get_variable_result=results)

    @on(Action201.set_variables)
    async def on_set_variables(self, set_variable_data, **kwargs):
        results = []
        for item in set_variable_data:
            key = (item["component"]["name"], item["variable"]["name"], item["variable"].get("instance"))
            status = "Accepted" if key in self.variables else "UnknownVariable"
            if status == "Accepted":
                self.variables[key] = item["attribute_value"]
            results.append({"attribute_status": status, "component": item["component"], "variable": item["variable"]})
        self._note("SetVariables", data=set_variable_data)
        return result201.SetVariables(set_variable_result=results)

    @on(Action201.set_charging_profile)
    async def on_set_charging_profile(self, evse_id, charging_profile, **kwargs):
        self._note("SetChargingProfile", evse_id=evse_id, profile=charging_profile)
        return result201.SetChargingProfile(status="Accepted")

    @on(Action201.clear_charging_profile)
    async def on_clear_charging_profile(self, **kwargs):
        self._note("ClearChargingProfile", **kwargs)
        return result201.ClearChargingProfile(status="Accepted")

    @on(Action201.get_composite_schedule)
    async def on_get_composite_schedule(self, duration, evse_id, charging_rate_unit=None, **kwargs):
        self._note("GetCompositeSchedule", evse_id=evse_id)
        return result201.GetCompositeSchedule(
            status="Accepted",
            schedule={"evse_id": evse_id, "duration": duration, "schedule_start": now(), "charging_rate_unit": charging_rate_unit or "A",
                      "charging_schedule_period": [{"start_period": 0, "limit": 16.0}]},
        )

    @on(Action201.reserve_now)
    async def on_reserve_now(self, id, expiry_date_time, id_token, **kwargs):
        self._note("ReserveNow", id=id, id_token=id_token, **kwargs)
        return result201.ReserveNow(status="Accepted")

    @on(Action201.cancel_reservation)
    async def on_cancel_reservation(self, reservation_id, **kwargs):
        self._note("CancelReservation", reservation_id=reservation_id)
        return result201.CancelReservation(status="Accepted")

    @on(Action201.send_local_list)
    async def on_send_local_list(self, version_number, update_type, local_authorization_list=None, **kwargs):
        self._note("SendLocalList", version_number=version_number, entries=local_authorization_list)
        return result201.SendLocalList(status="Accepted")

    @on(Action201.get_local_list_version)
    async def on_get_local_list_version(self, **kwargs):
        self._note("GetLocalListVersion")
        return result201.GetLocalListVersion(version_number=7)

    @on(Action201.get_log)
    async def on_get_log(self, log, log_type, request_id, **kwargs):
        self._note("GetLog", log=log, log_type=log_type, request_id=request_id)
        return result201.GetLog(status="Accepted", filename="diagnostics.zip")

    @on(Action201.update_firmware)
    async def on_update_firmware(self, request_id, firmware, **kwargs):
        self._note("UpdateFirmware", request_id=request_id, firmware=firmware)
        return result201.UpdateFirmware(status="Accepted")

    @on(Action201.data_transfer)
    async def on_data_transfer(self, vendor_id, message_id=None, data=None, **kwargs):
        self._note("DataTransfer", vendor_id=vendor_id, data=data)
        return result201.DataTransfer(status="Accepted", data="pong")


async def open_charger(relay_url, identity, subprotocols, headers=None, **kwargs):
    return await connect(
        f"{relay_url}/{identity}",
        subprotocols=subprotocols,
        additional_headers=headers or {},
        ping_interval=None,
        open_timeout=10,
        **kwargs,
    )


async def raw_websocket(relay_url, identity):
    """A charger's upgrade written by hand, after which it reads and answers nothing (not even pings): the
    (reader, writer) of its socket."""
    import base64
    import os

    host, port = relay_url.split("//")[1].split("/")[0].split(":")
    reader, writer = await asyncio.open_connection(host, int(port))
    key = base64.b64encode(os.urandom(16)).decode()
    writer.write(
        f"GET /ocpp/{identity} HTTP/1.1\r\nHost: relay\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
        f"Sec-WebSocket-Key: {key}\r\nSec-WebSocket-Version: 13\r\nSec-WebSocket-Protocol: ocpp1.6\r\n\r\n".encode()
    )
    head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), 10)
    assert head.startswith(b"HTTP/1.1 101"), head
    return reader, writer


async def handshake_status(relay_url, identity, headers=None, **kwargs):
    """The HTTP status of a charger's upgrade (101 when it was accepted; the connection is then closed) and the
    response headers of a refusal."""
    try:
        ws = await open_charger(relay_url, identity, ["ocpp1.6"], headers, **kwargs)
    except websockets.exceptions.InvalidStatus as error:
        return error.response.status_code, dict(error.response.headers.raw_items())
    await ws.close()
    return 101, {}


async def session_16(cp, wait_for_question=True):
    """A charging session; returns the results the charger got, in order."""
    results = []
    results.append(await cp.call(call16.BootNotification(charge_point_model="E2E", charge_point_vendor="ocpp-relay-tests", charge_point_serial_number=cp.id[:25])))
    results.append(await cp.call(call16.StatusNotification(connector_id=1, error_code="NoError", status="Available", timestamp=now())))
    results.append(await cp.call(call16.Authorize(id_tag="TAG-" + cp.id[-10:])))
    start = await cp.call(call16.StartTransaction(connector_id=1, id_tag="TAG-1", meter_start=0, timestamp=now()))
    results.append(start)
    for wh in (100, 200, 300):
        results.append(
            await cp.call(
                call16.MeterValues(
                    connector_id=1,
                    transaction_id=start.transaction_id,
                    meter_value=[{"timestamp": now(), "sampled_value": [{"value": str(wh), "measurand": "Energy.Active.Import.Register", "unit": "Wh"}]}],
                )
            )
        )
    results.append(await cp.call(call16.StopTransaction(meter_stop=300, timestamp=now(), transaction_id=start.transaction_id, reason="Local")))
    results.append(await cp.call(call16.Heartbeat()))
    return results


async def session_201(cp):
    results = []
    results.append(await cp.call(call201.BootNotification(charging_station={"model": "E2E", "vendor_name": "ocpp-relay-tests", "serial_number": cp.id[:25]}, reason="PowerUp")))
    results.append(await cp.call(call201.StatusNotification(timestamp=now(), connector_status="Available", evse_id=1, connector_id=1)))
    token = {"id_token": "TAG-1", "type": "ISO14443"}
    results.append(await cp.call(call201.Authorize(id_token=token)))
    for seq, (event, trigger) in enumerate([("Started", "Authorized"), ("Updated", "MeterValuePeriodic"), ("Ended", "StopAuthorized")]):
        results.append(
            await cp.call(
                call201.TransactionEvent(
                    event_type=event,
                    timestamp=now(),
                    trigger_reason=trigger,
                    seq_no=seq,
                    transaction_info={"transaction_id": "tx-" + cp.id[-20:]},
                    id_token=token if seq == 0 else None,
                    evse={"id": 1, "connector_id": 1} if seq == 0 else None,
                    meter_value=[{"timestamp": now(), "sampled_value": [{"value": 100.0 * (seq + 1)}]}],
                )
            )
        )
    results.append(await cp.call(call201.Heartbeat()))
    return results


async def run_charger(relay_url, identity, version="1.6", headers=None, close_code=1000, **kwargs):
    """Connects, plays a session, closes; returns (results, tap, subprotocol)."""
    offered = ["ocpp1.6"] if version == "1.6" else ["ocpp2.0.1"]
    ws = await open_charger(relay_url, identity, offered, headers, **kwargs)
    tap = Tap(ws)
    cp = (Charger16 if version == "1.6" else Charger201)(identity, tap)
    task = asyncio.create_task(cp.start())
    try:
        results = await (session_16(cp) if version == "1.6" else session_201(cp))
        # Give the backend's own request time to arrive and be answered.
        for _ in range(200):
            if any('"GetConfiguration"' in m or '"GetVariables"' in m for m in tap.received):
                break
            await asyncio.sleep(0.01)
        await asyncio.sleep(0.05)
    finally:
        await ws.close(code=close_code)
        task.cancel()
    return results, tap, ws.subprotocol
