"""Prometheus metrics: what each process did (counters, latencies) and, read at scrape time
from the database and the broker, what is waiting (deliveries, queues, campaigns).

Counters live in the process that counts. The API's `GET /metrics` shows its own process;
a `hub worker` serves its processes' on `--metrics-port`. With several processes on one
host (`hub worker --processes N`), `PROMETHEUS_MULTIPROC_DIR` must name an empty directory:
prometheus-client then keeps each process's values in a file there and adds them up.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from typing import TYPE_CHECKING

from prometheus_client import (
    CONTENT_TYPE_LATEST,
    REGISTRY,
    CollectorRegistry,
    Counter,
    Histogram,
    generate_latest,
    multiprocess,
)
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.metrics_core import Metric
from prometheus_client.registry import Collector
from sqlalchemy import func, select

from hub.db.models import Campaign, Delivery, Notification
from hub.domain import CampaignState, DeliveryState
from hub.workers.queue import QUEUES, queue_depth

if TYPE_CHECKING:
    from hub.runtime import Runtime

__all__ = ["CONTENT_TYPE_LATEST", "exposition"]

_LATENCY = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30)

HTTP_REQUESTS = Counter(
    "hub_http_requests_total", "HTTP requests answered, by route and status", ["route", "status"]
)
HTTP_SECONDS = Histogram(
    "hub_http_request_seconds", "Time to answer an HTTP request", ["route"], buckets=_LATENCY
)
DELIVERIES = Counter(
    "hub_deliveries_total",
    "Deliveries this process recorded, by channel and outcome "
    "(sent, retrying, failed, bounced, unknown, deferred, suppressed)",
    ["channel", "outcome"],
)
PROVIDER_SECONDS = Histogram(
    "hub_provider_request_seconds",
    "Time a provider took to accept or refuse one message",
    ["channel", "provider"],
    buckets=_LATENCY,
)
PROVIDER_ERRORS = Counter(
    "hub_provider_errors_total",
    "Provider calls that did not succeed, by kind (retryable, permanent, ambiguous)",
    ["channel", "provider", "kind"],
)
CHANNEL_PAUSES = Counter(
    "hub_channel_pauses_total",
    "Times a channel was paused because its provider answered nothing but 'unavailable'",
    ["channel"],
)
# States a delivery waits in; the final ones grow without bound and are counted above.
WAITING = (
    DeliveryState.QUEUED,
    DeliveryState.SENDING,
    DeliveryState.DEFERRED,
    DeliveryState.UNKNOWN,
)


class Backlog(Collector):
    """Read at each scrape: deliveries waiting, broker queue depth, running campaigns."""

    def __init__(self, runtime: Runtime) -> None:
        self.runtime = runtime

    def collect(self) -> Iterator[GaugeMetricFamily]:
        waiting = GaugeMetricFamily(
            "hub_deliveries_waiting",
            "Deliveries not yet final, by channel and state",
            labels=["channel", "state"],
        )
        campaigns = GaugeMetricFamily(
            "hub_campaign_deliveries",
            "Deliveries of each campaign now sending, by state",
            labels=["campaign", "state"],
        )
        with self.runtime.reads() as session:
            for channel, state, count in session.execute(
                select(Delivery.channel, Delivery.state, func.count())
                .where(Delivery.state.in_(WAITING))
                .group_by(Delivery.channel, Delivery.state)
            ):
                waiting.add_metric([channel.value, state.value], count)
            for name, state, count in session.execute(
                select(Campaign.name, Delivery.state, func.count())
                .join(Notification, Notification.campaign_id == Campaign.id)
                .join(Delivery, Delivery.notification_id == Notification.id)
                .where(Campaign.state == CampaignState.SENDING)
                .group_by(Campaign.name, Delivery.state)
            ):
                campaigns.add_metric([name, state.value], count)
        yield waiting
        yield campaigns
        depth = GaugeMetricFamily(
            "hub_queue_depth", "Jobs waiting in each broker queue", labels=["queue"]
        )
        for queue in QUEUES:
            depth.add_metric([queue], queue_depth(self.runtime.broker, queue))
        yield depth


def registry(runtime: Runtime | None = None) -> CollectorRegistry:
    """This process's metrics, or every process's under PROMETHEUS_MULTIPROC_DIR; with a
    runtime, the backlog read from the database and broker too."""
    found = CollectorRegistry()
    if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        multiprocess.MultiProcessCollector(found)  # type: ignore[no-untyped-call]
    else:
        found.register(_Own())
    if runtime is not None:
        found.register(Backlog(runtime))
    return found


class _Own(Collector):
    """The default registry's metrics, re-exposed beside the backlog without re-registering."""

    def collect(self) -> Iterator[Metric]:
        yield from REGISTRY.collect()


def exposition(runtime: Runtime | None = None) -> bytes:
    return generate_latest(registry(runtime))
