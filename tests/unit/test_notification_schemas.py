"""The notifications' schemas as a client meets them: the request examples the API documents
are bodies the server's models take, and an answer from a newer server, carrying fields this
version does not know, still reads (request bodies keep refusing unknown fields)."""

from __future__ import annotations

import copy
from collections.abc import Iterator
from typing import Any

import pytest
from pydantic import BaseModel, ValidationError

from hub.domain import NotificationState
from hub.schemas.notification_list import NotificationCancelled, NotificationSummary
from hub.schemas.notifications import (
    BATCH_EXAMPLE,
    NOTIFICATION_EXAMPLE,
    SCHEDULED_NOTIFICATION_EXAMPLE,
    BatchIn,
    BatchItem,
    BatchItemResult,
    BatchOut,
    DeliveryOut,
    EscalationStep,
    NotificationAccepted,
    NotificationIn,
    NotificationOut,
    RecipientIn,
)

NEW = "added_by_a_newer_server"

DELIVERY: dict[str, Any] = {
    "id": 7,
    "contact": "crm-1",
    "channel": "email",
    "state": "sent",
    "reason": None,
    "attempts": 1,
    "ambiguous": False,
    "provider": "smtp",
    "provider_id": "<7.1733575000@hub.example.com>",
    "error_code": None,
    "error": None,
    "created_at": "2026-03-02T09:15:00Z",
    "updated_at": "2026-03-02T09:15:02Z",
    "sent_at": "2026-03-02T09:15:02Z",
    "not_before": None,
}
ENGAGEMENT: dict[str, Any] = {
    "tracked": True,
    "delivered": 1,
    "delivered_people": 1,
    "bounced": 0,
    "opened": 1,
    "opened_all": 1,
    "clicked": 0,
    "clicked_all": 0,
    "open_rate": 1.0,
    "click_rate": 0.0,
    "click_to_open": 0.0,
    "machine_opens": {},
    "machine_clicks": {},
    "links": [],
    "unsubscribed": 0,
    "over_time": None,
    "sms_delivered": 0,
    "sms_clicked": 0,
    "sms_clicked_all": 0,
}
NOTIFICATION: dict[str, Any] = {
    "id": 3,
    "topic": "invoices",
    "template": "invoice-ready",
    "source": "api:billing",
    "state": "fanned_out",
    "created_at": "2026-03-02T09:15:00Z",
    "send_at": None,
    "cancelled_at": None,
    "fanned_out_at": "2026-03-02T09:15:01Z",
    "counts": {"sent": 1},
    "by_channel": {"email": {"sent": 1}},
    "deliveries": {"items": [DELIVERY], "next_cursor": None},
    "engagement": ENGAGEMENT,
}
ACCEPTED: dict[str, Any] = {
    "id": 3,
    "state": "scheduled",
    "topic": "invoices",
    "created_at": "2026-03-02T09:15:00Z",
    "send_at": "2026-03-03T08:00:00Z",
}
BATCH: dict[str, Any] = {
    "accepted": 1,
    "rejected": 1,
    "results": [
        {"index": 0, "status": "accepted", "id": 3, "state": "accepted", "replayed": False},
        {
            "index": 1,
            "status": "rejected",
            "error": {
                "code": "invalid_request",
                "message": "notifications[1].topic: Field required",
                "details": [
                    {"field": "notifications[1].topic", "in": "body", "message": "Field required"}
                ],
            },
        },
    ],
}
SUMMARY: dict[str, Any] = {
    key: NOTIFICATION[key]
    for key in (
        "id",
        "topic",
        "template",
        "source",
        "state",
        "created_at",
        "send_at",
        "cancelled_at",
        "fanned_out_at",
        "counts",
    )
}
CANCELLED: dict[str, Any] = {"id": 3, "state": "cancelled", "cancelled_at": "2026-03-02T09:16:00Z"}


def _with_new_fields(answer: dict[str, Any], *nested: tuple[str | int, ...]) -> dict[str, Any]:
    """`answer` with a field it does not know at its top and at each `nested` object."""
    changed = copy.deepcopy(answer)
    for path in ((), *nested):
        place: Any = changed
        for step in path:
            place = place[step]
        place[NEW] = {"anything": ["a newer server sends"]}
    return changed


