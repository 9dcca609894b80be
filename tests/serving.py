"""Serve an app over real HTTP on 127.0.0.1 from a thread, for peers and browsers."""

from __future__ import annotations

import contextlib
import socket
import subprocess
import threading
import time
from collections.abc import Callable, Iterator

import httpx
import pytest
import uvicorn
from fastapi import FastAPI


def listening_socket() -> tuple[socket.socket, str]:
    """A bound socket and its base URL, known before the app is built (its public URL)."""
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    return sock, f"http://127.0.0.1:{sock.getsockname()[1]}"


@contextlib.contextmanager
def serving(app: FastAPI, sock: socket.socket | None = None) -> Iterator[str]:
    """Yield the base URL while uvicorn serves `app` (without running its lifespan: the test
    owns the runtime and the workers)."""
    if sock is None:
        sock, _ = listening_socket()
    port = sock.getsockname()[1]
    config = uvicorn.Config(app, lifespan="off", log_level="warning", access_log=False)
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    deadline = time.monotonic() + 10
    while not server.started:
        if not thread.is_alive() or time.monotonic() > deadline:
            raise RuntimeError("uvicorn did not start")
        time.sleep(0.01)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(10)
        sock.close()


def wait_ready(base: str, process: subprocess.Popen[str], output: Callable[[], str]) -> None:
    """Until `hub serve` answers /readyz; else kill it and fail with what it printed."""
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        try:
            if httpx.get(f"{base}/readyz").status_code == 200:
                return
        except httpx.TransportError:
            time.sleep(0.1)
    process.kill()
    pytest.fail(f"hub serve did not become ready: {output()}")
