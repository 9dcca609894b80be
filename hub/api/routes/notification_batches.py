"""POST /v1/notifications/batch: up to 1,000 notifications in one request, item by item."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse
from pydantic import ValidationError
from sqlalchemy.exc import IntegrityError

from hub.api.routes.notification_sends import SOURCE
from hub.schemas.errors import ErrorOut
from hub.schemas.notifications import BatchIn, BatchItem, BatchOut
from hub.services import idempotency, notification_batch
from hub.services.actor import Actor
from hub.services.errors import HubError
from hub.services.notification_batch import Outcome
from hub.web.deps import IdempotencyKey, NotifyScope, RuntimeDep, SessionDep, actor_for

router = APIRouter(prefix="/v1/notifications", tags=["notifications"])


@router.post(
    "/batch",
    status_code=202,
    response_model=BatchOut,
    operation_id="notifications.create_batch",
    responses={
        409: {"model": ErrorOut, "description": "The first request with this key still runs"},
        422: {
            "model": ErrorOut,
            "description": "The body is not a list of 1 to 1,000 notifications, or every item "
            "was rejected: `details` names each item's field (`notifications[3].topic`)",
        },
    },
)
def post_batch(
    body: BatchIn,
    request: Request,
    principal: NotifyScope,
    db: SessionDep,
    runtime: RuntimeDep,
    idempotency_key: IdempotencyKey = None,
) -> Any:
    """Send up to 1,000 notifications.

    Each item is a notification as `POST /v1/notifications` takes it, with its own optional
    `idempotency_key`, and is checked on its own: the answer (202) lists every item's
    outcome, accepted with its id or rejected with the error naming its field. The accepted
    ones are committed together, in one transaction, before the answer; if every item is
    rejected the answer is 422. The `Idempotency-Key` header, if sent, makes the whole
    request safe to retry as well.
    """
    owner = f"key:{principal.name}"
    if idempotency_key is not None:
        digest = idempotency.request_hash("POST", "/v1/notifications/batch", body.notifications)
        replay = idempotency.reserve(db, owner=owner, key=idempotency_key, digest=digest)
        if replay is not None:
            return JSONResponse(
                replay.body,
                status_code=replay.status_code,
                headers={"Idempotent-Replayed": "true"},
            )
    actor = actor_for(request, principal, SOURCE)
    try:
        status, answer, started = _accept_batch(db, body, actor, principal.name, runtime)
        if idempotency_key is not None and status == 202:
            idempotency.complete(
                db, owner=owner, key=idempotency_key, status_code=status, body=answer
            )
        db.commit()
    except Exception:
        if idempotency_key is not None:
            idempotency.release(db, owner=owner, key=idempotency_key)
        raise
    if idempotency_key is not None and status != 202:
        idempotency.release(db, owner=owner, key=idempotency_key)  # as a single POST's 422
    for notification_id in started:
        runtime.enqueuer.try_fan_out(notification_id)
    return JSONResponse(answer, status_code=status)


def _accept_batch(
    db: SessionDep, body: BatchIn, actor: Actor, name: str, runtime: RuntimeDep
) -> tuple[int, dict[str, Any], list[int]]:
    """The answer's status and body, and the notifications whose fan-out is to be started."""
    items: list[tuple[int, BatchItem]] = []
    refused: dict[int, dict[str, Any]] = {}
    for index, raw in enumerate(body.notifications):
        try:
            items.append((index, BatchItem.model_validate(raw)))
        except ValidationError as exc:
            refused[index] = _invalid(index, exc)
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
            )
            break
        except IntegrityError:  # a concurrent request took one of the keys: see it now
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
    results += [{"index": index, "status": "rejected", "error": e} for index, e in refused.items()]
    results.sort(key=lambda result: result["index"])
    if len(refused) == len(body.notifications):
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
            "message": str(error["msg"]).removeprefix("Value error, "),
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
    """`notifications[3].recipients[1].email`, as hub.api.errors names a single body's."""
    name = f"notifications[{index}]"
    for part in loc:
        if part == "":
            continue
        name += f"[{part}]" if isinstance(part, int) else f".{part}"
    return name
