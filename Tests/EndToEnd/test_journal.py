"""The write-ahead journal: the relay copies each tick's records into a memory-mapped journal and compresses them
into segments on a thread of its own. Killed (SIGKILL) while that thread is compressing a block under load, it
has still recorded every frame it forwarded, exactly once: the tools read what the journal holds as the
continuation of its segment, and the next start writes it into a segment and removes the journal."""

import asyncio
import os
import signal
import struct
import time

from conftest import recordings_show
from peers import Backend, open_charger

CHARGERS = 12
SLOW = "recordings:\n  compression_level: 9\n"


def journal_headers(recordings):
    """(committed, consumed, intent) of each journal beside `recordings`."""
    folder = recordings.parent / f".{recordings.name}.journal"
    headers = []
    for path in sorted(folder.glob("*.wal")) if folder.exists() else []:
        with open(path, "rb") as f:
            head = f.read(40)
        headers.append(struct.unpack_from("<QQQ", head, 16))
    return headers


def kill_mid_block(relay, recordings, seconds=3):
    """SIGKILL as soon as a journal's header says a span is being compressed (or when `seconds` are up)."""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if any(intent > consumed for _, consumed, intent in journal_headers(recordings)):
            break
    relay.process.send_signal(signal.SIGKILL)
    relay.process.wait()


def by_run(texts):
    """Calls grouped by (attempt, charger), from their message ids."""
    groups = {}
    for text in texts:
        if text.startswith("[2,"):
            attempt, charger, _ = text.split('"')[1].split("-")
            groups.setdefault((attempt, charger), []).append(text)
    return groups


async def load(relay_url, stop, attempt):
    """Chargers sending DataTransfer calls with fresh random data (work for the compressor) until `stop`; message
    ids say the attempt, the charger and the count."""

    async def one(n):
        ws = await open_charger(relay_url, f"CP-J{n}", ["ocpp1.6"])
        i = 0
        try:
            while not stop.is_set():
                data = os.urandom(2000).hex()
                await ws.send(f'[2,"{attempt}-{n}-{i}","DataTransfer",{{"vendorId":"j","data":"{data}"}}]')
                await asyncio.wait_for(ws.recv(), 10)
                i += 1
        except Exception:
            pass  # the relay was killed

    await asyncio.gather(*(one(n) for n in range(CHARGERS)))


def test_a_relay_killed_while_compressing_has_recorded_every_forwarded_frame_once(start_relay, tmp_path):
    recordings = tmp_path / "recordings"
    mid_block = False

    async def scenario():
        nonlocal mid_block
        async with Backend(ask_after_boot=False) as backend:
            relay = None
            # Kill at a moment the journal says its thread is compressing a block (tries a few times).
            for attempt in range(8):
                # The slowest compression level keeps the thread busy for longer.
                relay = start_relay(backend.url, recordings=recordings, config=SLOW)
                stop = asyncio.Event()
                task = asyncio.create_task(load(relay.url, stop, attempt))
                await asyncio.sleep(0.5)
                await asyncio.get_running_loop().run_in_executor(None, kill_mid_block, relay, recordings)
                headers = journal_headers(recordings)
                stop.set()
                await task
                if any(intent > consumed for _, consumed, intent in headers):
                    mid_block = True
                    break
                # Not mid-block this time: the next start recovers the journal; try again.
            received = by_run(m for sessions in backend.sessions.values() for _, tap in sessions for m in tap.received)
            return relay, received

    relay, received = asyncio.run(scenario())
    assert mid_block, "the relay was never killed while compressing a block"
    before, _ = recordings_show(recordings)

    def check(entries):
        upstream = by_run(e["text"] for e in entries if "text" in e and e["leg"] == "upstream" and e["dir"] == "out")
        assert received and set(received) <= set(upstream)
        for run, frames in received.items():
            recorded = upstream[run]
            # Everything the backend got is recorded, in order; at most the frame in flight at the kill is extra.
            assert recorded[: len(frames)] == frames, run
            assert len(recorded) - len(frames) <= 1, run
        # Exactly once: every call id appears once among the chargers' messages.
        calls = [e["text"] for e in entries if "text" in e and e["leg"] == "charger" and e["dir"] == "in"]
        ids = [t.split('"')[1] for t in calls if t.startswith("[2,")]
        assert len(ids) > 0 and len(ids) == len(set(ids))

    check(before)
    # The next start writes the journal into a segment; what the tools show does not change.
    restarted = start_relay("ws://127.0.0.1:9/ocpp", recordings=recordings)
    assert restarted.stop() == 0
    assert "recovered a write-ahead journal" in restarted.log()
    after, _ = recordings_show(recordings)
    check(after)
    assert [e.get("text") for e in after if "text" in e] == [e.get("text") for e in before if "text" in e]
    assert journal_headers(recordings) == []
