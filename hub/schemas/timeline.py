"""A contact's timeline as the API shows it."""

from __future__ import annotations

import datetime as dt
from typing import Any

from pydantic import AliasChoices, Field

from hub.domain import ActorKind, Channel, EventType
from hub.schemas.base import Out


class EventOut(Out):
    """One entry of a contact's timeline."""

    id: int = Field(description="The event's id; the timeline is ordered by it.")
    occurred_at: dt.datetime = Field(description="When it happened (UTC).")
    type: EventType = Field(description="What happened: a delivery state, a change, a reply.")
    actor_kind: ActorKind = Field(
        description="Who did it: an API key, staff, the person, a provider, the hub."
    )
    actor: str = Field(description="Which one: a staff e-mail, a key's name, a provider.")
    source: str = Field(
        description="Where it came from: `api`, `api.import`, `console`, `dispatch`, ..."
    )
    topic: str | None = Field(
        None,
        validation_alias=AliasChoices("topic_key", "topic"),
        description="The topic it concerns (its key); null when none.",
    )
    channel: Channel | None = Field(description="The channel it concerns; null when none.")
    changes: dict[str, Any] | None = Field(
        description="What changed or what was recorded: fields before and after, a delivery's "
        "ids and error, an inbound message's text."
    )
    reason: str | None = Field(
        description="Why: the reason a person gave, a refusal's rule, a provider's error."
    )
    ip: str | None = Field(description="The address the person acted from, when they did.")
    user_agent: str | None = Field(description="The browser the person acted from.")
