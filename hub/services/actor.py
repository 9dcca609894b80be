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
