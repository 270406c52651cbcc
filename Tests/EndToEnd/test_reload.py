"""SIGHUP: the configuration is read again for new connections; connected chargers stay where they are."""

import asyncio
import signal
import time

from peers import Backend, handshake_status, open_charger


def wait_for_log(relay, text, seconds=5):
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if relay.log().count(text):
            return relay.log().count(text)
        time.sleep(0.02)
    raise AssertionError(f"{text!r} not in the log:\n{relay.log()}")


def test_sighup_moves_new_chargers_and_keeps_connected_ones(start_relay):
    async def scenario():
        async with Backend(ask_after_boot=False) as old, Backend(ask_after_boot=False) as new:
            relay = start_relay(old.url, config="allow: [\"glob:CP-*\"]\n")
            config = relay.recordings.parent / "relay.yaml"
            first = await open_charger(relay.url, "CP-1", ["ocpp1.6"])
            await first.send('[2,"a","Heartbeat",{}]')
            await asyncio.wait_for(first.recv(), 5)
            before = (await handshake_status(relay.url, "CP-9"))[0]

            # The pilot route to the new backend, and a tighter allow-list.
            config.write_text(f'allow: ["CP-1", "CP-2", "CP-3"]\nroutes:\n  - name: pilot\n    chargers: ["glob:CP-*"]\n    upstream: {new.url}\nmetrics:\n  listen: "127.0.0.1:1"\n')
            relay.process.send_signal(signal.SIGHUP)
            wait_for_log(relay, "configuration reloaded")
            after = (await handshake_status(relay.url, "CP-9"))[0]
            second = await open_charger(relay.url, "CP-2", ["ocpp1.6"])
            await second.send('[2,"b","Heartbeat",{}]')
            await asyncio.wait_for(second.recv(), 5)
            # The charger connected before the reload is still connected, to the old backend.
            await first.send('[2,"c","Heartbeat",{}]')
            await asyncio.wait_for(first.recv(), 5)

            # A broken file is refused whole; the running configuration stays.
            config.write_text("routes:\n  - chargers: []\n")
            relay.process.send_signal(signal.SIGHUP)
            wait_for_log(relay, "configuration not reloaded")
            third = await open_charger(relay.url, "CP-3", ["ocpp1.6"])
            await third.send('[2,"d","Heartbeat",{}]')
            await asyncio.wait_for(third.recv(), 5)
            for ws in (first, second, third):
                await ws.close()
            for identity in ("CP-1", "CP-2", "CP-3"):
                await (old if identity == "CP-1" else new).closed(identity)
            return relay, old, new, before, after

    relay, old, new, before, after = asyncio.run(scenario())
    assert (before, after) == (101, 404)  # CP-9 was allowed before the reload, not after
    assert sorted(old.sessions) == ["CP-1", "CP-9"]
    assert sorted(new.sessions) == ["CP-2", "CP-3"]
    (_, tap), = old.sessions["CP-1"]
    assert tap.received == ['[2,"a","Heartbeat",{}]', '[2,"c","Heartbeat",{}]']
    assert relay.alive()
    assert "metrics.listen changed; it takes effect after a restart" in relay.log()
    assert "route needs at least one charger id or pattern" in relay.log()
