"""A realistic fleet day, compressed in time: chargers boot, report status, heartbeat every 5 minutes,
and run transactions with meter values every 60 s (energy, power, current and voltage per phase),
as real 1.6 and 2.0.1 chargers do. Payload timestamps follow a simulated clock; message ids are UUIDs
(the `ocpp` package's default, like most firmware).

Run standalone to measure compression:  python fleet.py ws://127.0.0.1:8180/ocpp 30
"""

import asyncio
import datetime
import random
import sys

from ocpp.v16 import call as call16
from ocpp.v201 import call as call201
from peers import Charger16, Charger201, Tap, open_charger


class Clock:
    def __init__(self, seed):
        self.t = datetime.datetime(2026, 11, 27, 6, 0, tzinfo=datetime.timezone.utc) + datetime.timedelta(seconds=seed)

    def advance(self, seconds):
        self.t += datetime.timedelta(seconds=seconds)

    def __str__(self):
        return self.t.isoformat(timespec="seconds").replace("+00:00", "Z")


def samples16(wh, rng):
    values = [{"value": str(wh), "context": "Sample.Periodic", "measurand": "Energy.Active.Import.Register", "location": "Outlet", "unit": "Wh"}]
    values.append({"value": f"{rng.uniform(10800, 11100):.1f}", "context": "Sample.Periodic", "measurand": "Power.Active.Import", "location": "Outlet", "unit": "W"})
    for phase in ("L1", "L2", "L3"):
        values.append({"value": f"{rng.uniform(15.5, 16.0):.2f}", "context": "Sample.Periodic", "measurand": "Current.Import", "phase": phase, "location": "Outlet", "unit": "A"})
        values.append({"value": f"{rng.uniform(228, 233):.1f}", "context": "Sample.Periodic", "measurand": "Voltage", "phase": f"{phase}-N", "location": "Outlet", "unit": "V"})
    return values


def samples201(wh, rng):
    values = [{"value": wh, "context": "Sample.Periodic", "measurand": "Energy.Active.Import.Register", "location": "Outlet", "unit_of_measure": {"unit": "Wh"}}]
    values.append({"value": round(rng.uniform(10800, 11100), 1), "context": "Sample.Periodic", "measurand": "Power.Active.Import", "location": "Outlet", "unit_of_measure": {"unit": "W"}})
    for phase in ("L1", "L2", "L3"):
        values.append({"value": round(rng.uniform(15.5, 16.0), 2), "context": "Sample.Periodic", "measurand": "Current.Import", "phase": phase, "location": "Outlet", "unit_of_measure": {"unit": "A"}})
        values.append({"value": round(rng.uniform(228, 233), 1), "context": "Sample.Periodic", "measurand": "Voltage", "phase": f"{phase}-N", "location": "Outlet", "unit_of_measure": {"unit": "V"}})
    return values


async def day16(cp, index, transactions, minutes):
    rng = random.Random(index)
    clock = Clock(index * 7)
    await cp.call(call16.BootNotification(charge_point_vendor="Alfen BV", charge_point_model="NG920-61", charge_point_serial_number=f"ace{100000 + index}", firmware_version="6.4.0-4123", meter_type="Inepro PRO380"))
    for connector in (0, 1):
        await cp.call(call16.StatusNotification(connector_id=connector, error_code="NoError", status="Available", timestamp=str(clock)))
    wh = rng.randint(100000, 900000)
    for n in range(transactions):
        tag = f"04A2{rng.randint(0, 0xFFFFFF):06X}"
        await cp.call(call16.Authorize(id_tag=tag))
        start = await cp.call(call16.StartTransaction(connector_id=1, id_tag=tag, meter_start=wh, timestamp=str(clock)))
        await cp.call(call16.StatusNotification(connector_id=1, error_code="NoError", status="Charging", timestamp=str(clock)))
        for minute in range(minutes):
            clock.advance(60)
            wh += rng.randint(170, 190)
            await cp.call(call16.MeterValues(connector_id=1, transaction_id=start.transaction_id, meter_value=[{"timestamp": str(clock), "sampled_value": samples16(wh, rng)}]))
            if minute % 5 == 4:
                await cp.call(call16.Heartbeat())
        await cp.call(call16.StopTransaction(meter_stop=wh, timestamp=str(clock), transaction_id=start.transaction_id, reason="EVDisconnected", id_tag=tag))
        for status in ("Finishing", "Available"):
            await cp.call(call16.StatusNotification(connector_id=1, error_code="NoError", status=status, timestamp=str(clock)))
        clock.advance(1800)


async def day201(cp, index, transactions, minutes):
    rng = random.Random(index)
    clock = Clock(index * 7)
    await cp.call(call201.BootNotification(charging_station={"model": "NG920-61", "vendor_name": "Alfen BV", "serial_number": f"ace{100000 + index}", "firmware_version": "6.4.0-4123"}, reason="PowerUp"))
    await cp.call(call201.StatusNotification(timestamp=str(clock), connector_status="Available", evse_id=1, connector_id=1))
    wh = rng.randint(100000, 900000)
    for n in range(transactions):
        token = {"id_token": f"04A2{rng.randint(0, 0xFFFFFF):06X}", "type": "ISO14443"}
        tx = {"transaction_id": f"{rng.getrandbits(128):032x}"}
        await cp.call(call201.Authorize(id_token=token))
        seq = 0
        await cp.call(call201.TransactionEvent(event_type="Started", timestamp=str(clock), trigger_reason="Authorized", seq_no=seq, transaction_info={**tx, "charging_state": "Charging"}, id_token=token, evse={"id": 1, "connector_id": 1}, meter_value=[{"timestamp": str(clock), "sampled_value": samples201(wh, rng)[:1]}]))
        await cp.call(call201.StatusNotification(timestamp=str(clock), connector_status="Occupied", evse_id=1, connector_id=1))
        for minute in range(minutes):
            clock.advance(60)
            wh += rng.randint(170, 190)
            seq += 1
            await cp.call(call201.TransactionEvent(event_type="Updated", timestamp=str(clock), trigger_reason="MeterValuePeriodic", seq_no=seq, transaction_info=tx, meter_value=[{"timestamp": str(clock), "sampled_value": samples201(wh, rng)}]))
            if minute % 5 == 4:
                await cp.call(call201.Heartbeat())
        seq += 1
        await cp.call(call201.TransactionEvent(event_type="Ended", timestamp=str(clock), trigger_reason="EVCommunicationLost", seq_no=seq, transaction_info={**tx, "stopped_reason": "EVDisconnected"}, meter_value=[{"timestamp": str(clock), "sampled_value": samples201(wh, rng)[:1]}]))
        await cp.call(call201.StatusNotification(timestamp=str(clock), connector_status="Available", evse_id=1, connector_id=1))
        clock.advance(1800)


async def run_fleet(relay_url, chargers, transactions=3, minutes=30):
    async def one(index):
        version = "1.6" if index % 3 else "2.0.1"
        identity = f"FLEET-{index:04d}"
        ws = await open_charger(relay_url, identity, ["ocpp1.6" if version == "1.6" else "ocpp2.0.1"])
        cp = (Charger16 if version == "1.6" else Charger201)(identity, Tap(ws))
        task = asyncio.create_task(cp.start())
        try:
            await (day16 if version == "1.6" else day201)(cp, index, transactions, minutes)
        finally:
            await ws.close()
            task.cancel()

    await asyncio.gather(*(one(i) for i in range(chargers)))


if __name__ == "__main__":
    asyncio.run(run_fleet(sys.argv[1], int(sys.argv[2]) if len(sys.argv) > 2 else 30))
