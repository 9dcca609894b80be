"""Audit log entries as the API shows them."""

from __future__ import annotations

import datetime as dt
from typing import Any

from pydantic import Field

from hub.domain import ActorKind
from hub.schemas.base import Out


class AuditEntryOut(Out):
    """One change to the configuration."""

    id: int = Field(description="The entry's id; the log is ordered by it.")
    at: dt.datetime = Field(description="When the change was made (UTC).")
    actor_kind: ActorKind = Field(description="`staff` (console), `api_key`, `cli` or `system`.")
    actor: str = Field(description="The staff e-mail, the API key's name, or `cli:<os user>`.")
    action: str = Field(description="`created`, `updated`, `deleted`, `revoked`, `disabled`, ...")
    resource: str = Field(
        description="`staff_user`, `api_key`, `event_endpoint`, `template`, `topic`, ..."
    )
    key: str = Field(
        validation_alias="resource_key",
        description="Which one: an e-mail, a key's name, a topic key, an endpoint's id.",
    )
    before: dict[str, Any] | None = Field(
        description="The fields before the change; null when it was created. Never a secret."
    )
    after: dict[str, Any] | None = Field(
        description="The fields after the change; null when it was deleted. Never a secret."
    )
