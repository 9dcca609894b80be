"""The template editor helps a marketer fix what fails (issue 17), on SQLite and PostgreSQL:
an empty Contact field previews a real person with attributes (one the edited language
serves) and says so; a preview that fails for want of a variable says what to do next; opened
from a campaign's dry run, the part's field is focused, its failing line is found by a fresh
render with the campaign's data (never taken from the URL), and "Back to the campaign" stays
through a preview and a save. Bad query values are ignored, never a 500."""

from __future__ import annotations

import html
import re
from typing import Any

from fastapi.testclient import TestClient

from hub.domain import Scope, StaffRole
from hub.runtime import Runtime
from tests.conftest import make_key
from tests.dispatching import ok, person, topic
from tests.integration.test_template_versions import form_of, signed_in

# `data.offer` is on line 3 of the HTML body; `plan` on line 2.
HTML = (
    "<h1>Winter sale, {{ contact.name }}</h1>\n"
    "<p>For our {{ contact.attributes.plan }} members:</p>\n"
    "<p><strong>{{ data.offer }}</strong> on every coat.</p>"
)
SALE = {
    "description": "The winter sale",
    "variants": {
        "": {"email_subject": "Winter sale for {{ contact.name }}", "email_html": HTML},
        "ru": {"email_subject": "Распродажа для {{ contact.name }}"},
    },
}


def world(client: TestClient, runtime: Runtime, *, people: bool = True) -> dict[str, str]:
    """The template; with `people`, an older English speaker with attributes, a Russian
    speaker with attributes, and the newest contact, who has none."""
    api = make_key(runtime, "crm", Scope.CONTACTS, Scope.ADMIN, Scope.CAMPAIGNS)
    ok(client.put("/v1/templates/sale", json=SALE, headers=api), 201)
    if people:
        topic(client, api, "offers")
        attributes = {"plan": "gold", "city": "Riga"}
        person(client, api, "ann", name="Ann Lee", locale="en", attributes=attributes)
        person(client, api, "boris", name="Борис", locale="ru-RU", attributes={"plan": "silver"})
        person(client, api, "cy", name="Cy", locale="en")
    return api


def campaign(client: TestClient, api: dict[str, str], template: str = "sale") -> int:
    body = {"name": "Winter <sale> & more", "topic": "offers", "template": template, "data": {}}
    made = ok(client.post("/v1/campaigns", json=body, headers=api), 201)
    return int(made["id"])


def text_of(page: str) -> str:
    """The page's words, as a person reads them: tags dropped, entities read, spaces joined."""
    return " ".join(html.unescape(re.sub(r"<[^>]+>", " ", page)).split())


def preview(client: TestClient, url: str, **changes: str) -> Any:
    page = client.get(url)
    assert page.status_code == 200, page.text
    fields = form_of(page.text) | {"action": "preview"} | changes
    return client.post(action_of(page.text), data=fields)


def action_of(page: str) -> str:
    """Where the editor's form posts (not the sign-out form's)."""
    found = re.search(r'<form method="post" action="([^"]+)" class="parts"', page)
    assert found, page
    return html.unescape(found.group(1))


def test_an_empty_contact_previews_a_real_person_with_attributes_and_says_whom(
    client: TestClient, runtime: Runtime
) -> None:
    world(client, runtime)
    signed_in(client, runtime)
    editor = text_of(client.get("/console/templates/edit?key=sale").text)
    assert "Leave empty to preview for Ann Lee (ann), the newest contact with attributes" in editor
    assert "(city, plan)" in editor

    answer = preview(client, "/console/templates/edit?key=sale", data='{"offer": "20% off"}')
    assert answer.status_code == 200, answer.text
    words = text_of(answer.text)
    assert "Preview for Ann Lee (ann), the newest contact with attributes (city, plan)" in words
    assert "Choose another person" in words
    assert 'href="#contact">Choose another person' in answer.text
    assert "For our gold members" in html.unescape(answer.text)  # in the frame's document
    assert "There is a problem" not in words

    # The Russian variant previews the Russian speaker, though someone newer has attributes.
    russian = text_of(client.get("/console/templates/edit?key=sale&locale=ru").text)
    assert "preview for Борис (boris), the newest contact in this language with attributes" in (
        russian
    )


