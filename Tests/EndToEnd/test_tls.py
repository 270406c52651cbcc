"""TLS: a wss:// listener with charger certificates (security profile 3) and a wss:// upstream that checks the
relay's own certificate, with a CA made by the test."""

import asyncio
import ssl
import subprocess
import time

import pytest
import websockets
from conftest import BINARY
from peers import Backend, open_charger, run_charger


def openssl(*args, cwd):
    subprocess.run(["openssl", *args], cwd=cwd, check=True, capture_output=True, timeout=60)


def make_ca(directory, name):
    openssl("req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes", "-days", "2",
            "-subj", f"/CN={name}", "-keyout", f"{name}.key", "-out", f"{name}.pem", cwd=directory)


def make_leaf(directory, ca, name, common_name):
    (directory / f"{name}.ext").write_text(
        "basicConstraints=CA:FALSE\nkeyUsage=digitalSignature\nextendedKeyUsage=serverAuth,clientAuth\n"
        "subjectAltName=IP:127.0.0.1,DNS:localhost\n"
    )
    openssl("req", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes", "-subj", f"/CN={common_name}",
            "-keyout", f"{name}.key", "-out", f"{name}.csr", cwd=directory)
    openssl("x509", "-req", "-in", f"{name}.csr", "-CA", f"{ca}.pem", "-CAkey", f"{ca}.key", "-CAcreateserial",
            "-days", "2", "-extfile", f"{name}.ext", "-out", f"{name}.pem", cwd=directory)


@pytest.fixture(scope="module")
def pki(tmp_path_factory):
    d = tmp_path_factory.mktemp("pki")
    make_ca(d, "ca")
    make_ca(d, "rogue-ca")
    make_leaf(d, "ca", "relay", "relay.test")            # the relay's listener
    make_leaf(d, "ca", "relay-client", "ocpp-relay")     # what the relay presents upstream
    make_leaf(d, "ca", "backend", "backend.test")        # the wss backend
    make_leaf(d, "ca", "cp-tls", "CP-TLS")               # a charger's certificate
    make_leaf(d, "rogue-ca", "cp-rogue", "CP-TLS")       # same name, wrong CA
    return d


def relay_config(d):
    return f"""
tls:
  certificate: {d / "relay.pem"}
  key: {d / "relay.key"}
  client_ca: {d / "ca.pem"}
upstream_tls:
  ca: {d / "ca.pem"}
  certificate: {d / "relay-client.pem"}
  key: {d / "relay-client.key"}
"""


def charger_context(d, cert):
    context = ssl.create_default_context(cafile=str(d / "ca.pem"))
    if cert:
        context.load_cert_chain(str(d / f"{cert}.pem"), str(d / f"{cert}.key"))
    return context


def backend_context(d):
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH, cafile=str(d / "ca.pem"))
    context.load_cert_chain(str(d / "backend.pem"), str(d / "backend.key"))
    context.verify_mode = ssl.CERT_REQUIRED
    return context


def subject_cn(peercert):
    return dict(item[0] for item in peercert["subject"])["commonName"]


def test_profile_3_charger_certificate_through_to_a_wss_backend(start_relay, pki):
    async def scenario():
        async with Backend(ask_after_boot=False, ssl=backend_context(pki)) as backend:
            relay = start_relay(backend.url, config=relay_config(pki))
            results, tap, subprotocol = await run_charger(relay.url, "CP-TLS", "1.6", ssl=charger_context(pki, "cp-tls"))
            return relay, backend, results, tap, subprotocol

    relay, backend, results, tap, subprotocol = asyncio.run(scenario())
    assert relay.url.startswith("wss://")
    assert subprotocol == "ocpp1.6" and results[0].status == "Accepted"
    (_, backend_tap), = backend.sessions["CP-TLS"]
    assert backend_tap.received == tap.sent
    # The backend saw the relay's own client certificate, not the charger's (the relay terminates TLS).
    assert [subject_cn(c) for c in backend.peer_certificates] == ["ocpp-relay"]


@pytest.mark.parametrize("cert, identity, expected", [
    (None, "CP-TLS", "tls"),             # no client certificate
    ("cp-rogue", "CP-TLS", "tls"),       # a certificate from another CA
    ("cp-tls", "CP-OTHER", 403),         # a good certificate for another charger
])
def test_chargers_without_the_right_certificate_are_refused(start_relay, pki, cert, identity, expected):
    async def scenario():
        async with Backend(ask_after_boot=False, ssl=backend_context(pki)) as backend:
            relay = start_relay(backend.url, config=relay_config(pki))
            try:
                ws = await open_charger(relay.url, identity, ["ocpp1.6"], ssl=charger_context(pki, cert))
            except websockets.exceptions.InvalidStatus as error:
                return relay, backend, error.response.status_code
            except (ssl.SSLError, ConnectionError, websockets.exceptions.InvalidMessage, EOFError):
                return relay, backend, "tls"
            await ws.close()
            return relay, backend, 101

    relay, backend, outcome = asyncio.run(scenario())
    assert outcome == expected
    assert backend.requests == []  # nothing was dialled for a refused charger
    assert relay.alive()
    expected_log = "TLS handshake failed" if expected == "tls" else "the client certificate names 'CP-TLS', not this charger"
    for _ in range(100):  # the charger may learn of the failure before the relay has logged it
        if expected_log in relay.log():
            break
        time.sleep(0.02)
    assert expected_log in relay.log()


