"""POST /v1/notifications/batch (issue 19.2), on SQLite and PostgreSQL: items checked one by
one, the accepted committed together, idempotency per item shared with the single POST."""

from __future__ import annotations

import datetime as dt
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import create_engine, func, select, text

from hub.db.models import Capture, Contact, IdempotencyKey, Notification
from hub.domain import NotificationState, Scope
from hub.runtime import Runtime
from hub.settings import Settings
from tests.conftest import make_key
from tests.dispatching import hub_running, ok, settled, timeline, topic

CONTENT = {"": {"email_subject": "Receipt {{ data.n }}", "email_text": "Thanks"}}


@pytest.fixture
def auth(runtime: Runtime, client: TestClient) -> dict[str, str]:
    """A key named `billing` that may notify, with a topic and two contacts to tell."""
    admin = make_key(runtime, "admin", Scope.ADMIN, Scope.CONTACTS)
    topic(client, admin, "receipts", category="transactional", required=True)
    for external_id in ("ann", "bob"):
        ok(client.put(f"/v1/contacts/{external_id}", json={"email": f"{external_id}@example.com"},
                      headers=admin))  # fmt: skip
    return make_key(runtime, "billing", Scope.NOTIFY)


def _item(n: int = 0, **more: Any) -> dict[str, Any]:
    return {"topic": "receipts", "recipients": ["ann"], "content": CONTENT, "data": {"n": n}} | more


def _batch(client: TestClient, auth: dict[str, str], items: list[Any], **headers: str) -> Any:
    return client.post(
        "/v1/notifications/batch", json={"notifications": items}, headers=auth | headers
    )


def _count(runtime: Runtime, model: Any) -> int:
    with runtime.sessions() as session:
        return int(session.scalar(select(func.count()).select_from(model)) or 0)


def test_good_items_are_accepted_and_bad_ones_rejected_naming_their_field(
    client: TestClient, auth: dict[str, str], runtime: Runtime
) -> None:
    items = [
        _item(0),
        _item(1, topic="nope"),
        _item(2, recipients=["ann", {"external_id": "cy", "email": "bad"}]),
        _item(3, recipients=["ghost"]),
        "not an object",
        _item(5, recipients=["bob", {"external_id": "dee", "name": "Dee"}]),
    ]
    answer = _batch(client, auth, items)
    assert answer.status_code == 202, answer.text
    body = answer.json()
    assert (body["accepted"], body["rejected"]) == (2, 4)
    results = body["results"]
    assert [r["index"] for r in results] == [0, 1, 2, 3, 4, 5]
    assert [r["status"] for r in results] == ["accepted", *["rejected"] * 4, "accepted"]
    fields = {r["index"]: r["error"]["details"][0]["field"] for r in results if r.get("error")}
    assert fields == {
        1: "notifications[1].topic",
        2: "notifications[2].recipients[1].email",
        3: "notifications[3].recipients",
        4: "notifications[4]",
    }
    assert results[1]["error"]["code"] == "invalid_field"
    assert "no topic 'nope'" in results[1]["error"]["message"]
    assert "ghost" in results[3]["error"]["message"]
    assert results[2]["error"]["code"] == "invalid_request"
    with runtime.sessions() as session:
        stored = {n.id: n for n in session.scalars(select(Notification).order_by(Notification.id))}
        contacts = {c.external_id: c.id for c in session.scalars(select(Contact))}
    assert set(stored) == {results[0]["id"], results[5]["id"]}
    assert stored[results[0]["id"]].data == {"n": 0}
    assert stored[results[5]["id"]].recipients == sorted([contacts["bob"], contacts["dee"]])
    assert "cy" not in contacts  # a rejected item's inline recipient is not created
    (created,) = [
        e for e in timeline(client, auth_of(runtime), "dee") if e["type"] == "contact.created"
    ]
    assert (created["actor"], created["source"]) == ("billing", "api.notify")


def auth_of(runtime: Runtime) -> dict[str, str]:
    return make_key(runtime, "reader", Scope.CONTACTS)


def test_every_item_rejected_is_422_naming_each_items_field(
    client: TestClient, auth: dict[str, str], runtime: Runtime
) -> None:
    answer = _batch(client, auth, [_item(0, topic="nope"), _item(1, recipients=[])])
    assert answer.status_code == 422, answer.text
    error = answer.json()["error"]
    assert error["code"] == "invalid_request"
    assert [d["field"] for d in error["details"]] == [
        "notifications[0].topic",
        "notifications[1].recipients",
    ]
    assert _count(runtime, Notification) == 0


