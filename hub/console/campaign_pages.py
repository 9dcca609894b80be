"""Console pages for campaigns: write, count the audience, dry-run, test, schedule, watch."""

from __future__ import annotations

from typing import Annotated, Any
from urllib.parse import quote

from fastapi import APIRouter, Query, Request
from fastapi.responses import Response
from markupsafe import Markup, escape
from pydantic import ValidationError
from sqlalchemy import select
from sqlalchemy.orm import Session
from starlette.concurrency import run_in_threadpool

from hub.campaigns import checks, service, trial
from hub.campaigns.dryrun import before_start, dry_run
from hub.console import campaign_form, forms
from hub.console.auth import NotAllowed, SessionsDep, Staff, StaffDep
from hub.console.pages import back_to, page
from hub.console.routes import campaign_rows
from hub.db.base import utcnow
from hub.db.models import Notification, Template, Topic
from hub.dispatch import audience
from hub.domain import CampaignState, StaffRole
from hub.runtime import Runtime
from hub.schemas.campaigns import (
    CampaignIn,
    DryRunOut,
    RenderOut,
    SegmentIn,
    TestOutcome,
    TestSendOut,
)
from hub.services import account_mail as mail
from hub.services import segments
from hub.services.errors import HubError, InvalidField
from hub.web import downloads
from hub.web.deps import RuntimeDep
from hub.web.forms import first

router = APIRouter(prefix="/console", include_in_schema=False)
ACTIONS = {
    CampaignState.DRAFT: ("dry-run", "test", "approve", "schedule", "cancel"),
    CampaignState.SCHEDULED: ("dry-run", "pause", "cancel"),
    CampaignState.SENDING: ("pause", "cancel"),
    CampaignState.PAUSED: ("resume", "cancel"),
}
ROLES = {"approve": StaffRole.ADMIN}  # the rest: marketer
BREAK_EVERY = 24  # characters of a sample's text between the places it may break


@router.get("/campaigns")
def campaigns(request: Request, staff: StaffDep, runtime: RuntimeDep) -> Response:
    with runtime.reads() as session:
        rows = campaign_rows(session, limit=200)
    return page(request, "campaigns.html", "Campaigns", staff, section="campaigns", campaigns=rows)


def _new_form(
    request: Request, staff: Staff, runtime: Any, values: dict[str, str], **context: Any
) -> Response:
    """The new-campaign form, filled with `values`, offering the topics and templates."""
    with runtime.reads() as session:
        topics = list(session.scalars(select(Topic).where(Topic.key != mail.ACCOUNT_TOPIC)))
        found = list(session.scalars(select(Template).order_by(Template.key)))
        saved = segments.by_name(session)
    return page(
        request,
        "campaign_new.html",
        "New campaign",
        staff,
        section="campaigns",
        form=values,
        topics=topics,
        templates=found,
        segments=saved,
        tracking_default=campaign_form.tracking_default([(t.name, t.tracking) for t in topics]),
        **context,
    )


@router.get("/campaigns/new")
def new_campaign(request: Request, staff: StaffDep, runtime: RuntimeDep) -> Response:
    if not staff.may(StaffRole.MARKETER):
        raise NotAllowed(StaffRole.MARKETER)
    return _new_form(request, staff, runtime, {})


@router.post("/campaigns/new")
async def create_campaign(
    request: Request, staff: StaffDep, sessions: SessionsDep, runtime: RuntimeDep
) -> Response:
    form = await forms.posted(request, staff, sessions, StaffRole.MARKETER)
    values = {name: first(form, name).strip() for name in form}
    if values.get("action") == "count":
        return _counted(request, staff, runtime, values)
    try:
        body = CampaignIn.model_validate(campaign_form.body(values))
        with runtime.sessions() as session:
            actor = forms.staff_actor(request, staff)
            campaign = service.create(session, body, created_by=staff.email, actor=actor)
            session.commit()
            campaign_id = campaign.id
    except (ValidationError, HubError, ValueError) as exc:
        errors = campaign_form.problems(exc, values)
        return _new_form(request, staff, runtime, values, status=422, errors=errors)
    return back_to(f"/console/campaigns/{campaign_id}")


