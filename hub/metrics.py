"""Prometheus counters and latencies: what each process did. Counters live in the process that
counts; `hub.gauges` reads what is waiting and exposes both."""

from __future__ import annotations

from prometheus_client import Counter, Histogram

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
ENGAGEMENTS = Counter(
    "hub_engagements_total",
    "Opens and clicks written (the first of each per delivery and link), by kind and by "
    "whether a machine did it",
    ["kind", "machine"],
)
ENGAGEMENTS_LOST = Counter(
    "hub_engagements_lost_total",
    "Opens and clicks not written: the recorder was full, or the database refused them",
    ["why"],
)
