"""Drives the built `ocpp-relay` binary on loopback (OCPP_RELAY_BIN, or the debug build)."""

import json
import os
import pathlib
import signal
import socket
import subprocess
import time
import urllib.error
import urllib.request

import pytest

ROOT = pathlib.Path(__file__).resolve().parents[2]
BINARY = os.environ.get("OCPP_RELAY_BIN", str(ROOT / ".build" / "debug" / "ocpp-relay"))


class Relay:
    """One `ocpp-relay serve` process."""

    def __init__(self, recordings, upstream, *args, config=None, env=None, preexec=None, config_folder=None):
        self.recordings = pathlib.Path(recordings)
        config_folder = pathlib.Path(config_folder or self.recordings.parent)
        command = [BINARY, "serve", "--listen", "127.0.0.1:0", "--upstream", upstream, "--recordings", str(recordings)]
        if config is not None:
            path = config_folder / "relay.yaml"
            path.write_text(config)
            command += ["--config", str(path)]
        command += list(args)
        self.stderr_path = config_folder / f"relay-{time.monotonic_ns()}.log"
        self.stderr = open(self.stderr_path, "w")
        environment = {**os.environ, **(env or {})}
        self.process = subprocess.Popen(
            command, stdout=subprocess.PIPE, stderr=self.stderr, text=True, env=environment, preexec_fn=preexec
        )
        # The charger listener's line, and the console's when it has one (in either order).
        self.console_url = None
        wanted = 2 if config is not None and "console:" in config else 1
        lines = [self.process.stdout.readline() for _ in range(wanted)]
        listening = [line for line in lines if line.startswith("listening on ")]
        console = [line for line in lines if line.startswith("console on ")]
        if not listening or (wanted == 2 and not console):
            self.process.kill()
            raise RuntimeError(f"relay did not start: {lines!r}\n{self.log()}")
        self.url = listening[0].split()[-1] + "/ocpp"
        if console:
            self.console_url = console[0].split()[-1].rstrip("/")

    def log(self):
        self.stderr.flush()
        return self.stderr_path.read_text()

    def stop(self, sig=signal.SIGTERM, timeout=10):
        if self.process.poll() is None:
            self.process.send_signal(sig)
        return self.process.wait(timeout=timeout)

    def alive(self):
        return self.process.poll() is None


def free_port():
    """A loopback port nobody listens on (for a dead upstream or a metrics address)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def metric(text, name, **labels):
    """A sample's value in a Prometheus text (0 when it is not there)."""
    wanted = ",".join(f'{key}="{value}"' for key, value in labels.items())
    for line in text.splitlines():
        if line.startswith(f"{name}{{{wanted}}}" if labels else f"{name} "):
            return float(line.split()[-1])
    return 0.0


def http_get(url):
    """(status, body) of a GET, error statuses included."""
    try:
        with urllib.request.urlopen(url, timeout=10) as response:
            return response.status, response.read().decode()
    except urllib.error.HTTPError as error:
        return error.code, error.read().decode()


def recordings_show(path, *args):
    """`recordings show --format jsonl`, parsed; returns (entries, stderr)."""
    out = subprocess.run(
        [BINARY, "recordings", "show", str(path), "--format", "jsonl", *args], capture_output=True, text=True, timeout=60
    )
    assert out.returncode == 0, out.stderr
    return [json.loads(line) for line in out.stdout.splitlines() if line.strip()], out.stderr


def recordings_list(path):
    out = subprocess.run([BINARY, "recordings", "list", str(path)], capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    return out.stdout.splitlines()


@pytest.fixture
def start_relay(tmp_path):
    relays = []

    def start(upstream, *args, config=None, env=None, recordings=None, preexec=None):
        relay = Relay(
            recordings or tmp_path / "recordings", upstream, *args, config=config, env=env, preexec=preexec,
            config_folder=tmp_path,
        )
        relays.append(relay)
        return relay

    yield start
    for relay in relays:
        if relay.alive():
            relay.process.kill()
            relay.process.wait()
