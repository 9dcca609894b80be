"""Teams: named groups of employees and clients, so an employee may hear of their teams'
clients (issue 21)."""

from __future__ import annotations

import datetime as dt
from typing import Annotated, Any

from pydantic import Field, StringConstraints

from hub.fields import Text255
from hub.schemas.base import Out, Strict

# Like a topic's key, shorter: the column holds 64 characters.
TEAM_KEY = r"^[a-z0-9][a-z0-9_.\-]{0,63}$"
TeamKey = Annotated[str, StringConstraints(pattern=TEAM_KEY)]


class TeamIn(Strict):
    """A team (PUT): creates it, or renames the one with this key."""

    name: Text255 = Field(description="How the console and reports name the team.")


class TeamOut(Out):
    """A team as stored, with how many contacts belong to it."""

    key: str = Field(description="The team's key, as a contact's `teams` lists it.")
    name: str = Field(description="How the console and reports name the team.")
    members: int = Field(description="How many contacts (employees and clients) belong to it.")
    created_at: dt.datetime = Field(description="When it was created (UTC).")


# What the API documentation shows; tests/unit/test_openapi_quality.py validates them.
TEAM_EXAMPLE: dict[str, Any] = {"name": "Key accounts, north"}
TEAM_OUT_EXAMPLE: dict[str, Any] = {
    "key": "key-accounts-north",
    **TEAM_EXAMPLE,
    "members": 12,
    "created_at": "2026-03-02T09:15:00Z",
}
