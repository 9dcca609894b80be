"""hub.client against a live `hub serve` (embedded default: SQLite, in-process workers, the
capture sink): contacts, subscriptions, notifications and their deliveries, the timeline,
paging, errors, idempotency, event webhooks, and AsyncHub's main path."""

from __future__ import annotations

import asyncio
import datetime as dt
import os
import shutil
import socket
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest

from hub.client import (
    AsyncHub,
    AuthenticationError,
    BatchItem,
    Conflict,
    ContactIn,
    DeliveryOut,
    Hub,
    NotFound,
    NotificationAccepted,
    NotificationIn,
    RecipientIn,
    ValidationError,
    WebhookVerificationError,
    verify_webhook,
)
from hub.domain import (
    Channel,
    ClientScope,
    ContactKind,
    DeliveryState,
    EventType,
    Frequency,
    NotificationState,
)
from tests.peers.webhooks import WebhookPeer
from tests.serving import wait_ready

pytestmark = pytest.mark.e2e
HUB = shutil.which("hub", path=str(Path(sys.executable).parent)) or "hub"
TOPIC = "invoices"
REQUIRED = "receipts"  # transactional and required: reaches people with no subscription
TEMPLATE = "invoice-ready"
DONE = {DeliveryState.SENT, DeliveryState.DELIVERED}
SCOPES = ("--scope", "notify", "--scope", "contacts", "--scope", "admin")


@dataclass(frozen=True)
class Live:
    base_url: str
    api_key: str


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


@pytest.fixture(scope="module")
def live(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Live]:
    """`hub serve` on a free loopback port, a key made with `hub apikey create`, and the topic
    and template the tests send with (set up over plain HTTP, not through the client)."""
    cwd = tmp_path_factory.mktemp("hub")
    env = {
        **os.environ,
        "HUB_DATABASE_URL": f"sqlite:///{cwd / 'hub.db'}",
        # The event webhook receiver listens on 127.0.0.1.
        "HUB_WEBHOOK_ALLOW_PRIVATE": "true",
        "HUB_SWEEP_INTERVAL_SECONDS": "0.5",
    }
    port = _free_port()
    process = subprocess.Popen(
        [HUB, "serve", "--port", str(port)],
        cwd=cwd,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    base = f"http://127.0.0.1:{port}"
    try:
        wait_ready(base, process, lambda: process.communicate()[0])
        created = subprocess.run(
            [HUB, "apikey", "create", "billing", *SCOPES],
            cwd=cwd,
            env=env,
            capture_output=True,
            text=True,
            timeout=60,
            check=True,
        )
        key = created.stdout.strip().splitlines()[-1]
        with httpx.Client(base_url=base, headers={"Authorization": f"Bearer {key}"}) as http:
            topic: dict[str, Any] = {
                "name": "Invoices",
                "category": "transactional",
                "allowed_channels": ["email", "sms"],
                "default_channels": ["email"],
            }
            assert http.put(f"/v1/topics/{TOPIC}", json=topic).status_code == 201
            topic |= {"name": "Receipts", "required": True}
            assert http.put(f"/v1/topics/{REQUIRED}", json=topic).status_code == 201
            template = {
                "variants": {
                    "": {
                        "email_subject": "Invoice {{ data.number }}",
                        "email_text": "Hello {{ contact.name }}, invoice {{ data.number }}.",
                    }
                }
            }
            assert http.put(f"/v1/templates/{TEMPLATE}", json=template).status_code == 201
        yield Live(base, key)
    finally:
        process.terminate()
        process.communicate(timeout=15)


@pytest.fixture
def hub(live: Live) -> Iterator[Hub]:
    with Hub(live.base_url, live.api_key) as client:
        yield client


def _new_id(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:8]}"


def _sent(hub: Hub, notification_id: int) -> list[DeliveryOut]:
    """The notification's deliveries, once all of them went (the workers run in `hub serve`)."""
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        found = list(hub.deliveries(notification_id))
        if found and all(d.state in DONE for d in found):
            return found
        time.sleep(0.2)
    pytest.fail(f"notification {notification_id} not sent: {hub.notification(notification_id)}")


