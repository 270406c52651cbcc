"""A recordings folder that fills up: chargers are served as ever, one segment is kept and retried (no pile of empty
files), /readyz and the metrics say recording fails, and once space is freed the gap is recorded and recording
goes on. The folder is a real 3 MB file system (tmpfs); where the tests may not mount, a file size limit makes
the same failure (EFBIG)."""

import asyncio
import os
import resource
import subprocess
import time

import pytest
from conftest import free_port, recordings_show
from conftest import http_get as get
from peers import Backend, open_charger


@pytest.fixture
def small_disk(tmp_path):
    """A 3 MB file system, or None when mounting is not allowed here."""
    mount = tmp_path / "disk"
    mount.mkdir()
    done = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=3m", "tmpfs", str(mount)], capture_output=True)
    if done.returncode != 0:
        yield None
        return
    try:
        yield mount
    finally:
        subprocess.run(["umount", "-l", str(mount)], check=False)


def wait_until(predicate, seconds=30):
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(0.05)
    return False


def test_a_full_recordings_disk_keeps_chargers_served_and_records_the_gap(start_relay, tmp_path, small_disk):
    metrics_port = free_port()
    config = f"metrics:\n  listen: '127.0.0.1:{metrics_port}'\nrecordings:\n  roll_size: 64MiB\nlimits:\n  messages_per_second: 0\n"
    if small_disk is not None:
        folder = small_disk / "recordings"
        filler = small_disk / "filler"
    else:
        folder = tmp_path / "recordings"
        filler = None
    health = f"http://127.0.0.1:{metrics_port}"

    async def scenario():
        async with Backend(ask_after_boot=False) as backend:
            if filler is not None:
                relay = start_relay(backend.url, config=config, recordings=folder)
            else:
                # No mount here: the same refusal from a 200 KB file size limit on the relay process.
                relay = start_relay(
                    backend.url, config=config, recordings=folder,
                    preexec=lambda: resource.setrlimit(resource.RLIMIT_FSIZE, (200_000, 200_000)),
                )
            ws = await open_charger(relay.url, "CP-FULL", ["ocpp1.6"])
            if filler is not None:  # leave about 150 KB free
                free = os.statvfs(small_disk).f_bavail * os.statvfs(small_disk).f_frsize
                filler.write_bytes(b"\0" * (free - 150_000))
            answers = []
            for i in range(300):
                data = os.urandom(1500).hex()  # a new random payload each time: about 1.5 KB on disk
                await ws.send(f'[2,"m{i}","DataTransfer",{{"vendorId":"x","data":"{data}"}}]')
                answers.append(await asyncio.wait_for(ws.recv(), 10))
            status, detail = get(health + "/readyz")
            metrics = get(health + "/metrics")[1]
            segments_while_failing = sorted(p.name for p in folder.iterdir())
            # Space comes back (or, under a size limit, nothing does: the test ends there).
            recovered = None
            if filler is not None:
                filler.unlink()
                assert await asyncio.get_running_loop().run_in_executor(
                    None, wait_until, lambda: get(health + "/readyz")[0] == 200
                ), get(health + "/readyz")
                for i in range(5):
                    await ws.send(f'[2,"after{i}","Heartbeat",{{}}]')
                    answers.append(await asyncio.wait_for(ws.recv(), 10))
                recovered = get(health + "/metrics")[1]
            await ws.close()
            await backend.closed("CP-FULL")
            return relay, answers, status, detail, metrics, segments_while_failing, recovered

    relay, answers, status, detail, metrics, during, recovered = asyncio.run(scenario())
    # Every message was answered, in order: the chargers did not notice.
    assert [a.split('"')[1] for a in answers[:300]] == [f"m{i}" for i in range(300)]
    assert relay.alive()
    # One segment and its index, kept and retried: no pile of new (empty) files.
    assert len([n for n in during if n.endswith(".ocrec.gz")]) == 1 and len(during) == 2, during
    assert status == 503 and "recording failing" in detail, detail
    assert "ocpp_relay_recording_failing 1" in metrics
    errors = float(next(l.split()[-1] for l in metrics.splitlines() if l.startswith("ocpp_relay_recording_write_errors_total")))
    lost = float(next(l.split()[-1] for l in metrics.splitlines() if l.startswith("ocpp_relay_recording_lost_frames_total")))
    assert errors >= 1 and lost > 0
    # Logged, but not once per message.
    assert 1 <= relay.log().count("recording write failed") <= 5, relay.log()
    if recovered is None:
        return
    assert "ocpp_relay_recording_failing 0" in recovered
    assert relay.stop() == 0
    files = sorted(folder.iterdir())
    assert all(p.stat().st_size > 0 for p in files), [(p.name, p.stat().st_size) for p in files]
    entries, warnings = recordings_show(folder)
    gaps = [e for e in entries if e.get("event") == "gap"]
    assert len(gaps) == 1 and gaps[0]["frames"] == lost, gaps
    assert "No space left on device" in gaps[0]["error"]
    recorded = [e["text"].split('"')[1] for e in entries if "text" in e and e["leg"] == "charger" and e["dir"] == "in"]
    # What was written before the disk filled, then what came after space was freed; nothing twice, in order.
    assert recorded[:3] == ["m0", "m1", "m2"] and recorded[-5:] == [f"after{i}" for i in range(5)]
    kept = len(recorded) - 5
    assert 0 < kept < 300 and recorded == [f"m{i}" for i in range(kept)] + [f"after{i}" for i in range(5)]
    # The first segment is whole (finished once space came back); the second starts by restating the connection.
    assert warnings.count("frames not recorded") <= 1