def test_a_preview_that_lacks_a_variable_says_what_to_do_next(
    client: TestClient, runtime: Runtime
) -> None:
    world(client, runtime)
    signed_in(client, runtime)
    answer = preview(client, "/console/templates/edit?key=sale", contact="cy", data="{}")
    assert answer.status_code == 200, answer.text
    words = text_of(answer.text)
    assert "There is a problem" in words
    assert "What to do next" in words
    assert "Cy (cy) has no attribute “plan”" in words
    assert '{{ contact.attributes.plan | default("…") }}' in words
    assert "preview with someone who has it, such as boris, by typing their id in Contact" in words
    assert 'href="#contact">Go to Contact' in answer.text
    # `offer` is not named by the failure (it stops at `plan`), so no advice about it yet.
    assert "The data has no “offer”" not in words

    given_plan = preview(client, "/console/templates/edit?key=sale", contact="ann", data="{}")
    words = text_of(given_plan.text)
    assert "The data has no “offer”. Add it to Data (JSON)" in words
    assert 'href="#pdata">Go to Data' in given_plan.text


def test_with_no_contact_at_all_the_stand_in_is_named_and_its_empty_attributes(
    client: TestClient, runtime: Runtime
) -> None:
    world(client, runtime, people=False)
    signed_in(client, runtime)
    editor = text_of(client.get("/console/templates/edit?key=sale").text)
    stand_in = "a stand-in: there are no contacts yet, so its attributes are empty"
    assert f"preview for Sample Person, {stand_in}" in editor
    answer = preview(client, "/console/templates/edit?key=sale", data='{"offer": "x"}')
    words = text_of(answer.text)
    assert "Preview for Sample Person (sample), a stand-in: there are no contacts yet" in words
    assert "Sample Person (sample) has no attribute “plan”" in words
    assert "who has it by typing" in words  # nobody has it to name


def test_opened_from_a_campaign_the_failing_line_is_marked_from_a_fresh_render(
    client: TestClient, runtime: Runtime
) -> None:
    api = world(client, runtime)
    number = campaign(client, api)
    signed_in(client, runtime)
    url = f"/console/templates/edit?key=sale&locale=&part=email_html&line=3&campaign={number}"
    page = client.get(url)
    assert page.status_code == 200, page.text
    words = text_of(page.text)
    assert "Fixing the campaign “Winter <sale> & more”" in words
    assert "Winter <sale>" not in page.text  # the stored name, escaped
    assert f'<a href="/console/campaigns/{number}">Back to the campaign</a>' in page.text
    assert "Rendered again now for Ann Lee (ann), with the campaign's data" in words
    # The field: focused, marked with the line and the fresh render's message.
    field = re.search(r'<textarea id="email_html"[^>]*>', page.text)
    assert field is not None
    assert " autofocus" in field.group(0)
    assert 'aria-invalid="true"' in field.group(0)
    assert "email_html-error" in field.group(0)
    mark = re.search(
        r'<div class="field-error field-mark" id="email_html-error">(.*?)</div>', page.text
    )
    assert mark is not None
    said = text_of(mark.group(1))
    assert said.startswith("Error: Line 3 of this part fails: ")
    assert "offer" in said
    assert "Line 3: <p><strong>{{ data.offer }}</strong> on every coat.</p>" in said
    # What to do next, and the campaign's data in the preview's Data field.
    assert "The campaign's data has no “offer”. Add it on the campaign's page" in words
    assert re.search(r'<textarea id="pdata"[^>]*>\n\{\}</textarea>', page.text)
    # The way back is kept through the form's actions.
    assert f"locale=&amp;campaign={number}&amp;part=email_html" in page.text

    # A line given in the URL that the fresh render does not find is not made up: the
    # render's own line is shown.
    other = text_of(client.get(url.replace("line=3", "line=7")).text)
    assert "Line 3 of this part fails" in other
    assert "Line 7" not in other