def test_an_employee_subscribes_to_their_teams_clients_with_a_scope(hub: Hub) -> None:
    person = _new_id("emp")
    hub.upsert_contact(person, kind=ContactKind.EMPLOYEE, email="emp@corp.example")
    chosen = hub.subscribe(person, "clients.replies", scope=ClientScope.TEAMS)
    assert (chosen.topic, chosen.scope, chosen.channels) == (
        "clients.replies",
        ClientScope.TEAMS,
        [Channel.EMAIL],
    )


def test_contact_subscribe_notify_deliveries_and_timeline(hub: Hub) -> None:
    person = _new_id("cust")
    created = hub.upsert_contact(person, name="Olga", email="Olga@Example.COM", locale="ru-RU")
    assert created.external_id == person
    assert created.email == "Olga@example.com"  # normalised by the server's own field type
    changed = hub.update_contact(person, attributes={"plan": "gold"})
    assert changed.name == "Olga"  # PATCH left it alone
    assert hub.get_contact(person).attributes == {"plan": "gold"}

    chosen = hub.subscribe(person, TOPIC, channels=[Channel.EMAIL], frequency=Frequency.IMMEDIATE)
    assert chosen.channels == [Channel.EMAIL]
    listed = {s.topic: s.implicit for s in hub.subscriptions(person)}
    assert listed == {TOPIC: False, REQUIRED: True}  # the required topic is implied

    accepted = hub.notify(TOPIC, recipients=[person], template=TEMPLATE, data={"number": "A-7"})
    assert isinstance(accepted, NotificationAccepted)
    assert accepted.state is NotificationState.ACCEPTED
    deliveries = _sent(hub, accepted.id)
    assert [(d.contact, d.channel) for d in deliveries] == [(person, Channel.EMAIL)]
    read = hub.notification(accepted.id)
    assert read.topic == TOPIC
    assert read.template == TEMPLATE
    assert read.source == "api:billing"
    assert sum(read.counts.values()) == 1

    events = list(hub.timeline(person))
    kinds = [e.type for e in events]
    assert EventType.DELIVERY_SENT in kinds
    assert kinds[-1] is EventType.CONTACT_CREATED  # newest first
    assert {e.actor for e in events if e.type is EventType.CONTACT_CREATED} == {"billing"}
    only = list(hub.timeline(person, types=[EventType.DELIVERY_SENT]))
    assert [e.type for e in only] == [EventType.DELIVERY_SENT]

    unsubscribed = hub.unsubscribe(person, TOPIC)
    assert unsubscribed.status == "unsubscribed"
    erased = hub.delete_contact(person)
    assert erased.external_id == person
    with pytest.raises(NotFound):
        hub.get_contact(person)


class Counting(httpx.HTTPTransport):
    """A real transport that counts the requests it sends."""

    def __init__(self) -> None:
        super().__init__()
        self.sent: list[httpx.URL] = []

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        self.sent.append(request.url)
        return super().handle_request(request)


def test_lists_are_walked_lazily_across_pages(live: Live) -> None:
    batch = uuid.uuid4().hex
    people = [_new_id("page") for _ in range(5)]
    transport = Counting()
    with Hub(live.base_url, live.api_key, transport=transport) as hub:
        for person in people:
            hub.upsert_contact(person, attributes={"batch": batch})
        transport.sent.clear()
        walk = hub.contacts(attributes={"batch": batch}, limit=2)
        assert transport.sent == []  # nothing asked until the first item is wanted
        assert next(walk).external_id == people[0]
        assert len(transport.sent) == 1
        assert [c.external_id for c in walk] == people[1:]
    assert len(transport.sent) == 3  # 2 + 2 + 1
    assert transport.sent[0].params["attr"] == f"batch:{batch}"
    assert "cursor" not in transport.sent[0].params
    assert transport.sent[1].params["cursor"]


def test_errors_are_exceptions_naming_what_is_wrong(hub: Hub, live: Live) -> None:
    with pytest.raises(ValidationError) as refused:
        hub.notify("no-such-topic", template=TEMPLATE)
    assert refused.value.status == 422
    assert refused.value.field == "topic"
    assert "no-such-topic" in refused.value.message
    assert refused.value.request_id  # X-Request-Id, to find it in the server's log

    with pytest.raises(ValidationError) as local:
        hub.upsert_contact(_new_id("bad"), email="not an address", phone="12")
    assert local.value.status is None  # refused before sending, by the same field types
    assert set(local.value.fields) == {"email", "phone"}

    ghost = _new_id("ghost")
    with pytest.raises(NotFound) as missing:
        hub.get_contact(ghost)
    assert (missing.value.status, missing.value.code) == (404, "not_found")

    with (
        Hub(live.base_url, "hub_not-a-key") as stranger,
        pytest.raises(AuthenticationError) as denied,
    ):
        stranger.get_contact(ghost)
    assert denied.value.status == 401