def test_a_plaintext_listener_beyond_loopback_needs_saying_so(tmp_path):
    command = [BINARY, "serve", "--listen", "0.0.0.0:0", "--upstream", "ws://127.0.0.1:1/ocpp", "--recordings", str(tmp_path)]
    out = subprocess.run(command, capture_output=True, text=True, timeout=30)
    assert out.returncode == 64 and "without TLS" in out.stderr
    process = subprocess.Popen(command + ["--plaintext"], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        assert process.stdout.readline().startswith("listening on ws://0.0.0.0:")
    finally:
        process.kill()
        process.wait()


def test_unreadable_tls_files_are_clear_start_up_errors(tmp_path):
    config = tmp_path / "relay.yaml"
    config.write_text(f"tls:\n  certificate: {tmp_path / 'missing.pem'}\n  key: {tmp_path / 'missing.key'}\n")
    out = subprocess.run([BINARY, "serve", "--upstream", "ws://127.0.0.1:1/ocpp", "--config", str(config), "--recordings", str(tmp_path)],
                         capture_output=True, text=True, timeout=30)
    assert out.returncode == 64
    assert "tls.certificate: cannot read certificates from" in out.stderr


def test_sighup_serves_a_renewed_certificate_without_dropping_chargers(start_relay, pki, tmp_path):
    import shutil
    import signal

    live = tmp_path / "live"
    live.mkdir()
    shutil.copy(pki / "relay.pem", live / "relay.pem")
    shutil.copy(pki / "relay.key", live / "relay.key")
    make_leaf(pki, "ca", "relay-renewed", "relay-renewed.test")
    config = f"tls:\n  certificate: {live / 'relay.pem'}\n  key: {live / 'relay.key'}\n"

    async def scenario():
        async with Backend(ask_after_boot=False) as backend:
            relay = start_relay(backend.url, config=config)
            first = await open_charger(relay.url, "CP-RENEW-1", ["ocpp1.6"], ssl=charger_context(pki, None))
            before = subject_cn(first.transport.get_extra_info("peercert"))
            # The certificate is renewed in place, then the relay is told.
            shutil.copy(pki / "relay-renewed.pem", live / "relay.pem")
            shutil.copy(pki / "relay-renewed.key", live / "relay.key")
            relay.process.send_signal(signal.SIGHUP)
            for _ in range(250):
                if "configuration reloaded" in relay.log():
                    break
                await asyncio.sleep(0.02)
            second = await open_charger(relay.url, "CP-RENEW-2", ["ocpp1.6"], ssl=charger_context(pki, None))
            after = subject_cn(second.transport.get_extra_info("peercert"))
            # The charger connected before still talks over its connection.
            await first.send('[2,"1","Heartbeat",{}]')
            answer = await asyncio.wait_for(first.recv(), 5)
            await first.close()
            await second.close()
            return before, after, answer

    before, after, answer = asyncio.run(scenario())
    assert (before, after) == ("relay.test", "relay-renewed.test")
    assert answer.startswith('[3,"1",')


def test_tls_1_1_is_refused_and_counted_and_client_identity_none_accepts_any_name(start_relay, pki):
    """TLS 1.2 is the minimum (a TLS 1.1 client is refused by the relay, counted in tls_handshake_failures_total);
    with client_identity: none a certificate from the CA is enough, whatever charger it names."""
    from conftest import free_port, http_get

    metrics_port = free_port()
    client_ca = f"  client_ca: {pki / 'ca.pem'}\n"
    config = relay_config(pki).replace(client_ca, client_ca + "  client_identity: none\n")
    config += f"metrics:\n  listen: '127.0.0.1:{metrics_port}'\n"

    async def scenario():
        async with Backend(ask_after_boot=False, ssl=backend_context(pki)) as backend:
            relay = start_relay(backend.url, config=config)
            # A good certificate naming CP-TLS, used by another charger: accepted under client_identity none.
            ws = await open_charger(relay.url, "CP-ANOTHER", ["ocpp1.6"], ssl=charger_context(pki, "cp-tls"))
            await ws.send('[2,"1","Heartbeat",{}]')
            answer = await asyncio.wait_for(ws.recv(), 10)
            await ws.close()
            # A client that offers TLS 1.1 at most (its library allowed to: security level 0).
            old = charger_context(pki, "cp-tls")
            old.minimum_version = ssl.TLSVersion.TLSv1
            old.maximum_version = ssl.TLSVersion.TLSv1_1
            old.set_ciphers("DEFAULT:@SECLEVEL=0")
            outcome = "accepted"
            try:
                legacy = await open_charger(relay.url, "CP-OLD", ["ocpp1.6"], ssl=old)
                await legacy.close()
            except (ssl.SSLError, ConnectionError, websockets.exceptions.InvalidMessage, EOFError):
                outcome = "refused"
            return relay, backend, answer, outcome

    relay, backend, answer, outcome = asyncio.run(scenario())
    assert answer.startswith('[3,"1",')
    assert outcome == "refused"
    assert [path for path, _ in backend.requests] == ["/ocpp/CP-ANOTHER"]
    # The relay saw the attempt and refused it (not the client failing on its own).
    for _ in range(100):
        if "TLS handshake failed" in relay.log():
            break
        time.sleep(0.02)
    assert "TLS handshake failed" in relay.log()
    metrics = http_get(f"http://127.0.0.1:{metrics_port}/metrics")[1]
    failures = [line for line in metrics.splitlines() if line.startswith("ocpp_relay_tls_handshake_failures_total")]
    assert failures and float(failures[0].split()[-1]) >= 1, failures
