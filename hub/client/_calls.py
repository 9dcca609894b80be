"""Every API operation the client knows, as a request description and a parser: written once,
run by both the sync and the async client."""

from __future__ import annotations

import datetime as dt
import uuid
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Generic, TypeVar
from urllib.parse import quote

import httpx
import pydantic
from pydantic import TypeAdapter

from hub.client import errors
from hub.client.models import (
    BatchOut,
    ContactIn,
    ContactOut,
    Erasure,
    NotificationAccepted,
    NotificationCancelled,
    NotificationIn,
    NotificationOut,
    NotificationSummary,
    Page,
    SubscriptionIn,
    SubscriptionOut,
    TimelineEvent,
)
from hub.domain import Channel, ContactKind, DeliveryState, EventType, NotificationState

T = TypeVar("T")
M = TypeVar("M", bound=pydantic.BaseModel)
Params = Mapping[str, str | int | Sequence[str] | None]


@dataclass(frozen=True, slots=True)
class Call(Generic[T]):
    """One HTTP request and how to read its answer.

    `safe`: repeating it cannot do anything twice (GET, PUT, PATCH, DELETE, or a POST carrying
    an Idempotency-Key), so a 500 or an error after sending may be retried.
    """

    method: str
    path: str
    parse: Callable[[Any], T]
    params: Params = field(default_factory=dict)
    body: Any = None
    idempotency_key: str | None = None
    safe: bool = True

    def request(self, http: httpx.Client | httpx.AsyncClient) -> httpx.Request:
        """The request, built once: each retry sends this same request (and the same key)."""
        headers = {"Idempotency-Key": self.idempotency_key} if self.idempotency_key else None
        params = {name: value for name, value in self.params.items() if value is not None}
        return http.build_request(
            self.method, self.path, params=params, json=self.body, headers=headers
        )


def finish(call: Call[T], response: httpx.Response, *, retry_after: float | None) -> T:
    """The parsed answer of a 2xx, else the error it stands for."""
    if response.is_success:
        return call.parse(response.json() if response.content else None)
    raise errors.from_response(response, retry_after=retry_after)


def build(model: type[M], value: M | None, fields: Mapping[str, Any]) -> M:
    """`value` itself, or a `model` made from keyword fields, refused here (as a
    ValidationError naming the field) when the server would refuse it too."""
    if value is not None:
        if fields:
            raise TypeError(f"pass a {model.__name__} or keyword fields, not both")
        return value
    try:
        return model.model_validate(fields)
    except pydantic.ValidationError as exc:
        raise errors.from_local(exc) from None


def new_key() -> str:
    """An Idempotency-Key for one send: its retries reuse it, so the server replays the answer."""
    return str(uuid.uuid4())


def _segment(value: str | int) -> str:
    # External ids may hold "/", "?" or "#": each is one path segment, whatever it contains.
    return quote(str(value), safe="")


def _json(model: pydantic.BaseModel) -> Any:
    return model.model_dump(mode="json", exclude_unset=True)


def _page_of(item: type[M]) -> Callable[[Any], Page[M]]:
    return TypeAdapter(Page[item]).validate_python  # type: ignore[valid-type]


# Contacts ---------------------------------------------------------------------------------


def upsert_contact(external_id: str, contact: ContactIn) -> Call[ContactOut]:
    # PUT replaces the whole contact: every field goes, defaults included; owner and teams
    # only when set (the schema leaves them out of its dump: left out, they stay as they are).
    return Call(
        "PUT",
        f"/v1/contacts/{_segment(external_id)}",
        ContactOut.model_validate,
        body=contact.model_dump(mode="json") | contact.care(),
    )


def get_contact(external_id: str) -> Call[ContactOut]:
    return Call("GET", f"/v1/contacts/{_segment(external_id)}", ContactOut.model_validate)


def update_contact(external_id: str, changes: ContactIn) -> Call[ContactOut]:
    return Call(
        "PATCH",
        f"/v1/contacts/{_segment(external_id)}",
        ContactOut.model_validate,
        body=_json(changes) | changes.care(),
    )


def delete_contact(external_id: str) -> Call[Erasure]:
    return Call("DELETE", f"/v1/contacts/{_segment(external_id)}", Erasure.model_validate)


def contacts_page(
    *,
    kind: ContactKind | None,
    topic: str | None,
    email: str | None,
    phone: str | None,
    attributes: Mapping[str, str] | None,
    limit: int,
    cursor: str | None,
) -> Call[Page[ContactOut]]:
    attr = [f"{key}:{value}" for key, value in (attributes or {}).items()] or None
    params: Params = {
        "kind": kind,
        "topic": topic,
        "email": email,
        "phone": phone,
        "attr": attr,
        "limit": limit,
        "cursor": cursor,
    }
    return Call("GET", "/v1/contacts", _page_of(ContactOut), params=params)


