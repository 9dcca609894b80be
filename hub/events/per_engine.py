"""A value read from each database and kept for a few seconds: who listens to which events.

The timeline asks on every write, so the answer is a dictionary look-up between reads; a
process that changes what it depends on calls `forget` and sees the change at once, other
processes within `ttl` seconds.
"""

from __future__ import annotations

import threading
import time
import weakref
from collections.abc import Callable
from typing import Generic, TypeVar

from sqlalchemy import Engine
from sqlalchemy.orm import Session

T = TypeVar("T")


class PerEngine(Generic[T]):
    def __init__(self, read: Callable[[Session], T], ttl: float) -> None:
        self._read = read
        self._ttl = ttl
        self._lock = threading.Lock()
        self._known: weakref.WeakKeyDictionary[Engine, tuple[float, T]] = (
            weakref.WeakKeyDictionary()
        )

    def get(self, session: Session) -> T:
        engine = engine_of(session)
        now = time.monotonic()
        with self._lock:
            known = self._known.get(engine)
        if known is not None and known[0] > now:
            return known[1]
        value = self._read(session)
        with self._lock:
            self._known[engine] = (now + self._ttl, value)
        return value

    def forget(self, session: Session) -> None:
        with self._lock:
            self._known.pop(engine_of(session), None)


def engine_of(session: Session) -> Engine:
    bind = session.get_bind()
    return bind if isinstance(bind, Engine) else bind.engine
