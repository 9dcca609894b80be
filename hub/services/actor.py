"""Who is making a change, as recorded on every contact event."""

from __future__ import annotations

from dataclasses import dataclass

from hub.domain import ActorKind


@dataclass(frozen=True, slots=True)
class Actor:
    kind: ActorKind
    name: str  # API key name, staff e-mail, "self-service", a provider...
    source: str  # the door the change came through: "api", "api.import", "cli.import", ...
    ip: str | None = None
    user_agent: str | None = None

    def via(self, source: str) -> Actor:
        return Actor(self.kind, self.name, source, self.ip, self.user_agent)

    @property
    def is_the_person(self) -> bool:
        """The contact themselves: their own page, or their own reply (STOP, START, 9)."""
        return self.kind in _THE_PERSON


_THE_PERSON = frozenset({ActorKind.INBOUND, ActorKind.SELF_SERVICE})
SELF_SERVICE_SOURCE = "self-service"  # the source of every change made on the person's pages
