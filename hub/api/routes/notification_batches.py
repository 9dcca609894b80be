"""POST /v1/notifications/batch: up to 1,000 notifications in one request, item by item.

Written for speed, as the single POST is (bench/api_batch.py measures it): the body is
parsed on the event loop, then ONE trip to a worker thread validates the items and does
the whole database part in a session of its own, in one transaction (FastAPI's session
dependency would cost thread hops of its own). The answer is JSON built here, not checked
again against `BatchOut` (which stays for the description), and the fan-outs are enqueued
after it has gone: the notifications are committed before the 202, and the sweeper starts
any fan-out whose enqueue is lost.
"""

from __future__ import annotations

import json
from typing import Annotated, Any

from fastapi import APIRouter, Body, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import Response
from pydantic import TypeAdapter, ValidationError
from sqlalchemy.exc import IntegrityError, OperationalError
from sqlalchemy.orm import Session
from starlette.background import BackgroundTask

from hub.api import errors
from hub.api.routes.notification_sends import SOURCE
from hub.domain import Scope
from hub.runtime import Runtime
from hub.schemas.notifications import BATCH_EXAMPLE, BatchIn, BatchItem, BatchOut
from hub.services import idempotency, notification_batch, templates
from hub.services.actor import Actor
from hub.services.errors import HubError, InvalidField
from hub.services.notification_batch import Outcome
from hub.templates.isolation import RenderProcesses
from hub.web.deps import IdempotencyKey, NotifyScope, RuntimeDep, actor_for

router = APIRouter(prefix="/v1/notifications", tags=["notifications"])

# Every item at once when all are good (the usual batch): one call into pydantic-core
# instead of a thousand; item by item only to name the bad ones.
_ITEMS = TypeAdapter(list[BatchItem])
BatchBody = Annotated[
    BatchIn,
    Body(
        openapi_examples={
            "invoices": {
                "summary": "Two invoices, one now and one scheduled, each with its own key",
                "value": BATCH_EXAMPLE,
            }
        }
    ),
]


@router.post(
    "/batch",
    status_code=202,
    response_model=BatchOut,
    operation_id="notifications.create_batch",
    summary="Send up to 1,000 notifications",
    responses={
        **errors.TOO_LARGE,
        **errors.conflict("The first request with this Idempotency-Key still runs"),
        422: errors.problem(
            "The body is not a list of 1 to 1,000 notifications, or every item was rejected: "
            "`details` names each item's field (`notifications[3].topic`)"
        ),
    },
)
async def post_batch(
    body: BatchBody,
    request: Request,
    principal: NotifyScope,
    runtime: RuntimeDep,
    idempotency_key: IdempotencyKey = None,
) -> Response:
    """Send up to 1,000 notifications.

    Each item is a notification as `POST /v1/notifications` takes it, with its own optional
    `idempotency_key`, and is checked on its own: the answer (202) lists every item's
    outcome, accepted with its id or rejected with the error naming its field. The accepted
    ones are committed together, in one transaction, before the answer; if every item is
    rejected the answer is 422. The `Idempotency-Key` header, if sent, makes the whole
    request safe to retry as well.
    """
    actor = actor_for(request, principal, SOURCE)
    status, answer, replayed, started = await run_in_threadpool(
        _run,
        runtime,
        body.notifications,
        principal.name,
        actor,
        idempotency_key,
        principal.allows(Scope.CONTACTS),
    )
    return Response(
        json.dumps(answer, separators=(",", ":")).encode(),
        status_code=status,
        headers={"Idempotent-Replayed": "true"} if replayed else None,
        media_type="application/json",
        background=BackgroundTask(_fan_out, runtime, started) if started else None,
    )


# Notifications per fan-out message: enough to spread the enqueue's cost, few enough that
# the fan-out threads share a batch's work.
_PER_MESSAGE = 50


def _fan_out(runtime: Runtime, started: list[int]) -> None:
    """After the answer. At the first failure (the broker is down) the rest is left to the
    sweeper, which starts each within its fallback lease."""
    for start in range(0, len(started), _PER_MESSAGE):
        if not runtime.enqueuer.try_fan_out_many(started[start : start + _PER_MESSAGE]):
            return


def _run(
    runtime: Runtime,
    raw: list[Any],
    name: str,
    actor: Actor,
    whole_key: str | None,
    may_change: bool,
) -> tuple[int, dict[str, Any], bool, list[int]]:
    """(status, answer, replayed, notifications to fan out), in one session; committed."""
    owner = f"key:{name}"
    with runtime.sessions() as db:
        if whole_key is not None:
            digest = idempotency.request_hash("POST", "/v1/notifications/batch", raw)
            replay = idempotency.reserve(db, owner=owner, key=whole_key, digest=digest)
            if replay is not None:
                return replay.status_code, replay.body, True, []
        try:
            status, answer, started = _accept_batch(db, raw, actor, name, runtime, may_change)
            if whole_key is not None and status == 202:
                idempotency.complete(
                    db, owner=owner, key=whole_key, status_code=status, body=answer
                )
            db.commit()
        except Exception:
            if whole_key is not None:
                idempotency.release(db, owner=owner, key=whole_key)
            raise
        if whole_key is not None and status != 202:
            idempotency.release(db, owner=owner, key=whole_key)  # as a single POST's 422
    return status, answer, False, started


# Different inline contents one batch may carry: each is compiled and tried in a render
# process (up to its 2 s deadline), so a batch of a thousand crafted ones could hold a
# worker thread for half an hour. Personalisation is what `data` is for.
MAX_INLINE_CONTENTS = 20


