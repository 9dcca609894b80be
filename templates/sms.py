"""How long an SMS is on the wire: its encoding, its length in the units carriers count, and
how many segments (billed messages) it takes.

A text that fits the GSM 03.38 alphabet travels as GSM-7: 160 septets in one message, 153 per
segment once it is split (the rest of each segment is the concatenation header). The
extension characters (``{ } [ ] ~ \\ | ^ €`` and form feed) take an escape septet each, so
they count 2. One character outside the alphabet (a Cyrillic letter, a curly apostrophe, an
emoji) turns the whole text into UCS-2: 70 UTF-16 code units in one message, 67 per segment;
a character outside the Basic Multilingual Plane is two code units. A segment never splits an
escape pair or a surrogate pair, so a character that would straddle two starts the next one.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass

# GSM 03.38's default alphabet (the escape 0x1B itself is not a character of a text).
GSM_BASIC = frozenset(
    "@£$¥èéùìòÇ\nØø\rÅåΔ_ΦΓΛΩΠΨΣΘΞÆæßÉ !\"#¤%&'()*+,-./0123456789:;<=>?"
    "¡ABCDEFGHIJKLMNOPQRSTUVWXYZÄÖÑÜ§¿abcdefghijklmnopqrstuvwxyzäöñüà"
)
GSM_EXTENSION = frozenset("\f^{}\\[~]|€")


class Encoding(enum.StrEnum):
    GSM_7 = "GSM-7"
    UCS_2 = "UCS-2"


# Units in one unsplit message, and in each segment of a split one.
LIMITS = {Encoding.GSM_7: (160, 153), Encoding.UCS_2: (70, 67)}
SHOWN_OUTSIDE = 5  # characters named as the reason for UCS-2


@dataclass(frozen=True, slots=True)
class SmsLength:
    encoding: Encoding
    characters: int  # as a person counts them
    units: int  # septets (GSM-7) or UTF-16 code units (UCS-2): what the limits count
    segments: int  # 0 for an empty text
    per_segment: int  # the limit that applied: 160 or 153, 70 or 67
    outside_gsm: tuple[str, ...] = ()  # the first characters that made it UCS-2


def measure(text: str) -> SmsLength:
    """The encoding, length and segment count of `text` as it would be sent."""
    outside: list[str] = []
    for char in text:
        if char not in GSM_BASIC and char not in GSM_EXTENSION and char not in outside:
            outside.append(char)
            if len(outside) == SHOWN_OUTSIDE:
                break
    if outside:
        encoding = Encoding.UCS_2
        costs = [2 if ord(char) > 0xFFFF else 1 for char in text]
    else:
        encoding = Encoding.GSM_7
        costs = [2 if char in GSM_EXTENSION else 1 for char in text]
    single, split = LIMITS[encoding]
    units = sum(costs)
    if units <= single:
        return SmsLength(encoding, len(text), units, 1 if units else 0, single, tuple(outside))
    return SmsLength(encoding, len(text), units, _segments(costs, split), split, tuple(outside))


def _segments(costs: list[int], capacity: int) -> int:
    count, used = 1, 0
    for cost in costs:
        if used + cost > capacity:  # this character does not fit whole: the next segment
            count += 1
            used = 0
        used += cost
    return count
