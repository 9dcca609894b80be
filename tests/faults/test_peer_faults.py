"""RELIABILITY 4, 5, 6 and 18 under fire: every peer misbehaves per recipient, and each
recipient's delivery must end as the fault dictates, say so on their timeline, and match what
the peer really holds.

SMTP answers 421, 451, 550 and 554, and hangs up after DATA (with and without keeping the
message); the Twilio peer answers 429 with Retry-After, 500 and 503, hangs past the client's
timeout, answers after it, and refuses an opted-out number; the webhook receiver answers 410,
3xx and 503 with Retry-After, and times out. In-process workers, SQLite and PostgreSQL.
"""

from __future__ import annotations

import datetime as dt
import time
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass

import pytest
from fastapi.testclient import TestClient

from hub.domain import DeliveryState, EventType, Scope
from hub.runtime import Runtime
from hub.settings import Settings
from tests.conftest import TEST_SECRET, make_key
from tests.dispatching import hub_running, ok, peer_settings, person, settled, topic, wait_for
from tests.faults.conftest import Figures
from tests.faults.ledger import Key, Logged, Tally, contact_log, message_id, reconcile, webhook_id
from tests.faults.lossy_smtp import ReplyLosingSmtpPeer
from tests.peers import twilio as twilio_faults
from tests.peers.twilio import TwilioPeer
from tests.peers.webhooks import Received, WebhookPeer

CONTENT = {
    "": {
        "email_subject": "Notice {{ data.n }}",
        "email_text": "Notice {{ data.n }}",
        "sms_body": "Notice {{ data.n }}",
        "webhook_json": {"n": "{{ data.n }}"},
    }
}
FIRST_RETRY = 0.2  # seconds; doubling per attempt, jittered by ±20 %
CLIENT_TIMEOUT = 1.0  # Twilio's and the webhooks' request timeout, seconds
HEALTHY = 10  # recipients per channel whom the peer treats well


@dataclass
class Wired:
    client: TestClient
    auth: dict[str, str]
    runtime: Runtime
    smtp: ReplyLosingSmtpPeer
    twilio: TwilioPeer
    hooks: WebhookPeer
    database: str

    def notify(self, n: int, channel: str) -> int:
        body = {"topic": "alerts", "content": CONTENT, "data": {"n": n}, "channels": [channel]}
        return int(
            ok(self.client.post("/v1/notifications", json=body, headers=self.auth), 202)["id"]
        )

    def settle(self, notification_id: int) -> None:
        settled(self.client, self.auth, notification_id)

    def log(self, ids: list[int], key: Key) -> dict[tuple[str, int], Logged]:
        """Deliveries by (address, which notification: 1 or 2)."""
        order = {notification_id: n for n, notification_id in enumerate(ids, 1)}
        logged = contact_log(self.runtime.reads, ids, key=key)
        return {(str(d.address), order[d.notification_id]): d for d in logged.values()}


@pytest.fixture
def wired(database_url: str, monkeypatch: pytest.MonkeyPatch) -> Iterator[Wired]:
    monkeypatch.setenv("HUB_TWILIO_RATE_PER_SECOND", "100")
    monkeypatch.setenv("HUB_TWILIO_TIMEOUT", str(CLIENT_TIMEOUT))
    monkeypatch.setenv("HUB_WEBHOOK_TIMEOUT", str(CLIENT_TIMEOUT))
    with ReplyLosingSmtpPeer() as smtp, TwilioPeer() as twilio, WebhookPeer() as hooks:
        settings = Settings(
            database_url=database_url,
            secret_key=TEST_SECRET,
            **peer_settings(smtp, twilio),
            webhook_secret=hooks.secret,
            webhook_allow_private=True,
            delivery_first_retry_seconds=FIRST_RETRY,
            sweep_interval_seconds=0.1,
        )
        with hub_running(settings) as (client, runtime):
            auth = make_key(runtime, "alerts", Scope.ADMIN, Scope.CONTACTS, Scope.NOTIFY)
            topic(client, auth, "alerts")
            database = "sqlite" if settings.is_sqlite else "postgresql"
            yield Wired(client, auth, runtime, smtp, twilio, hooks, database)
        assert twilio.take_violations() == []


def waits(d: Logged) -> list[float]:
    """Seconds each `delivery.retrying` event asked to wait before the next attempt."""
    return [
        (dt.datetime.fromisoformat(e.changes["retry_at"]) - _aware(e.at)).total_seconds()
        for e in d.of(EventType.DELIVERY_RETRYING)
    ]


def _aware(at: dt.datetime) -> dt.datetime:
    return at if at.tzinfo else at.replace(tzinfo=dt.UTC)  # SQLite keeps no offset


