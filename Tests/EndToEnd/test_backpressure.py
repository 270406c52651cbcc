"""A slow peer slows its sender: the relay stops reading instead of buffering without bound."""

import asyncio
import pathlib
import time

from peers import Backend, open_charger


def rss_kib(pid):
    for line in pathlib.Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    raise AssertionError("no VmRSS")


def test_a_backend_that_stops_reading_holds_the_charger_back(start_relay):
    message_count = 150
    payload = "B" * 100_000  # 15 MB in all

    async def scenario():
        async with Backend(ask_after_boot=False) as backend:
            relay = start_relay(backend.url, "--max-frame-size", "1MiB")
            ws = await open_charger(relay.url, "CP-FLOOD", ["ocpp1.6"], write_limit=65536)
            await ws.send('[2,"0","Heartbeat",{}]')
            await ws.recv()
            (_, backend_tap), = backend.sessions["CP-FLOOD"]
            backend_tap.connection.transport.pause_reading()
            baseline = rss_kib(relay.process.pid)
            sent = 0

            async def flood():
                nonlocal sent
                for i in range(message_count):
                    await ws.send(f'[2,"{i + 1}","DataTransfer",{{"vendorId":"x","data":"{payload}"}}]')
                    sent += 1

            flooding = asyncio.create_task(flood())
            await asyncio.sleep(3)
            held_back = sent
            grown = rss_kib(relay.process.pid) - baseline
            print(f"held back after {held_back} of {message_count}, relay grew {grown} KiB")
            # Let the backend read again: everything arrives, in order.
            backend_tap.connection.transport.resume_reading()
            await asyncio.wait_for(flooding, 60)
            deadline = time.monotonic() + 60
            while len(backend_tap.received) < message_count + 1 and time.monotonic() < deadline:
                await asyncio.sleep(0.05)
            await ws.close()
            return held_back, grown, backend_tap.received

    held_back, grown_kib, received = asyncio.run(scenario())
    # The charger could not push everything while the backend was not reading…
    assert held_back < message_count
    # …and the relay did not swallow it: its memory grew by far less than the 15 MB sent.
    assert grown_kib < 6 * 1024, f"relay grew by {grown_kib} KiB"
    ids = [m.split('"')[1] for m in received]
    assert ids == [str(i) for i in range(message_count + 1)]
