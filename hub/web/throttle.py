"""A small in-process limiter for the public forms: so many requests per key per window.

Per process, on purpose: it stops a script hammering one server from sending a mailbox a
thousand links; a distributed attacker is the mail provider's and the proxy's concern.
"""

from __future__ import annotations

import threading
import time
from collections import OrderedDict


class Throttle:
    def __init__(self, limit: int, window_seconds: float, *, max_keys: int = 100_000) -> None:
        self.limit = limit
        self.window = window_seconds
        self._max_keys = max_keys
        self._seen: OrderedDict[str, list[float]] = OrderedDict()
        self._lock = threading.Lock()

    def allow(self, key: str) -> bool:
        """Count one request for `key`; False when it is over the limit (not counted then)."""
        now = time.monotonic()
        with self._lock:
            times = [t for t in self._seen.pop(key, []) if now - t < self.window]
            allowed = len(times) < self.limit
            if allowed:
                times.append(now)
            self._seen[key] = times
            while len(self._seen) > self._max_keys:
                self._seen.popitem(last=False)
            return allowed
