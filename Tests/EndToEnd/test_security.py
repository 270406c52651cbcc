"""Who may connect: the relay's own password check (401), the allow-list (404), credentials presented upstream."""

import asyncio
import base64
import gzip
import subprocess

from conftest import BINARY, recordings_show
from peers import Backend, handshake_status, run_charger


def basic(user, password):
    return "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode()


def password_hash(password):
    out = subprocess.run([BINARY, "auth", "hash", "--rounds", "10000"], input=password, capture_output=True, text=True, timeout=30)
    assert out.returncode == 0, out.stderr
    return out.stdout.strip()


def test_the_relay_checks_charger_passwords_itself(start_relay):
    good = "correct-horse-battery-staple"
    config = f"""
auth:
  passwords:
    CP-PW: "{password_hash(good)}"
    CP-OTHER: "{password_hash("another-password-1234")}"
  forward_authorization: false
"""

    async def scenario():
        async with Backend(ask_after_boot=False) as backend:
            relay = start_relay(backend.url, config=config)
            results = {
                "wrong password": await handshake_status(relay.url, "CP-PW", {"Authorization": basic("CP-PW", "guess-1234567890")}),
                "no credentials": await handshake_status(relay.url, "CP-PW"),
                "other charger's credentials": await handshake_status(relay.url, "CP-PW", {"Authorization": basic("CP-OTHER", "another-password-1234")}),
                "unknown charger": await handshake_status(relay.url, "CP-NOBODY", {"Authorization": basic("CP-NOBODY", good)}),
            }
            # The right password, twice (the second check is answered from the cache of accepted credentials).
            for _ in range(2):
                await run_charger(relay.url, "CP-PW", "1.6", headers={"Authorization": basic("CP-PW", good)})
            return relay, backend, results

    relay, backend, results = asyncio.run(scenario())
    for what, (status, headers) in results.items():
        assert status == 401, what
        assert headers.get("WWW-Authenticate", "").startswith('Basic realm="ocpp-relay"'), what
    # Refused chargers never reached the backend; the accepted one did, without its header (forward_authorization: false).
    assert [path for path, _ in backend.requests] == ["/ocpp/CP-PW", "/ocpp/CP-PW"]
    assert all("Authorization" not in headers for _, headers in backend.requests)
    relay.stop()
    entries, _ = recordings_show(relay.recordings)
    refused = [e for e in entries if e.get("event") == "close" and e.get("refused")]
    assert [e["code"] for e in refused] == [401, 401, 401, 401]
    assert "wrong password" in refused[0]["reason"]
    raw = b"".join(gzip.open(p).read() for p in relay.recordings.glob("*.ocrec.gz"))
    assert good.encode() not in raw and b"guess-1234567890" not in raw
    assert good not in relay.log() and "guess-1234567890" not in relay.log()
    assert "authentication failed" in relay.log()


def test_allow_list_refuses_unknown_chargers_with_404(start_relay):
    config = 'allow: [CP-ALLOWED, "glob:PILOT-*"]\n'

    async def scenario():
        async with Backend(ask_after_boot=False) as backend:
            relay = start_relay(backend.url, config=config)
            statuses = {cp: (await handshake_status(relay.url, cp))[0] for cp in ["CP-ALLOWED", "PILOT-7", "CP-STRANGER", "pilot-7"]}
            return relay, backend, statuses

    relay, backend, statuses = asyncio.run(scenario())
    assert statuses == {"CP-ALLOWED": 101, "PILOT-7": 101, "CP-STRANGER": 404, "pilot-7": 404}
    assert sorted(path for path, _ in backend.requests) == ["/ocpp/CP-ALLOWED", "/ocpp/PILOT-7"]
    relay.stop()
    entries, _ = recordings_show(relay.recordings)
    refused = [(e["charger"], e["code"]) for e in entries if e.get("event") == "close" and e.get("refused")]
    assert sorted(refused) == [("CP-STRANGER", 404), ("pilot-7", 404)]


def test_routes_present_their_own_credentials_upstream(start_relay):
    config = """
auth:
  upstream_password_env: OLD_CSMS_PASSWORD
routes:
  - name: new
    chargers: ["glob:NEW-*"]
    upstream_password_env: NEW_CSMS_PASSWORD
"""

    async def scenario():
        async with Backend(ask_after_boot=False) as backend:
            relay = start_relay(backend.url, config=config, env={"OLD_CSMS_PASSWORD": "old-secret-0123456789", "NEW_CSMS_PASSWORD": "new-secret-0123456789"})
            await run_charger(relay.url, "NEW-1", "1.6", headers={"Authorization": basic("NEW-1", "chargers-own-password")})
            await run_charger(relay.url, "OLD-1", "1.6")
            return relay, backend

    relay, backend = asyncio.run(scenario())
    presented = {path: headers.get("Authorization") for path, headers in backend.requests}
    assert presented == {
        "/ocpp/NEW-1": basic("NEW-1", "new-secret-0123456789"),
        "/ocpp/OLD-1": basic("OLD-1", "old-secret-0123456789"),
    }
    assert "secret-0123456789" not in relay.log()


def test_a_missing_password_variable_is_a_clear_start_up_error(tmp_path):
    config = tmp_path / "relay.yaml"
    config.write_text("auth:\n  upstream_password_env: SURELY_NOT_SET_ANYWHERE\n")
    out = subprocess.run([BINARY, "serve", "--upstream", "ws://127.0.0.1:1/ocpp", "--config", str(config)], capture_output=True, text=True, timeout=30)
    assert out.returncode == 64
    assert "SURELY_NOT_SET_ANYWHERE is not set" in out.stderr
