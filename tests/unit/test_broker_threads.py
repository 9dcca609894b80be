"""An in-process broker's time-limit thread ends with the broker, so a process that builds
many (the test suite, a long-lived tool) does not gather threads that wake every second."""

from __future__ import annotations

import threading
import time

from dramatiq.middleware.time_limit import TimeLimit

from hub import broker as brokers


def _timeouts() -> list[threading.Thread]:
    return [t for t in threading.enumerate() if type(t).__name__ == "_StoppableTimeouts"]


def test_closing_the_in_process_broker_stops_its_time_limit_thread() -> None:
    before = len(_timeouts())
    built = brokers.make_broker(None)
    (limits,) = [m for m in built.middleware if isinstance(m, TimeLimit)]
    assert limits.manager.is_alive()  # time limits still apply while it runs
    assert len(_timeouts()) == before + 1
    brokers.close(built)
    limits.manager.join(timeout=3)
    assert not limits.manager.is_alive()
    deadline = time.monotonic() + 3
    while len(_timeouts()) > before and time.monotonic() < deadline:
        time.sleep(0.05)
    assert len(_timeouts()) == before
