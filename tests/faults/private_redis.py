"""A redis-server of the test's own, on a fixed loopback port, to stop and bring back empty.

The machine's shared Redis serves other suites at the same time: a test that takes Redis away
takes away only this one.
"""

from __future__ import annotations

import random
import socket
import subprocess
import time
from pathlib import Path

import redis

PORT_RANGE = Path("/proc/sys/net/ipv4/ip_local_port_range")


def quiet_port() -> int:
    """A free port below the kernel's ephemeral range, so that while the server is down no
    outgoing connection is handed its port and the restart can bind it again."""
    low = int(PORT_RANGE.read_text().split()[0]) if PORT_RANGE.exists() else 32768
    for _ in range(200):
        port = random.randint(10_000, low - 1)
        with socket.socket() as sock:
            try:
                sock.bind(("127.0.0.1", port))
            except OSError:
                continue
            return port
    raise RuntimeError("no free port below the ephemeral range")


class PrivateRedis:
    """`start()`, `stop()` (a crash: SIGKILL, nothing saved), `start()` again on the same port."""

    def __init__(self, binary: str, directory: Path) -> None:
        self.binary = binary
        self.directory = directory
        self.port = quiet_port()
        self.url = f"redis://127.0.0.1:{self.port}/0"
        self._process: subprocess.Popen[bytes] | None = None

    def start(self, timeout: float = 10.0) -> PrivateRedis:
        """Raises RuntimeError when the server does not answer PING within `timeout`."""
        self.directory.mkdir(parents=True, exist_ok=True)
        log = (self.directory / "redis.log").open("ab")
        self._process = subprocess.Popen(
            [self.binary, "--port", str(self.port), "--bind", "127.0.0.1", "--save", "",
             "--appendonly", "no", "--daemonize", "no", "--dir", str(self.directory)],
            stdout=log, stderr=subprocess.STDOUT,
        )  # fmt: skip
        log.close()
        client = redis.Redis.from_url(self.url, socket_connect_timeout=0.5)
        deadline = time.monotonic() + timeout
        while True:
            try:
                client.ping()
                client.close()
                return self
            except redis.RedisError as exc:
                if self._process.poll() is not None or time.monotonic() > deadline:
                    self.stop()
                    text = (self.directory / "redis.log").read_text(errors="replace")[-2000:]
                    raise RuntimeError(f"redis-server did not start ({exc}): {text}") from exc
                time.sleep(0.05)

    def stop(self) -> None:
        process, self._process = self._process, None
        if process is not None and process.poll() is None:
            process.kill()
            process.wait(timeout=10)

    def keys(self) -> int:
        client = redis.Redis.from_url(self.url)
        try:
            return int(client.dbsize())
        finally:
            client.close()