def spent(d: Logged) -> int:
    """Attempts a delivery spent: every try, except those refused while the provider
    refused everyone (the channel paused; such a wait spends nothing)."""
    paused = [e for e in d.of(EventType.DELIVERY_RETRYING) if e.changes.get("channel_paused")]
    return 1 + len(d.of(EventType.DELIVERY_RETRYING)) - len(paused)


def kinds(d: Logged) -> list[str]:
    return [e.type for e in d.trail]


def report(figures: Figures, name: str, wired: Wired, tally: Tally, **more: object) -> None:
    figures(f"{name}[{wired.database}]", **tally.figures(), **more)


def test_smtp_refusals_and_hang_ups_per_recipient(wired: Wired, figures: Figures) -> None:
    """4xx retried with growing backoff; 5xx never retried, a bad mailbox suppressed before
    the next send; a hang-up after DATA resent under the same Message-ID and flagged."""
    smtp = wired.smtp
    smtp.script("busy@example.com", at="rcpt", reply="421 4.7.0 Too busy, later", times=2)
    smtp.script("grey@example.com", at="rcpt", reply="451 4.7.1 Greylisted", times=1)
    smtp.script("gone@example.com", at="rcpt", reply="550 5.1.1 No such user")
    smtp.script("spam@example.com", at="data", reply="554 5.7.1 Refused as spam")
    smtp.script("cut@example.com", at="data", drop=True, times=1)  # the message is lost too
    smtp.lose_reply("kept@example.com")  # the message is kept, its reply lost
    names = ["busy", "grey", "gone", "spam", "cut", "kept"] + [f"ok{i}" for i in range(HEALTHY)]
    for name in names:
        person(
            wired.client,
            wired.auth,
            name,
            email=f"{name}@example.com",
            subscribe={"alerts": ["email"]},
        )
    started = time.monotonic()
    first = wired.notify(1, "email")
    wired.settle(first)
    recovery = time.monotonic() - started
    second = wired.notify(2, "email")
    wired.settle(second)

    log = wired.log([first, second], message_id(wired.runtime.message_keys, "example.com"))
    received = Counter(str(r.message["Message-ID"]) for r in smtp.received)
    tally = reconcile(log.values(), received)
    states = Counter(str(d.state) for (_, n), d in log.items() if n == 1)
    report(
        figures,
        "smtp-peer",
        wired,
        tally,
        bounced=states["bounced"],
        failed=states["failed"],
        recovery_s=recovery,
    )
    assert tally.problems == [], tally.problems
    assert (tally.lost, tally.unknown, tally.unexpected) == (0, 0, 0)

    def delivery(name: str, n: int = 1) -> Logged:
        return log[(f"{name}@example.com", n)]

    busy, grey = delivery("busy"), delivery("grey")
    assert (busy.state, busy.attempts, busy.ambiguous) == (DeliveryState.SENT, 3, False)
    assert [e.changes["code"] for e in busy.of(EventType.DELIVERY_RETRYING)] == ["421", "421"]
    first_wait, second_wait = waits(busy)
    assert FIRST_RETRY * 0.8 <= first_wait < second_wait, "backoff grows per attempt"
    assert (grey.state, grey.attempts, grey.events["delivery.retrying"]) == ("sent", 2, 1)

    gone = delivery("gone")
    assert (gone.state, gone.reason, gone.error_code) == ("bounced", "hard_bounce", "550")
    assert gone.attempts == 1, "a 5xx is never retried"
    assert sorted(kinds(gone)) == ["delivery.failed", "suppression.added"]
    again = delivery("gone", 2)
    assert (again.state, again.reason) == ("suppressed", "suppressed:hard_bounce")
    assert received[again.key] == 0

    spam = delivery("spam")
    assert (spam.state, spam.reason, spam.error_code, spam.attempts) == (
        "failed",
        "rejected",
        "554",
        1,
    )
    assert "suppression.added" not in kinds(spam), "a policy refusal is not a dead mailbox"

    for name, copies in (("cut", 1), ("kept", 2)):
        d = delivery(name)
        assert (d.state, d.attempts, d.ambiguous) == ("sent", 2, True), name
        assert kinds(d) == ["delivery.unknown", "delivery.sent"], name
        assert received[d.key] == copies, f"{name}: the same Message-ID, {copies} copies"
    for n in (1, 2):
        for i in range(HEALTHY):
            d = delivery(f"ok{i}", n)
            assert (d.state, d.attempts, received[d.key]) == ("sent", 1, 1)


