"""OCPP 2.1 peers from the pinned `ocpp` package (its v21 ChargePoint, which validates every message against the
OCA's 2.1 schemas): a CSMS for the shared `Backend` (register it with `speak_21`) and a charging station. The
package knows only frame types 2, 3 and 4: SEND frames go out raw (`send_frame`)."""

import itertools
import json

from ocpp.routing import on
from ocpp.v21 import ChargePoint as ChargePoint21
from ocpp.v21 import call_result as result21
from ocpp.v21.enums import Action as Action21
from peers import Backend2x, now

_ids = itertools.count(1)


class Backend21(Backend2x, ChargePoint21):
    """A 2.1 CSMS: the handlers it shares with 2.0.1 (`Backend2x`), and what 2.1 requires differently."""

    @on(Action21.notify_monitoring_report)
    async def on_notify_monitoring_report(self, request_id, seq_no, generated_at, **kwargs):
        self.actions.append("NotifyMonitoringReport")
        self.backend.reports.setdefault(self.id, []).extend(kwargs.get("monitor") or [])
        return result21.NotifyMonitoringReport()


def speak_21(backend):
    """Lets a shared `Backend` serve `ocpp2.1` connections with `Backend21`."""
    backend.classes["ocpp2.1"] = Backend21
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