def _contents_checked(
    items: list[tuple[int, BatchItem]],
    refused: dict[int, dict[str, Any]],
    processes: RenderProcesses,
) -> list[tuple[int, BatchItem]]:
    """Try each different inline content once, BEFORE the write transaction begins (on
    SQLite it holds the one write lock every worker needs); items whose content fails, or
    past MAX_INLINE_CONTENTS different ones, are refused here. Those that pass are then
    found in the render processes' cache by the checks inside the transaction."""
    seen: list[tuple[Any, HubError | None]] = []
    kept: list[tuple[int, BatchItem]] = []
    for index, item in items:
        if item.content is None:
            kept.append((index, item))
            continue
        known = [error for given, error in seen if given == item.content]
        if known:
            found = known[0]
        else:
            if len(seen) >= MAX_INLINE_CONTENTS:
                too_many = InvalidField(
                    "content",
                    f"at most {MAX_INLINE_CONTENTS} different inline contents in one batch; "
                    "put the rest in a stored template (PUT /v1/templates/{key})",
                )
                refused[index] = _rejected(index, too_many)
                continue
            found = _tried(processes, item)
            seen.append((item.content, found))
        if found is not None:
            refused[index] = _rejected(index, found)
            continue
        kept.append((index, item))
    return kept


def _tried(processes: RenderProcesses, item: BatchItem) -> HubError | None:
    try:
        variants = templates.variants_of(item.content or {})
        templates.check(processes, "inline", variants, "content", data=item.data)
    except HubError as exc:
        return exc
    return None


def _validated(raw: list[Any]) -> tuple[list[tuple[int, BatchItem]], dict[int, dict[str, Any]]]:
    """The items the schema accepts (with their places) and the errors of those it refuses."""
    try:
        return list(enumerate(_ITEMS.validate_python(raw))), {}
    except ValidationError:
        pass
    items: list[tuple[int, BatchItem]] = []
    refused: dict[int, dict[str, Any]] = {}
    for index, item in enumerate(raw):
        try:
            items.append((index, BatchItem.model_validate(item)))
        except ValidationError as exc:
            refused[index] = _invalid(index, exc)
    return items, refused


def _accept_batch(
    db: Session, raw: list[Any], actor: Actor, name: str, runtime: Runtime, may_change: bool
) -> tuple[int, dict[str, Any], list[int]]:
    """The answer's status and body, and the notifications whose fan-out is to be started."""
    items, refused = _validated(raw)
    items = _contents_checked(items, refused, runtime.render_processes)
    outcomes: list[Outcome] = []
    for attempt in (1, 2):
        try:
            outcomes = notification_batch.accept(
                db,
                items,
                owner=f"key:{name}",
                source=f"api:{name}",
                actor=actor,
                processes=runtime.render_processes,
                allow_private_webhooks=runtime.settings.webhook_allow_private,
                may_change_contacts=may_change,
            )
            break
        except (IntegrityError, OperationalError) as exc:
            # A concurrent request took one of the keys (see it now), or PostgreSQL chose
            # this batch as a deadlock's victim (40P01): once more, from the start.
            deadlock = getattr(exc.orig, "sqlstate", None) == "40P01"
            if isinstance(exc, OperationalError) and not deadlock:
                raise
            db.rollback()
            if attempt == 2:
                raise
    results: list[dict[str, Any]] = []
    started: list[int] = []
    for outcome in outcomes:
        if outcome.error is not None:
            refused[outcome.index] = _rejected(outcome.index, outcome.error)
            continue
        accepted = outcome.accepted
        assert accepted is not None
        results.append(
            {
                "index": outcome.index,
                "status": "accepted",
                "id": accepted.id,
                "state": accepted.state.value,
                "replayed": outcome.replayed,
            }
        )
        if not outcome.replayed and accepted.send_at is None:
            started.append(accepted.id)
    if refused:
        results += [
            {"index": index, "status": "rejected", "error": e} for index, e in refused.items()
        ]
        results.sort(key=lambda result: result["index"])
    if len(refused) == len(raw):
        details = [d for index in sorted(refused) for d in refused[index]["details"]]
        first = details[0]
        message = f"every notification was rejected; first {first['field']}: {first['message']}"
        error = {"code": "invalid_request", "message": message, "details": details}
        return 422, {"error": error}, []
    accepted_count = len(results) - len(refused)
    answer = {"accepted": accepted_count, "rejected": len(refused), "results": results}
    return 202, answer, started


def _invalid(index: int, exc: ValidationError) -> dict[str, Any]:
    """An item the schema refused, as the single POST's 422 would say it, named in the batch."""
    details = [
        {
            "field": _field(index, error["loc"]),
            "in": "body",
            "message": errors.error_message(dict(error)),
        }
        for error in exc.errors()
    ]
    first = details[0]
    return {
        "code": "invalid_request",
        "message": f"{first['field']}: {first['message']}",
        "details": details,
    }


def _rejected(index: int, exc: HubError) -> dict[str, Any]:
    """An item refused after its schema (no topic, a key used before...), named in the batch."""
    given = exc.details if isinstance(exc.details, list) and exc.details else None
    details = [
        {"field": _field(index, (d["field"],)), "in": "body", "message": d["message"]}
        for d in given or [{"field": "", "message": exc.message}]
    ]
    first = details[0]
    return {
        "code": exc.code,
        "message": f"{first['field']}: {first['message']}",
        "details": details,
    }


def _field(index: int, loc: tuple[int | str, ...]) -> str:
    """`notifications[3].recipients[1].email`, named as hub.api.errors names a single body's."""
    return errors.field_name(("notifications", index, *(part for part in loc if part != "")))