SMS = {  # number -> (the peer's fault, how many times)
    "+14155550401": (twilio_faults.too_many_requests(retry_after=1), 2),
    "+14155550402": (twilio_faults.server_error(500), 1),
    "+14155550403": (twilio_faults.server_error(503), 2),
    "+14155550404": (twilio_faults.hang(), 1),  # no answer, nothing created
    "+14155550405": (twilio_faults.delay(2500), 1),  # created after the client gave up
    "+14155550406": (twilio_faults.unsubscribed(), None),  # 21610: the carrier's STOP
}
RATE_LIMITED, FAILING, UNAVAILABLE, HANGING, SLOW, OPTED_OUT = SMS


def test_twilio_throttling_errors_and_silence(wired: Wired, figures: Figures) -> None:
    """429 honours Retry-After, 5xx is retried, 21610 suppresses; a request that got no answer
    is `unknown` and never resent blindly (Twilio takes no idempotency key)."""
    twilio = wired.twilio
    healthy = [f"+1415555030{i}" for i in range(HEALTHY)]
    for number, (fault, times) in SMS.items():
        twilio.script(number, fault, times=times)
    for number in [*SMS, *healthy]:
        person(
            wired.client, wired.auth, f"p{number[1:]}", phone=number, subscribe={"alerts": ["sms"]}
        )
    started = time.monotonic()
    first = wired.notify(1, "sms")
    wired.settle(first)
    recovery = time.monotonic() - started
    # The slow request's message is created after Hub gave up on it: wait for the peer.
    wait_for("the late message", lambda: SLOW in {a.form["To"] for a in twilio.accepted})
    second = wired.notify(2, "sms")
    wired.settle(second)

    bodies = {first: "Notice 1", second: "Notice 2"}
    log = wired.log([first, second], lambda row: f"{row.address} {bodies[row.notification_id]}")
    received = Counter(f"{a.form['To']} {a.form['Body']}" for a in twilio.accepted)
    tally = reconcile(log.values(), received)
    report(
        figures,
        "twilio-peer",
        wired,
        tally,
        attempts=len(twilio.attempts),
        recovery_s=recovery,
    )
    assert tally.problems == [], tally.problems
    assert (tally.lost, tally.unexpected, tally.unknown) == (0, 0, 2)

    limited = log[(RATE_LIMITED, 1)]
    assert (limited.state, limited.attempts) == ("sent", spent(limited))
    assert [e.changes["code"] for e in limited.of(EventType.DELIVERY_RETRYING)] == ["20429"] * 2
    assert min(waits(limited)) >= 1.0, "Retry-After: 1 is honoured"
    for number, tries in ((FAILING, 2), (UNAVAILABLE, 3)):
        d = log[(number, 1)]
        assert len(d.of(EventType.DELIVERY_RETRYING)) + 1 == tries, number
        assert (d.state, d.attempts, d.ambiguous) == ("sent", spent(d), False), number
    for number, copies in ((HANGING, 0), (SLOW, 1)):
        d = log[(number, 1)]
        assert (d.state, d.reason, d.attempts, d.ambiguous) == ("unknown", "no_answer", 1, True)
        assert kinds(d) == ["delivery.unknown"], number
        assert received[d.key] == copies, number
        assert log[(number, 2)].state == "sent", "the next message goes as usual"
    opted_out = log[(OPTED_OUT, 1)]
    assert (opted_out.state, opted_out.reason, opted_out.attempts) == (
        "failed",
        "carrier_opt_out",
        1,
    )
    assert "suppression.added" in kinds(opted_out)
    assert log[(OPTED_OUT, 2)].reason == "suppressed:carrier_opt_out"
    tried = Counter(to for to, _ in twilio.attempts)
    assert tried[OPTED_OUT] == 1, "an opted-out number is asked once, ever"
    for number in healthy:
        assert [log[(number, n)].attempts for n in (1, 2)] == [1, 1]


def first_call(hooks: WebhookPeer, path: str) -> Received:
    """The first request to `path`, once the receiver has surely picked its answer to it
    (it does so just after recording the request), so re-scripting the path is safe."""
    (call,) = wait_for(f"a call to {path}", lambda: [r for r in hooks.received if r.path == path])
    time.sleep(0.2)
    return call


REDIRECTS = {"/moved": 301, "/found": 302, "/see-other": 303, "/temporary": 307, "/permanent": 308}


