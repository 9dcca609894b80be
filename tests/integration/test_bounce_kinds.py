"""What each kind of report does to a delivery, the suppression list and the timeline, on
SQLite and PostgreSQL (issue 20): hard bounces suppress, blocks and final soft bounces fail
the delivery and suppress nobody, delay notices change nothing, a report counts once, and
soft bounces count once per address and day.

Reports are built as `Report` objects (what every reader and the ESP webhooks hand over), for
campaign deliveries written as the dispatcher writes them; the raw formats have their own
tests (test_bounces.py, the corpus tests of the readers).
"""

from __future__ import annotations

import datetime as dt
import threading
from dataclasses import dataclass

import pytest
from sqlalchemy import func, select

from hub.campaigns import report as campaign_report
from hub.channels.email.reports import Kind, Report, Verdict
from hub.db.base import utcnow
from hub.db.models import (
    Campaign,
    ContactEvent,
    Delivery,
    Notification,
    Suppression,
    UnmatchedReport,
)
from hub.domain import EventType
from hub.runtime import Runtime
from hub.services import bounces, engagement_figures
from hub.services.timeline_words import Event, Known, plain, sentence
from tests import reporting

# Midnight UTC tomorrow: the days the tests move across never depend on the hour they run.
DAY = utcnow().replace(hour=0, minute=0, second=0, microsecond=0) + dt.timedelta(days=1)


@dataclass(frozen=True)
class Sent:
    """One e-mail that left Hub: the delivery a report can be about."""

    delivery_id: int
    notification_id: int
    contact_id: int
    address: str


def seed(runtime: Runtime, *, people: int = 1, each: int = 1) -> list[list[Sent]]:
    """`people` people, each sent `each` e-mails of one campaign; their deliveries by person."""
    now = utcnow()
    with runtime.engine.begin() as db:
        topic_id = reporting.topic(db, "offers", now=now)
        reporting.template(db, "offer", now=now)
        campaign_id, first = reporting.campaign(db, topic_id=topic_id, name="Spring", now=now)
        runs = [first] + [
            reporting.notification(db, topic_id=topic_id, now=now, campaign_id=campaign_id)
            for _ in range(each - 1)
        ]
        ids = reporting.contacts(db, 1, people, now=now)
        for run in runs:
            rows = [
                {"contact_id": i, "channel": "email", "state": "sent", "sent_at": now,
                 "address": f"p{i}@example.com"}
                for i in ids
            ]  # fmt: skip
            reporting.deliveries(db, run, rows)
        found = db.execute(
            select(Delivery.id, Delivery.notification_id, Delivery.contact_id, Delivery.address)
        ).all()
    by_person: dict[int, list[Sent]] = {}
    for row in sorted(found):
        sent = Sent(row.id, row.notification_id, row.contact_id, row.address or "")
        by_person.setdefault(row.contact_id, []).append(sent)
    return [by_person[i] for i in ids]


def report_on(
    runtime: Runtime,
    sent: Sent,
    kind: Kind,
    status: str | None = None,
    action: str | None = None,
    detail: str | None = None,
    *,
    others: tuple[Verdict, ...] = (),
) -> Report:
    """A report quoting the Message-ID Hub gave `sent`, with a verdict on its address."""
    key = runtime.message_keys.key(sent.notification_id, sent.delivery_id, sent.address)
    verdict = Verdict(sent.address, kind, status, detail, action)
    return Report(f"<{key}@example.com>", (), (*others, verdict))


def record(runtime: Runtime, report: Report, now: dt.datetime | None = None) -> bounces.Recorded:
    with runtime.sessions() as session:
        recorded = bounces.record(
            session,
            report,
            hasher=runtime.hasher,
            keys=runtime.message_keys,
            now=now or DAY + dt.timedelta(hours=10),
        )
        session.commit()
    return recorded


