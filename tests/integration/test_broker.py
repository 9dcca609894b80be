"""The broker factory against a real Redis server: a message sent is processed by a worker."""

from __future__ import annotations

import threading
import uuid

import dramatiq
import pytest
from dramatiq import Worker

from hub.broker import BrokerConfigError, make_broker


def run_once(broker: dramatiq.Broker, payloads: list[int]) -> list[int]:
    seen: list[int] = []
    done = threading.Event()

    @dramatiq.actor(broker=broker, actor_name=f"record_{uuid.uuid4().hex}", max_retries=0)
    def record(value: int) -> None:
        seen.append(value)
        if len(seen) == len(payloads):
            done.set()

    for value in payloads:
        record.send(value)
    worker = Worker(broker, worker_timeout=100, worker_threads=2)
    worker.start()
    try:
        assert done.wait(15), f"only {seen} of {payloads} processed"
    finally:
        worker.stop()
    return seen


@pytest.mark.redis
def test_redis_broker_delivers_to_a_worker(redis_url: str) -> None:
    broker = make_broker(redis_url, namespace=f"hub-test-{uuid.uuid4().hex[:8]}")
    try:
        assert sorted(run_once(broker, [1, 2, 3])) == [1, 2, 3]
    finally:
        broker.client.flushdb()
        broker.close()


def test_in_process_broker_delivers_to_a_worker() -> None:
    broker = make_broker(None)
    assert sorted(run_once(broker, [4, 5])) == [4, 5]
    broker.close()


def test_unknown_broker_scheme_is_a_clear_error() -> None:
    with pytest.raises(BrokerConfigError, match="redis://"):
        make_broker("kafka://localhost:9092")