def test_one_idempotency_key_is_one_notification(hub: Hub) -> None:
    person = _new_id("idem")
    hub.upsert_contact(person, email=f"{person}@example.com")
    key = str(uuid.uuid4())
    first = hub.notify(TOPIC, recipients=[person], template=TEMPLATE, idempotency_key=key)
    again = hub.notify(TOPIC, recipients=[person], template=TEMPLATE, idempotency_key=key)
    assert again.id == first.id
    other = hub.notify(TOPIC, recipients=[person], template=TEMPLATE)  # a new key each send
    assert other.id != first.id


def test_a_contact_given_as_a_model(hub: Hub) -> None:
    person = _new_id("model")
    contact = ContactIn(name="Ivan", phone="+7 912 345-67-89", timezone="Europe/Moscow")
    assert hub.upsert_contact(person, contact).phone == "+79123456789"
    with pytest.raises(TypeError):
        hub.upsert_contact(person, contact, name="Both")


def test_an_owner_set_through_the_client_reaches_the_server(hub: Hub) -> None:
    """`owner` is left out of the schema's own dump (so a PUT that does not name it keeps
    it): the client must still send it when it is given."""
    manager, client = _new_id("mgr"), _new_id("cli")
    hub.upsert_contact(manager, name="Eve", kind="employee")
    assert hub.upsert_contact(client, name="Ann", owner=manager).owner == manager
    assert hub.update_contact(client, name="Ann B.").owner == manager  # left out: kept
    assert hub.update_contact(client, owner=None).owner is None


def test_recipients_named_inline(hub: Hub) -> None:
    ada, bob = _new_id("inline"), _new_id("inline")
    accepted = hub.notify(
        REQUIRED,
        recipients=[
            RecipientIn(external_id=ada, name="Ada", email=f"{ada}@example.com"),
            {"external_id": bob, "email": f"{bob}@example.com"},
        ],
        template=TEMPLATE,
        data={"number": "C-3"},
    )
    # No subscription: a required topic reaches them on its default channels.
    sent = _sent(hub, accepted.id)
    assert sorted(d.contact for d in sent) == sorted([ada, bob])
    assert hub.get_contact(ada).name == "Ada"


def test_a_batch_answers_item_by_item_and_replays(hub: Hub) -> None:
    person = _new_id("batch")
    hub.upsert_contact(person, email=f"{person}@example.com")
    kept = str(uuid.uuid4())
    items: list[NotificationIn | dict[str, object]] = [
        NotificationIn(topic=TOPIC, recipients=[person], template=TEMPLATE),
        BatchItem(topic=TOPIC, recipients=[person], template=TEMPLATE, idempotency_key=kept),
        {"topic": "no-such-topic", "template": TEMPLATE},
    ]
    first = hub.notify_batch(items)
    assert (first.accepted, first.rejected) == (2, 1)
    assert [r.status for r in first.results] == ["accepted", "accepted", "rejected"]
    rejected = first.results[2].error
    assert rejected is not None
    assert "topic" in rejected.message
    # The first item got a new key of its own, the second kept its key: sent again, the
    # second is replayed, the first is a new notification.
    again = hub.notify_batch(items[1:2])
    assert again.results[0].replayed is True
    assert again.results[0].id == first.results[1].id
    fresh = hub.notify_batch(items[:1])
    assert fresh.results[0].id not in {r.id for r in first.results}


