"""A campaign occurrence's notifications: one with the campaign's template, or one per A/B
arm, each with its own template's parts, its `arm` name and its audience (the campaign's
segment AND its range of buckets), so the variant is on every delivery through its
notification and nobody is in two arms.
"""

from __future__ import annotations

import datetime as dt
import logging
from typing import Any

from sqlalchemy import exists, select, update
from sqlalchemy.orm import Session

from hub.campaigns import ab_plan
from hub.campaigns.service import OPEN
from hub.db.models import Campaign, Delivery, Notification, Template
from hub.dispatch.segment import BUCKETS, with_bucket
from hub.domain import NotificationState
from hub.schemas import schedules
from hub.services import notifications

log = logging.getLogger("hub.scheduler")


def notify(
    session: Session,
    campaign: Campaign,
    *,
    spec: schedules.Schedule,
    now: dt.datetime,
    template_key: str,
    arm: ab_plan.Arm | None = None,
    alone: bool = False,
) -> int | None:
    """One notification of the campaign (of `arm`, when given); None when its template is
    gone (logged: the occurrence goes without it). An arm sent beside the others gets its
    share of the throttle; one sent `alone` (a winner's rest) the whole of it."""
    stored = session.execute(
        select(Template.variants, Template.version).where(Template.key == template_key)
    ).first()
    if stored is None:
        log.error("campaign %s: template %r is gone; not sent", campaign.id, template_key)
        return None
    segment: dict[str, Any] | None = campaign.segment
    if arm is not None:
        segment = with_bucket(segment, seed=campaign.id, low=arm.low, high=arm.high)
    notification_id = notifications.create(
        session,
        topic_id=campaign.topic_id,
        template_key=template_key,
        template_version=stored.version,
        variants=stored.variants,
        data=campaign.data,
        source=f"campaign:{campaign.id}",
        now=now,
        channels=campaign.channels,
        campaign=notifications.Occurrence(
            campaign_id=campaign.id,
            segment=segment,
            local_at=schedules.local_at(spec),
            throttle=_throttle(campaign.throttle, None if alone else arm),
        ),
    )
    if arm is not None or campaign.tracking is not None:
        session.execute(
            update(Notification)
            .where(Notification.id == notification_id)
            .values(tracking=campaign.tracking, arm=arm.name if arm else None)
        )
    return notification_id


def occurrence(
    session: Session, campaign: Campaign, *, spec: schedules.Schedule, now: dt.datetime
) -> list[int]:
    """The notifications of one occurrence: the campaign's one, or its arms' (a winner
    test's sample only: the rest waits for the pick)."""
    if not campaign.variants or not campaign.ab:
        made = notify(session, campaign, spec=spec, now=now, template_key=campaign.template_key)
        return [made] if made is not None else []
    found = []
    for arm in ab_plan.arms(campaign.variants, campaign.ab):
        made = notify(session, campaign, spec=spec, now=now, template_key=arm.template, arm=arm)
        if made is not None:
            found.append(made)
    return found


def resumed_arms(session: Session, campaign: Campaign) -> dict[str, dict[str, Any]]:
    """`resumed_variants` per A/B variant name: each arm's frozen parts while its latest
    notification has people left to reach."""
    found: dict[str, dict[str, Any]] = {}
    arms = session.scalars(
        select(Notification)
        .where(Notification.campaign_id == campaign.id, Notification.arm.is_not(None))
        .order_by(Notification.id)
    )
    for notification in arms:  # oldest first: a later one of the arm replaces an earlier
        left = notification.state is NotificationState.ACCEPTED or session.scalar(
            select(
                exists().where(
                    Delivery.notification_id == notification.id, Delivery.state.in_(OPEN)
                )
            )
        )
        if left:
            found[str(notification.arm)] = notification.variants
        else:
            found.pop(str(notification.arm), None)
    return found


def _throttle(throttle: dict[str, Any] | None, arm: ab_plan.Arm | None) -> dict[str, Any] | None:
    """An arm's share of the campaign's throttle: its arms together keep to it (each arm is a
    notification, paced on its own)."""
    if throttle is None or arm is None:
        return throttle
    share = (arm.high - arm.low) / BUCKETS
    return {channel: max(1, round(rate * share)) for channel, rate in throttle.items()}
