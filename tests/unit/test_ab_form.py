"""The new-campaign form's A/B rows and tracking choice as the API's body, and its refusals
worded by the row a marketer sees ("Variant B's share")."""

from __future__ import annotations

from pydantic import ValidationError

from hub.console import campaign_form
from hub.schemas.campaigns import AbMode, CampaignIn
from hub.services.errors import InvalidField

FORM = {"name": "Spring", "topic": "offers", "template": "plain", "data": "{}"}


def test_rows_with_a_template_become_variants_and_the_template_is_left_out() -> None:
    values = FORM | {
        "variant1_template": "spring-a",
        "variant2_template": "spring-b",
        "variant2_name": "Bold",
        "variant3_name": "ignored: no template",
        "ab_mode": "winner",
        "ab_sample": "20",
        "ab_wait": "240",
        "ab_metric": "open",
        "tracking": "off",
    }
    body = CampaignIn.model_validate(campaign_form.body(values))
    assert body.template is None
    assert [(v.name, v.template, v.share) for v in body.variants or []] == [
        ("A", "spring-a", None),
        ("Bold", "spring-b", None),
    ]
    assert body.ab is not None
    assert (body.ab.mode, body.ab.sample, body.ab.wait_minutes) == (AbMode.WINNER, 20, 240)
    assert body.ab.metric.value == "open"
    assert body.tracking is False


def test_without_variant_rows_the_template_is_sent_and_split_leaves_out_the_test() -> None:
    plain = campaign_form.body(FORM | {"ab_sample": "20", "tracking": ""})
    assert plain["template"] == "plain"
    assert "variants" not in plain
    assert "tracking" not in plain  # as the topic says
    split = campaign_form.body(
        FORM | {"variant1_template": "a", "variant2_template": "b", "ab_sample": "20"}
    )
    assert split["ab"] == {"mode": "split"}  # a sample typed for a split is not sent


def test_refusals_name_the_row() -> None:
    try:
        CampaignIn.model_validate(
            campaign_form.body(
                FORM | {"variant1_template": "a", "variant2_template": "b", "variant2_share": "x"}
            )
        )
    except ValidationError as exc:
        said = campaign_form.problems(exc)
    else:
        raise AssertionError("a share that is not a number was taken")
    assert said[0].startswith("Variant B's share: ")
    worded = campaign_form.problems(InvalidField("variants[0].template", "no template 'x'"))
    assert worded == ["Variant A's template: no template 'x'"]
    assert campaign_form.problems(InvalidField("ab.sample", "give it")) == ["The sample: give it"]


def test_a_refusal_names_the_form_row_when_a_row_was_left_empty() -> None:
    values = FORM | {"variant1_template": "a", "variant3_template": "c", "variant3_share": "150"}
    try:
        CampaignIn.model_validate(campaign_form.body(values))
    except ValidationError as exc:
        said = campaign_form.problems(exc, values)
    else:
        raise AssertionError("a share of 150 was taken")
    assert said[0].startswith("Variant C's share: ")  # the second variant given, in row C


def test_the_tracking_hint_names_each_topics_default() -> None:
    said = campaign_form.tracking_default([("Offers", True), ("News", True), ("Alerts", False)])
    assert said == "As the topic says: Offers and News track them; Alerts does not."
    assert (
        campaign_form.describe_tracking(None, True) == "as the topic says: opens and clicks tracked"
    )
    assert campaign_form.describe_tracking(False, True) == "not tracked"
