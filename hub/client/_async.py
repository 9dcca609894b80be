"""`AsyncHub`: the asyncio client (the same calls as `Hub`, awaited)."""

from __future__ import annotations

import asyncio
import datetime as dt
from collections.abc import AsyncIterator, Mapping, Sequence
from types import TracebackType
from typing import Any, TypeVar

import httpx
import pydantic

from hub.client import _calls, errors
from hub.client._calls import Call, Params
from hub.client._config import DEFAULT_TIMEOUT, http_options, retry_policy
from hub.client._retry import RetryPolicy
from hub.client.models import (
    BatchOut,
    ContactIn,
    ContactOut,
    DeliveryOut,
    Erasure,
    EscalationStep,
    NotificationAccepted,
    NotificationCancelled,
    NotificationIn,
    NotificationOut,
    NotificationSummary,
    Page,
    RecipientIn,
    SubscriptionIn,
    SubscriptionOut,
    TimelineEvent,
)
from hub.client.paging import apaginate
from hub.domain import (
    Channel,
    ClientScope,
    ContactKind,
    DeliveryState,
    EventType,
    Frequency,
    NotificationState,
)

T = TypeVar("T")
M = TypeVar("M", bound=pydantic.BaseModel)


class AsyncHub:
    """A client of one Hub for asyncio: `AsyncHub("https://hub.example.com", api_key="hub_...")`.

    Every send carries an Idempotency-Key (a new uuid4 unless given) that its retries reuse.
    Answers 429, 502, 503 and 504 and connection failures are retried with backoff, honouring
    `Retry-After`; errors raise a `HubError` subclass. Use it as `async with`, or `await aclose()`.
    """

    def __init__(
        self,
        base_url: str,
        api_key: str,
        *,
        timeout: float | httpx.Timeout = DEFAULT_TIMEOUT,
        retries: int | RetryPolicy = 3,
        transport: httpx.AsyncBaseTransport | None = None,
    ) -> None:
        self.policy = retry_policy(retries)
        self._http = httpx.AsyncClient(
            **http_options(base_url, api_key, timeout), transport=transport
        )

    async def __aenter__(self) -> AsyncHub:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        """Close the pooled connections."""
        await self._http.aclose()

    async def run(self, call: Call[T]) -> T:
        """Send one call, retrying as the policy allows; its parsed answer, or a HubError."""
        request = call.request(self._http)
        attempts = self.policy.start(safe=call.safe, keyed=call.idempotency_key is not None)
        while True:
            try:
                response = await self._http.send(request)
            except httpx.TransportError as exc:
                delay = attempts.after_error(exc)
                if delay is None:
                    raise errors.NetworkError(
                        f"{call.method} {call.path}: {type(exc).__name__}: {exc}",
                        code="network_error",
                    ) from exc
                await asyncio.sleep(delay)
                continue
            delay = attempts.after_response(response)
            if delay is None:
                return _calls.finish(call, response, retry_after=attempts.retry_after)
            await response.aclose()
            await asyncio.sleep(delay)

    # Contacts -----------------------------------------------------------------------------

    async def upsert_contact(
        self, external_id: str, contact: ContactIn | None = None, **fields: Any
    ) -> ContactOut:
        """Create or replace a contact (PUT): a ContactIn, or its fields as keywords (`email=`,
        `name=`, `phone=`, `locale=`, `timezone=`, `attributes=`...). Fields left out return
        to their defaults; use `update_contact` to change some only."""
        body = _calls.build(ContactIn, contact, fields)
        return await self.run(_calls.upsert_contact(external_id, body))

    async def get_contact(self, external_id: str) -> ContactOut:
        """The contact; NotFound if there is none."""
        return await self.run(_calls.get_contact(external_id))

    async def update_contact(
        self, external_id: str, changes: ContactIn | None = None, **fields: Any
    ) -> ContactOut:
        """Change only the fields given (PATCH); `attributes` merge key by key, a None value
        removes a key."""
        body = _calls.build(ContactIn, changes, fields)
        return await self.run(_calls.update_contact(external_id, body))

    async def delete_contact(self, external_id: str) -> Erasure:
        """Erase the contact: personal data and timeline go, address hashes stay suppressed."""
        return await self.run(_calls.delete_contact(external_id))

    def contacts(
        self,
        *,
        kind: ContactKind | None = None,
        topic: str | None = None,
        email: str | None = None,
        phone: str | None = None,
        attributes: Mapping[str, str] | None = None,
        limit: int = 100,
    ) -> AsyncIterator[ContactOut]:
        """Every contact matching the filters (all of them), fetched `limit` a page as used."""
        return apaginate(
            lambda cursor: self.run(
                _calls.contacts_page(
                    kind=kind,
                    topic=topic,
                    email=email,
                    phone=phone,
                    attributes=attributes,
                    limit=limit,
                    cursor=cursor,
                )
            )
        )

    def timeline(
        self, external_id: str, *, types: Sequence[EventType] = (), limit: int = 100
    ) -> AsyncIterator[TimelineEvent]:
        """The contact's timeline, newest first: every delivery, change and refusal."""
        return apaginate(
            lambda cursor: self.run(
                _calls.timeline_page(external_id, types=types, limit=limit, cursor=cursor)
            )
        )

    # Subscriptions ------------------------------------------------------------------------

    async def subscribe(
        self,
        external_id: str,
        topic: str,
        *,
        channels: Sequence[Channel] | None = None,
        frequency: Frequency | None = None,
        scope: ClientScope | None = None,
    ) -> SubscriptionOut:
        """Subscribe the contact to a topic; `channels` in order of preference (default: the
        current choice, else the topic's defaults the contact has an address for). `scope`
        only for a client topic (`clients.*`): whose clients an employee hears of."""
        choice = _calls.build(
            SubscriptionIn,
            None,
            _calls.given(channels=channels, frequency=frequency, scope=scope),
        )
        return await self.run(_calls.subscribe(external_id, topic, choice))

    async def unsubscribe(self, external_id: str, topic: str) -> SubscriptionOut:
        """Unsubscribe the contact from a topic (Conflict for a required topic)."""
        return await self.run(_calls.unsubscribe(external_id, topic))

    async def subscriptions(self, external_id: str) -> list[SubscriptionOut]:
        """Every topic the contact chose, plus the required topics of their audience."""
        return await self.run(_calls.subscriptions(external_id))

    # Notifications ------------------------------------------------------------------------

    async def notify(
        self,
        topic: str,
        *,
        recipients: Sequence[str | RecipientIn | Mapping[str, Any]] | None = None,
        template: str | None = None,
        content: Mapping[str, Any] | None = None,
        data: Mapping[str, Any] | None = None,
        channels: Sequence[Channel] | None = None,
        escalation: Sequence[EscalationStep | Mapping[str, Any]] | None = None,
        send_at: dt.datetime | None = None,
        idempotency_key: str | None = None,
    ) -> NotificationAccepted:
        """Tell a topic's subscribers (or the `recipients` named: external ids, or RecipientIn
        objects or dicts naming people inline, created or updated on the way in) something,
        with a stored `template` or inline `content`; `send_at` schedules it. Accepted once
        committed; delivery follows. Retries reuse one Idempotency-Key (a new uuid4 unless
        given), so it is sent at most once."""
        notification = _calls.notification_in(
            topic,
            recipients=recipients,
            template=template,
            content=content,
            data=data,
            channels=channels,
            escalation=escalation,
            send_at=send_at,
        )
        return await self.send(notification, idempotency_key=idempotency_key)

    async def send(
        self, notification: NotificationIn, *, idempotency_key: str | None = None
    ) -> NotificationAccepted:
        """`notify` for a NotificationIn already built."""
        key = idempotency_key or _calls.new_key()
        return await self.run(_calls.notify(notification, idempotency_key=key))

    async def notify_batch(
        self,
        items: Sequence[NotificationIn | Mapping[str, Any]],
        *,
        idempotency_key: str | None = None,
    ) -> BatchOut:
        """Up to 1,000 notifications in one request, each accepted or rejected on its own
        (`BatchOut.results`, in order). Each item keeps its `idempotency_key` (BatchItem) or
        gets a new uuid4, and the batch one of its own, so a retried batch sends nothing twice.
        """
        key = idempotency_key or _calls.new_key()
        return await self.run(_calls.notify_batch(items, idempotency_key=key))

    def notifications(
        self,
        *,
        topic: str | None = None,
        state: NotificationState | None = None,
        created_after: dt.datetime | None = None,
        created_before: dt.datetime | None = None,
        source: str | None = None,
        limit: int = 100,
    ) -> AsyncIterator[NotificationSummary]:
        """Every notification matching the filters, newest first; `source` is `api:<key name>`
        or `campaign:<id>`."""
        return apaginate(
            lambda cursor: self.run(
                _calls.notifications_page(
                    topic=topic,
                    state=state,
                    created_after=created_after,
                    created_before=created_before,
                    source=source,
                    limit=limit,
                    cursor=cursor,
                )
            )
        )

    async def cancel(self, notification_id: int) -> NotificationCancelled:
        """Cancel a scheduled notification before anything of it goes (Conflict once it has)."""
        return await self.run(_calls.cancel(notification_id))

    async def notification(self, notification_id: int) -> NotificationOut:
        """The notification, its counts by state and channel, and its first deliveries."""
        return await self.run(_calls.notification(notification_id))

    def deliveries(
        self,
        notification_id: int,
        *,
        state: DeliveryState | None = None,
        channel: Channel | None = None,
        limit: int = 100,
    ) -> AsyncIterator[DeliveryOut]:
        """Every delivery of the notification (one per person and channel), oldest first."""

        async def fetch(cursor: str | None) -> Page[DeliveryOut]:
            call = _calls.notification(
                notification_id, limit=limit, cursor=cursor, state=state, channel=channel
            )
            return (await self.run(call)).deliveries

        return apaginate(fetch)

    # Any list -----------------------------------------------------------------------------

    def iterate(
        self, path: str, item: type[M], *, params: Params | None = None, limit: int = 100
    ) -> AsyncIterator[M]:
        """Every item of any cursor-paged list of the API, read as `item`:
        `hub.iterate("/v1/topics", TopicOut)`."""
        query: Params = {**(params or {}), "limit": limit}
        return apaginate(
            lambda cursor: self.run(_calls.page(path, item, params=query, cursor=cursor))
        )
