"""The audit log page: newest first, paged, filtered by resource (and one resource's key),
each entry with who, when, the action, the resource and its fields before and after, the
changed ones marked. `GET /v1/audit` answers the same questions for the API."""

from __future__ import annotations

import datetime as dt
import json
import re
from dataclasses import dataclass
from typing import Annotated, Any

from fastapi import APIRouter, Query, Request
from fastapi.responses import Response

from hub.console.admin.common import AdminDep, Problem, admin_page
from hub.db.models import AuditEntry
from hub.domain import ActorKind
from hub.services import audit
from hub.web.deps import RuntimeDep

router = APIRouter(prefix="/console/admin/audit", include_in_schema=False)
PAGE = 50
RESOURCES = {
    audit.Resource.STAFF_USER: "Staff user",
    audit.Resource.API_KEY: "API key",
    audit.Resource.EVENT_ENDPOINT: "Event endpoint",
    audit.Resource.TEMPLATE: "Template",
    audit.Resource.TOPIC: "Topic",
    audit.Resource.SEGMENT: "Segment",
    audit.Resource.CAMPAIGN: "Campaign",
    audit.Resource.NOTIFICATION: "Notification",
}
FIELDS = {"url": "URL"}
# An ISO 8601 instant with its offset, as services record `revoked_at` and the like.
_INSTANT = re.compile(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?([+-]\d\d:\d\d|Z)")
ACTIONS = {audit.Action.PASSWORD_RESET: "password changed", audit.Action.SIGNED_OUT: "signed out"}
ACTORS = {
    ActorKind.STAFF: "staff",
    ActorKind.API_KEY: "API key",
    ActorKind.CLI: "command line",
    ActorKind.SYSTEM: "Hub",
}


@dataclass(frozen=True, slots=True)
class Field:
    name: str
    before: str
    after: str
    changed: bool


@dataclass(frozen=True, slots=True)
class Shown:
    """An entry as the page reads it."""

    id: int
    at: str
    actor: str
    via: str
    action: str
    resource: str
    resource_value: str
    key: str
    created: bool  # only `after`
    deleted: bool  # only `before`
    fields: list[Field]


@router.get("")
def audit_page(
    request: Request,
    *,
    staff: AdminDep,
    runtime: RuntimeDep,
    resource: Annotated[str, Query(max_length=32)] = "",
    key: Annotated[str, Query(max_length=255)] = "",
    before: Annotated[int | None, Query(ge=1, le=2**63 - 1)] = None,
) -> Response:
    wanted = next((r for r in audit.Resource if r.value == resource), None)
    problems = []
    if resource and wanted is None:
        problems.append(Problem("resource", "Choose a kind of resource from the list"))
    with runtime.reads() as session:
        rows = audit.page(
            session,
            before_id=before,
            limit=PAGE + 1,
            resource=wanted,
            key=key.strip() or None,
        )
    older = rows[PAGE - 1].id if len(rows) > PAGE else None
    return admin_page(
        request,
        "admin_audit.html",
        "Audit log",
        staff,
        problems=problems,
        entries=[_shown(e) for e in rows[:PAGE]],
        resources=RESOURCES,
        resource=wanted.value if wanted else "",
        key=key.strip(),
        before=before,
        older=older,
    )


def _shown(entry: AuditEntry) -> Shown:
    before, after = entry.before or {}, entry.after or {}
    names = list(dict.fromkeys([*before, *after]))
    both = entry.before is not None and entry.after is not None
    fields = [
        Field(
            name=FIELDS.get(name, name.replace("_", " ")),
            before=readable(before.get(name)) if name in before else "",
            after=readable(after.get(name)) if name in after else "",
            changed=both and before.get(name) != after.get(name),
        )
        for name in names
    ]
    action = next((a for a in audit.Action if a.value == entry.action), None)
    return Shown(
        id=entry.id,
        at=entry.at.strftime("%Y-%m-%d %H:%M:%S"),
        actor=entry.actor,
        via=ACTORS.get(entry.actor_kind, entry.actor_kind.value),
        action=ACTIONS.get(action, action.value) if action else entry.action.replace("_", " "),
        resource=_resource_label(entry.resource),
        resource_value=entry.resource,
        key=entry.resource_key,
        created=entry.before is None and entry.after is not None,
        deleted=entry.after is None and entry.before is not None,
        fields=fields,
    )


def _resource_label(value: str) -> str:
    for resource, label in RESOURCES.items():
        if resource.value == value:
            return label
    return value.replace("_", " ").capitalize()


def readable(value: Any) -> str:
    """A recorded value in words: lists joined, yes and no, nothing as "(none)", an instant
    to the second in UTC."""
    if value is None:
        return "(none)"
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, str) and _INSTANT.fullmatch(value):
        instant = dt.datetime.fromisoformat(value).astimezone(dt.UTC)
        return instant.strftime("%Y-%m-%d %H:%M:%S UTC")
    if isinstance(value, list) and all(isinstance(v, str | int | float) for v in value):
        return ", ".join(str(v) for v in value) or "(none)"
    if isinstance(value, dict | list):
        return json.dumps(value, ensure_ascii=False, sort_keys=True)
    return str(value)