def test_webhook_gone_redirects_and_retry_after(wired: Wired, figures: Figures) -> None:
    """410 suppresses the endpoint; a 3xx is never followed (and not retried); 503 with
    Retry-After waits that long, then goes through once."""
    hooks = wired.hooks
    hooks.answer("/gone", status=410)
    for path, status in REDIRECTS.items():
        hooks.answer(path, status=status, headers={"location": hooks.url("/elsewhere")})
    hooks.answer("/busy", status=503, headers={"retry-after": "2"})
    paths = ["/gone", *REDIRECTS, "/busy"] + [f"/ok{i}" for i in range(HEALTHY)]
    for path in paths:
        person(
            wired.client,
            wired.auth,
            f"svc{path.replace('/', '-')}",
            webhook_url=hooks.url(path),
            subscribe={"alerts": ["webhook"]},
        )
    started = time.monotonic()
    first = wired.notify(1, "webhook")
    refused = first_call(hooks, "/busy")
    hooks.answer("/busy", status=204)  # after the 503 and well before its Retry-After
    wired.settle(first)
    recovery = time.monotonic() - started
    second = wired.notify(2, "webhook")
    wired.settle(second)

    log = wired.log([first, second], webhook_id(wired.runtime.message_keys))
    assert hooks.rejected == [], "every request verifies with the reference library"
    # What the receiver took: not what it refused (410, 3xx, the one 503).
    taken = [r for r in hooks.verified if r.path not in {"/gone", *REDIRECTS} and r is not refused]
    received = Counter(r.headers["webhook-id"] for r in taken)
    tally = reconcile(log.values(), received)
    report(
        figures,
        "webhook-peer",
        wired,
        tally,
        redirects=len(REDIRECTS),
        recovery_s=recovery,
    )
    assert tally.problems == [], tally.problems
    assert (tally.lost, tally.unexpected, tally.unknown) == (0, 0, 0)

    def delivery(path: str, n: int = 1) -> Logged:
        return log[(hooks.url(path), n)]

    gone = delivery("/gone")
    assert (gone.state, gone.reason, gone.attempts) == ("failed", "endpoint_gone", 1)
    assert "suppression.added" in kinds(gone)
    assert delivery("/gone", 2).reason == "suppressed:endpoint_gone"
    for path, status in REDIRECTS.items():
        for n in (1, 2):
            d = delivery(path, n)
            assert (d.state, d.error_code, d.attempts) == ("failed", str(status), 1), path
    assert not [r for r in hooks.received if r.path == "/elsewhere"], "no redirect followed"
    busy = delivery("/busy")
    assert (busy.state, busy.attempts, busy.ambiguous) == ("sent", 2, False)
    assert min(waits(busy)) >= 2.0, "Retry-After: 2 is honoured"
    paths_hit = Counter(r.path for r in hooks.received)
    assert paths_hit["/busy"] == 3  # the 503, the retry, the second notification
    assert paths_hit["/gone"] == 1, "a gone endpoint is never called again"


def receiver_answering_late(wired: Wired, figures: Figures) -> tuple[Logged, int, Tally]:
    """The receiver takes the request and answers after Hub's timeout, then answers in time:
    the delivery, how many copies the receiver took, and the reconciliation."""
    hooks = wired.hooks
    hooks.answer("/slow", delay=3 * CLIENT_TIMEOUT)
    person(
        wired.client,
        wired.auth,
        "svc-slow",
        webhook_url=hooks.url("/slow"),
        subscribe={"alerts": ["webhook"]},
    )
    started = time.monotonic()
    first = wired.notify(1, "webhook")
    first_call(hooks, "/slow")
    hooks.answer("/slow", status=204)  # while the first waits to answer, before the retry
    wired.settle(first)
    recovery = time.monotonic() - started
    log = wired.log([first], webhook_id(wired.runtime.message_keys))
    received = Counter(r.headers["webhook-id"] for r in hooks.verified)
    tally = reconcile(log.values(), received)
    report(figures, "webhook-timeout", wired, tally, recovery_s=recovery)
    slow = log[(hooks.url("/slow"), 1)]
    return slow, received[slow.key], tally


def test_webhook_timeout_is_resent_under_the_same_id(wired: Wired, figures: Figures) -> None:
    """A timeout is retried (RELIABILITY 5's HTTP sibling), and the copy carries the same
    webhook-id, by which the receiver can drop it."""
    slow, copies, tally = receiver_answering_late(wired, figures)
    assert (slow.state, slow.attempts, copies) == ("sent", 2, 2)
    assert (tally.lost, tally.unexpected) == (0, 0)
    assert len(wired.hooks.verified) == 2


def test_webhook_timeout_is_flagged_ambiguous(wired: Wired, figures: Figures) -> None:
    """Hub cannot know whether a request that got no answer arrived: the contact log must
    flag the delivery, as it does for e-mail whose reply after DATA never came."""
    slow, copies, tally = receiver_answering_late(wired, figures)
    assert copies == 2
    assert tally.problems == [], tally.problems
    assert slow.ambiguous
    assert kinds(slow) == ["delivery.unknown", "delivery.sent"]
