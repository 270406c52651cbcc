"""Real servers the end-to-end tests start themselves on loopback, in temporary folders: PostgreSQL (from Debian's
`postgresql` package; it refuses to run as root, so as its own `postgres` user then) and HAProxy with the shipped
`Config/haproxy.cfg`, its addresses pointed at the test's relays."""

import glob
import os
import re
import shutil
import subprocess
import tempfile
import time

from conftest import ROOT, free_port, http_get

PASSWORD = "relay-test-password"


def _pg_bin(name):
    found = sorted(glob.glob(f"/usr/lib/postgresql/*/bin/{name}"))
    assert found, f"PostgreSQL's {name} is not installed (apt-get install postgresql; ./Tests/run-all.sh does)"
    return found[-1]


class Postgres:
    """A PostgreSQL cluster of its own: a `relay` role (password login) owning a `relay` database."""

    def __init__(self, namespace=None, address="127.0.0.1", clients=None):
        """`namespace`: run it in that network namespace, listening on `address`; `clients`: a subnet allowed to log
        in over TCP (a veth's, beside loopback)."""
        self.folder = tempfile.mkdtemp(prefix="ocpp-relay-pg-")
        self.port = free_port()
        self.address = address
        self.namespace = namespace
        self.as_user = []
        if os.geteuid() == 0:
            shutil.chown(self.folder, "postgres")
            os.chmod(self.folder, 0o700)
            self.as_user = ["runuser", "-u", "postgres", "--"]
        self.data = os.path.join(self.folder, "data")
        self._run(_pg_bin("initdb"), "-D", self.data, "-U", "postgres", "--auth-local=trust", "--auth-host=scram-sha-256")
        if clients:
            with open(os.path.join(self.data, "pg_hba.conf"), "a") as hba:
                hba.write(f"host all all {clients} scram-sha-256\n")
        self.start()
        self.sql(f"CREATE ROLE relay LOGIN PASSWORD '{PASSWORD}'")
        self.sql("CREATE DATABASE relay OWNER relay")

    def _run(self, *command):
        out = subprocess.run([*self.as_user, *command], capture_output=True, text=True, timeout=120)
        assert out.returncode == 0, f"{command[0]} failed: {out.stdout}{out.stderr}"
        return out.stdout

    def start(self):
        inside = ["ip", "netns", "exec", self.namespace] if self.namespace else []
        out = subprocess.run(
            [*inside, *self.as_user, _pg_bin("pg_ctl"), "-D", self.data, "-l", os.path.join(self.folder, "log"), "-w",
             "-t", "60", "-o", f"-p {self.port} -k {self.folder} -c listen_addresses={self.address} -c fsync=off",
             "start"],
            capture_output=True, text=True, timeout=120,
        )
        assert out.returncode == 0, f"pg_ctl start failed: {out.stdout}{out.stderr}"

    def stop(self, mode="fast"):
        self._run(_pg_bin("pg_ctl"), "-D", self.data, "-m", mode, "-w", "stop")

    def restart(self):
        self.stop()
        self.start()

    def sql(self, statement, database="postgres"):
        return self._run("psql", "-h", self.folder, "-p", str(self.port), "-U", "postgres", "-d", database, "-Atc", statement)

    @property
    def url(self):
        return f"postgresql://relay@{self.address}:{self.port}/relay?sslmode=disable"

    def close(self):
        try:
            self.stop("immediate")
        except AssertionError:
            pass
        shutil.rmtree(self.folder, ignore_errors=True)


class HAProxy:
    """HAProxy with Config/haproxy.cfg, listening on a loopback port and balancing over `relays`
    ((port, metrics port) pairs), with its health checks sped up for the tests."""

    def __init__(self, relays):
        self.folder = tempfile.mkdtemp(prefix="ocpp-relay-haproxy-")
        self.port = free_port()
        config = (ROOT / "Config" / "haproxy.cfg").read_text()
        config = config.replace("    bind :8180", f"    bind 127.0.0.1:{self.port}")
        config = config.replace("log stdout format raw local0 warning", "")
        config = config.replace("maxconn 100000", "maxconn 4000")  # within this machine's open-file limit
        config = config.replace("check inter 2s fall 2 rise 2", "check inter 300ms fall 2 rise 1")
        config = re.sub(r"    server relay\d .*\n", "", config)
        config += "".join(
            f"    server relay{i + 1} 127.0.0.1:{port} port {metrics}\n" for i, (port, metrics) in enumerate(relays)
        )
        path = os.path.join(self.folder, "haproxy.cfg")
        with open(path, "w") as f:
            f.write(config)
        binary = shutil.which("haproxy") or "/usr/sbin/haproxy"
        check = subprocess.run([binary, "-c", "-f", path], capture_output=True, text=True)
        assert check.returncode == 0, check.stdout + check.stderr
        self.log = open(os.path.join(self.folder, "log"), "w")
        self.process = subprocess.Popen([binary, "-db", "-f", path], stdout=self.log, stderr=self.log)
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            try:
                status, _ = http_get(f"http://127.0.0.1:{self.port}/")
                if status:
                    break
            except OSError:
                time.sleep(0.05)
        self.url = f"ws://127.0.0.1:{self.port}/ocpp"

    def close(self):
        self.process.terminate()
        self.process.wait(10)
        self.log.close()
        shutil.rmtree(self.folder, ignore_errors=True)