def _counted(request: Request, staff: Staff, runtime: Any, values: dict[str, str]) -> Response:
    """The form again, with how many people its topic and segment reach now."""
    try:
        body = campaign_form.body(values)
        segment = SegmentIn.model_validate(body["segment"] or {})
        with runtime.reads() as session:
            topic = session.scalar(select(Topic).where(Topic.key == body["topic"]))
            if topic is None:
                raise ValueError(f"no topic {body['topic']!r}")
            conditions = segment.model_dump(mode="json", exclude_none=True)
            if body.get("segment_key"):  # a saved segment: what the campaign would copy
                if body["segment"]:
                    raise InvalidField("segment_key", "give segment or segment_key, not both")
                conditions = segments.get(session, body["segment_key"]).conditions
            count = audience.count(session, topic, conditions)
    except (ValidationError, ValueError, HubError) as exc:
        return _new_form(request, staff, runtime, values, status=422, errors=forms.problems(exc))
    return _new_form(request, staff, runtime, values, notice=f"The audience now: {count} people.")


@router.get("/campaigns/{campaign_id}")
def campaign(
    campaign_id: int,
    request: Request,
    *,
    staff: StaffDep,
    runtime: RuntimeDep,
    dry: bool = False,
    test: Annotated[int | None, Query(ge=1, le=2**62)] = None,
    problem: Annotated[str, Query(max_length=500)] = "",
    saved: bool = False,
) -> Response:
    """`test`: a test send of this campaign, whose delivery the page reads as it is now;
    `saved`: the data was just saved."""
    return _campaign_page(
        request,
        staff,
        runtime,
        campaign_id,
        dry=dry,
        test=test,
        errors=[problem] if problem else [],
        notice="Data saved. Dry-run again to see what people get with it." if saved else None,
    )


def _campaign_page(
    request: Request,
    staff: Staff,
    runtime: Runtime,
    campaign_id: int,
    *,
    dry: bool | DryRunOut = False,
    test: int | None = None,
    errors: list[str],
    status: int = 200,
    notice: str | None = None,
    typed: str | None = None,
) -> Response:
    """The campaign page; `dry` True runs the dry run, a DryRunOut shows one already run;
    `typed`: data the edit form was refused, shown back in it."""
    with runtime.reads() as session:
        found = service.get(session, campaign_id)
        view = service.view(session, found)
        topic = session.get_one(Topic, found.topic_id)
        count = audience.count(session, topic, found.segment)
        tried = dry if isinstance(dry, DryRunOut) else None
        if dry is True:
            tried = dry_run(
                session,
                found,
                renderer=runtime.renderer,
                processes=runtime.render_processes,
                hasher=runtime.hasher,
                now=utcnow(),
                caps=runtime.settings.default_caps(),
            )
        tested = _tested(session, campaign_id, test) if test else None
    live = view.state in (CampaignState.SCHEDULED, CampaignState.SENDING)
    approval = runtime.settings.campaign_approval
    actions = [
        action
        for action in ACTIONS.get(view.state, ())
        if staff.may(ROLES.get(action, StaffRole.MARKETER))
        and (action != "approve" or (approval and not view.approved_by))
    ]
    waiting = tested is not None and tested.outcome is TestOutcome.PENDING
    editable = view.state in service.EDITABLE and staff.may(StaffRole.MARKETER)
    return page(
        request,
        "campaign.html",
        view.name,
        staff,
        status=status,
        section="campaigns",
        c=view,
        audience=count,
        dry=tried,
        renders=[_shown(r) for r in tried.renders] if tried else [],
        tested=tested,
        actions=actions,
        refresh=2 if live or waiting else None,
        approval=approval,
        segment=campaign_form.describe_segment(view.segment),
        tracking=campaign_form.describe_tracking(view.tracking, topic.tracking),
        ab=view.ab_results,
        schedule=campaign_form.describe_schedule(view.schedule),
        errors=errors,
        notice=notice,
        data=campaign_form.pretty(view.data) if typed is None else typed,
        editable=editable,
        data_error=typed is not None,
        ready=view.state is CampaignState.DRAFT,
    )


def _tested(session: Session, campaign_id: int, notification_id: int) -> TestSendOut | None:
    """A test send's outcome now, if the notification is one of this campaign's tests."""
    source = session.scalar(select(Notification.source).where(Notification.id == notification_id))
    if trial.tested_campaign(source) != campaign_id:
        return None  # someone else's notification: not shown here
    return trial.outcome(session, notification_id)


def _shown(render: RenderOut) -> dict[str, Any]:
    """A sample for the page: its text may break anywhere in a long word (a link), so it
    never widens a phone's page."""
    shown = {"subject": _breakable(render.subject), "text": _breakable(render.text)}
    return render.model_dump() | shown