@pytest.mark.parametrize(("size", "status"), [(0, 422), (1001, 422)])
def test_a_batch_holds_one_to_a_thousand(
    client: TestClient, auth: dict[str, str], runtime: Runtime, size: int, status: int
) -> None:
    answer = _batch(client, auth, [_item(n) for n in range(size)])
    assert answer.status_code == status, answer.text[:300]
    assert answer.json()["error"]["details"][0]["field"] == "notifications"
    assert _count(runtime, Notification) == 0


def test_a_thousand_items_are_accepted_in_order(
    client: TestClient, auth: dict[str, str], runtime: Runtime
) -> None:
    items = [_item(n, idempotency_key=f"k-{n}") for n in range(1000)]
    answer = _batch(client, auth, items)
    assert answer.status_code == 202, answer.text[:300]
    body = answer.json()
    assert (body["accepted"], body["rejected"]) == (1000, 0)
    ids = [r["id"] for r in body["results"]]
    assert ids == sorted(ids)
    assert len(set(ids)) == 1000
    with runtime.sessions() as session:
        data = {
            row.id: row.data for row in session.execute(select(Notification.id, Notification.data))
        }
    assert [data[i]["n"] for i in ids] == list(range(1000))  # each id is its own item's
    assert _count(runtime, IdempotencyKey) == 1000


def test_items_replay_by_key_across_single_posts_and_batches(
    client: TestClient, auth: dict[str, str], runtime: Runtime
) -> None:
    single = ok(
        client.post("/v1/notifications", json=_item(0), headers=auth | {"Idempotency-Key": "a"}),
        202,
    )
    first = ok(_batch(client, auth, [_item(1, idempotency_key="b")]), 202)["results"][0]
    answer = _batch(
        client,
        auth,
        [
            _item(0, idempotency_key="a"),  # the single POST's body: replayed
            _item(1, idempotency_key="b"),  # the earlier batch item's: replayed
            _item(2, idempotency_key="a"),  # key a with another body
            _item(3, idempotency_key="c"),  # new
            _item(4, idempotency_key="c"),  # the same key twice in one batch
        ],
    )
    results = ok(answer, 202)["results"]
    assert [(r["status"], r.get("replayed")) for r in results] == [
        ("accepted", True),
        ("accepted", True),
        ("rejected", None),
        ("accepted", False),
        ("rejected", None),
    ]
    assert (results[0]["id"], results[1]["id"]) == (single["id"], first["id"])
    assert results[2]["error"]["code"] == "idempotency_key_reused"
    assert results[4]["error"]["code"] == "idempotency_key_reused"
    assert results[4]["error"]["details"][0]["field"] == "notifications[4].idempotency_key"
    assert _count(runtime, Notification) == 3
    # A single POST replays what a batch item was answered.
    again = client.post("/v1/notifications", json=_item(3), headers=auth | {"Idempotency-Key": "c"})
    assert again.status_code == 202
    assert again.headers["Idempotent-Replayed"] == "true"
    assert again.json()["id"] == results[3]["id"]


def test_the_whole_batch_replays_under_its_own_header_key(
    client: TestClient, auth: dict[str, str], runtime: Runtime
) -> None:
    items = [_item(0), _item(1, topic="nope")]
    first = _batch(client, auth, items, **{"Idempotency-Key": "whole"})
    again = _batch(client, auth, items, **{"Idempotency-Key": "whole"})
    assert first.status_code == again.status_code == 202
    assert again.json() == first.json()
    assert again.headers["Idempotent-Replayed"] == "true"
    assert _count(runtime, Notification) == 1


def test_scheduled_items_wait_and_are_on_the_named_timelines(
    client: TestClient, auth: dict[str, str], runtime: Runtime
) -> None:
    send_at = dt.datetime.now(dt.UTC) + dt.timedelta(hours=3)
    answer = _batch(
        client,
        auth,
        [_item(0), _item(1, send_at=send_at.isoformat(), recipients=["ann", "bob"])],
    )
    results = ok(answer, 202)["results"]
    assert [r["state"] for r in results] == ["accepted", "scheduled"]
    with runtime.sessions() as session:
        scheduled = session.get(Notification, results[1]["id"])
        assert scheduled is not None
        assert scheduled.state is NotificationState.SCHEDULED
        assert scheduled.send_at == send_at
    reader = auth_of(runtime)
    for person in ("ann", "bob"):
        (event,) = [
            e for e in timeline(client, reader, person) if e["type"] == "notification.scheduled"
        ]
        assert event["changes"]["notification"] == results[1]["id"]
        assert event["actor"] == "billing"


