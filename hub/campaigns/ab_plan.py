"""An A/B test's plan: the checks a campaign's variants must pass, and which buckets of the
audience each arm's notification reaches.

A person's bucket (0..9999) is a pure function of the campaign and the person
(hub.dispatch.segment.bucket_of), so an arm is a range of buckets: split mode cuts the
range by share; winner mode gives the first `sample` percent to the test arms, evenly, and
the rest (its complement, so nobody of the sample is sent twice) to the winner later.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from hub.dispatch.segment import BUCKETS
from hub.schemas import schedules
from hub.schemas.campaigns import AbIn, AbMode, CampaignIn
from hub.services.errors import InvalidField

ONE_OFF = (schedules.Now, schedules.At)  # where a test group's wait has one clear start


@dataclass(frozen=True, slots=True)
class Arm:
    name: str
    template: str
    low: int  # first bucket
    high: int  # one past the last


@dataclass(frozen=True, slots=True)
class Plan:
    """What the campaign row keeps: its own template, its variants and its test's settings."""

    template: str
    variants: list[dict[str, Any]] | None
    ab: dict[str, Any] | None


def checked(body: CampaignIn, *, template_exists: Callable[[str], bool]) -> Plan:
    """The campaign's template, variants and test as stored.

    Raises:
        InvalidField: naming the field (variants[1].share, ab.sample...) and why.
    """
    if body.variants is None:
        if body.ab is not None:
            raise InvalidField("ab", "an A/B test needs variants: give 2 to 4")
        if body.template is None:
            raise InvalidField("template", "give the template to send (or variants to test)")
        if not template_exists(body.template):
            raise InvalidField("template", f"no template {body.template!r}")
        return Plan(body.template, None, None)
    if body.template is not None:
        raise InvalidField("template", "with variants, each variant names its template")
    seen: set[str] = set()
    for index, variant in enumerate(body.variants):
        if variant.name.lower() in seen:
            raise InvalidField(f"variants[{index}].name", f"{variant.name!r} is given twice")
        seen.add(variant.name.lower())
        if not template_exists(variant.template):
            raise InvalidField(f"variants[{index}].template", f"no template {variant.template!r}")
    test = body.ab or AbIn()
    shares = [v.share for v in body.variants]
    if test.mode is AbMode.SPLIT:
        for name in ("sample", "wait_minutes"):
            if getattr(test, name) is not None:
                raise InvalidField(f"ab.{name}", "only a test-then-winner campaign has one")
        shares = _split_shares(shares)
    else:
        _check_winner(body, test, shares)
    variants = [
        {"name": v.name, "template": v.template, "share": share}
        for v, share in zip(body.variants, shares, strict=True)
    ]
    ab = test.model_dump(mode="json", exclude_none=True)
    return Plan(body.variants[0].template, variants, ab)


def _split_shares(shares: list[int | None]) -> list[int | None]:
    if all(share is None for share in shares):  # an even split; the first ones take the rest
        even, left = divmod(100, len(shares))
        return [even + (1 if index < left else 0) for index in range(len(shares))]
    for index, share in enumerate(shares):
        if share is None:
            raise InvalidField(
                f"variants[{index}].share", "give every variant's share, or none for an even split"
            )
    total = sum(share or 0 for share in shares)
    if total != 100:
        raise InvalidField(
            f"variants[{len(shares) - 1}].share",
            f"the shares add up to {total}; they must add up to 100",
        )
    return shares


def _check_winner(body: CampaignIn, test: AbIn, shares: list[int | None]) -> None:
    for index, share in enumerate(shares):
        if share is not None:
            raise InvalidField(
                f"variants[{index}].share",
                "a test-then-winner campaign splits its test group evenly: leave share out",
            )
    if test.sample is None:
        raise InvalidField("ab.sample", "give the test group's size, a percent of the audience")
    if test.wait_minutes is None:
        raise InvalidField("ab.wait_minutes", "give how long the test group has before the pick")
    if not isinstance(body.schedule, ONE_OFF):
        raise InvalidField(
            "ab.mode",
            "a recurring or local-time campaign can split its audience (mode split), but "
            "picking a winner needs one send time to wait from: schedule it now or at an instant",
        )


def arms(variants: list[dict[str, Any]], ab: dict[str, Any]) -> list[Arm]:
    """The arms sent first: every person of the audience (split) or of the test group."""
    if ab.get("mode") == AbMode.WINNER:
        top = int(ab["sample"]) * BUCKETS // 100
        count = len(variants)
        edges = [top * index // count for index in range(count + 1)]
    else:
        edges = [0]
        for variant in variants:
            edges.append(edges[-1] + int(variant["share"]) * BUCKETS // 100)
        edges[-1] = BUCKETS  # shares sum to 100: the last edge is the end already
    return [
        Arm(v["name"], v["template"], edges[index], edges[index + 1])
        for index, v in enumerate(variants)
    ]


def rest(ab: dict[str, Any]) -> tuple[int, int]:
    """The buckets a winner goes to: everyone outside the test group."""
    return int(ab["sample"]) * BUCKETS // 100, BUCKETS


def awaiting_winner(ab: dict[str, Any] | None) -> bool:
    """A test-then-winner campaign whose rest is not sent yet."""
    if not ab or ab.get("mode") != AbMode.WINNER:
        return False
    return "rest_notification" not in ab
