"""Campaigns: create, schedule, pause, resume, cancel, and report on their deliveries.

A campaign sends through the same path as any notification: each occurrence becomes one
(with the campaign's segment, local time and throttle), created by the scheduler.
"""

from __future__ import annotations

import datetime as dt
import io
from collections.abc import Iterator
from typing import Any

from pydantic import TypeAdapter
from sqlalchemy import exists, func, select, update
from sqlalchemy.orm import Session, sessionmaker

from hub import exports
from hub.campaigns import ab_plan, ab_results
from hub.db.base import utcnow
from hub.db.models import Campaign, CampaignRun, Contact, Delivery, Notification, Template, Topic
from hub.domain import (
    CampaignState,
    Channel,
    DeferralReason,
    DeliveryState,
    NotificationState,
    WithdrawalReason,
)
from hub.schemas import schedules
from hub.schemas.campaigns import CampaignIn, CampaignOut, CampaignPatchIn, RunOut
from hub.services import audit, segments
from hub.services.actor import Actor
from hub.services.errors import Conflict, InvalidField, NotFound

SCHEDULE = TypeAdapter(schedules.Schedule)
FAR = dt.datetime(9999, 1, 1, tzinfo=dt.UTC)  # a paused fan-out's lease: never, until resumed
OPEN = (DeliveryState.QUEUED, DeliveryState.DEFERRED)
FINISHED = frozenset({CampaignState.DONE, CampaignState.CANCELLED})
EDITABLE = frozenset({CampaignState.DRAFT})  # whose data may change


class NeedsApproval(Conflict):
    code = "approval_required"


def create(session: Session, body: CampaignIn, *, created_by: str, actor: Actor) -> Campaign:
    topic = session.scalar(select(Topic).where(Topic.key == body.topic))
    if topic is None:
        raise InvalidField("topic", f"no topic {body.topic!r}")
    plan = ab_plan.checked(
        body,
        template_exists=lambda key: (
            session.scalar(select(Template.id).where(Template.key == key)) is not None
        ),
    )
    tracked = topic.tracking if body.tracking is None else body.tracking
    if plan.ab is not None and plan.ab.get("mode") == "winner" and not tracked:
        # Every variant's rate would be 0 and the "winner" the first one, by default.
        field = "tracking" if body.tracking is not None else "ab.mode"
        raise InvalidField(
            field,
            f"picking a winner needs opens and clicks, and topic {topic.key!r} is not tracked "
            "(set tracking: true, or split the audience instead)",
        )
    for index, channel in enumerate(body.channels or []):
        if channel.value not in topic.allowed_channels:
            raise InvalidField(f"channels[{index}]", f"topic {topic.key!r} does not allow it")
    now = utcnow()
    try:
        schedules.first_run(body.schedule, now)
    except ValueError as exc:  # a rule with no occurrence left would sit in drafts for ever
        raise InvalidField("schedule", str(exc)) from None
    segment = body.segment.model_dump(mode="json", exclude_none=True) if body.segment else None
    if body.segment_key is not None:
        if segment is not None:
            raise InvalidField("segment_key", "give segment or segment_key, not both")
        try:  # a copy: editing the saved segment later does not change this campaign
            segment = dict(segments.get(session, body.segment_key).conditions)
        except NotFound:
            raise InvalidField("segment_key", f"no segment {body.segment_key!r}") from None
    campaign = Campaign(
        name=body.name,
        topic_id=topic.id,
        template_key=plan.template,
        variants=plan.variants,
        ab=plan.ab,
        tracking=body.tracking,
        data=body.data,
        segment=segment,
        segment_key=body.segment_key,
        channels=[c.value for c in body.channels] if body.channels else None,
        schedule=body.schedule.model_dump(mode="json"),
        throttle={c.value: n for c, n in body.throttle.items()} if body.throttle else None,
        state=CampaignState.DRAFT,
        created_by=created_by,
        created_at=now,
        updated_at=now,
    )
    session.add(campaign)
    session.flush()
    audit.record(
        session,
        actor=actor,
        action=audit.Action.CREATED,
        resource=audit.Resource.CAMPAIGN,
        key=str(campaign.id),
        after=_audited(campaign),
    )
    return campaign


def get(session: Session, campaign_id: int, *, lock: bool = False) -> Campaign:
    query = select(Campaign).where(Campaign.id == campaign_id)
    campaign = session.scalar(query.with_for_update() if lock else query)
    if campaign is None:
        raise NotFound(f"no campaign {campaign_id}")
    return campaign


