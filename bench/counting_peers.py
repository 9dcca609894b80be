"""Peers that say how much they have received between runs, for side-by-side benchmarks.

    .venv/bin/python -m bench.counting_peers smtp|webhooks    (from the repository root)

Each prints its address as one JSON line, then answers every line on stdin with what it has
received so far, once more when stdin closes, and exits. `smtp` is the tests' aiosmtpd peer
(bodies not kept; Message-IDs counted, so duplicates show). `webhooks` accepts any POST, signed
or not, and answers 204: Apprise does not sign, and the tests' receiver refuses what is unsigned.
"""

from __future__ import annotations

import asyncio
import json
import sys
from typing import Any

from bench.fanout import proc_stats, start_peer, stop_peer


def answer(payload: dict[str, Any]) -> None:
    print(json.dumps(payload), flush=True)


def serve_smtp() -> None:
    from tests.peers.smtp import SmtpPeer

    with SmtpPeer(keep=False) as peer:
        answer({"host": peer.host, "port": peer.port})
        while True:
            line = sys.stdin.readline()
            with peer.lock:
                ids = list(peer.message_ids)
            answer({"received": len(ids), "duplicates": len(ids) - len(set(ids))})
            if not line:
                return


async def receive_webhooks() -> None:
    from aiohttp import web

    received = 0

    async def hook(request: web.Request) -> web.Response:
        nonlocal received
        await request.read()
        received += 1
        return web.Response(status=204)

    app = web.Application()
    app.router.add_route("POST", "/{tail:.*}", hook)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", 0, backlog=1024).start()
    answer({"url": f"http://127.0.0.1:{runner.addresses[0][1]}"})
    loop = asyncio.get_running_loop()
    while True:
        line = await loop.run_in_executor(None, sys.stdin.readline)
        answer({"received": received})
        if not line:
            break
    await runner.cleanup()


def serve_webhooks() -> None:
    try:
        import uvloop  # as the tests' receiver: about half the CPU per request

        uvloop.run(receive_webhooks())
    except ImportError:
        asyncio.run(receive_webhooks())


class Peer:
    """One of these peers in its own process: its address, its CPU, and its count so far."""

    def __init__(self, kind: str) -> None:
        self.process, self.address = start_peer("bench.counting_peers", kind)

    def received(self) -> int:
        assert self.process.stdin is not None
        assert self.process.stdout is not None
        self.process.stdin.write("count\n")
        self.process.stdin.flush()
        return int(json.loads(self.process.stdout.readline())["received"])

    def cpu(self) -> float:
        return proc_stats(self.process.pid)[0]

    def close(self) -> dict[str, Any]:
        return stop_peer(self.process)


if __name__ == "__main__":
    {"smtp": serve_smtp, "webhooks": serve_webhooks}[sys.argv[1]]()
