"""SIGHUP: the configuration is read again for new connections; connected chargers stay where they are."""

import asyncio
import signal
import time

from peers import Backend, handshake_status, open_charger
from test_security import basic, password_hash


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


def test_sighup_reloads_credentials_from_passwords_file_and_limits(start_relay, tmp_path):
    passwords = tmp_path / "passwords.yaml"
    passwords.write_text(f'CP-1: "{password_hash("first-password-123")}"\n')

    async def scenario():
        async with Backend(ask_after_boot=False) as backend:
            relay = start_relay(backend.url, config=f"auth:\n  passwords_file: {passwords}\n")
            config = relay.recordings.parent / "relay.yaml"
            before = (await handshake_status(relay.url, "CP-1", {"Authorization": basic("CP-1", "first-password-123")}))[0]
            # The password is rotated in the file; new sessions get a tight message rate; the frame size limit,
            # bound at start, is named as needing a restart.
            passwords.write_text(f'CP-1: "{password_hash("second-password-456")}"\n')
            config.write_text(
                f"auth:\n  passwords_file: {passwords}\n"
                "limits:\n  messages_per_second: 5\n  message_burst: 2\n  max_frame_size: 1KiB\n"
            )
            relay.process.send_signal(signal.SIGHUP)
            wait_for_log(relay, "configuration reloaded")
            old = (await handshake_status(relay.url, "CP-1", {"Authorization": basic("CP-1", "first-password-123")}))[0]
            new = await open_charger(relay.url, "CP-1", ["ocpp1.6"], headers={"Authorization": basic("CP-1", "second-password-456")})
            for i in range(6):
                await new.send(f'[2,"h{i}","Heartbeat",{{}}]')
            answers = [await asyncio.wait_for(new.recv(), 30) for _ in range(6)]
            await new.close()
            await backend.closed("CP-1")
            return relay, before, old, answers

    relay, before, old, answers = asyncio.run(scenario())
    assert (before, old) == (101, 401)
    assert len(answers) == 6  # slowed, not dropped
    assert "more than 5.0 messages/s" in relay.log()
    assert "limits.max_frame_size changed; it takes effect after a restart" in relay.log()
    assert relay.alive()


def test_sighup_reloads_mapping_overrides_for_new_chargers(start_relay, tmp_path):
    from ocpp.v201 import call as call201
    from test_translation import MAPPINGS, booted_16_charger

    overrides = tmp_path / "overrides.yaml"

    async def scenario():
        async with Backend(subprotocols=["ocpp2.0.1"], ask_after_boot=False) as backend:
            relay = start_relay(backend.url, config=f"upstream_version: '2.0.1'\ntranslation:\n  mappings: {MAPPINGS}\n")
            config = relay.recordings.parent / "relay.yaml"
            ws1, cp1, task1, backend_cp1 = await booted_16_charger(relay.url, backend, "CP-OLD")
            overrides.write_text("enums.yaml:\n  reset_type_201_to_16:\n    values:\n      Immediate: Hard\n")
            config.write_text(
                f"upstream_version: '2.0.1'\ntranslation:\n  mappings: {MAPPINGS}\n  overrides: {overrides}\n"
            )
            relay.process.send_signal(signal.SIGHUP)
            wait_for_log(relay, "configuration reloaded")
            ws2, cp2, task2, backend_cp2 = await booted_16_charger(relay.url, backend, "CP-NEW")
            await backend_cp1.call(call201.Reset(type="Immediate"))
            await backend_cp2.call(call201.Reset(type="Immediate"))
            for ws, task in ((ws1, task1), (ws2, task2)):
                await ws.close()
                task.cancel()
            return cp1.remote_starts, cp2.remote_starts

    before, after = asyncio.run(scenario())
    assert before == [("Reset", {"type": "Soft"})]  # connected before the reload: the tables it started with
    assert after == [("Reset", {"type": "Hard"})]  # connected after: the override