def find(session: Session, *, before_id: int | None, limit: int) -> list[Campaign]:
    query = select(Campaign).order_by(Campaign.id.desc()).limit(limit)
    if before_id is not None:
        query = query.where(Campaign.id < before_id)
    return list(session.scalars(query))


def approve(
    session: Session, campaign_id: int, *, approver: str, now: dt.datetime, actor: Actor
) -> Campaign:
    """A second person's yes (HUB_CAMPAIGN_APPROVAL): not the one who created it."""
    campaign = get(session, campaign_id, lock=True)
    if campaign.state is not CampaignState.DRAFT:
        raise Conflict(f"campaign {campaign_id} is {campaign.state}; only a draft is approved")
    if approver == campaign.created_by:
        raise Conflict(f"{approver} created campaign {campaign_id}; a second person approves it")
    campaign.approved_by, campaign.approved_at = approver, now
    campaign.updated_at = now
    audit.record(
        session,
        actor=actor,
        action=audit.Action.APPROVED,
        resource=audit.Resource.CAMPAIGN,
        key=str(campaign.id),
        after={"approved_by": approver},
    )
    return campaign


def schedule(
    session: Session, campaign_id: int, *, now: dt.datetime, actor: Actor, approval: bool = False
) -> Campaign:
    """draft -> scheduled; with `approval`, only once a second person approved it."""
    campaign = get(session, campaign_id, lock=True)
    schedulable(campaign, approval=approval)
    spec = schedules.anchored(SCHEDULE.validate_python(campaign.schedule), now)
    campaign.schedule = spec.model_dump(mode="json")
    try:
        campaign.next_run_at = schedules.first_run(spec, now)
    except ValueError as exc:
        raise InvalidField("schedule", str(exc)) from None
    return _move(session, campaign, CampaignState.SCHEDULED, now, actor)


def schedulable(campaign: Campaign, *, approval: bool) -> None:
    """Raises Conflict unless `schedule` may move it: asked before its render check, which
    walks the audience, so a campaign that cannot be scheduled anyway says so at once."""
    if campaign.state is not CampaignState.DRAFT:
        raise Conflict(f"campaign {campaign.id} is {campaign.state}; only a draft is scheduled")
    if approval and campaign.approved_by is None:
        raise NeedsApproval(
            f"campaign {campaign.id} needs a second person's approval before it is scheduled"
        )


def resumable(campaign: Campaign) -> None:
    """Raises Conflict unless `resume` may move it (asked before its render check)."""
    if campaign.state is not CampaignState.PAUSED:
        raise Conflict(f"campaign {campaign.id} is {campaign.state}, not paused")


def resumed_variants(session: Session, campaign: Campaign) -> dict[str, Any] | None:
    """The parts a resumed campaign renders next: its latest occurrence's frozen copy while
    that one has people left to reach; None (the stored template's) when the next
    occurrence is what resuming starts."""
    latest = session.scalar(
        select(Notification)
        .where(Notification.campaign_id == campaign.id)
        .order_by(Notification.id.desc())
        .limit(1)
    )
    if latest is None:
        return None
    left = latest.state is NotificationState.ACCEPTED or session.scalar(
        select(exists().where(Delivery.notification_id == latest.id, Delivery.state.in_(OPEN)))
    )
    return latest.variants if left else None


def pause(session: Session, campaign_id: int, *, now: dt.datetime, actor: Actor) -> Campaign:
    """Stop where it is: fan-out waits, and deliveries not yet sent are held."""
    campaign = get(session, campaign_id, lock=True)
    if campaign.state not in (CampaignState.SCHEDULED, CampaignState.SENDING):
        raise Conflict(f"campaign {campaign_id} is {campaign.state}; it cannot be paused")
    ids = _notification_ids(campaign)
    session.execute(
        update(Notification).where(Notification.id.in_(ids)).values(held=True, due_at=FAR)
    )
    session.execute(
        update(Delivery)
        .where(Delivery.notification_id.in_(ids), Delivery.state.in_(OPEN))
        .values(state=DeliveryState.DEFERRED, reason=DeferralReason.PAUSED, due_at=None)
    )
    return _move(session, campaign, CampaignState.PAUSED, now, actor)


