"""Why a person unsubscribed, in words (`timeline_words`): "Said why they unsubscribed from
Offers: too many messages — 'I get three a day'". The person's own note is quoted, cut to
one line, as every quoted text on the timeline is."""

from __future__ import annotations

from collections.abc import Callable

from hub.domain import EventType, RefusalWhy
from hub.services.timeline_phrases import Event, Known, Words, data, quoted, text, topic

# The answers as staff read them; the person saw them in their own language.
ANSWERS: dict[str, str] = {
    RefusalWhy.TOO_MANY: "too many messages",
    RefusalWhy.NOT_RELEVANT: "not relevant to them",
    RefusalWhy.NEVER_SIGNED_UP: "they never signed up",
    RefusalWhy.OTHER: "another reason",
}


def _said_why(event: Event, known: Known) -> Words:
    # The event keeps the topic twice: as the row's topic and in `changes.topic`, where null
    # means the person left everything.
    left: Words = topic(event, known) if event.topic_key else ("everything",)
    answer = ANSWERS.get(event.reason or "", text(event.reason) or "no answer chosen")
    note = text(data(event).get("note"))
    return (
        "Said why they unsubscribed from ",
        *left,
        f": {answer}",
        f" — {quoted(note)}" if note else "",
    )


SAYERS: dict[str, Callable[[Event, Known], Words]] = {
    EventType.REFUSAL_REASON: _said_why,
}