ANSWERS: list[tuple[type[BaseModel], dict[str, Any], list[tuple[str | int, ...]]]] = [
    (NotificationAccepted, ACCEPTED, []),
    (DeliveryOut, DELIVERY, []),
    (
        NotificationOut,
        NOTIFICATION,
        [("deliveries",), ("deliveries", "items", 0), ("engagement",)],
    ),
    (
        BatchOut,
        BATCH,
        [("results", 0), ("results", 1), ("results", 1, "error")],
    ),
    (BatchItemResult, BATCH["results"][0], []),
    (NotificationSummary, SUMMARY, []),
    (NotificationCancelled, CANCELLED, []),
]


def _keys(value: Any) -> Iterator[str]:
    if isinstance(value, dict):
        for key, inner in value.items():
            yield key
            yield from _keys(inner)
    elif isinstance(value, list):
        for inner in value:
            yield from _keys(inner)


@pytest.mark.parametrize(
    ("model", "answer", "nested"), ANSWERS, ids=[model.__name__ for model, _, _ in ANSWERS]
)
def test_an_answer_with_fields_a_newer_server_added_still_reads(
    model: type[BaseModel], answer: dict[str, Any], nested: list[tuple[str | int, ...]]
) -> None:
    read = model.model_validate(_with_new_fields(answer, *nested))
    dumped = read.model_dump(mode="json", by_alias=True)
    assert NEW not in set(_keys(dumped))  # ignored, not kept as if it were understood
    assert read == model.model_validate(answer)
    schema = model.model_json_schema()
    # A client generated from the description must not refuse the new field either.
    assert schema.get("additionalProperties") is not False, model.__name__


def test_the_answers_are_read_whole() -> None:
    """The sample answers above are complete: each reads without the new fields, and back."""
    for model, answer, _ in ANSWERS:
        assert set(model.model_validate(answer).model_dump(by_alias=True)) >= set(answer)


@pytest.mark.parametrize(
    ("model", "body"),
    [
        (NotificationIn, NOTIFICATION_EXAMPLE),
        (BatchItem, BATCH_EXAMPLE["notifications"][0]),
        (RecipientIn, {"external_id": "crm-2"}),
        (EscalationStep, {"channel": "email"}),
        (BatchIn, BATCH_EXAMPLE),
    ],
    ids=lambda value: value.__name__ if isinstance(value, type) else "",
)
def test_a_request_with_an_unknown_field_is_still_refused(
    model: type[BaseModel], body: dict[str, Any]
) -> None:
    """A typo in a request is an error naming it, not a silent no-op."""
    with pytest.raises(ValidationError) as caught:
        model.model_validate(body | {"tpoic": "invoices"})
    assert [error["loc"] for error in caught.value.errors()] == [("tpoic",)]


def _nulls(value: Any) -> Iterator[None]:
    if value is None:
        yield None
    elif isinstance(value, dict):
        for inner in value.values():
            yield from _nulls(inner)
    elif isinstance(value, list):
        for inner in value:
            yield from _nulls(inner)


def test_the_documented_examples_are_bodies_the_server_takes() -> None:
    examples = NotificationIn.model_json_schema()["examples"]
    assert examples == [NOTIFICATION_EXAMPLE, SCHEDULED_NOTIFICATION_EXAMPLE]
    # FastAPI leaves nulls out of the document: an example with one would show another body
    assert not list(_nulls(examples))
    assert not list(_nulls(BATCH_EXAMPLE))
    for example in examples:
        NotificationIn.model_validate(example)
    single = NotificationIn.model_validate(NOTIFICATION_EXAMPLE)
    assert single.recipients is not None
    assert [isinstance(r, RecipientIn) for r in single.recipients] == [False, True]
    scheduled = NotificationIn.model_validate(SCHEDULED_NOTIFICATION_EXAMPLE)
    assert scheduled.send_at is not None
    assert scheduled.send_at.utcoffset() is not None

    assert BatchIn.model_json_schema()["examples"] == [BATCH_EXAMPLE]
    batch = BatchIn.model_validate(BATCH_EXAMPLE)
    items = [BatchItem.model_validate(raw) for raw in batch.notifications]
    keys = [item.idempotency_key for item in items]
    assert all(keys)
    assert len(set(keys)) == len(keys)
    assert [item.send_at is not None for item in items] == [False, True]


def test_an_accepted_answer_reads_its_state() -> None:
    read = NotificationAccepted.model_validate(_with_new_fields(ACCEPTED))
    assert read.state is NotificationState.SCHEDULED
    assert read.send_at is not None