def delivery(runtime: Runtime, sent: Sent) -> tuple[str, str | None, str | None]:
    with runtime.sessions() as session:
        row = session.get(Delivery, sent.delivery_id)
        assert row is not None
        return row.state.value, row.reason, row.error_code


def suppressed(runtime: Runtime) -> dict[str, tuple[str, dt.datetime | None]]:
    with runtime.sessions() as session:
        rows = session.scalars(select(Suppression)).all()
        return {r.address or "": (r.reason.value, r.expires_at) for r in rows}


def bounce_events(runtime: Runtime, sent: Sent) -> list[ContactEvent]:
    with runtime.sessions() as session:
        return list(
            session.scalars(
                select(ContactEvent)
                .where(
                    ContactEvent.contact_id == sent.contact_id,
                    ContactEvent.type == EventType.DELIVERY_BOUNCED,
                )
                .order_by(ContactEvent.id)
            )
        )


def words(event: ContactEvent, sent: Sent) -> str:
    """The event as the console's timeline says it."""
    said = sentence(
        Event(
            event.type.value,
            channel=event.channel.value if event.channel else None,
            reason=event.reason,
            changes=event.changes,
            actor_kind=event.actor_kind.value,
            actor=event.actor,
            source=event.source,
        ),
        Known(now=DAY, addresses={sent.delivery_id: sent.address}),
    )
    assert said is not None
    return plain(said)


def unmatched_kept(runtime: Runtime) -> int:
    with runtime.sessions() as session:
        return int(session.scalar(select(func.count()).select_from(UnmatchedReport)) or 0)


@pytest.mark.parametrize(
    ("verdict", "state", "reason", "listed", "said"),
    [
        pytest.param(
            (Kind.HARD_BOUNCE, "5.1.1", "failed", "550 5.1.1 user unknown"),
            "bounced",
            "hard_bounce",
            "hard_bounce",
            "bounced for good (hard bounce)",
            id="hard",
        ),
        pytest.param(
            (Kind.SOFT_BOUNCE, "5.2.2", "failed", "552 5.2.2 mailbox full"),
            "failed",
            "soft_bounce:mailbox_full",
            None,
            "could not be delivered (soft bounce: the mailbox is full)",
            id="mailbox-full",
        ),
        pytest.param(
            (Kind.SOFT_BOUNCE, "5.2.2", None, "552 5.2.2 mailbox full"),
            "failed",
            "soft_bounce:mailbox_full",
            None,
            "could not be delivered (soft bounce: the mailbox is full)",
            id="mailbox-full-no-action",  # a 5.x.x is final whatever Action says, or none
        ),
        pytest.param(
            (Kind.SOFT_BOUNCE, "4.4.7", "failed", "delivery time expired"),
            "failed",
            "soft_bounce:expired",
            None,
            "could not be delivered (soft bounce: a relay gave up after retrying)",
            id="relay-gave-up",
        ),
        pytest.param(
            (Kind.SOFT_BOUNCE, "4.2.2", "delayed", "452 4.2.2 over quota"),
            "sent",
            None,
            None,
            "bounced for now (soft bounce)",
            id="soft-not-final",
        ),
        pytest.param(
            (Kind.BLOCKED, "5.7.1", "failed", "550 5.7.1 message refused as spam"),
            "failed",
            "blocked",
            None,
            "was blocked by the receiving server as spam or by policy",
            id="blocked",
        ),
        pytest.param(
            (Kind.COMPLAINT, None, None, "abuse"),
            "sent",
            None,
            "complaint",
            "was marked as spam (a complaint)",
            id="complaint",
        ),
    ],
)
def test_each_kind_changes_the_delivery_the_list_and_the_timeline_as_it_should(
    runtime: Runtime,
    verdict: tuple[Kind, str | None, str | None, str],
    state: str,
    reason: str | None,
    listed: str | None,
    said: str,
) -> None:
    ((sent,),) = seed(runtime)
    kind, status, action, detail = verdict
    recorded = record(runtime, report_on(runtime, sent, kind, status, action, detail))
    assert (recorded.delivery_id, recorded.kind, recorded.duplicate) == (
        sent.delivery_id,
        kind,
        False,
    )
    assert recorded.suppressed is (listed is not None)
    now_state, now_reason, code = delivery(runtime, sent)
    assert (now_state, now_reason) == (state, reason)
    if state != "sent":
        assert code == status
    on_list = suppressed(runtime)
    if listed is None:
        assert on_list == {}
    else:
        assert on_list == {sent.address: (listed, None)}  # for good: no expiry
    (event,) = bounce_events(runtime, sent)
    assert event.reason == kind.value
    assert (event.changes or {})["status"] == status
    assert f"E-mail to {sent.address} {said}" in words(event, sent)
    assert unmatched_kept(runtime) == 0