def test_a_failure_mid_way_leaves_nothing(
    client: TestClient, auth: dict[str, str], runtime: Runtime, database_url: str
) -> None:
    """A statement after the inline contacts and the notifications fails: the idempotency
    keys' INSERT, stopped by a trigger. Nothing of the batch is kept."""
    engine = create_engine(database_url)
    with engine.begin() as db:
        if engine.dialect.name == "sqlite":
            db.execute(
                text(
                    "CREATE TRIGGER refuse_key BEFORE INSERT ON idempotency_keys "
                    "WHEN NEW.key = 'boom' BEGIN SELECT RAISE(ABORT, 'refused'); END"
                )
            )
        else:
            db.execute(
                text(
                    "CREATE FUNCTION refuse_key() RETURNS trigger AS $$ BEGIN "
                    "IF NEW.key = 'boom' THEN RAISE EXCEPTION 'refused'; END IF; "
                    "RETURN NEW; END $$ LANGUAGE plpgsql"
                )
            )
            db.execute(
                text(
                    "CREATE TRIGGER refuse_key BEFORE INSERT ON idempotency_keys "
                    "FOR EACH ROW EXECUTE FUNCTION refuse_key()"
                )
            )
    try:
        items = [
            _item(0, recipients=[{"external_id": "new-1", "name": "New"}]),
            _item(1, idempotency_key="boom"),
        ]
        answer = _batch(client, auth, items)
        assert answer.status_code == 500
        assert _count(runtime, Notification) == 0
        assert _count(runtime, IdempotencyKey) == 0
        with runtime.sessions() as session:
            assert session.scalar(select(Contact).where(Contact.external_id == "new-1")) is None
    finally:
        with engine.begin() as db:
            db.execute(
                text(
                    "DROP TRIGGER refuse_key"
                    + ("" if engine.dialect.name == "sqlite" else " ON idempotency_keys")
                )
            )
            if engine.dialect.name != "sqlite":
                db.execute(text("DROP FUNCTION refuse_key()"))
        engine.dispose()


def test_items_sharing_content_keep_their_own_channels_schedule_and_data(
    client: TestClient, auth: dict[str, str], runtime: Runtime
) -> None:
    """Items with the same content share its checked parts, and nothing else: each row has
    its own channels, escalation, send_at and data (1 and true stay apart, as in JSON)."""
    send_at = dt.datetime.now(dt.UTC) + dt.timedelta(hours=2)
    other = {"": {"email_subject": "Other", "email_text": "Other"}}
    escalation = [{"channel": "email"}, {"channel": "sms", "after_minutes": 30}]
    items = [
        _item(0, data={"v": 1}),
        _item(1, data={"v": True}, channels=["email"]),
        _item(2, data={"v": 1.5}, send_at=send_at.isoformat()),
        _item(3, data={"v": "ü\u2028"}, content=other),
        _item(4, data={"v": None}, escalation=escalation),
        _item(5, data={}, send_at=(send_at + dt.timedelta(days=400)).isoformat()),
        _item(6),
    ]
    results = ok(_batch(client, auth, items), 202)["results"]
    assert [r["status"] for r in results] == ["accepted"] * 5 + ["rejected", "accepted"]
    assert results[5]["error"]["details"][0]["field"] == "notifications[5].send_at"
    with runtime.sessions() as session:
        rows = {n.id: n for n in session.scalars(select(Notification))}
    got = [rows[results[i]["id"]] for i in (0, 1, 2, 3, 4, 6)]
    assert [n.data for n in got] == [{"v": 1}, {"v": True}, {"v": 1.5}, {"v": "ü\u2028"},
                                     {"v": None}, {"n": 6}]  # fmt: skip
    assert type(got[0].data["v"]) is int
    assert got[1].data["v"] is True
    assert [n.channels for n in got] == [None, ["email"], None, None, None, None]
    assert [n.escalation is not None for n in got] == [False, False, False, False, True, False]
    assert [n.send_at for n in got] == [None, None, send_at, None, None, None]
    assert [n.state for n in got] == [
        NotificationState.ACCEPTED,
        NotificationState.ACCEPTED,
        NotificationState.SCHEDULED,
        *[NotificationState.ACCEPTED] * 3,
    ]
    assert got[3].variants[""]["email_subject"] == "Other"
    assert {n.variants[""]["email_subject"] for n in got if n is not got[3]} == {
        "Receipt {{ data.n }}"
    }
    assert all(n.template_version is None and n.recipients for n in got)


