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

from hub.campaigns import ab_plan, checks
from hub.campaigns.ab_arms import resumed_arms
from hub.campaigns.service import SCHEDULE, get, resumable, resumed_variants, schedulable
from hub.db.models import Campaign, Notification, Template, Topic
from hub.dispatch import audience, fanout
from hub.dispatch.compose import renderable
from hub.dispatch.pacing import Pacing
from hub.dispatch.segment import bucket_of
from hub.domain import Channel, DeliveryState
from hub.preferences.model import Caps
from hub.schemas import schedules
from hub.schemas.campaigns import DryRunOut
from hub.services import templates
from hub.services.errors import InvalidField
from hub.services.hashing import AddressHasher
from hub.templates import Renderer, TemplateDoc
from hub.templates.isolation import RenderProcesses

SAMPLES = 5
BATCH = 1000
REST = "rest"  # a test-then-winner campaign's people outside the test group


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
    frozen: dict[str, dict[str, Any]] | None = None,
) -> DryRunOut:
    """`variants`: the template's parts to try (a running occurrence's frozen copy); by
    default the stored template's, as the next occurrence would copy them. `frozen`: the
    same per A/B variant name."""
    topic = session.get_one(Topic, campaign.topic_id)
    docs = _docs(session, campaign, variants, frozen or {})
    compiled = renderer.compile(docs[0][1])  # parsed only: what it can render, as fan-out asks
    channels = renderable(compiled)
    split = (
        ab_plan.arms(campaign.variants, campaign.ab) if campaign.variants and campaign.ab else []
    )
    arms: Counter[str] = Counter()
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
    sampler = _ArmSamplers(campaign.id, split)
    people, after = 0, 0
    while True:
        ids = audience.next_ids(
            session, topic, named=None, after=after, limit=BATCH, segment=campaign.segment
        )
        if not ids:
            break
        after = ids[-1]
        people += len(ids)
        for person in ids if split else ():
            arms[_arm_of(split, campaign.id, person)] += 1
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
    tried = _try_all(sampler.by_arm, docs, processes=processes, data=campaign.data, topic=topic)
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
        arms=dict(arms),
    )


class _ArmSamplers:
    """A sampler per A/B variant, fed that variant's people (a winner test's rest may get
    any variant: they feed every one), so each template is tried on people it goes to."""

    def __init__(self, campaign_id: int, split: list[ab_plan.Arm]) -> None:
        self.campaign_id, self.split = campaign_id, split
        names: list[str | None] = [arm.name for arm in split] or [None]
        self.by_arm: dict[str | None, checks.Sampler] = {name: checks.Sampler() for name in names}

    def add(self, recipient: audience.Recipient, channel: Channel) -> None:
        if not self.split:
            self.by_arm[None].add(recipient, channel)
            return
        arm = _arm_of(self.split, self.campaign_id, recipient.id)
        for name, sampler in self.by_arm.items():
            if arm in (name, REST):
                sampler.add(recipient, channel)


def _try_all(
    samplers: dict[str | None, checks.Sampler],
    docs: list[tuple[str | None, TemplateDoc]],
    *,
    processes: RenderProcesses,
    data: dict[str, Any],
    topic: Topic,
) -> checks.Tried:
    """Every template tried on the sampled people; an A/B variant's results named as its."""
    tried = checks.Tried()
    for index, (arm, doc) in enumerate(docs):
        found = checks.try_renders(
            samplers.get(arm) or checks.Sampler(),
            processes=processes,
            doc=doc,
            data=data,
            topic={"key": topic.key, "name": topic.name},
        )
        if arm is not None:
            found = checks.of_arm(found, arm=arm, index=index, template=doc.key)
        tried.renders += found.renders
        tried.errors += found.errors
        tried.unchecked += found.unchecked
    return tried


def _docs(
    session: Session,
    campaign: Campaign,
    variants: dict[str, Any] | None,
    frozen: dict[str, dict[str, Any]],
) -> list[tuple[str | None, TemplateDoc]]:
    """The templates to try: the campaign's one (no A/B name), or each A/B variant's."""
    if not campaign.variants:
        parts = variants if variants is not None else _stored(session, campaign.template_key)
        return [(None, templates.doc(campaign.template_key, parts or {}))]
    return [
        (
            v["name"],
            templates.doc(v["template"], frozen.get(v["name"]) or _stored(session, v["template"])),
        )
        for v in campaign.variants
    ]


def _stored(session: Session, key: str) -> dict[str, Any]:
    return session.scalar(select(Template.variants).where(Template.key == key)) or {}


def _arm_of(split: list[ab_plan.Arm], campaign_id: int, person: int) -> str:
    bucket = bucket_of(seed=campaign_id, contact_id=person)
    return next((arm.name for arm in split if arm.low <= bucket < arm.high), REST)


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
    frozen: dict[str, dict[str, Any]] = {}
    if resume:
        resumable(campaign)
        variants = resumed_variants(session, campaign)
        frozen = resumed_arms(session, campaign)
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
        frozen=frozen,
    )
