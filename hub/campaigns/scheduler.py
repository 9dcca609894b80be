"""The scheduler: dispatch each campaign occurrence exactly once, and notice when it is done.

Several schedulers may run at once (`hub serve`'s own, `hub scheduler` processes). Each tick
takes due campaigns with `FOR UPDATE SKIP LOCKED` on PostgreSQL (SQLite has one writer), and
an occurrence is a row unique on (campaign, occurrence time), inserted in the same
transaction as its notification: a second scheduler, or a retried tick, inserts nothing and
creates nothing (RELIABILITY 7).
"""

from __future__ import annotations

import datetime as dt
import logging
import threading

from sqlalchemy import exists, select
from sqlalchemy.orm import Session, sessionmaker

from hub.campaigns import ab_arms, ab_plan, ab_winner
from hub.campaigns.service import SCHEDULE
from hub.db.base import utcnow
from hub.db.models import Campaign, CampaignRun, Delivery, Notification
from hub.db.upsert import insert_ignoring_duplicates
from hub.domain import CampaignState, DeliveryState, NotificationState
from hub.queue import Enqueuer
from hub.schemas import schedules

log = logging.getLogger("hub.scheduler")
IN_FLIGHT = (DeliveryState.QUEUED, DeliveryState.SENDING, DeliveryState.DEFERRED)


def tick(session: Session, *, now: dt.datetime, limit: int = 100) -> list[int]:
    """Dispatch due occurrences and close finished runs; the notifications to enqueue once
    the caller has committed."""
    fan_out: list[int] = []
    query = (
        select(Campaign)
        .where(Campaign.state == CampaignState.SCHEDULED, Campaign.next_run_at <= now)
        .order_by(Campaign.next_run_at)
        .limit(limit)
    )
    if session.get_bind().dialect.name == "postgresql":
        query = query.with_for_update(skip_locked=True)
    for campaign in session.scalars(query):
        fan_out.extend(_dispatch(session, campaign, now))
    fan_out.extend(ab_winner.decide_due(session, now=now))
    _close_finished(session, now)
    return fan_out


def _dispatch(session: Session, campaign: Campaign, now: dt.datetime) -> list[int]:
    occurrence = campaign.next_run_at
    assert occurrence is not None
    run_id = session.scalar(
        insert_ignoring_duplicates(session, CampaignRun)
        .values(campaign_id=campaign.id, occurrence_at=occurrence, created_at=now)
        .returning(CampaignRun.id)
    )
    spec = SCHEDULE.validate_python(campaign.schedule)
    campaign.next_run_at = schedules.next_run(spec, occurrence)
    campaign.state = CampaignState.SENDING
    campaign.updated_at = now
    if run_id is None:
        return []  # this occurrence was dispatched already
    made = ab_arms.occurrence(session, campaign, spec=spec, now=now)
    if not made:
        return []  # its template is gone (logged): the occurrence goes without it
    session.get_one(CampaignRun, run_id).notification_id = made[0]
    log.info(
        "campaign %s: occurrence %s dispatched as notification(s) %s",
        campaign.id,
        occurrence.isoformat(),
        ", ".join(map(str, made)),
    )
    return made


def _close_finished(session: Session, now: dt.datetime) -> None:
    """Campaigns whose runs are all fanned out and settled: done, or scheduled again."""
    mine = Notification.campaign_id == Campaign.id
    busy_fan_out = exists().where(mine, Notification.state == NotificationState.ACCEPTED)
    busy_delivery = exists().where(
        mine, Delivery.notification_id == Notification.id, Delivery.state.in_(IN_FLIGHT)
    )
    closing = list(
        session.scalars(
            select(Campaign).where(
                Campaign.state == CampaignState.SENDING, ~busy_fan_out, ~busy_delivery
            )
        )
    )
    for campaign in closing:
        if ab_plan.awaiting_winner(campaign.ab):
            continue  # its test group is done; the rest goes once the winner is picked
        campaign.state = CampaignState.SCHEDULED if campaign.next_run_at else CampaignState.DONE
        campaign.updated_at = now


class Scheduler:
    """Runs `tick` every `interval` seconds in a thread: in `hub serve`, or `hub scheduler`."""

    def __init__(
        self, sessions: sessionmaker[Session], enqueuer: Enqueuer, *, interval: float = 2.0
    ) -> None:
        self.sessions = sessions
        self.enqueuer = enqueuer
        self.interval = interval
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def tick(self) -> list[int]:
        with self.sessions() as session, session.begin():
            fan_out = tick(session, now=utcnow())
        for notification_id in fan_out:
            self.enqueuer.try_fan_out(notification_id)
        return fan_out

    def start(self) -> None:
        self._thread = threading.Thread(target=self._forever, name="hub-scheduler", daemon=True)
        self._thread.start()

    def _forever(self) -> None:
        while not self._stop.wait(self.interval):
            try:
                self.tick()
            except Exception:
                log.exception("scheduler tick failed; retrying in %.1f s", self.interval)

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=10)