def test_each_kind_of_item_replays_as_a_single_post_with_its_key(
    client: TestClient, auth: dict[str, str], runtime: Runtime
) -> None:
    """An item's key hashes the item as a single POST hashes its body, whatever it holds."""
    send_at = (dt.datetime.now(dt.UTC) + dt.timedelta(days=1)).isoformat()
    inline = {"external_id": "eve", "name": "Eve", "attributes": {"plan": "gold", "n": 2.5}}
    items = [
        _item(0, idempotency_key="k0"),
        _item(1, idempotency_key="k1", data={"nested": [1, {"b": None, "a": "é"}]}),
        _item(2, idempotency_key="k2", channels=["email"], send_at=send_at),
        _item(3, idempotency_key="k3", recipients=["ann", inline]),
        _item(4, idempotency_key="k4", escalation=[{"channel": "email"}, {"channel": "sms"}]),
    ]
    first = ok(_batch(client, auth, items), 202)["results"]
    assert [r["status"] for r in first] == ["accepted"] * 5
    for item, result in zip(items, first, strict=True):
        key = item.pop("idempotency_key")
        again = client.post("/v1/notifications", json=item, headers=auth | {"Idempotency-Key": key})
        assert again.status_code == 202, again.text
        assert again.headers["Idempotent-Replayed"] == "true", key
        assert again.json()["id"] == result["id"]
    assert _count(runtime, Notification) == 5


def test_the_documented_request_example_is_accepted(
    client: TestClient, auth: dict[str, str], runtime: Runtime
) -> None:
    spec = client.get("/openapi.json").json()
    operation = spec["paths"]["/v1/notifications/batch"]["post"]
    assert operation["summary"] == "Send up to 1,000 notifications"
    assert {"202", "409", "413", "422"} <= set(operation["responses"])
    examples = operation["requestBody"]["content"]["application/json"]["examples"]
    assert examples
    admin = make_key(runtime, "admin-2", Scope.CONTACTS, Scope.ADMIN)
    for example in examples.values():
        body = example["value"]
        assert "None" not in str(body)  # no nulls in an example
        for item in body["notifications"]:  # what the example names, made to exist
            topic(client, admin, item["topic"], category="transactional")
            if "template" in item:
                parts = {"": {"email_subject": "Invoice", "email_text": "{{ data.amount }}"}}
                ok(client.put(f"/v1/templates/{item['template']}", json={"variants": parts},
                              headers=admin))  # fmt: skip
            for recipient in item["recipients"]:
                if isinstance(recipient, str):
                    ok(client.put(f"/v1/contacts/{recipient}", json={}, headers=admin))
        answer = client.post("/v1/notifications/batch", json=body, headers=auth)
        assert answer.status_code == 202, answer.text
        assert answer.json()["accepted"] == len(body["notifications"])


def test_more_than_twenty_different_inline_contents_are_refused_past_the_twentieth(
    client: TestClient, auth: dict[str, str], runtime: Runtime
) -> None:
    """Each different inline content is tried in a render process before the transaction;
    a batch may carry twenty, the rest belong in a stored template."""
    items = [
        _item(n, content={"": {"email_subject": f"Receipt {n}", "email_text": "Thanks"}})
        for n in range(22)
    ]
    answer = ok(_batch(client, auth, items), 202)
    assert (answer["accepted"], answer["rejected"]) == (20, 2)
    refused = [r for r in answer["results"] if r["status"] == "rejected"]
    assert [r["index"] for r in refused] == [20, 21]
    assert refused[0]["error"]["details"][0]["field"] == "notifications[20].content"
    assert "stored template" in refused[0]["error"]["message"]


def test_a_batchs_notifications_all_go_out_fanned_out_fifty_to_a_message(
    settings: Settings,
) -> None:
    """The accepted items' fan-outs travel fifty to a message (one enqueue, not one each):
    every one of 120 reaches its person exactly once."""
    with hub_running(settings) as (client, runtime):
        admin = make_key(runtime, "admin", Scope.ADMIN, Scope.CONTACTS)
        topic(client, admin, "receipts", category="transactional")
        items = [
            {
                "topic": "receipts",
                "recipients": [{"external_id": f"p-{n}", "email": f"p{n}@example.com"}],
                "content": CONTENT,
                "data": {"n": n},
            }
            for n in range(120)
        ]
        answer = ok(_batch(client, admin, items), 202)
        ids = [r["id"] for r in answer["results"]]
        assert len(ids) == 120
        for notification_id in ids:
            assert settled(client, admin, notification_id)["counts"] == {"sent": 1}
        assert _count(runtime, Capture) == 120
