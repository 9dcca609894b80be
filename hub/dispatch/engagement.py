"""Recording opens and clicks: the redirect answers at once, the record follows within seconds.

Every pixel fetch and link click is handed to a `Recorder`, which writes them in batches from
its own thread: the person's browser never waits on the database, and a burst of clicks
costs one transaction per tick. A hit waits `settle` seconds before it is written, so that
every click of one message that came "at once" (a link scanner opening all its links) is
seen together and flagged. The first of each (delivery, kind, link, person-or-machine) is kept
as an `engagements` row and a timeline event (which the outbox relays to endpoints that asked
for `delivery.opened` / `delivery.clicked`); repeats add nothing. If the process dies, the
hits of the last `settle` seconds are lost: an engagement is a measurement, not a promise.
"""

from __future__ import annotations

import collections
import datetime as dt
import logging
import threading
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import or_, select
from sqlalchemy.orm import Session, sessionmaker

from hub import metrics
from hub.db.base import Base
from hub.db.models import ContactPreferences, Delivery, Engagement, Notification, Topic
from hub.db.upsert import insert_ignoring_duplicates
from hub.dispatch import machines
from hub.dispatch.tracked_links import Tracked
from hub.domain import ActorKind, AgentClass, Channel, EngagementKind, EventType, MachineReason
from hub.services import timeline
from hub.services.actor import Actor

log = logging.getLogger(__name__)

_TABLE = Base.metadata.tables[Engagement.__tablename__]
_EVENT = {
    EngagementKind.OPEN: EventType.DELIVERY_OPENED,
    EngagementKind.CLICK: EventType.DELIVERY_CLICKED,
}
_REMEMBERED = 100_000  # (delivery, kind, link) keys known to have a person's row
_TRIES = 3  # a batch the database refused is tried again this many times, then logged and let go


@dataclass(frozen=True, slots=True)
class Hit:
    """One request for a tracked URL, as it came."""

    tracked: Tracked
    method: str
    user_agent: str | None
    ip: str | None
    at: dt.datetime
    seen: float = field(default_factory=time.monotonic)
    tries: int = 0


@dataclass(frozen=True, slots=True)
class _Target:
    notification_id: int
    contact_id: int
    channel: Channel
    topic_key: str
    sent_at: dt.datetime | None