@pytest.mark.parametrize(
    ("action", "why"),
    [
        ("delayed", "a delay notice, not a bounce"),
        ("delivered", "a delivery notice, not a bounce"),
        ("relayed", "a relay notice"),
        (None, "not a bounce (an auto-reply or a notice): Out of office"),
    ],
)
def test_a_notice_that_is_not_a_bounce_changes_and_keeps_nothing(
    runtime: Runtime, action: str | None, why: str
) -> None:
    ((sent,),) = seed(runtime)
    detail = "Out of office" if action is None else None
    notice = report_on(runtime, sent, Kind.NOT_BOUNCE, "4.4.1", action, detail)
    recorded = record(runtime, notice)
    assert (recorded.delivery_id, recorded.kind, recorded.suppressed) == (
        None,
        Kind.NOT_BOUNCE,
        False,
    )
    assert (recorded.why or "").startswith(why)
    assert delivery(runtime, sent) == ("sent", None, None)
    assert suppressed(runtime) == {}
    assert bounce_events(runtime, sent) == []
    assert unmatched_kept(runtime) == 0  # not kept as unmatched either
    # A delay notice of someone else's message is not kept for staff either.
    stray = Report("<someone-elses@example.org>", (), notice.verdicts)
    assert record(runtime, stray).unmatched_id is None
    assert unmatched_kept(runtime) == 0


def test_the_verdict_on_the_deliverys_own_address_decides_not_the_headline(
    runtime: Runtime,
) -> None:
    """A report about several recipients: another one's hard bounce suppresses nobody here."""
    ((sent,), (other,)) = seed(runtime, people=2)
    hard_elsewhere = (Verdict(other.address, Kind.HARD_BOUNCE, "5.1.1", "user unknown", "failed"),)
    delayed = report_on(runtime, sent, Kind.NOT_BOUNCE, "4.4.1", "delayed", others=hard_elsewhere)
    assert delayed.headline.kind is Kind.HARD_BOUNCE
    assert record(runtime, delayed).kind is Kind.NOT_BOUNCE
    blocked = report_on(runtime, sent, Kind.BLOCKED, "5.7.1", "failed", others=hard_elsewhere)
    recorded = record(runtime, blocked)
    assert (recorded.kind, recorded.suppressed) == (Kind.BLOCKED, False)
    assert delivery(runtime, sent)[:2] == ("failed", "blocked")
    assert suppressed(runtime) == {}
    assert delivery(runtime, other) == ("sent", None, None)  # its own report would say


def test_a_copy_of_a_report_counts_once(runtime: Runtime) -> None:
    ((sent,),) = seed(runtime)
    hard = report_on(runtime, sent, Kind.HARD_BOUNCE, "5.1.1", "failed", "user unknown")
    first = record(runtime, hard)
    assert (first.duplicate, first.suppressed) == (False, True)
    for _ in range(2):
        again = record(runtime, hard, now=DAY + dt.timedelta(hours=12))
        assert (again.duplicate, again.suppressed, again.delivery_id) == (
            True,
            False,
            sent.delivery_id,
        )
    assert len(bounce_events(runtime, sent)) == 1


