"""/v1/campaigns: write once, check with a dry run, schedule, watch, pause, resume, cancel."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Body, Request
from fastapi.responses import StreamingResponse
from pydantic import BaseModel, Field

from hub.api import errors
from hub.campaigns import checks, service, trial
from hub.campaigns.dryrun import before_start, dry_run
from hub.db.base import utcnow
from hub.dispatch import audience
from hub.fields import Key
from hub.runtime import Runtime
from hub.schemas.base import Page, Strict
from hub.schemas.campaigns import (
    CAMPAIGN_EXAMPLE,
    CampaignIn,
    CampaignOut,
    CampaignPatchIn,
    DryRunOut,
    SegmentIn,
    TestSendIn,
    TestSendOut,
)
from hub.schemas.engagement import EngagementOut
from hub.services import engagement_figures, topics
from hub.web import downloads
from hub.web.deps import AdminScope, CampaignsScope, RuntimeDep, SessionDep, actor_for
from hub.web.paging import CursorQuery, Limit, RowId, page_of, position

router = APIRouter(prefix="/v1/campaigns", tags=["campaigns"])


NO_CAMPAIGN = errors.not_found("No campaign has this id")
CampaignBody = Annotated[
    CampaignIn,
    Body(
        openapi_examples={
            "weekly": {
                "summary": "A newsletter at 10:00 in each person's zone, to gold customers",
                "value": CAMPAIGN_EXAMPLE,
            }
        }
    ),
]


class AudienceIn(Strict):
    """The audience to count."""

    topic: Key = Field(description="The topic's key: its audience and subscribers.")
    segment: SegmentIn | None = Field(
        None, description="Only those of them that match these conditions."
    )


class AudienceOut(BaseModel):
    """How many people an audience reaches."""

    count: int = Field(description="People the topic and segment reach now (before refusals).")


@router.post(
    "",
    operation_id="campaigns.create",
    summary="Create a campaign (a draft)",
    response_model=CampaignOut,
    status_code=201,
    responses=errors.TOO_LARGE,
)
def create_campaign(
    body: CampaignBody, request: Request, principal: CampaignsScope, db: SessionDep
) -> Any:
    """A draft: nothing is sent until it is scheduled. With `variants` (2-4 templates), an
    A/B test: `ab.mode` split sends each person one variant by share; winner sends them to
    a `sample` of the audience, then after `wait_minutes` the variant with the better human
    click (or open) rate to everyone else. A person's variant is fixed by the campaign and
    the person, so nobody gets two. `tracking`: true, false, or none for the topic's.
    Needs the `campaigns` scope."""
    actor = actor_for(request, principal)
    campaign = service.create(db, body, created_by=principal.name, actor=actor)
    db.commit()
    return service.view(db, campaign)


@router.get(
    "",
    operation_id="campaigns.list",
    summary="List campaigns",
    response_model=Page[CampaignOut],
)
def list_campaigns(
    _: CampaignsScope, db: SessionDep, limit: Limit = 50, cursor: CursorQuery = None
) -> Any:
    """Every campaign with its state and counts, newest first, a page at a time
    (`next_cursor`). Needs the `campaigns` scope."""
    rows = service.find(db, before_id=position(cursor), limit=limit + 1)
    return page_of(rows, limit, lambda c: service.view(db, c))


@router.post(
    "/audience",
    operation_id="campaigns.count_audience",
    summary="Count the people a topic and segment reach",
    response_model=AudienceOut,
    responses={
        # The body names the topic as a path would: an unknown one is not found, as it was
        # before this was documented (a client may rely on it).
        **errors.not_found("No topic has the key the body's `topic` names"),
        **errors.TOO_LARGE,
    },
)
def audience_count(body: AudienceIn, _: CampaignsScope, db: SessionDep) -> Any:
    """How many people a topic and segment reach now (before refusals: suppressions,
    quiet hours and caps are decided when it is sent). Saves nothing. Needs the `campaigns`
    scope."""
    topic = topics.get(db, body.topic)
    segment = body.segment.model_dump(mode="json", exclude_none=True) if body.segment else None
    return AudienceOut(count=audience.count(db, topic, segment))


@router.get(
    "/{campaign_id}",
    operation_id="campaigns.get",
    summary="Read a campaign and its figures",
    response_model=CampaignOut,
    responses=NO_CAMPAIGN,
)
def get_campaign(campaign_id: RowId, _: CampaignsScope, db: SessionDep) -> Any:
    """State, runs, and deliveries by state and channel, refusals by reason, top failures;
    opens, clicks and unsubscribes in `engagement`. Needs the `campaigns` scope."""
    found = service.get(db, campaign_id)
    figures = EngagementOut.model_validate(engagement_figures.for_campaign(db, found))
    return service.view(db, found).model_copy(update={"engagement": figures})


@router.patch(
    "/{campaign_id}",
    operation_id="campaigns.update",
    summary="Replace a draft campaign's data",
    response_model=CampaignOut,
    responses={
        **NO_CAMPAIGN,
        **errors.conflict("Not a draft: its data no longer changes"),
        **errors.TOO_LARGE,
    },
)
def update_campaign(
    campaign_id: RowId,
    body: CampaignPatchIn,
    request: Request,
    principal: CampaignsScope,
    db: SessionDep,
) -> Any:
    """Replace a draft's `data` (what its template reads as `data`): the fix for a dry run
    that says "the campaign's data has no 'offer'". The audit log keeps what it was.
    Needs the `campaigns` scope."""
    actor = actor_for(request, principal)
    campaign = service.set_data(db, campaign_id, body, actor=actor, now=utcnow())
    db.commit()
    return service.view(db, campaign)


@router.post(
    "/{campaign_id}/dry-run",
    operation_id="campaigns.dry_run",
    summary="Dry-run a campaign: who would get what, and who would not",
    response_model=DryRunOut,
    responses=NO_CAMPAIGN,
)
def dry_run_campaign(campaign_id: RowId, _: CampaignsScope, runtime: RuntimeDep) -> Any:
    """Who would receive it, on which channel and when; who would not, and why; and the
    template rendered for one real person of each language and channel, with every part that
    fails named by line (`render_errors`). Writes nothing. Needs the `campaigns` scope."""
    with runtime.reads() as session:  # a long read: never SQLite's write lock
        return dry_run(
            session,
            service.get(session, campaign_id),
            renderer=runtime.renderer,
            processes=runtime.render_processes,
            hasher=runtime.hasher,
            now=utcnow(),
            caps=runtime.settings.default_caps(),
        )


def _ensure_renders(runtime: Runtime, campaign_id: int, *, resume: bool) -> None:
    """Raises WouldNotRender (409, `details` naming each part) when the template fails for
    a language and channel of the audience; Conflict when the campaign cannot move anyway."""
    with runtime.reads() as session:
        checked = before_start(
            session,
            campaign_id,
            resume=resume,
            approval=runtime.settings.campaign_approval,
            renderer=runtime.renderer,
            processes=runtime.render_processes,
            hasher=runtime.hasher,
            now=utcnow(),
            caps=runtime.settings.default_caps(),
        )
    refused = checks.refusal(checked, doing="resumed" if resume else "scheduled")
    if refused is not None:
        raise refused


@router.post(
    "/{campaign_id}/schedule",
    operation_id="campaigns.schedule",
    summary="Schedule a draft campaign",
    response_model=CampaignOut,
    responses={
        **NO_CAMPAIGN,
        **errors.conflict(
            "Not a draft, not yet approved (approval_required), or its template does not "
            "render for some of the audience (template_does_not_render: `details` names each "
            "part as template.<variant>.<part>, with the language, line and why)"
        ),
    },
)
def schedule_campaign(
    campaign_id: RowId,
    request: Request,
    principal: CampaignsScope,
    db: SessionDep,
    runtime: RuntimeDep,
) -> Any:
    """draft -> scheduled: dispatched at its schedule's first occurrence. With
    HUB_CAMPAIGN_APPROVAL, a second person must have approved it (409 approval_required).
    Refused (409 template_does_not_render) while a part of the template fails to render for
    one real person of some language and channel of the audience, as the dry run shows.
    Needs the `campaigns` scope."""
    _ensure_renders(runtime, campaign_id, resume=False)
    approval = runtime.settings.campaign_approval
    actor = actor_for(request, principal)
    campaign = service.schedule(db, campaign_id, now=utcnow(), actor=actor, approval=approval)
    db.commit()
    return service.view(db, campaign)


@router.post(
    "/{campaign_id}/approve",
    operation_id="campaigns.approve",
    summary="Approve a draft campaign",
    response_model=CampaignOut,
    responses={**NO_CAMPAIGN, **errors.conflict("Not a draft, or approved by its author")},
)
def approve_campaign(
    campaign_id: RowId, request: Request, principal: AdminScope, db: SessionDep
) -> Any:
    """An admin who did not create it says yes (needed with HUB_CAMPAIGN_APPROVAL).

    Written on the audit log. Needs the `admin` scope."""
    actor = actor_for(request, principal)
    campaign = service.approve(db, campaign_id, approver=principal.name, now=utcnow(), actor=actor)
    db.commit()
    return service.view(db, campaign)


@router.post(
    "/{campaign_id}/test",
    operation_id="campaigns.send_test",
    summary="Send a campaign's message once, to yourself",
    response_model=TestSendOut,
    status_code=202,
    responses={**NO_CAMPAIGN, **errors.TOO_LARGE},
)
def send_test(
    campaign_id: RowId, body: TestSendIn, _: CampaignsScope, db: SessionDep, runtime: RuntimeDep
) -> Any:
    """Send the campaign's message once, by e-mail, to the address given (yours), as the
    first person of its audience would get it (their name, language and attributes; `whose`
    says who), and wait (up to `wait` seconds) for what became of it: sent (accepted by the
    mail server), failed and why (a part of the template that does not render, named with
    its line), refused, or still queued. `name` is used only when the audience is empty.
    An A/B campaign sends the variant `arm` names (the first by default), as the first
    person of that variant's people would get it. Needs the `campaigns` scope."""
    campaign = service.get(db, campaign_id)
    notification_id = trial.test_send(
        db,
        campaign,
        email=body.email,
        name=body.name,
        processes=runtime.render_processes,
        arm=body.arm,
    )
    db.commit()
    db.close()  # the wait below holds no transaction open
    runtime.enqueuer.try_fan_out(notification_id)
    # A plain `def` route runs on a worker thread: the wait never blocks the event loop.
    return trial.wait_for_outcome(runtime.reads, notification_id, seconds=body.wait)