def resume(session: Session, campaign_id: int, *, now: dt.datetime, actor: Actor) -> Campaign:
    """Go on: held deliveries are due at once (the sweeper picks them up), fan-out resumes."""
    campaign = get(session, campaign_id, lock=True)
    resumable(campaign)
    ids = _notification_ids(campaign)
    session.execute(
        update(Notification).where(Notification.id.in_(ids)).values(held=False, due_at=now)
    )
    session.execute(
        update(Delivery)
        .where(Delivery.notification_id.in_(ids), Delivery.reason == DeferralReason.PAUSED)
        .values(due_at=now, not_before=None, reason=None)
    )
    started = session.scalar(select(exists().where(Notification.campaign_id == campaign.id)))
    state = CampaignState.SENDING if started else CampaignState.SCHEDULED
    return _move(session, campaign, state, now, actor, action=audit.Action.RESUMED)


def cancel(session: Session, campaign_id: int, *, now: dt.datetime, actor: Actor) -> Campaign:
    """Stop for good: nothing not yet sent will be; what was sent stays on record."""
    campaign = get(session, campaign_id, lock=True)
    if campaign.state in FINISHED:
        raise Conflict(f"campaign {campaign_id} is {campaign.state} already")
    ids = _notification_ids(campaign)
    session.execute(
        update(Notification).where(Notification.id.in_(ids)).values(held=True, due_at=FAR)
    )
    session.execute(
        update(Delivery)
        .where(Delivery.notification_id.in_(ids), Delivery.state.in_(OPEN))
        .values(
            state=DeliveryState.SUPPRESSED,
            reason=WithdrawalReason.CANCELLED,
            due_at=None,
            updated_at=now,
        )
    )
    campaign.next_run_at = None
    return _move(session, campaign, CampaignState.CANCELLED, now, actor)


def set_data(
    session: Session, campaign_id: int, body: CampaignPatchIn, *, actor: Actor, now: dt.datetime
) -> Campaign:
    """Replace a draft's data; the audit log keeps what it was. Only a draft: scheduling
    checks the template renders with the data, which a scheduled or paused campaign already
    passed (and a running occurrence keeps the data it was created with).

    Raises:
        Conflict: it is not a draft.
    """
    campaign = get(session, campaign_id, lock=True)
    if campaign.state not in EDITABLE:
        raise Conflict(f"campaign {campaign_id} is {campaign.state}; only a draft's data changes")
    before = dict(campaign.data)
    if before == body.data:
        return campaign
    campaign.data = body.data
    campaign.updated_at = now
    audit.record(
        session,
        actor=actor,
        action=audit.Action.UPDATED,
        resource=audit.Resource.CAMPAIGN,
        key=str(campaign.id),
        before={"data": before},
        after={"data": body.data},
    )
    return campaign


_ACTIONS = {
    CampaignState.SCHEDULED: audit.Action.SCHEDULED,
    CampaignState.PAUSED: audit.Action.PAUSED,
    CampaignState.CANCELLED: audit.Action.CANCELLED,
}


def _move(
    session: Session,
    campaign: Campaign,
    state: CampaignState,
    now: dt.datetime,
    actor: Actor,
    *,
    action: audit.Action | None = None,
) -> Campaign:
    """A staff member's or key's move of the campaign, on the audit log with its states."""
    before = campaign.state
    campaign.state = state
    campaign.updated_at = now
    audit.record(
        session,
        actor=actor,
        action=action or _ACTIONS[state],
        resource=audit.Resource.CAMPAIGN,
        key=str(campaign.id),
        before={"state": before.value},
        after={"state": state.value},
    )
    return campaign


def _audited(campaign: Campaign) -> dict[str, Any]:
    """What the audit log keeps of a new campaign."""
    return {
        "name": campaign.name,
        "template": campaign.template_key,
        "data": campaign.data,
        "segment": campaign.segment,
        "segment_key": campaign.segment_key,
        "channels": campaign.channels,
        "schedule": campaign.schedule,
        "throttle": campaign.throttle,
        "tracking": campaign.tracking,
        "variants": campaign.variants,
        "ab": campaign.ab,
    }


def _notification_ids(campaign: Campaign) -> Any:
    return select(Notification.id).where(Notification.campaign_id == campaign.id)


