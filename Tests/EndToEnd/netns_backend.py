"""The `ocpp` package's backend (peers.Backend) as its own process (in a network namespace, or one a test kills and
starts again): `netns_backend.py HOST [PORT [REFUSE]]`. Prints its port, then one JSON line per frame it receives
({"at": monotonic seconds, "identity": …, "frame": text}) and sends ({…, "sent": text}), until killed. REFUSE: an
HTTP status every upgrade gets instead. BACKEND_METER_VALUES_DELAY: seconds a MeterValues waits for its answer."""

import asyncio
import json
import os
import sys
import time

import peers
from peers import Backend


async def main(host, port=0, refuse=None):
    original = peers.Tap.recv
    original_send = peers.Tap.send

    async def recv(tap):
        message = await original(tap)
        identity = tap.connection.request.path.rstrip("/").split("/")[-1]
        print(json.dumps({"at": time.monotonic(), "identity": identity, "frame": message}), flush=True)
        return message

    async def send(tap, message):
        identity = tap.connection.request.path.rstrip("/").split("/")[-1]
        print(json.dumps({"at": time.monotonic(), "identity": identity, "sent": message}), flush=True)
        await original_send(tap, message)

    peers.Tap.recv = recv
    peers.Tap.send = send
    backend = Backend(subprotocols=["ocpp1.6"], ask_after_boot=False, refuse=refuse)
    backend.meter_values_delay = float(os.environ.get("BACKEND_METER_VALUES_DELAY", "0"))
    backend.server = await peers.serve(
        backend._handle, host, port, subprotocols=backend.subprotocols, process_request=backend._process_request,
        ping_interval=None,
    )
    print(json.dumps({"port": backend.server.sockets[0].getsockname()[1]}), flush=True)
    await asyncio.Event().wait()


asyncio.run(main(sys.argv[1], *(int(arg) for arg in sys.argv[2:])))