def timeline_page(
    external_id: str, *, types: Sequence[EventType], limit: int, cursor: str | None
) -> Call[Page[TimelineEvent]]:
    params: Params = {"type": list(types) or None, "limit": limit, "cursor": cursor}
    return Call(
        "GET",
        f"/v1/contacts/{_segment(external_id)}/timeline",
        _page_of(TimelineEvent),
        params=params,
    )


# Subscriptions ----------------------------------------------------------------------------


def subscribe(external_id: str, topic: str, choice: SubscriptionIn) -> Call[SubscriptionOut]:
    return Call(
        "PUT",
        f"/v1/contacts/{_segment(external_id)}/subscriptions/{_segment(topic)}",
        SubscriptionOut.model_validate,
        body=_json(choice),
    )


def unsubscribe(external_id: str, topic: str) -> Call[SubscriptionOut]:
    return Call(
        "DELETE",
        f"/v1/contacts/{_segment(external_id)}/subscriptions/{_segment(topic)}",
        SubscriptionOut.model_validate,
    )


def subscriptions(external_id: str) -> Call[list[SubscriptionOut]]:
    return Call(
        "GET",
        f"/v1/contacts/{_segment(external_id)}/subscriptions",
        TypeAdapter(list[SubscriptionOut]).validate_python,
    )


# Notifications ----------------------------------------------------------------------------


def notify(notification: NotificationIn, *, idempotency_key: str) -> Call[NotificationAccepted]:
    return Call(
        "POST",
        "/v1/notifications",
        NotificationAccepted.model_validate,
        body=_json(notification),
        idempotency_key=idempotency_key,
    )


def notify_batch(
    items: Sequence[NotificationIn | Mapping[str, Any]], *, idempotency_key: str
) -> Call[BatchOut]:
    """Each item keeps its own key, or gets a new one now: retrying the batch then replays the
    accepted items instead of sending them twice. Items given as dicts go unchecked, for the
    server to accept or reject one by one."""
    body = [_batch_item(item) for item in items]
    return Call(
        "POST",
        "/v1/notifications/batch",
        BatchOut.model_validate,
        body={"notifications": body},
        idempotency_key=idempotency_key,
    )


def _batch_item(item: NotificationIn | Mapping[str, Any]) -> dict[str, Any]:
    fields = _json(item) if isinstance(item, NotificationIn) else dict(item)
    if not fields.get("idempotency_key"):
        fields["idempotency_key"] = new_key()
    return dict(fields)


def notifications_page(
    *,
    topic: str | None,
    state: NotificationState | None,
    created_after: dt.datetime | None,
    created_before: dt.datetime | None,
    source: str | None,
    limit: int,
    cursor: str | None,
) -> Call[Page[NotificationSummary]]:
    params: Params = {
        "topic": topic,
        "state": state,
        "created_after": created_after.isoformat() if created_after else None,
        "created_before": created_before.isoformat() if created_before else None,
        "source": source,
        "limit": limit,
        "cursor": cursor,
    }
    return Call("GET", "/v1/notifications", _page_of(NotificationSummary), params=params)


def cancel(notification_id: int) -> Call[NotificationCancelled]:
    # Cancelling a cancelled notification answers the same again: safe to retry.
    return Call(
        "POST",
        f"/v1/notifications/{int(notification_id)}/cancel",
        NotificationCancelled.model_validate,
    )


def notification(
    notification_id: int,
    *,
    limit: int = 100,
    cursor: str | None = None,
    state: DeliveryState | None = None,
    channel: Channel | None = None,
) -> Call[NotificationOut]:
    params: Params = {"limit": limit, "cursor": cursor, "state": state, "channel": channel}
    return Call(
        "GET",
        f"/v1/notifications/{int(notification_id)}",
        NotificationOut.model_validate,
        params=params,
    )


def given(**values: Any) -> dict[str, Any]:
    """The keyword arguments a caller gave: those left at None are not sent."""
    return {name: value for name, value in values.items() if value is not None}


def notification_in(topic: str, **values: Any) -> NotificationIn:
    """A NotificationIn from `notify`'s keyword arguments."""
    return build(NotificationIn, None, {"topic": topic, **given(**values)})


def page(path: str, item: type[M], *, params: Params, cursor: str | None) -> Call[Page[M]]:
    """One page of any cursor-paged list of the API, e.g. `/v1/topics`."""
    return Call("GET", path, _page_of(item), params={**params, "cursor": cursor})