def test_the_way_back_is_kept_through_a_preview_and_a_save(
    client: TestClient, runtime: Runtime
) -> None:
    api = world(client, runtime)
    number = campaign(client, api)
    signed_in(client, runtime)
    url = f"/console/templates/edit?key=sale&locale=&part=email_html&line=3&campaign={number}"
    fixed = HTML.replace("{{ data.offer }}", '{{ data.offer | default("20% off") }}')
    previewed = preview(client, url, email_html=fixed)
    assert previewed.status_code == 200, previewed.text
    assert f'href="/console/campaigns/{number}">Back to the campaign' in previewed.text
    assert "20% off" in html.unescape(previewed.text)

    page = client.get(url)
    fields = form_of(page.text) | {"action": "save", "email_html": fixed}
    saved = client.post(action_of(page.text), data=fields, follow_redirects=False)
    assert saved.status_code == 303, saved.text
    location = saved.headers["location"]
    assert location.endswith(f"saved=2&campaign={number}&part=email_html"), location
    after = client.get(location)
    words = text_of(after.text)
    assert "Saved as version 2." in words
    assert "every part of the default language renders" in words
    assert "Back to the campaign , to dry-run it again" in words
    assert " autofocus" not in after.text  # the notice is what is read after a save


def test_an_older_link_finds_its_campaign_from_the_referer(
    client: TestClient, runtime: Runtime
) -> None:
    api = world(client, runtime)
    number = campaign(client, api)
    signed_in(client, runtime)
    url = "/console/templates/edit?key=sale&locale="
    referred = client.get(url, headers={"Referer": f"http://testserver/console/campaigns/{number}"})
    assert f'href="/console/campaigns/{number}">Back to the campaign' in referred.text
    marked = re.search(r'<textarea id="email_html"[^>]*>', referred.text)
    assert marked is not None
    assert " autofocus" in marked.group(0)  # the failing part, found by the render
    elsewhere = client.get(
        url, headers={"Referer": f"http://elsewhere.example/console/campaigns/{number}"}
    )
    assert "Back to the campaign" not in elsewhere.text
    assert "Back to the campaign" not in client.get(url).text


def test_bad_query_values_are_ignored_and_never_shown(client: TestClient, runtime: Runtime) -> None:
    api = world(client, runtime)
    number = campaign(client, api)
    ok(client.put("/v1/templates/other", json=SALE, headers=api), 201)
    signed_in(client, runtime)
    base = "/console/templates/edit?key=sale&locale="
    for query in (
        "&campaign=abc",
        "&campaign=-1",
        "&campaign=0",
        "&campaign=99999999999999999999999",
        "&campaign=%EF%BC%91",  # a full-width digit one
        f"&campaign={number + 1}",  # no such campaign
        "&part=%3Cscript%3Ealert(1)%3C/script%3E&line=%3Cb%3E3",
        "&part=" + "x" * 5000 + "&line=" + "9" * 5000 + "&campaign=" + "1" * 5000,
    ):
        answer = client.get(base + query)
        assert answer.status_code == 200, (query, answer.text)
        assert "Back to the campaign" not in answer.text, query
        assert "<script>alert" not in answer.text
        assert "&lt;b&gt;" not in answer.text
        assert " autofocus" not in answer.text, query
    # A campaign that sends another template is not this page's way back.
    assert (
        "Back to the campaign"
        not in client.get(f"/console/templates/edit?key=other&campaign={number}").text
    )
    # A known part with a bad campaign still focuses the part; a bad line is not shown.
    focused = client.get(base + "&part=sms_body&line=3x&campaign=x")
    field = re.search(r'<textarea id="sms_body"[^>]*>', focused.text)
    assert field is not None
    assert " autofocus" in field.group(0)
    posted = client.post(
        "/console/templates/edit?key=sale&locale=&campaign=abc&part=nope",
        data=form_of(client.get(base).text) | {"action": "save"},
        follow_redirects=False,
    )
    assert posted.status_code == 303
    assert posted.headers["location"].endswith("unchanged=true")


def test_a_viewer_sees_the_way_back_and_the_dry_runs_line_without_a_render(
    client: TestClient, runtime: Runtime
) -> None:
    api = world(client, runtime)
    number = campaign(client, api)
    signed_in(client, runtime, StaffRole.VIEWER)
    page = client.get(
        f"/console/templates/edit?key=sale&locale=&part=email_html&line=3&campaign={number}"
    )
    assert page.status_code == 200, page.text
    words = text_of(page.text)
    assert "Its dry run found line 3 of E-mail HTML failing." in words
    assert "Rendered again" not in words
    assert f'href="/console/campaigns/{number}">Back to the campaign' in page.text
