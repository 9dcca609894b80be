"""The system topics fed by what happens to clients (`ClientTopic`): what each is, and the
topic it becomes the first time its key is looked up (`topics.get`).

They are ordinary topics for employees, with the same channels, quiet hours, digests and
explain as any other; a subscription to one also says whose clients (`ClientScope`).
"""

from __future__ import annotations

from hub.domain import Audience, Channel, ClientTopic, Frequency, TopicCategory
from hub.schemas.topics import TopicIn

_WHAT: dict[ClientTopic, tuple[str, str]] = {
    ClientTopic.REPLIES: (
        "My clients' replies",
        "A client you look after wrote back by SMS.",
    ),
    ClientTopic.REFUSALS: (
        "My clients' refusals",
        "A client you look after unsubscribed, replied STOP, opted out of calls or "
        "complained, and why, when they said.",
    ),
    ClientTopic.FAILURES: (
        "My clients' failed deliveries",
        "A message to a client you look after bounced or failed for good.",
    ),
    ClientTopic.PREFERENCES: (
        "My clients' preference changes",
        "A client you look after changed what they hear about, or how.",
    ),
    ClientTopic.CLICKS: (
        "My clients' clicks",
        "A client you look after followed a link in a message.",
    ),
}
KEYS = frozenset(topic.value for topic in ClientTopic)


def is_client_topic(key: str) -> bool:
    return key in KEYS


def definition(key: str) -> TopicIn | None:
    """The topic a client-event key stands for; None for any other key."""
    if key not in KEYS:
        return None
    name, description = _WHAT[ClientTopic(key)]
    return TopicIn(
        name=name,
        description=description,
        audience=Audience.EMPLOYEES,
        allowed_channels=list(Channel),
        default_channels=[Channel.EMAIL],
        allowed_frequencies=list(Frequency),
        public=True,
        required=False,
        category=TopicCategory.TRANSACTIONAL,
        tracking=False,
    )