@pytest.mark.parametrize("kind", [Kind.HARD_BOUNCE, Kind.COMPLAINT])
def test_a_hard_bounce_or_complaint_counts_once_per_delivery_whatever_its_status(
    runtime: Runtime, kind: Kind
) -> None:
    """A detector finds no status, the DSN says 5.1.1 (or 5.1.10): one refusal, reported by
    three readers, is one event on the timeline."""
    ((sent,),) = seed(runtime)
    first = record(runtime, report_on(runtime, sent, kind, None, "failed", "user unknown"))
    assert (first.duplicate, first.suppressed) == (False, True)
    for status in ("5.1.1", "5.1.10"):
        again = record(runtime, report_on(runtime, sent, kind, status, "failed"))
        assert (again.duplicate, again.suppressed) == (True, False)
    assert len(bounce_events(runtime, sent)) == 1


def test_a_soft_bounce_with_another_status_is_news(runtime: Runtime) -> None:
    """A message that came back full and later too large: two things to show."""
    ((sent,),) = seed(runtime)
    full = record(runtime, report_on(runtime, sent, Kind.SOFT_BOUNCE, "4.2.2", "delayed"))
    large = record(runtime, report_on(runtime, sent, Kind.SOFT_BOUNCE, "5.3.4", "failed"))
    assert (full.duplicate, large.duplicate) == (False, False)
    assert len(bounce_events(runtime, sent)) == 2


def test_an_unmatched_report_keeps_what_its_columns_hold(runtime: Runtime) -> None:
    """An ESP's status is whatever the provider sent: kept cut to its column, not refused
    by PostgreSQL (a DataError lost the event)."""
    ((sent,),) = seed(runtime)
    key = runtime.message_keys.key(sent.notification_id, sent.delivery_id, sent.address)
    long_status = "5.1.1 " + "(the provider's own words) " * 10
    verdict = Verdict("else@example.com", Kind.HARD_BOUNCE, long_status, "x" * 5000, "failed")
    recorded = record(runtime, Report(f"<{key}@example.com>", (), (verdict,), source="ses"))
    assert recorded.unmatched_id is not None
    with runtime.sessions() as session:
        kept = session.get(UnmatchedReport, recorded.unmatched_id)
        assert kept is not None
        assert (kept.status, kept.recipients) == (long_status[:32], "else@example.com")
        assert len(kept.detail or "") == bounces.DETAIL_LENGTH
    assert delivery(runtime, sent) == ("sent", None, None)


def test_two_copies_at_once_count_once(runtime: Runtime) -> None:
    """Two receivers record the same report at the same moment (on PostgreSQL truly at once,
    in two connections; SQLite writers take turns): one acts, the other is the duplicate."""
    ((sent,),) = seed(runtime)
    copy = report_on(runtime, sent, Kind.SOFT_BOUNCE, "4.4.7", "failed", "expired")
    start = threading.Barrier(2)
    results: list[bounces.Recorded] = []
    errors: list[BaseException] = []

    def receive() -> None:
        try:
            start.wait(timeout=10)
            results.append(record(runtime, copy))
        except BaseException as exc:  # reported by the assertion below
            errors.append(exc)

    threads = [threading.Thread(target=receive) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=30)
    assert errors == []
    assert sorted(r.duplicate for r in results) == [False, True]
    assert len(bounce_events(runtime, sent)) == 1
    assert delivery(runtime, sent)[:2] == ("failed", "soft_bounce:expired")