def _action(name: str) -> Any:
    change = getattr(service, name)

    def act(
        campaign_id: RowId,
        request: Request,
        principal: CampaignsScope,
        db: SessionDep,
        runtime: RuntimeDep,
    ) -> Any:
        if name == "resume":  # it starts sending again: checked as scheduling is
            _ensure_renders(runtime, campaign_id, resume=True)
        campaign = change(db, campaign_id, now=utcnow(), actor=actor_for(request, principal))
        db.commit()
        return service.view(db, campaign)

    act.__name__ = f"{name}_campaign"
    act.__doc__ = {
        "pause": "Hold what is not yet sent; fan-out waits.",
        "resume": "Send what was held; fan-out goes on. Refused (409 "
        "template_does_not_render) while the template its next sends render fails for some "
        "of the audience.",
        "cancel": "Nothing not yet sent will be; what was sent stays on record.",
    }[name] + " Written on the audit log. Needs the `campaigns` scope."
    return act


MOVES = {
    "pause": ("Pause a campaign", "Not scheduled or sending"),
    "resume": (
        "Resume a paused campaign",
        "Not paused, or its template does not render for some of the audience "
        "(template_does_not_render)",
    ),
    "cancel": ("Cancel a campaign", "Done or cancelled already"),
}
for _name, (_summary, _refused) in MOVES.items():
    router.add_api_route(
        f"/{{campaign_id}}/{_name}",
        _action(_name),
        methods=["POST"],
        operation_id=f"campaigns.{_name}",
        summary=_summary,
        response_model=CampaignOut,
        responses={**NO_CAMPAIGN, **errors.conflict(_refused)},
    )


@router.get(
    "/{campaign_id}/deliveries.csv",
    operation_id="campaigns.export_deliveries",
    summary="Download a campaign's deliveries as CSV",
    response_class=StreamingResponse,
    responses={
        200: {"content": {"text/csv": {}}, "description": "One row per delivery"},
        **NO_CAMPAIGN,
    },
)
def deliveries_csv(campaign_id: RowId, _: CampaignsScope, runtime: RuntimeDep) -> Any:
    """Every delivery of every run, streamed as CSV. Needs the `campaigns` scope."""
    chunks = service.csv_chunks(runtime.reads, campaign_id)
    return downloads.csv(chunks, f"campaign-{campaign_id}.csv")
