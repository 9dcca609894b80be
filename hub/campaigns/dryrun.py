"""A dry run: what a campaign would do now, person by person, without writing anything.

The same code as the fan-out decides (audience, segment, resolver, local time, throttle),
so the counts are what the send would do if nothing changed in between; and the template is
rendered for one real person of each language and channel (`checks`), so a part that would
fail is named before anyone's delivery fails on it.
"""

from __future__ import annotations

import datetime as dt
from collections import Counter, defaultdict
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from hub.campaigns import checks
from hub.campaigns.service import SCHEDULE, get, resumable, resumed_variants, schedulable
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
from hub.templates.isolation import RenderProcesses

SAMPLES = 5
BATCH = 1000


def dry_run(
    session: Session,
    campaign: Campaign,
    *,
    renderer: Renderer,
    processes: RenderProcesses,
    hasher: AddressHasher,
    now: dt.datetime,
    caps: Caps = audience.NO_CAPS,
    variants: dict[str, Any] | None = None,
) -> DryRunOut:
    """`variants`: the template's parts to try (a running occurrence's frozen copy); by
    default the stored template's, as the next occurrence would copy them."""
    topic = session.get_one(Topic, campaign.topic_id)
    if variants is None:
        variants = session.scalar(
            select(Template.variants).where(Template.key == campaign.template_key)
        )
    doc = templates.doc(campaign.template_key, variants or {})
    compiled = renderer.compile(doc)  # parsed only: what it can render, as the fan-out asks
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
    sampler = checks.Sampler()
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
                    sampler.add(recipient, row["channel"])
                elif row["state"] is DeliveryState.DEFERRED:
                    sampler.add(recipient, row["channel"])  # rendered when its wait ends
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
    tried = checks.try_renders(
        sampler,
        processes=processes,
        doc=doc,
        data=campaign.data,
        topic={"key": topic.key, "name": topic.name},
    )
    return DryRunOut(
        audience=people,
        send=dict(send),
        deferred=dict(deferred),
        refused=dict(refused),
        samples=dict(samples),
        starts_at=at,
        waits_until={reason: [first, last] for reason, (first, last) in waits.items()},
        renders=tried.renders,
        render_errors=tried.errors,
        render_unchecked=tried.unchecked,
    )


def before_start(
    session: Session,
    campaign_id: int,
    *,
    resume: bool,
    approval: bool,
    renderer: Renderer,
    processes: RenderProcesses,
    hasher: AddressHasher,
    now: dt.datetime,
    caps: Caps = audience.NO_CAPS,
) -> DryRunOut:
    """The dry run a campaign must pass before it may start sending: scheduled (the stored
    template) or resumed (what its next sends render). `checks.refusal` reads the answer.

    Raises:
        Conflict: it could not be scheduled (or resumed) anyway; asked first, since the
            dry run walks the whole audience.
    """
    campaign = get(session, campaign_id)
    variants = None
    if resume:
        resumable(campaign)
        variants = resumed_variants(session, campaign)
    else:
        schedulable(campaign, approval=approval)
    return dry_run(
        session,
        campaign,
        renderer=renderer,
        processes=processes,
        hasher=hasher,
        now=now,
        caps=caps,
        variants=variants,
    )