def runs(session: Session, campaign_id: int) -> list[RunOut]:
    """Each occurrence, oldest first, with the notification it became (once it did)."""
    found = session.scalars(
        select(CampaignRun)
        .where(CampaignRun.campaign_id == campaign_id)
        .order_by(CampaignRun.occurrence_at)
    )
    return [RunOut.model_validate(run) for run in found]


def view(session: Session, campaign: Campaign) -> CampaignOut:
    topic_key = session.scalar(select(Topic.key).where(Topic.id == campaign.topic_id))
    ids = _notification_ids(campaign)
    by_state: dict[str, int] = {}
    by_channel: dict[str, int] = {}
    refusals: dict[str, int] = {}
    grouped = session.execute(
        select(Delivery.state, Delivery.channel, Delivery.reason, func.count())
        .where(Delivery.notification_id.in_(ids))
        .group_by(Delivery.state, Delivery.channel, Delivery.reason)
    )
    for state, channel, reason, count in grouped:
        by_state[state.value] = by_state.get(state.value, 0) + count
        by_channel[channel.value] = by_channel.get(channel.value, 0) + count
        if state is DeliveryState.SUPPRESSED and reason:
            refusals[reason] = refusals.get(reason, 0) + count
    failures = [
        {"channel": channel.value, "code": code, "error": error, "count": count}
        for channel, code, error, count in session.execute(
            select(Delivery.channel, Delivery.error_code, Delivery.error, func.count())
            .where(Delivery.notification_id.in_(ids), Delivery.state == DeliveryState.FAILED)
            .group_by(Delivery.channel, Delivery.error_code, Delivery.error)
            .order_by(func.count().desc())
            .limit(10)
        )
    ]
    return CampaignOut.model_validate(
        {
            **{c: getattr(campaign, c) for c in CampaignOut.model_fields if hasattr(campaign, c)},
            "topic": topic_key,
            "template": campaign.template_key,
            "runs": runs(session, campaign.id),
            "counts": {"state": by_state, "channel": by_channel},
            "refusals": refusals,
            "failures": failures,
            "ab_results": ab_results.of(session, campaign) if campaign.variants else None,
        }
    )


CSV_COLUMNS = (
    "delivery_id",
    "occurrence",
    "contact",
    "channel",
    "state",
    "reason",
    "attempts",
    "provider_id",
    "error_code",
    "error",
    "sent_at",
    "updated_at",
)


def csv_rows(session: Session, campaign: Campaign, *, chunk: int = 1000) -> Iterator[list[Any]]:
    """Every delivery of every run, in id order, a chunk of rows at a time."""
    after = 0
    while True:
        rows = session.execute(
            select(
                Delivery.id,
                Notification.created_at,
                Contact.external_id,
                Delivery.channel,
                Delivery.state,
                Delivery.reason,
                Delivery.attempts,
                Delivery.provider_id,
                Delivery.error_code,
                Delivery.error,
                Delivery.sent_at,
                Delivery.updated_at,
            )
            .join(Notification, Notification.id == Delivery.notification_id)
            .join(Contact, Contact.id == Delivery.contact_id)
            .where(Notification.campaign_id == campaign.id, Delivery.id > after)
            .order_by(Delivery.id)
            .limit(chunk)
        ).all()
        if not rows:
            return
        for row in rows:
            yield [_cell(value) for value in row]
        after = rows[-1][0]


def csv_chunks(
    reads: sessionmaker[Session], campaign_id: int, *, chunk_bytes: int = 64 * 1024
) -> Iterator[str]:
    """The CSV of `csv_rows`, header first, in pieces of about `chunk_bytes` to stream.

    Raises NotFound before yielding anything, so the answer can still be a 404.
    """
    with reads() as session:
        get(session, campaign_id)

    def pieces() -> Iterator[str]:
        buffer = io.StringIO()
        writer = exports.CsvWriter(buffer)  # cells are data, never formulas
        writer.writerow(CSV_COLUMNS)
        with reads() as session:
            for row in csv_rows(session, get(session, campaign_id)):
                writer.writerow(row)
                if buffer.tell() > chunk_bytes:
                    yield buffer.getvalue()
                    buffer.seek(0)
                    buffer.truncate()
        yield buffer.getvalue()

    return pieces()


def _cell(value: Any) -> Any:
    if isinstance(value, Channel | DeliveryState):
        return value.value
    if isinstance(value, dt.datetime):
        return value.isoformat()
    return "" if value is None else value