def test_scheduled_cancelled_and_listed(hub: Hub) -> None:
    person = _new_id("later")
    hub.upsert_contact(person, email=f"{person}@example.com")
    hub.subscribe(person, TOPIC, channels=[Channel.EMAIL])
    started = dt.datetime.now(dt.UTC) - dt.timedelta(seconds=1)
    later = hub.notify(
        TOPIC,
        recipients=[person],
        template=TEMPLATE,
        send_at=dt.datetime.now(dt.UTC) + dt.timedelta(hours=1),
    )
    assert later.state is NotificationState.SCHEDULED
    cancelled = hub.cancel(later.id)
    assert (cancelled.id, cancelled.state) == (later.id, NotificationState.CANCELLED)
    assert hub.cancel(later.id).cancelled_at == cancelled.cancelled_at  # the same again

    listed = list(hub.notifications(state=NotificationState.CANCELLED, source="api:billing"))
    assert later.id in [n.id for n in listed]
    now = [
        hub.notify(TOPIC, recipients=[person], template=TEMPLATE, data={"number": n}).id
        for n in ("1", "2", "3")
    ]
    recent = list(hub.notifications(topic=TOPIC, created_after=started, limit=2))
    ids = [n.id for n in recent]
    assert ids[:3] == now[::-1]  # newest first, across pages of 2
    assert later.id in ids
    gone = _sent(hub, now[0])
    assert gone
    with pytest.raises(Conflict):
        hub.cancel(now[0])


def test_event_webhooks_verify_with_the_endpoint_secret(hub: Hub, live: Live) -> None:
    with WebhookPeer() as peer:
        endpoint = {"url": peer.url("/events"), "event_types": ["contact.created"]}
        endpoint["secret"] = peer.secret
        with httpx.Client(
            base_url=live.base_url, headers={"Authorization": f"Bearer {live.api_key}"}
        ) as http:
            registered = http.post("/v1/event-endpoints", json=endpoint)
            assert registered.status_code == 201, registered.text
        person = _new_id("event")
        hub.upsert_contact(person, name="Event")
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            mine = [r for r in peer.received if person.encode() in r.body]
            if mine:
                break
            time.sleep(0.1)
        else:
            pytest.fail("the contact.created event never arrived")
        with httpx.Client(
            base_url=live.base_url, headers={"Authorization": f"Bearer {live.api_key}"}
        ) as http:
            http.delete(f"/v1/event-endpoints/{registered.json()['id']}")
    message = mine[0]
    event = verify_webhook(message.body, message.headers, peer.secret)
    assert event == message.payload  # what the reference verifier read, too
    assert person in message.body.decode()

    with pytest.raises(WebhookVerificationError, match="no signature matches"):
        verify_webhook(message.body.replace(b"Event", b"Evil!"), message.headers, peer.secret)
    other = "whsec_" + "QUJD" * 8  # 24 bytes, another secret
    with pytest.raises(WebhookVerificationError, match="no signature matches"):
        verify_webhook(message.body, message.headers, other)
    stamp = int(message.headers["webhook-timestamp"])
    with pytest.raises(WebhookVerificationError, match="tolerance"):
        verify_webhook(message.body, message.headers, peer.secret, now=stamp + 301)
    headless = {k: v for k, v in message.headers.items() if k != "webhook-signature"}
    with pytest.raises(WebhookVerificationError, match="webhook-signature"):
        verify_webhook(message.body, headless, peer.secret)


def test_async_hub_main_path(live: Live) -> None:
    async def main() -> None:
        async with AsyncHub(live.base_url, live.api_key) as hub:
            person = _new_id("async")
            created = await hub.upsert_contact(person, name="Anna", email=f"{person}@example.com")
            assert created.external_id == person
            await hub.subscribe(person, TOPIC, channels=[Channel.EMAIL])
            accepted = await hub.notify(
                TOPIC, recipients=[person], template=TEMPLATE, data={"number": "B-1"}
            )
            deadline = time.monotonic() + 30
            states: list[DeliveryState] = []
            while time.monotonic() < deadline:
                states = [d.state async for d in hub.deliveries(accepted.id)]
                if states and all(s in DONE for s in states):
                    break
                await asyncio.sleep(0.2)
            assert states
            assert all(s in DONE for s in states)
            assert (await hub.notification(accepted.id)).id == accepted.id
            kinds = [e.type async for e in hub.timeline(person, limit=1)]  # a page per event
            assert EventType.DELIVERY_SENT in kinds
            assert kinds[-1] is EventType.CONTACT_CREATED
            with pytest.raises(NotFound):
                await hub.get_contact(_new_id("ghost"))

    asyncio.run(main())