def test_soft_bounces_of_one_address_on_one_day_count_once(runtime: Runtime) -> None:
    """Four e-mails to one person come back full on the same day, even at the same moment
    from two receivers: each delivery fails, one bounce counts, nobody is suspended."""
    (mails,) = seed(runtime, each=4)
    full = [
        report_on(runtime, m, Kind.SOFT_BOUNCE, "5.2.2", "failed", "mailbox full") for m in mails
    ]
    start = threading.Barrier(2)

    def receive(report: Report) -> None:
        start.wait(timeout=10)
        record(runtime, report, now=DAY + dt.timedelta(hours=12))

    threads = [threading.Thread(target=receive, args=(r,)) for r in full[:2]]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=30)
    record(runtime, full[2], now=DAY + dt.timedelta(hours=1))
    record(runtime, full[3], now=DAY + dt.timedelta(hours=23, minutes=59))
    assert [delivery(runtime, m)[0] for m in mails] == ["failed"] * 4
    counted = [(e.changes or {})["counted"] for e in bounce_events(runtime, mails[0])]
    assert sorted(counted) == [False, False, False, True]
    assert suppressed(runtime) == {}


def test_soft_bounces_on_three_days_of_a_week_suspend_the_address_for_a_week(
    runtime: Runtime,
) -> None:
    (mails,) = seed(runtime, each=5)

    def soft(mail: Sent, day: int) -> bounces.Recorded:
        at = DAY + dt.timedelta(days=day, hours=9)
        return record(runtime, report_on(runtime, mail, Kind.SOFT_BOUNCE, "4.4.7", "failed"), at)

    # Days 0 and 8 are more than a week apart: with day 4 between, no week holds three.
    assert [soft(mails[0], 0).suppressed, soft(mails[1], 4).suppressed] == [False, False]
    assert soft(mails[2], 8).suppressed is False
    assert suppressed(runtime) == {}
    third = soft(mails[3], 9)  # days 4, 8 and 9: three within a week
    assert third.suppressed is True
    reason, expires = suppressed(runtime)[mails[0].address]
    assert reason == "soft_bounce"
    assert expires == DAY + dt.timedelta(days=9 + 7, hours=9)


def test_a_hard_bounce_during_a_soft_suspension_suppresses_for_good(runtime: Runtime) -> None:
    """A week's suspension must not hide a lasting refusal: when it ran out, the address
    would be mailed again although it no longer exists."""
    (mails,) = seed(runtime, each=4)
    for day, mail in enumerate(mails[:3]):
        at = DAY + dt.timedelta(days=day, hours=9)
        record(runtime, report_on(runtime, mail, Kind.SOFT_BOUNCE, "5.2.2", "failed"), at)
    assert suppressed(runtime)[mails[0].address][0] == "soft_bounce"
    hard = record(runtime, report_on(runtime, mails[3], Kind.HARD_BOUNCE, "5.1.1", "failed"))
    assert hard.suppressed is True
    assert suppressed(runtime) == {mails[0].address: ("hard_bounce", None)}


def test_the_campaign_report_counts_blocked_and_soft_failures_as_failed_not_bounced(
    runtime: Runtime,
) -> None:
    hard, blocked, full = (mails[0] for mails in seed(runtime, people=3))
    record(runtime, report_on(runtime, hard, Kind.HARD_BOUNCE, "5.1.1", "failed"))
    record(runtime, report_on(runtime, blocked, Kind.BLOCKED, "5.7.1", "failed", "spam"))
    record(runtime, report_on(runtime, full, Kind.SOFT_BOUNCE, "5.2.2", "failed"))
    with runtime.sessions() as session:
        campaign = session.scalars(select(Campaign)).one()
        built = campaign_report.build(session, campaign, now=utcnow())
        ids = select(Notification.id).where(Notification.campaign_id == campaign.id)
        engagement = engagement_figures.figures(
            session, ids, topic_id=campaign.topic_id, topic_key="offers"
        )
    assert (built.totals.sent, built.totals.bounced, built.totals.failed) == (3, 1, 2)
    assert engagement.bounced == 1  # "e-mails that came back" for good
    said = {f.contact: (f.state, f.words) for f in built.failures}
    assert said == {
        "p1": ("bounced", "it bounced for good (hard bounce)"),
        "p2": ("failed", "blocked by the receiving server as spam or by policy"),
        "p3": ("failed", "it came back (a soft bounce): the mailbox is full"),
    }
