"""A/B tests without a database: the z-test against worked values, the comparison's words,
the pick and its tie rule, the arms' bucket ranges, and the bucket function's spread."""

from __future__ import annotations

import math
from collections import Counter

import pytest

from hub.campaigns import ab_plan
from hub.campaigns.ab_results import Figures, compare, z_test
from hub.campaigns.ab_winner import pick
from hub.dispatch.segment import BUCKETS, bucket_of
from hub.schemas.campaigns import AbMetric

ARMS = [("A", "offer-a"), ("B", "offer-b")]
VARIANTS = [{"name": "A", "template": "offer-a"}, {"name": "B", "template": "offer-b"}]


def test_the_z_test_matches_the_worked_example() -> None:
    # 30 of 200 against 50 of 200: pooled 0.2, standard error sqrt(0.2 * 0.8 * 2 / 200) =
    # 0.04, z = (0.15 - 0.25) / 0.04 = -2.5; two-sided p = erfc(2.5 / sqrt 2) = 0.012419.
    tested = z_test((30, 50), (200, 200))
    assert tested is not None
    assert tested.z == pytest.approx(-2.5)
    assert tested.p_value == pytest.approx(0.0124193, abs=1e-6)
    assert math.isclose(z_test((50, 30), (200, 200)).p_value, tested.p_value)  # type: ignore[union-attr]
    assert z_test((0, 0), (100, 100)) is None  # nobody did: nothing to test
    assert z_test((1, 2), (0, 10)) is None


def test_the_note_says_which_is_higher_and_how_sure() -> None:
    found = {"A": Figures(delivered=200, clicks=30), "B": Figures(delivered=200, clicks=50)}
    result = compare(ARMS, found, AbMetric.CLICK)
    assert result.leader == "B"
    assert result.note == "B's click rate is higher (p = 0.012)."
    assert [arm.click_rate for arm in result.arms] == [0.15, 0.25]

    # 30 against 34 of 200: pooled 0.16, z = 0.02 / sqrt(0.16 * 0.84 / 100) = 0.5455.
    close = {"A": Figures(delivered=200, clicks=30), "B": Figures(delivered=200, clicks=34)}
    said = compare(ARMS, close, AbMetric.CLICK).note
    assert said == "B's click rate is higher, but that may be chance (p = 0.585)."

    strong = {"A": Figures(delivered=1000, opens=100), "B": Figures(delivered=1000, opens=300)}
    assert compare(ARMS, strong, AbMetric.OPEN).note == "B's open rate is higher (p < 0.001)."


@pytest.mark.parametrize(
    "found",
    [
        {"A": Figures(delivered=29, clicks=10), "B": Figures(delivered=200, clicks=50)},
        {"A": Figures(delivered=200, clicks=4), "B": Figures(delivered=200, clicks=50)},
        {"A": Figures(delivered=200, clicks=196), "B": Figures(delivered=200, clicks=50)},
        {"B": Figures(delivered=200, clicks=50)},
    ],
)
def test_too_few_to_tell(found: dict[str, Figures]) -> None:
    result = compare(ARMS, found, AbMetric.CLICK)
    assert result.note.startswith("Too few to tell")
    assert result.p_value is None


def test_the_best_of_four_is_compared_with_the_runner_up() -> None:
    arms = [("A", "a"), ("B", "b"), ("C", "c"), ("D", "d")]
    found = {
        "A": Figures(delivered=500, clicks=50),
        "B": Figures(delivered=500, clicks=90),
        "C": Figures(delivered=500, clicks=60),
        "D": Figures(delivered=500, clicks=20),
    }
    result = compare(arms, found, AbMetric.CLICK)
    assert result.leader == "B"
    assert "than C's, the next best" in result.note


def test_the_pick_takes_the_higher_rate_and_a_tie_goes_to_the_first() -> None:
    found = {"A": Figures(delivered=100, clicks=10), "B": Figures(delivered=50, clicks=10)}
    winner, why = pick(VARIANTS, found, AbMetric.CLICK)
    assert winner == "B"  # 20 % against 10 %: a rate, not a count
    assert why.startswith("the highest human click rate")
    assert "B: 10 of 50 (20.0%)" in why

    tie = {"A": Figures(delivered=100, clicks=10), "B": Figures(delivered=100, clicks=10)}
    winner, why = pick(VARIANTS, tie, AbMetric.CLICK)
    assert winner == "A"
    assert "tie between A, B" in why
    assert "first of them" in why

    winner, why = pick(VARIANTS, {}, AbMetric.OPEN)
    assert winner == "A"
    assert "nobody reached" in why


def test_arms_cut_the_buckets_by_share_or_split_the_sample_evenly() -> None:
    split = [
        {"name": "A", "template": "a", "share": 34},
        {"name": "B", "template": "b", "share": 33},
        {"name": "C", "template": "c", "share": 33},
    ]
    arms = ab_plan.arms(split, {"mode": "split"})
    assert [(a.low, a.high) for a in arms] == [(0, 3400), (3400, 6700), (6700, BUCKETS)]
    test = {"mode": "winner", "sample": 30, "wait_minutes": 60}
    arms = ab_plan.arms(split, test)
    assert [(a.low, a.high) for a in arms] == [(0, 1000), (1000, 2000), (2000, 3000)]
    assert ab_plan.rest(test) == (3000, BUCKETS)  # the complement: nobody twice
    assert ab_plan.awaiting_winner(test)
    assert not ab_plan.awaiting_winner(test | {"rest_notification": 7})
    assert not ab_plan.awaiting_winner({"mode": "split"})


def test_buckets_spread_evenly_and_differ_between_campaigns() -> None:
    ids = range(1, 20_001)
    halves = Counter(bucket_of(seed=7, contact_id=i) < BUCKETS // 2 for i in ids)
    assert abs(halves[True] - 10_000) < 300
    tenths = Counter(bucket_of(seed=7, contact_id=i) * 10 // BUCKETS for i in ids)
    assert all(abs(n - 2_000) < 200 for n in tenths.values())
    # Campaign 8 does not put the same people first: about half of 7's first half.
    first = {i for i in ids if bucket_of(seed=7, contact_id=i) < BUCKETS // 2}
    again = {i for i in ids if bucket_of(seed=8, contact_id=i) < BUCKETS // 2}
    assert abs(len(first & again) - 5_000) < 400
    assert all(0 <= bucket_of(seed=2**40, contact_id=2**62 + i) < BUCKETS for i in range(100))
