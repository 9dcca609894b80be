"""The Dramatiq actors, bound to a broker given by the composition root (none at import)."""

from __future__ import annotations

import logging
from typing import Any

import dramatiq
from dramatiq import Broker, Middleware
from dramatiq.broker import MessageProxy
from sqlalchemy.orm import Session, sessionmaker

from hub.db.models import DeadLetter
from hub.dispatch.dispatcher import Dispatcher
from hub.domain import Channel
from hub.events.sender import EventRelay
from hub.queue import (
    DELIVER,
    EVENTS,
    EVENTS_QUEUE,
    FAN_OUT,
    FAN_OUT_MANY,
    FAN_OUT_QUEUE,
    Enqueuer,
    deliver_queue,
)

log = logging.getLogger("hub.workers")

# Mailman's rule: a message that crashes its handler three times is parked, not retried for
# days (Dramatiq's default is 20 retries with backoff up to a week).
MAX_RETRIES = 3


def declare(broker: Broker, dispatcher: Dispatcher, enqueuer: Enqueuer, relay: EventRelay) -> None:
    """Bind the actors to `broker`. Each does one step and enqueues what follows."""

    def fan_out(notification_id: int) -> None:
        step = dispatcher.fan_out(notification_id)
        for channel, ids in step.deliver:
            enqueuer.deliver(channel, ids)
        if not step.done:
            enqueuer.fan_out(notification_id)

    def fan_out_many(notification_ids: list[int]) -> None:
        # Each as its own fan_out job would be; one that needs more steps (over a batch of
        # people) continues as a fan_out job of its own. A redelivered message finds the
        # ones already done fanned out and passes them by.
        for notification_id in notification_ids:
            fan_out(notification_id)

    def deliver_batch(channel: str, ids: list[int]) -> None:
        dispatcher.deliver(Channel(channel), ids)
        log.debug("delivered a %s batch of %d", channel, len(ids))

    def deliver_events(ids: list[int]) -> None:
        relay.deliver(ids)

    options: dict[str, Any] = {
        "max_retries": MAX_RETRIES,
        "min_backoff": 1000,
        "max_backoff": 30_000,
        "time_limit": 600_000,
    }
    dramatiq.actor(broker=broker, actor_name=FAN_OUT, queue_name=FAN_OUT_QUEUE, **options)(fan_out)
    dramatiq.actor(broker=broker, actor_name=FAN_OUT_MANY, queue_name=FAN_OUT_QUEUE, **options)(
        fan_out_many
    )
    dramatiq.actor(broker=broker, actor_name=EVENTS, queue_name=EVENTS_QUEUE, **options)(
        deliver_events
    )
    # Dramatiq finds an actor by name whatever queue its message came from, so one actor
    # serves the per-channel queues the enqueuer writes to; each queue is declared here.
    for channel in Channel:
        broker.declare_queue(deliver_queue(channel))
    dramatiq.actor(
        broker=broker, actor_name=DELIVER, queue_name=deliver_queue(Channel.EMAIL), **options
    )(deliver_batch)


class ParkDeadLetters(Middleware):
    """Keep a message the Retries middleware gave up on, where staff can see and replay it."""

    def __init__(self, sessions: sessionmaker[Session]) -> None:
        self.sessions = sessions

    def after_nack(self, broker: Broker, message: MessageProxy) -> None:
        error = str(message.options.get("traceback") or "failed")[-4000:]
        log.error(
            "parking message %s (%s) as a dead letter", message.message_id, message.actor_name
        )
        with self.sessions() as session, session.begin():
            session.add(
                DeadLetter(
                    actor=message.actor_name,
                    args=list(message.args),
                    error=error,
                    failures=int(message.options.get("retries", 0)),
                )
            )
