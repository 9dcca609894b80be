"""Rebuilds a contact's preference state by folding its append-only change events.

Consent and preference changes are only ever appended (RELIABILITY 15); the current state is a
pure function of the set of events. Each field of each topic keeps the value written by the
latest change, ordered by ``(occurred_at, event_id)``, so the result does not depend on the
order events arrive in, and replaying an event changes nothing (RELIABILITY 14).
"""

from __future__ import annotations

import copy
import datetime as dt
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field

_Key = tuple[str | None, str]  # (topic, field); topic None: the contact-wide preferences


@dataclass(frozen=True)
class PreferenceChange:
    """One appended change: the fields it set, on one topic or (topic None) contact-wide.

    ``after`` maps field names to their new, JSON-like values. ``event_id`` identifies the
    event and breaks ties between changes made at the same instant.
    """

    occurred_at: dt.datetime
    event_id: int
    topic: str | None
    after: Mapping[str, object]


@dataclass(frozen=True)
class FoldedState:
    """Current values: contact-wide ``preferences`` and per-topic ``subscriptions``.

    Compared by value; holds plain dicts, so it is not hashable.
    """

    preferences: dict[str, object] = field(default_factory=dict)
    subscriptions: dict[str, dict[str, object]] = field(default_factory=dict)


def fold(changes: Iterable[PreferenceChange]) -> FoldedState:
    """Fold ``changes`` (any order, duplicates allowed) into the current state.

    Raises:
        ValueError: if a change's ``occurred_at`` is naive, or two different changes share an
            ``event_id`` (the log is corrupt; picking one would make the result depend on
            arrival order).
    """
    seen: dict[int, PreferenceChange] = {}
    latest: dict[_Key, PreferenceChange] = {}
    for change in changes:
        _check(change, seen)
        for name in change.after:
            key = (change.topic, name)
            current = latest.get(key)
            if current is None or _order(change) > _order(current):
                latest[key] = change

    state = FoldedState()
    for (topic, name), change in sorted(latest.items(), key=_sort_key):
        value = copy.deepcopy(change.after[name])
        if topic is None:
            state.preferences[name] = value
        else:
            state.subscriptions.setdefault(topic, {})[name] = value
    return state


def _check(change: PreferenceChange, seen: dict[int, PreferenceChange]) -> None:
    if change.occurred_at.tzinfo is None or change.occurred_at.utcoffset() is None:
        raise ValueError(f"event {change.event_id}: occurred_at must be timezone-aware")
    first = seen.setdefault(change.event_id, change)
    if first is not change and first != change:
        raise ValueError(f"event {change.event_id} appears with two different contents")


def _order(change: PreferenceChange) -> tuple[dt.datetime, int]:
    return change.occurred_at, change.event_id


def _sort_key(item: tuple[_Key, PreferenceChange]) -> tuple[bool, str, str]:
    # Insertion order shows in dict reprs and JSON; keep it independent of arrival order too.
    (topic, name), _ = item
    return topic is not None, topic or "", name
