"""OCPP 2.1 peers from the pinned `ocpp` package (its v21 ChargePoint, which validates every message against the
OCA's 2.1 schemas): a CSMS for the shared `Backend` (register it with `speak_21`) and a charging station. The
package knows only frame types 2, 3 and 4: SEND frames go out raw (`send_frame`)."""

import asyncio
import itertools
import json

from ocpp.routing import on
from ocpp.v21 import ChargePoint as ChargePoint21
from ocpp.v21 import call as call21
from ocpp.v21 import call_result as result21
from ocpp.v21.enums import Action as Action21
from peers import now

_ids = itertools.count(1)


class Backend21(ChargePoint21):
    """A 2.1 CSMS: accepts the boot, authorizes tokens (Blocked for `backend.blocked`), keeps TransactionEvents in
    `backend.events` and what else came in `actions`."""

    def __init__(self, identity, connection, backend):
        super().__init__(identity, connection)
        self.backend = backend
        self.actions = []

    @on(Action21.boot_notification)
    async def on_boot(self, charging_station, reason, **kwargs):
        self.actions.append("BootNotification")
        self.backend.boots[self.id] = charging_station
        return result21.BootNotification(current_time=now(), interval=self.backend.boot_interval, status="Accepted")

    @on(Action21.heartbeat)
    async def on_heartbeat(self, **kwargs):
        self.actions.append("Heartbeat")
        return result21.Heartbeat(current_time=now())

    @on(Action21.status_notification)
    async def on_status(self, connector_status, evse_id, connector_id, **kwargs):
        self.actions.append(f"StatusNotification.{connector_status}")
        return result21.StatusNotification()

    @on(Action21.notify_event)
    async def on_notify_event(self, generated_at, seq_no, event_data, **kwargs):
        self.actions.append("NotifyEvent")
        self.backend.notified.setdefault(self.id, []).extend(event_data)
        return result21.NotifyEvent()

    @on(Action21.authorize)
    async def on_authorize(self, id_token, **kwargs):
        self.actions.append("Authorize")
        self.backend.tokens.append(id_token)
        status = "Blocked" if id_token["id_token"] in self.backend.blocked else "Accepted"
        return result21.Authorize(id_token_info={"status": status})

    @on(Action21.meter_values)
    async def on_meter_values(self, evse_id, meter_value, **kwargs):
        self.actions.append(f"MeterValues.{evse_id}")
        return result21.MeterValues()

    @on(Action21.transaction_event)
    async def on_transaction_event(self, event_type, **kwargs):
        self.actions.append(f"TransactionEvent.{event_type}")
        self.backend.events.setdefault(self.id, []).append(dict(event_type=event_type, **kwargs))
        await asyncio.sleep(self.backend.event_delay)
        if kwargs.get("id_token"):
            status = "Blocked" if kwargs["id_token"]["id_token"] in self.backend.blocked else "Accepted"
            return result21.TransactionEvent(id_token_info={"status": status})
        return result21.TransactionEvent()

    @on(Action21.notify_monitoring_report)
    async def on_notify_monitoring_report(self, request_id, seq_no, generated_at, **kwargs):
        self.actions.append("NotifyMonitoringReport")
        self.backend.reports.setdefault(self.id, []).extend(kwargs.get("monitor") or [])
        return result21.NotifyMonitoringReport()

    @on(Action21.data_transfer)
    async def on_data_transfer(self, vendor_id, **kwargs):
        self.actions.append("DataTransfer")
        return result21.DataTransfer(status="Accepted", data={"echo": kwargs.get("data")})


def speak_21(backend):
    """Lets a shared `Backend` serve `ocpp2.1` connections with `Backend21`."""
    backend.classes["ocpp2.1"] = Backend21
    backend.tokens = []
    return backend


class Station21(ChargePoint21):
    """A 2.1 charging station that accepts every CSMS command it knows and remembers what came (`commands`)."""

    def __init__(self, identity, connection):
        super().__init__(identity, connection)
        self.commands = []

    def _note(self, action, **fields):
        self.commands.append((action, fields))

    @on(Action21.get_variables)
    async def on_get_variables(self, get_variable_data, **kwargs):
        results = [
            {"attribute_status": "Accepted", "attribute_value": "300", "component": item["component"], "variable": item["variable"]}
            for item in get_variable_data
        ]
        return result21.GetVariables(get_variable_result=results)

    @on(Action21.request_start_transaction)
    async def on_request_start(self, id_token, remote_start_id, **kwargs):
        self._note("RequestStartTransaction", id_token=id_token, remote_start_id=remote_start_id, **kwargs)
        return result21.RequestStartTransaction(status="Accepted")

    @on(Action21.request_stop_transaction)
    async def on_request_stop(self, transaction_id, **kwargs):
        self._note("RequestStopTransaction", transaction_id=transaction_id)
        return result21.RequestStopTransaction(status="Accepted")

    @on(Action21.reset)
    async def on_reset(self, type, **kwargs):
        self._note("Reset", type=type)
        return result21.Reset(status="Accepted")

    @on(Action21.certificate_signed)
    async def on_certificate_signed(self, certificate_chain, **kwargs):
        self._note("CertificateSigned", **kwargs)
        return result21.CertificateSigned(status="Accepted")


async def send_frame(ws, frame):
    """Sends a frame the package cannot (SEND, CALLRESULTERROR, an unknown type) as it is."""
    await ws.send(json.dumps(frame))


def send_id():
    return f"send-{next(_ids)}"
