"""An employee's side of who looks after whom in words (`timeline_words`): "Became the owner
of client 'c-42' by API key 'crm'", "No longer the owner of client 'c-42' (now 'emp-9') in
the console by mia@acme.example"; the client's side is a `contact.updated`. The client is a
`Ref` to their own page."""

from __future__ import annotations

from collections.abc import Callable

from hub.domain import ActorKind, EventType
from hub.services.timeline_phrases import (
    CLOSE,
    OPEN,
    Event,
    Known,
    Ref,
    RefKind,
    Words,
    after,
    cut,
    data,
    quoted,
    text,
)


def _assigned(event: Event, known: Known) -> Words:
    changes = data(event)
    client = text(changes.get("client"))
    whom: Words = ("client ", *_client(client)) if client else ("a client",)
    if after(changes.get("owner")) is True:
        return ("Became the owner of ", *whom, _by(event))
    if event.reason == "client_erased":
        return ("No longer the owner of a client: the client was erased",)
    now = text(changes.get("now"))
    # The new owner is named, not linked: their id stays here after their erasure, and a link
    # should answer. The client's cannot outlive them (their erasure takes these events).
    then = f" (now {quoted(now)})" if now else " (now no one)"
    return ("No longer the owner of ", *whom, then, _by(event))


def _client(external_id: str) -> Words:
    """'c-42' in quotation marks, the id linked to the client's page."""
    return (OPEN, Ref(RefKind.CONTACT, external_id, cut(external_id)), CLOSE)


SAYERS: dict[str, Callable[[Event, Known], Words]] = {
    EventType.CLIENT_ASSIGNED: _assigned,
}


def _by(event: Event) -> str:
    """Who did it: an API key by its name, staff in the console, an import; "" when not known."""
    who = text(event.actor)
    imported = " in an import" if event.source.endswith(".import") else ""
    if event.actor_kind == ActorKind.API_KEY and who:
        return f"{imported} by API key {quoted(who)}"
    if event.actor_kind == ActorKind.STAFF and who:
        return f"{imported or ' in the console'} by {who}"
    return imported
