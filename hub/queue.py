"""The small interface everything enqueues through: message names, not actor imports.

The API only needs `fan_out`; actors use both. Messages are built by name, so the API
process never imports (or binds) the actors themselves.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from typing import Any

from dramatiq import Broker, Message
from dramatiq.common import dq_name

from hub.domain import Channel

log = logging.getLogger("hub.queue")

FAN_OUT = "fan_out"
FAN_OUT_MANY = "fan_out_many"  # a batch's notifications: one message, not one each
DELIVER = "deliver_batch"
EVENTS = "deliver_events"
FAN_OUT_QUEUE = "fanout"
EVENTS_QUEUE = "events"  # other services' endpoints: slow ones must not hold up deliveries
# A queue per channel: a provider that is down backs up its own queue, not the others.
QUEUES = (FAN_OUT_QUEUE, EVENTS_QUEUE, *(f"deliver.{channel.value}" for channel in Channel))


def deliver_queue(channel: Channel) -> str:
    return f"deliver.{channel.value}"


def queue_depth(broker: Broker, queue: str) -> int:
    """Jobs waiting in a queue (not those a worker has already taken)."""
    client = getattr(broker, "client", None)
    if client is not None:  # Redis: the list of message ids waiting
        return int(client.llen(f"{broker.namespace}:{queue}"))  # type: ignore[attr-defined]
    queues = getattr(broker, "queues", {})
    return int(queues[queue].qsize()) if queue in queues else 0


class Enqueuer:
    def __init__(self, broker: Broker) -> None:
        self.broker = broker
        for queue in QUEUES:
            broker.declare_queue(queue)

    def fan_out(self, notification_id: int) -> None:
        self._send(FAN_OUT_QUEUE, FAN_OUT, (notification_id,))

    def fan_out_many(self, notification_ids: Sequence[int]) -> None:
        """One message for many notifications (a batch POST's): an enqueue costs more than
        the accept of a notification, and a job that fans out many spreads its overhead."""
        self._send(FAN_OUT_QUEUE, FAN_OUT_MANY, (list(notification_ids),))

    def deliver(self, channel: Channel, ids: Sequence[int]) -> None:
        self._send(deliver_queue(channel), DELIVER, (channel.value, list(ids)))

    def events(self, ids: Sequence[int]) -> None:
        self._send(EVENTS_QUEUE, EVENTS, (list(ids),))

    def idle(self) -> frozenset[str]:
        """The queues with no job waiting in the broker (their delay queues included); jobs
        a worker has already taken are not counted. None is idle when the broker cannot say
        (it is away: the sweep goes on without this)."""
        try:
            return frozenset(
                queue
                for queue in QUEUES
                if not any(queue_depth(self.broker, q) for q in (queue, dq_name(queue)))
            )
        except Exception as exc:  # the broker's own errors vary by backend
            log.warning("cannot read the queues' depth (%s); sweeping without it", exc)
            return frozenset()

    def try_fan_out(self, notification_id: int) -> bool:
        """After a commit: if the broker is down, the sweeper will find the notification."""
        return self._try(self.fan_out, notification_id, f"notification {notification_id}")

    def try_fan_out_many(self, notification_ids: Sequence[int]) -> bool:
        """After a commit, as try_fan_out: what a lost message leaves, the sweeper starts."""
        return self._try(
            self.fan_out_many, notification_ids, f"{len(notification_ids)} notifications"
        )

    @staticmethod
    def _try(enqueue: Callable[[Any], None], argument: Any, what: str) -> bool:
        try:
            enqueue(argument)
        except Exception as exc:  # the broker's own errors vary by backend
            log.warning("could not enqueue the fan-out of %s (%s); the sweeper will", what, exc)
            return False
        return True

    def _send(self, queue: str, actor: str, args: tuple[object, ...]) -> None:
        self.broker.enqueue(
            Message(queue_name=queue, actor_name=actor, args=args, kwargs={}, options={})
        )
