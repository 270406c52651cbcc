"""Records the fixtures shipped in Recordings/fixtures/ through the built relay between real peers (the
pinned `ocpp` package, and the relay's own demo peers), then cuts and redacts them. Run it when the
fixture format or the peers change:

    .venv/bin/python Tests/EndToEnd/make_fixtures.py
"""

import asyncio
import os
import pathlib
import shutil
import subprocess
import sys
import tempfile

sys.path.insert(0, str(pathlib.Path(__file__).parent))
from conftest import BINARY, ROOT, Relay  # noqa: E402
from peers import Backend, run_charger  # noqa: E402

FIXTURES = ROOT / "Recordings" / "fixtures"
KEY = "ocpp-relay public fixtures"  # the tokens are test tokens; the key only keeps pseudonyms stable


def cut_and_redact(recordings, charger, name):
    raw = pathlib.Path(tempfile.mkdtemp()) / "raw.jsonl"
    subprocess.run([BINARY, "recordings", "cut", str(recordings), "--charger", charger, "-o", str(raw)], check=True)
    env = dict(os.environ, OCPP_RELAY_REDACT_KEY=KEY)
    subprocess.run([BINARY, "recordings", "redact", str(raw), "-o", str(FIXTURES / name)], check=True, env=env)
    print("wrote", FIXTURES / name)


async def session(work, name, charger, version, backend_subprotocols, *relay_args):
    async with Backend(subprotocols=backend_subprotocols) as backend:
        relay = Relay(work / name, backend.url, *relay_args)
        try:
            await run_charger(relay.url, charger, version)
            await asyncio.sleep(0.2)
        finally:
            relay.stop()
    cut_and_redact(work / name, charger, f"{name}.jsonl")


def main():
    FIXTURES.mkdir(parents=True, exist_ok=True)
    work = pathlib.Path(tempfile.mkdtemp())
    asyncio.run(session(work, "charging-1.6", "CP-FIXTURE-16", "1.6", ["ocpp1.6"]))
    asyncio.run(session(work, "charging-2.0.1", "CP-FIXTURE-201", "2.0.1", ["ocpp2.0.1"]))
    asyncio.run(
        session(
            work, "translated-1.6-to-2.0.1", "CP-FIXTURE-XLATE", "1.6", ["ocpp2.0.1"],
            "--upstream-version", "2.0.1", "--mappings", str(ROOT / "Mappings"),
        )
    )
    demo = work / "demo"
    subprocess.run([BINARY, "demo", "--recordings", str(demo)], check=True, stdout=subprocess.DEVNULL)
    cut_and_redact(demo, "DEMO-CP-16", "demo-1.6.jsonl")
    shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
