"""A dry run: what a campaign would do now, person by person, without writing anything.

The same code as the fan-out decides (audience, segment, resolver, local time, throttle),
so the counts are what the send would do if nothing changed in between.
"""

from __future__ import annotations

import datetime as dt
from collections import Counter, defaultdict

from sqlalchemy import select
from sqlalchemy.orm import Session

from hub.campaigns.service import SCHEDULE
from hub.db.models import Campaign, Notification, Template, Topic
from hub.dispatch import audience, fanout
from hub.dispatch.compose import renderable
from hub.dispatch.pacing import Pacing
from hub.domain import Channel, DeliveryState
from hub.preferences.model import Caps
from hub.schemas import schedules
from hub.schemas.campaigns import DryRunOut
from hub.services import templates
from hub.services.errors import InvalidField
from hub.services.hashing import AddressHasher
from hub.templates import Renderer

SAMPLES = 5
BATCH = 1000


def dry_run(
    session: Session,
    campaign: Campaign,
    *,
    renderer: Renderer,
    hasher: AddressHasher,
    now: dt.datetime,
    caps: Caps = audience.NO_CAPS,
) -> DryRunOut:
    topic = session.get_one(Topic, campaign.topic_id)
    variants = session.scalar(
        select(Template.variants).where(Template.key == campaign.template_key)
    )
    compiled = renderer.compile(templates.doc(campaign.template_key, variants or {}))
    channels = renderable(compiled)
    spec = SCHEDULE.validate_python(campaign.schedule)
    try:
        at = max(now, schedules.first_run(spec, now)) if campaign.state.value == "draft" else now
    except ValueError as exc:  # a rule that never occurs again: nothing would ever be sent
        raise InvalidField("schedule", str(exc)) from None
    # A notification as the scheduler would make it, never added to the session.
    planned = Notification(
        id=0, local_at=schedules.local_at(spec), throttle=campaign.throttle, created_at=at
    )
    pacing = Pacing(planned, {})
    chosen = {Channel(c) for c in campaign.channels} if campaign.channels else None
    view = audience.topic_view(topic, caps)
    send: Counter[str] = Counter()
    deferred: Counter[str] = Counter()
    refused: Counter[str] = Counter()
    samples: dict[str, list[str]] = defaultdict(list)
    waits: dict[str, tuple[dt.datetime, dt.datetime]] = {}
    people, after = 0, 0
    while True:
        ids = audience.next_ids(
            session, topic, named=None, after=after, limit=BATCH, segment=campaign.segment
        )
        if not ids:
            break
        after = ids[-1]
        people += len(ids)
        counted = audience.counts_for(view, 0)  # 0: no notification is excluded
        recipients = audience.load(session, topic.id, ids, hasher=hasher, now=at, count_for=counted)
        for recipient, rows in fanout.resolved_rows(
            0,  # no notification yet
            recipients,
            topic=view,
            chosen=chosen,
            renderable=channels,
            pacing=pacing,
            steps=None,
            now=at,
            queue_lease=dt.timedelta(minutes=5),
        ):
            for row in rows:
                if row["state"] is DeliveryState.QUEUED:
                    outcome, counter = row["channel"].value, send
                    key = f"send:{outcome}"
                elif row["state"] is DeliveryState.DEFERRED:
                    outcome, counter = str(row["reason"]), deferred
                    key = f"deferred:{outcome}"
                    first, last = waits.get(outcome, (row["due_at"], row["due_at"]))
                    waits[outcome] = (min(first, row["due_at"]), max(last, row["due_at"]))
                else:
                    outcome, counter = str(row["reason"]), refused
                    key = f"refused:{outcome}"
                counter[outcome] += 1
                if len(samples[key]) < SAMPLES:
                    samples[key].append(recipient.external_id)
    return DryRunOut(
        audience=people,
        send=dict(send),
        deferred=dict(deferred),
        refused=dict(refused),
        samples=dict(samples),
        starts_at=at,
        waits_until={reason: [first, last] for reason, (first, last) in waits.items()},
    )
