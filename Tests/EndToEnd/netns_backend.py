"""The `ocpp` package's backend (peers.Backend) as its own process, for a network namespace: prints its port, then
one JSON line per frame it receives ({"at": monotonic seconds, "identity": …, "frame": text}), until killed."""

import asyncio
import json
import sys
import time

import peers
from peers import Backend


async def main(host):
    original = peers.Tap.recv

    async def recv(tap):
        message = await original(tap)
        identity = tap.connection.request.path.rstrip("/").split("/")[-1]
        print(json.dumps({"at": time.monotonic(), "identity": identity, "frame": message}), flush=True)
        return message

    peers.Tap.recv = recv
    backend = Backend(subprotocols=["ocpp1.6"], ask_after_boot=False)
    backend.server = await peers.serve(
        backend._handle, host, 0, subprotocols=backend.subprotocols, process_request=backend._process_request,
        ping_interval=None,
    )
    print(json.dumps({"port": backend.server.sockets[0].getsockname()[1]}), flush=True)
    await asyncio.Event().wait()


asyncio.run(main(sys.argv[1]))