class Recorder:
    def __init__(
        self,
        sessions: sessionmaker[Session],
        *,
        settle: float = 2.0,
        too_soon: float = 5.0,
        tick: float = 0.25,
        limit: int = 100_000,
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        """`settle`: seconds a hit waits (and the window of "every link at once");
        `too_soon`: a click this many seconds after the send is a machine's; `limit`: hits
        held at most (past it, new ones are counted and dropped, and logged)."""
        self.sessions = sessions
        self.settle = settle
        self.too_soon = too_soon
        self.tick = tick
        self.limit = limit
        self.monotonic = monotonic
        self.dropped = 0
        self.written = 0
        self._pending: list[Hit] = []
        # (delivery, kind, link) with a person's row written: a repeat adds nothing, so it is
        # let go before it costs a read (a few most recent, as a link is followed in a burst).
        self._people: collections.OrderedDict[tuple[int, str, int], None] = (
            collections.OrderedDict()
        )
        self._attempted: list[tuple[int, str, int]] = []
        self._recent: dict[int, collections.deque[tuple[float, int]]] = {}
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def add(self, hit: Hit) -> None:
        """Never blocks on the database; starts the writer on first use."""
        with self._lock:
            if len(self._pending) >= self.limit:
                self.dropped += 1
                metrics.ENGAGEMENTS_LOST.labels("full").inc()
                if self.dropped % 1000 == 1:
                    log.warning("engagement recorder full: %d hits dropped so far", self.dropped)
                return
            self._pending.append(hit)
            if self._thread is None and not self._stop.is_set():
                self._thread = threading.Thread(
                    target=self._run, name="hub-engagement", daemon=True
                )
                self._thread.start()

    def close(self) -> None:
        """Stop the writer and write what is held, settled or not."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=10)
        self.flush(everything=True)

    def _run(self) -> None:
        while not self._stop.wait(self.tick):
            try:
                self.flush()
            except Exception:  # the thread must outlive one bad batch; flush logged it
                log.exception("engagement recorder: a flush failed")

    def flush(self, *, everything: bool = False) -> int:
        """Write the hits that have settled (all of them with `everything`); returns how many
        engagements were new."""
        now = self.monotonic()
        cutoff = now if everything else now - self.settle
        with self._lock:
            ready = [h for h in self._pending if h.seen <= cutoff]
            if not ready:
                return 0
            waiting = [h for h in self._pending if h.seen > cutoff]
            self._pending = waiting
        ready = [h for h in ready if _first(h) not in self._people]  # a person's row exists
        if not ready:
            return 0
        scanned = self._all_at_once(ready, waiting, now)
        try:
            with self.sessions.begin() as session:
                new = self._write(session, ready, scanned)
            self._learn()
        except Exception:
            again = [_retried(h) for h in ready if h.tries + 1 < _TRIES]
            metrics.ENGAGEMENTS_LOST.labels("database").inc(len(ready) - len(again))
            log.exception(
                "engagement recorder: writing %d hits failed; %d kept to try again",
                len(ready),
                len(again),
            )
            with self._lock:
                self._pending = again + self._pending
            return 0
        self.written += new
        return new

    def _all_at_once(self, ready: list[Hit], waiting: list[Hit], now: float) -> set[int]:
        """Positions in `ready` of clicks with a click on another link of the same message
        within `settle` seconds, counting those still waiting and those written lately."""
        for delivery_id in [d for d, q in self._recent.items() if q and q[-1][0] < now - 60]:
            del self._recent[delivery_id]
        by_delivery: dict[int, list[tuple[int | None, float, int]]] = {}
        for position, hit in enumerate(ready):
            if hit.tracked.kind is EngagementKind.CLICK:
                by_delivery.setdefault(hit.tracked.delivery_id, []).append(
                    (position, hit.seen, hit.tracked.link_index)
                )
        # The waiting clicks grouped in one pass: scanning them once per message was quadratic
        # in the click rate (66 ms a tick at 1,000 clicks/s, more than a core at 2,000).
        waiting_by: dict[int, list[tuple[int | None, float, int]]] = {}
        for h in waiting:
            if h.tracked.kind is EngagementKind.CLICK and h.tracked.delivery_id in by_delivery:
                waiting_by.setdefault(h.tracked.delivery_id, []).append(
                    (None, h.seen, h.tracked.link_index)
                )
        flagged: set[int] = set()
        for delivery_id, clicks in by_delivery.items():
            others = waiting_by.get(delivery_id, [])
            earlier = [(None, seen, index) for seen, index in self._recent.get(delivery_id, ())]
            every = clicks + others + earlier
            together = machines.all_at_once([(s, i) for _, s, i in every], window=self.settle)
            flagged.update(
                p for n, (p, _, _) in enumerate(every) if n in together and p is not None
            )
            recent = self._recent.setdefault(delivery_id, collections.deque(maxlen=50))
            recent.extend((seen, index) for _, seen, index in clicks)
        return flagged

    def _write(self, session: Session, hits: list[Hit], scanned: set[int]) -> int:
        """Returns how many were new; `_people` learns which (delivery, kind, link) now have a
        person's row once the caller's transaction commits (`_learn`)."""
        targets = _targets(session, {h.tracked.delivery_id for h in hits})
        written = self._written_clicks(session, hits)
        rows: dict[tuple[int, str, int, bool], dict[str, Any]] = {}
        events: dict[tuple[int, str, int, bool], dict[str, Any]] = {}
        for position, hit in enumerate(hits):
            target = targets.get(hit.tracked.delivery_id)
            if target is None:
                continue  # erased since, tracking turned off since, or not this hub's
            together = position in scanned or self._near(hit, written)
            row, event = self._engagement(hit, target, all_links=together)
            key = (hit.tracked.delivery_id, row["kind"], row["link_index"], row["machine"])
            if key not in rows:
                rows[key], events[key] = row, event
        self._attempted = [(d, kind, link) for d, kind, link, machine in rows if not machine]
        if not rows:
            return 0
        statement = insert_ignoring_duplicates(session, _TABLE).returning(
            _TABLE.c.delivery_id, _TABLE.c.kind, _TABLE.c.link_index, _TABLE.c.machine
        )
        inserted = session.execute(statement, list(rows.values())).all()
        kept = [events[(d, EngagementKind(k).value, i, bool(m))] for d, k, i, m in inserted]
        for _, kind, _, machine in inserted:
            metrics.ENGAGEMENTS.labels(str(kind), str(bool(machine)).lower()).inc()
        timeline.record_many(session, kept)
        return len(kept)

    def _learn(self) -> None:
        for key in self._attempted:
            self._people[key] = None
            self._people.move_to_end(key)
        while len(self._people) > _REMEMBERED:
            self._people.popitem(last=False)
        self._attempted = []

    def _written_clicks(
        self, session: Session, hits: list[Hit]
    ) -> dict[int, list[tuple[dt.datetime, int]]]:
        """Clicks already written for these hits' deliveries in the last moments: another API
        process may have taken a scanner's other links (each process sees only its own)."""
        clicks = [h for h in hits if h.tracked.kind is EngagementKind.CLICK]
        if not clicks:
            return {}
        since = min(h.at for h in clicks) - dt.timedelta(seconds=self.settle)
        rows = session.execute(
            select(Engagement.delivery_id, Engagement.occurred_at, Engagement.link_index).where(
                Engagement.delivery_id.in_(sorted({h.tracked.delivery_id for h in clicks})),
                Engagement.kind == EngagementKind.CLICK,
                Engagement.occurred_at >= since,
            )
        )
        written: dict[int, list[tuple[dt.datetime, int]]] = {}
        for delivery_id, at, index in rows:
            written.setdefault(delivery_id, []).append((at, index))
        return written

    def _near(self, hit: Hit, written: dict[int, list[tuple[dt.datetime, int]]]) -> bool:
        if hit.tracked.kind is not EngagementKind.CLICK:
            return False
        return any(
            index != hit.tracked.link_index and abs((hit.at - at).total_seconds()) <= self.settle
            for at, index in written.get(hit.tracked.delivery_id, ())
        )

    def _engagement(
        self, hit: Hit, target: _Target, *, all_links: bool
    ) -> tuple[dict[str, Any], dict[str, Any]]:
        tracked = hit.tracked
        since = (hit.at - target.sent_at).total_seconds() if target.sent_at else None
        verdict = machines.classify(
            kind=tracked.kind,
            method=hit.method,
            user_agent=hit.user_agent,
            seconds_since_sent=since,
            too_soon=self.too_soon,
        )
        agent, machine, reason = verdict.agent, verdict.machine, verdict.reason
        if all_links and not machine:
            agent, machine, reason = AgentClass.LINK_SCANNER, True, MachineReason.ALL_LINKS
        row = {
            "delivery_id": tracked.delivery_id,
            "notification_id": target.notification_id,
            "contact_id": target.contact_id,
            "kind": tracked.kind.value,
            "link_index": tracked.link_index,
            "url": tracked.url,
            "machine": machine,
            "machine_reason": reason.value if reason else None,
            "agent": agent.value,
            "occurred_at": hit.at,
        }
        changes: dict[str, Any] = {
            "delivery_id": tracked.delivery_id,
            "notification_id": target.notification_id,
            "agent": agent.value,
            "machine": machine,
        }
        if tracked.url is not None:
            changes |= {"link": tracked.url, "link_index": tracked.link_index}
        actor = Actor(
            kind=ActorKind.INBOUND,
            name="tracking",
            source=f"tracking.{tracked.kind.value}",
            ip=hit.ip,
            user_agent=hit.user_agent,
        )
        event = timeline.event_row(
            contact_id=target.contact_id,
            type=_EVENT[tracked.kind],
            actor=actor,
            at=hit.at,
            changes=changes,
            topic_key=target.topic_key,
            channel=target.channel,
            reason=reason.value if reason else None,
        )
        return row, event


def _targets(session: Session, delivery_ids: Iterable[int]) -> dict[int, _Target]:
    """The deliveries hits may be recorded for: not of a person who has since turned
    tracking off (their old messages still lead where they did, unrecorded)."""
    rows = session.execute(
        select(
            Delivery.id,
            Delivery.notification_id,
            Delivery.contact_id,
            Delivery.channel,
            Delivery.sent_at,
            Topic.key,
        )
        .join(Notification, Notification.id == Delivery.notification_id)
        .join(Topic, Topic.id == Notification.topic_id)
        .outerjoin(ContactPreferences, ContactPreferences.contact_id == Delivery.contact_id)
        .where(
            Delivery.id.in_(sorted(delivery_ids)),
            or_(
                ContactPreferences.tracking_off.is_(None),
                ContactPreferences.tracking_off.is_(False),
            ),
        )
    )
    return {
        row.id: _Target(row.notification_id, row.contact_id, row.channel, row.key, row.sent_at)
        for row in rows
    }


def _first(hit: Hit) -> tuple[int, str, int]:
    return (hit.tracked.delivery_id, hit.tracked.kind.value, hit.tracked.link_index)


def _retried(hit: Hit) -> Hit:
    return Hit(hit.tracked, hit.method, hit.user_agent, hit.ip, hit.at, hit.seen, hit.tries + 1)