def _breakable(text: str | None) -> Markup | None:
    if text is None:
        return None
    pieces = [escape(text[i : i + BREAK_EVERY]) for i in range(0, len(text), BREAK_EVERY)]
    return Markup("<wbr>").join(pieces)


@router.post("/campaigns/{campaign_id}/data")
async def campaign_data(
    campaign_id: int,
    request: Request,
    *,
    staff: StaffDep,
    sessions: SessionsDep,
    runtime: RuntimeDep,
) -> Response:
    """The edit form of a draft's data: saved as the API's PATCH saves it, or shown back
    with why it was refused. Registered before the actions, whose path would take it."""
    form = await forms.posted(request, staff, sessions, StaffRole.MARKETER)
    typed = first(form, "data")
    here = f"/console/campaigns/{campaign_id}"
    try:
        body = campaign_form.data_body(typed)
        with runtime.sessions() as session:
            actor = forms.staff_actor(request, staff)
            service.set_data(session, campaign_id, body, actor=actor, now=utcnow())
            session.commit()
    except ValueError as exc:  # not JSON, or not data the API takes
        errors = campaign_form.data_problems(exc)
        return _campaign_page(
            request, staff, runtime, campaign_id, errors=errors, status=422, typed=typed
        )
    except HubError as exc:  # no longer a draft
        return back_to(f"{here}?problem={quote(exc.message)}#data")
    return back_to(f"{here}?saved=true#data")


@router.post("/campaigns/{campaign_id}/{action}")
async def campaign_action(
    campaign_id: int,
    action: str,
    request: Request,
    *,
    staff: StaffDep,
    sessions: SessionsDep,
    runtime: RuntimeDep,
) -> Response:
    form = await forms.posted(request, staff, sessions, ROLES.get(action, StaffRole.MARKETER))
    here = f"/console/campaigns/{campaign_id}"
    if action == "dry-run":
        return back_to(f"{here}?dry=true")
    arm = first(form, "arm").strip() or None  # a test of one A/B variant
    # The render check walks the audience and a test send waits for its outcome: both on a
    # worker thread, never on the event loop.
    return await run_in_threadpool(_act, request, staff, runtime, campaign_id, action, arm=arm)


def _act(
    request: Request,
    staff: Staff,
    runtime: Runtime,
    campaign_id: int,
    action: str,
    *,
    arm: str | None = None,
) -> Response:
    here = f"/console/campaigns/{campaign_id}"
    now = utcnow()
    try:
        if action in ("schedule", "resume"):
            with runtime.reads() as session:
                checked = before_start(
                    session,
                    campaign_id,
                    resume=action == "resume",
                    approval=runtime.settings.campaign_approval,
                    renderer=runtime.renderer,
                    processes=runtime.render_processes,
                    hasher=runtime.hasher,
                    now=now,
                    caps=runtime.settings.default_caps(),
                )
            doing = "resumed" if action == "resume" else "scheduled"
            refused = checks.refusal(checked, doing=doing)
            if refused is not None:  # the page itself, with the dry run that says why
                return _campaign_page(
                    request,
                    staff,
                    runtime,
                    campaign_id,
                    dry=checked,
                    errors=[refused.message],
                    status=409,
                )
        actor = forms.staff_actor(request, staff)
        with runtime.sessions() as session:
            if action == "schedule":
                approval = runtime.settings.campaign_approval
                service.schedule(session, campaign_id, now=now, actor=actor, approval=approval)
            elif action == "approve":
                service.approve(session, campaign_id, approver=staff.email, now=now, actor=actor)
            elif action == "test":
                found = service.get(session, campaign_id)
                sent = trial.test_send(
                    session,
                    found,
                    email=staff.email,
                    name=None,
                    processes=runtime.render_processes,
                    arm=arm,
                )
            elif action in ("pause", "resume", "cancel"):
                getattr(service, action)(session, campaign_id, now=now, actor=actor)
            session.commit()
    except HubError as exc:
        return back_to(f"{here}?problem={quote(exc.message)}")
    if action == "test":
        runtime.enqueuer.try_fan_out(sent)
        trial.wait_for_outcome(runtime.reads, sent)  # the page then reads what became of it
        return back_to(f"{here}?test={sent}#test")
    return back_to(here)


@router.get("/campaigns/{campaign_id}/deliveries.csv")
def campaign_csv(campaign_id: int, staff: StaffDep, runtime: RuntimeDep) -> Response:
    chunks = service.csv_chunks(runtime.reads, campaign_id)
    return downloads.csv(chunks, f"campaign-{campaign_id}.csv")
