"""A slow peer slows its sender: the relay stops reading instead of buffering without bound, both ways."""

import asyncio
import base64
import os
import pathlib
import time

import pytest
from peers import Backend, open_charger


def rss_kib(pid):
    for line in pathlib.Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    raise AssertionError("no VmRSS")


async def stalled(counter, total, quiet=0.5, ceiling=30):
    """Waits until `counter()` has not moved for `quiet` seconds (the sender is held back), at most `ceiling`."""
    deadline = time.monotonic() + ceiling
    last, since = counter(), time.monotonic()
    while time.monotonic() < deadline and counter() < total:
        await asyncio.sleep(0.05)
        if counter() != last:
            last, since = counter(), time.monotonic()
        elif time.monotonic() - since >= quiet:
            return
    raise AssertionError(f"the sender was never held back: {counter()} of {total} sent")


@pytest.mark.parametrize("slow", ["backend", "charger"])
def test_a_peer_that_stops_reading_holds_the_other_back(start_relay, slow):
    message_count = 150
    # 15 MB in all, of random text: compressed legs (the peers offer permessage-deflate) cannot shrink it away.
    payload = base64.b64encode(os.urandom(75_000)).decode()

    async def scenario():
        async with Backend(ask_after_boot=False) as backend:
            relay = start_relay(backend.url, "--max-frame-size", "1MiB")
            ws = await open_charger(relay.url, "CP-FLOOD", ["ocpp1.6"], write_limit=65536, max_size=None)
            await ws.send('[2,"0","Heartbeat",{}]')
            await asyncio.wait_for(ws.recv(), 10)
            (_, backend_tap), = backend.sessions["CP-FLOOD"]
            # The flooding side sends CALLs as fast as its socket takes them; the other side stops reading.
            if slow == "backend":
                sender, reader = ws, backend_tap.connection
            else:
                sender, reader = backend_tap.connection, ws
            reader.transport.pause_reading()
            baseline = rss_kib(relay.process.pid)
            sent = 0

            async def flood():
                nonlocal sent
                for i in range(message_count):
                    await sender.send(f'[2,"{i + 1}","DataTransfer",{{"vendorId":"x","data":"{payload}"}}]')
                    sent += 1

            flooding = asyncio.create_task(flood())
            await stalled(lambda: sent, message_count)
            held_back = sent
            grown = rss_kib(relay.process.pid) - baseline
            print(f"{slow} not reading: held back after {held_back} of {message_count}, relay grew {grown} KiB")
            # Reading again: everything arrives, in order.
            reader.transport.resume_reading()
            received = []
            for _ in range(message_count if slow == "charger" else 0):
                received.append(await asyncio.wait_for(ws.recv(), 30))
            await asyncio.wait_for(flooding, 60)
            if slow == "backend":
                deadline = time.monotonic() + 60
                while len(backend_tap.received) < message_count + 1 and time.monotonic() < deadline:
                    await asyncio.sleep(0.05)
                received = backend_tap.received[1:]
            await ws.close()
            return held_back, grown, received

    held_back, grown_kib, received = asyncio.run(scenario())
    # The sender could not push everything while the other side was not reading…
    assert held_back < message_count
    # …and the relay did not swallow it: its memory grew by far less than the 15 MB sent.
    assert grown_kib < 6 * 1024, f"relay grew by {grown_kib} KiB"
    assert [m.split('"')[1] for m in received] == [str(i + 1) for i in range(message_count)]
