"""Prometheus at scrape time: what is waiting (deliveries, queues, campaigns), read from the
database and the broker, beside every process's counters (`hub.metrics`).

The API's `GET /metrics` shows its own process; a `hub worker` serves its processes' on
`--metrics-port`. With several processes on one host (`hub worker --processes N`),
`PROMETHEUS_MULTIPROC_DIR` must name an empty directory: prometheus-client then keeps each
process's values in a file there and adds them up.
"""

from __future__ import annotations

import os
from collections.abc import Iterator

from dramatiq import Broker
from prometheus_client import (
    CONTENT_TYPE_LATEST,
    REGISTRY,
    CollectorRegistry,
    generate_latest,
    multiprocess,
)
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.metrics_core import Metric
from prometheus_client.registry import Collector
from sqlalchemy import func, select
from sqlalchemy.orm import Session, sessionmaker

from hub.db.models import Campaign, Delivery, Notification
from hub.domain import CampaignState, DeliveryState
from hub.queue import QUEUES, queue_depth

__all__ = ["CONTENT_TYPE_LATEST", "exposition"]

# States a delivery waits in; the final ones grow without bound and are counted above.
WAITING = (
    DeliveryState.QUEUED,
    DeliveryState.SENDING,
    DeliveryState.DEFERRED,
    DeliveryState.UNKNOWN,
)


class Backlog(Collector):
    """Read at each scrape: deliveries waiting, broker queue depth, running campaigns."""

    def __init__(self, reads: sessionmaker[Session], broker: Broker) -> None:
        self.reads = reads
        self.broker = broker

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
        with self.reads() as session:
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
            depth.add_metric([queue], queue_depth(self.broker, queue))
        yield depth


def registry(backlog: Backlog | None = None) -> CollectorRegistry:
    """This process's metrics, or every process's under PROMETHEUS_MULTIPROC_DIR; and the
    backlog, when given."""
    found = CollectorRegistry()
    if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        multiprocess.MultiProcessCollector(found)  # type: ignore[no-untyped-call]
    else:
        found.register(_Own())
    if backlog is not None:
        found.register(backlog)
    return found


class _Own(Collector):
    """The default registry's metrics, re-exposed beside the backlog without re-registering."""

    def collect(self) -> Iterator[Metric]:
        yield from REGISTRY.collect()


def exposition(backlog: Backlog | None = None) -> bytes:
    return generate_latest(registry(backlog))
