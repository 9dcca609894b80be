"""Reports people understand, on SQLite and PostgreSQL: a campaign's report (totals overall
and by channel, a chart whose SVG is well-formed and draws the same numbers, waits grouped by
reason with when they go, refusals in words, failures linked to the person and the
notification, a page at a time) and the notification list (paged, by topic, only those with
failures) and page (its deliveries with why in words). Missing ones are friendly 404s; a
viewer reads all of it; someone not signed in reads none of it."""

from __future__ import annotations

import datetime as dt
import html
import re
import xml.etree.ElementTree as ET
from zoneinfo import ZoneInfo

import pytest
from fastapi.testclient import TestClient

from hub.db.base import utcnow
from hub.domain import StaffRole
from hub.runtime import Runtime
from hub.services import staff
from tests import reporting

PASSWORD = "correct horse battery staple"
SVG = "{http://www.w3.org/2000/svg}"


def sign_in(client: TestClient, runtime: Runtime, role: StaffRole = StaffRole.VIEWER) -> None:
    email = f"{role.value}@acme.example"
    with runtime.sessions() as session:
        staff.create(session, email, PASSWORD, role)
        session.commit()
    form = client.get("/console/login").text
    token = re.search(r'name="csrf" value="([^"]+)"', form)
    assert token is not None
    answer = client.post(
        "/console/login",
        data={"csrf": token.group(1), "email": email, "password": PASSWORD},
        follow_redirects=False,
    )
    assert answer.status_code == 303, answer.text


@pytest.fixture
def mixed(runtime: Runtime) -> reporting.Mixed:
    with runtime.engine.begin() as db:
        return reporting.mixed(db, now=utcnow())


def text_of(fragment: str) -> str:
    """What a reader sees of some HTML: links as their words, other tags as spaces,
    entities read, spaces single."""
    words = re.sub(r"<[^>]+>", " ", re.sub(r"</?a\b[^>]*>", "", fragment))
    return " ".join(html.unescape(words).split())


def row_cells(page: str, channel: str) -> list[int]:
    row = re.search(rf'<tr data-channel="{channel}">(.*?)</tr>', page, re.S)
    assert row is not None, f"no row for {channel}"
    return [int(c.replace(",", "")) for c in re.findall(r"<td>([\d,]+)</td>", row.group(1))]


def test_the_report_counts_a_known_mix_by_channel_and_draws_the_same_numbers(
    client: TestClient, runtime: Runtime, mixed: reporting.Mixed
) -> None:
    sign_in(client, runtime)
    answer = client.get(f"/console/campaigns/{mixed.campaign_id}/report")
    assert answer.status_code == 200, answer.text
    page = answer.text
    totals = {
        name: int(value.replace(",", ""))
        for name, value in re.findall(r'<dd id="total-(\w+)">([\d,]+)</dd>', page)
    }
    assert totals == {
        "sent": 9,  # delivered and bounced ones left Hub too
        "delivered": 6,
        "bounced": 1,
        "failed": 2,
        "deferred": 5,
        "refused": 4,
        "unsubscribed": 1,  # p1 only: p4 left before it reached them, p2 left another topic
    }
    # Columns: sent, delivered, bounced, failed, waiting, refused, unsubscribed.
    assert row_cells(page, "email") == [7, 4, 1, 1, 2, 2, 1]
    assert row_cells(page, "sms") == [2, 2, 0, 1, 3, 2, 1]
    assert row_cells(page, "all") == [9, 6, 1, 2, 5, 4, 1]

    # The chart: well-formed XML, labelled, and its lines end at the totals.
    found = re.search(r'<svg xmlns="http://www.w3.org/2000/svg" class="chart".*?</svg>', page, re.S)
    assert found is not None
    svg = ET.fromstring(found.group(0))
    assert svg.get("role") == "img"
    assert svg.get("aria-label") == "Deliveries over time, cumulative"
    assert svg.get("viewBox") == "0 0 480 270"
    assert svg.find(f"{SVG}title") is not None
    desc = svg.find(f"{SVG}desc")
    assert desc is not None
    assert desc.text is not None
    assert "9 sent, 6 delivered, 1 bounced, 2 failed, 5 waiting (deferred)" in desc.text
    drawn = {
        line.get("data-series"): [int(v) for v in (line.get("data-values") or "").split()]
        for line in svg.iter(f"{SVG}polyline")
    }
    expected_ends = {"sent": 9, "delivered": 6, "bounced": 1, "failed": 2, "deferred": 5}
    assert {key: values[-1] for key, values in drawn.items()} == expected_ends
    for key, values in drawn.items():
        assert values[0] == 0, key
        assert values == sorted(values), f"{key} is cumulative: it never goes down"
    # Each point's height follows its figure: the bigger the count, the higher (smaller y).
    sent = next(p for p in svg.iter(f"{SVG}polyline") if p.get("data-series") == "sent")
    heights = [float(pair.split(",")[1]) for pair in (sent.get("points") or "").split()]
    assert len(heights) == len(drawn["sent"])
    assert heights == sorted(heights, reverse=True)
    assert heights[0] > heights[-1]
    # The same figures in the table beside it: its last row holds the totals.
    table = page[page.index('aria-label="The chart\'s figures"') :]
    last = re.findall(r"<tr><th scope=\"row\">[^<]+</th>((?:<td>[\d,]+</td>)+)</tr>", table)[-1]
    assert [int(v) for v in re.findall(r"<td>([\d,]+)</td>", last)] == [9, 6, 1, 2, 5]


def test_waits_are_grouped_by_reason_with_when_they_go_and_refusals_are_in_words(
    client: TestClient, runtime: Runtime, mixed: reporting.Mixed
) -> None:
    sign_in(client, runtime)
    page = client.get(f"/console/campaigns/{mixed.campaign_id}/report").text
    waits = {
        reason: text_of(sentence)
        for reason, sentence in re.findall(r'<li data-reason="(\w+)">(.*?)</li>', page, re.S)
    }
    assert set(waits) == {"legal_window", "throttled"}

    def local(at: dt.datetime, zone: str) -> str:
        moment = at.astimezone(ZoneInfo(zone))
        return f"{moment:%H:%M} {zone}, {moment.day} {moment:%b}"

    first, last = sorted((at, reporting.MIXED_ZONES[c]) for c, at in mixed.legal.items())[::2]
    assert waits["legal_window"] == (
        "3 SMS wait for the legal window for marketing SMS and calls "
        "(08:00\N{EN DASH}21:00 in each person's time zone); "
        f"the first go at {local(*first)}, the last at {local(*last)}."
    )
    assert "08:00 Asia/Tokyo" in waits["legal_window"]  # each at 08:00 in the person's zone
    soon, later = mixed.throttled
    assert waits["throttled"] == (
        "2 e-mails wait for their turn under the campaign's throttle (messages a minute); "
        f"the first go at {local(soon, 'UTC')}, the last at {local(later, 'UTC')}."
    )

    refusals = {
        reason: [text_of(cell) for cell in re.findall(r"<td[^>]*>(.*?)</td>", row)]
        for reason, row in re.findall(r'<tr data-reason="([^"]+)">(.*?)</tr>', page, re.S)
    }
    assert refusals == {
        "no_address": ["No address for this channel", "2", "2 SMS"],
        "unsubscribed": ["Unsubscribed from the topic", "1", "1 e-mail"],
        "suppressed:hard_bounce": [
            "The address is suppressed: it bounced for good (hard bounce)",
            "1",
            "1 e-mail",
        ],
    }


def test_failures_link_to_the_person_and_the_notification_a_page_at_a_time(
    client: TestClient, runtime: Runtime, mixed: reporting.Mixed
) -> None:
    sign_in(client, runtime)
    page = client.get(f"/console/campaigns/{mixed.campaign_id}/report").text
    failures = page[page.index('<table class="failures') :]
    failures = failures[: failures.index("</table>")]
    rows = re.findall(r"<tr>(.*?)</tr>", failures, re.S)[1:]  # after the heading row
    people = [re.findall(r'href="/console/contacts/([^"]+)"', r)[0] for r in rows]
    assert people == ["p7", "p8", "p3"]  # by delivery id: the e-mails were written first
    for row in rows:
        assert f'href="/console/notifications/{mixed.notification_id}?show=failures"' in row
    words = [text_of(r) for r in rows]
    assert "It bounced for good (hard bounce) 5.1.1: 550 5.1.1 user unknown" in words[0]
    assert "The provider refused this message 554: 554 message refused" in words[1]
    assert "failed after 3 attempts" in words[2]
    assert "Twilio reported it: undelivered 30003: Unreachable destination handset" in words[2]
    # The profile the link leads to is there.
    assert client.get("/console/contacts/p7").status_code == 200
    assert "deliveries.csv" in page

    # Fifty-five more, on webhooks: fifty on the first page, then the rest.
    now = utcnow()
    with runtime.engine.begin() as db:
        campaign_id, notification_id = reporting.campaign(
            db, topic_id=mixed.topic_id, name="Many failures", now=now
        )
        reporting.deliveries(
            db,
            notification_id,
            [
                {"contact_id": c, "channel": "webhook", "state": "failed", "updated_at": now,
                 "reason": "gave_up", "error": "503 Service Unavailable"}
                for c in range(1, 17)
            ]
            + [
                {"contact_id": c, "channel": channel, "state": "bounced", "updated_at": now,
                 "reason": "hard_bounce"}
                for c in range(1, 17) for channel in ("email", "sms", "voice")
            ][:39],
        )  # fmt: skip
    first = client.get(f"/console/campaigns/{campaign_id}/report").text
    assert first.count('href="/console/contacts/') == 50
    more = re.search(
        rf'href="(/console/campaigns/{campaign_id}/report\?after=\d+)#failures"', first
    )
    assert more is not None
    second = client.get(more.group(1)).text
    assert second.count('href="/console/contacts/') == 5
    assert "Next failures" not in second
    assert "First failures" in second
    bad = client.get(f"/console/campaigns/{campaign_id}/report?after=0")
    assert bad.status_code == 422
    assert "after" in bad.text


def test_notifications_are_listed_newest_first_by_topic_and_with_failures_paged(
    client: TestClient, runtime: Runtime, mixed: reporting.Mixed
) -> None:
    sign_in(client, runtime)
    now = utcnow()
    with runtime.engine.begin() as db:
        news = reporting.topic(db, "alerts", now=now)
        plain = [
            reporting.notification(db, topic_id=news, now=now, template_key=None) for _ in range(55)
        ]
        failing = reporting.notification(db, topic_id=news, now=now, source="key:billing")
        reporting.deliveries(
            db,
            failing,
            [
                {"contact_id": 1, "channel": "email", "state": "failed", "updated_at": now,
                 "reason": "rejected"},
                {"contact_id": 2, "channel": "email", "state": "delivered", "updated_at": now,
                 "sent_at": now},
            ],
        )  # fmt: skip

    first = client.get("/console/notifications").text
    listed = [int(n) for n in re.findall(r'<a href="/console/notifications/(\d+)">', first)]
    assert len(listed) == 50
    assert listed == sorted(listed, reverse=True)
    assert listed[0] == failing
    marked = rf'<tr class="failing"><td[^>]*><a href="/console/notifications/{failing}">.*?</tr>'
    row = re.search(marked, first, re.S)
    assert row is not None
    assert "delivered 1 · failed 1" in text_of(row.group(0))
    assert "key:billing" in row.group(0)
    older = re.search(r'href="(/console/notifications\?before=\d+)"', first)
    assert older is not None
    second = client.get(html.unescape(older.group(1))).text
    rest = [int(n) for n in re.findall(r'<a href="/console/notifications/(\d+)">', second)]
    assert rest == sorted(rest, reverse=True)
    assert not set(rest) & set(listed)
    assert set(listed) | set(rest) == {*plain, failing, mixed.notification_id}
    # The campaign's run names its campaign, and links to its report.
    report = f"/console/campaigns/{mixed.campaign_id}/report"
    assert f'campaign <a href="{report}">Winter sale</a>' in second

    by_topic = client.get("/console/notifications", params={"topic": "offers"}).text
    assert re.findall(r'<a href="/console/notifications/(\d+)">', by_topic) == [
        str(mixed.notification_id)
    ]
    assert '<option value="offers" selected>' in by_topic
    only_failing = client.get("/console/notifications", params={"failing": "true"}).text
    shown = re.findall(r'<a href="/console/notifications/(\d+)">', only_failing)
    assert shown == [str(failing), str(mixed.notification_id)]
    assert "checked" in only_failing
    both = client.get("/console/notifications", params={"failing": "true", "topic": "alerts"})
    assert re.findall(r'<a href="/console/notifications/(\d+)">', both.text) == [str(failing)]
    none = client.get("/console/notifications", params={"topic": "nothing-here"}).text
    assert "None match." in none
    assert client.get("/console/notifications", params={"before": "x"}).status_code == 422


def test_a_notification_shows_its_failures_with_reasons_and_links(
    client: TestClient, runtime: Runtime, mixed: reporting.Mixed
) -> None:
    sign_in(client, runtime)
    here = f"/console/notifications/{mixed.notification_id}"
    page = client.get(here).text
    facts = text_of(page[page.index('<dl class="facts">') : page.index("</dl>")])
    assert "Topic offers" in facts
    assert "Template offer, version 3 (its history)" in facts
    assert "Source campaign Winter sale" in facts
    assert 'href="/console/templates/history?key=offer"' in page
    assert f'href="/console/campaigns/{mixed.campaign_id}"' in page
    assert f'href="/console/campaigns/{mixed.campaign_id}/report"' in page
    assert page.count('href="/console/contacts/') == 20  # every delivery names its person

    failures = client.get(here, params={"show": "failures"}).text
    rows = re.findall(r'<tr class="state-row-(\w+)">(.*?)</tr>', failures, re.S)
    assert [state for state, _ in rows] == ["bounced", "failed", "failed"]
    said = [text_of(row) for _, row in rows]
    assert said[0].startswith("Person 7 p7 email bounced It bounced for good (hard bounce)")
    assert "554: 554 message refused" in said[1]
    assert "Twilio reported it: undelivered 30003: Unreachable destination handset 3" in said[2]
    assert 'href="/console/contacts/p3"' in rows[2][1]

    waiting = client.get(here, params={"show": "waiting"}).text
    rows = re.findall(r'<tr class="state-row-(\w+)">(.*?)</tr>', waiting, re.S)
    held = [text_of(row) for _, row in rows]
    assert len(held) == 5
    tokyo = mixed.legal[13].astimezone(ZoneInfo("Asia/Tokyo"))
    assert any(
        f"Waits for the legal window for marketing SMS and calls (08:00\N{EN DASH}21:00 in each "
        f"person's time zone); goes at 08:00 Asia/Tokyo, {tokyo.day} {tokyo:%b}" in row
        for row in held
    )
    soon = mixed.throttled[0]
    assert any(f"goes at {soon:%H:%M} UTC" in row for row in held)
    assert client.get(here, params={"show": "everything"}).status_code == 422


def test_missing_ones_are_friendly_404s_and_nonsense_ids_are_refused(
    client: TestClient, runtime: Runtime
) -> None:
    sign_in(client, runtime)
    missing = client.get("/console/notifications/424242")
    assert missing.status_code == 404
    assert "There is no notification number 424242" in missing.text
    assert 'href="/console/notifications"' in missing.text
    gone = client.get("/console/campaigns/424242/report")
    assert gone.status_code == 404
    assert "There is no campaign number 424242" in gone.text
    for url in ("/console/notifications/0", f"/console/notifications/{2**63}"):
        answer = client.get(url)
        assert answer.status_code == 422, url
        assert "notification_id" in answer.text


def test_a_viewer_reads_the_reports_and_no_one_else_does(
    client: TestClient, runtime: Runtime, mixed: reporting.Mixed
) -> None:
    pages = [
        f"/console/campaigns/{mixed.campaign_id}/report",
        "/console/notifications",
        f"/console/notifications/{mixed.notification_id}",
    ]
    for url in pages:
        answer = client.get(url, follow_redirects=False)
        assert answer.status_code == 303, url
        assert answer.headers["location"] == "/console/login"
    sign_in(client, runtime, StaffRole.VIEWER)
    for url in pages:
        answer = client.get(url)
        assert answer.status_code == 200, url
        # No script but the hub's own (live.js, on a page of something still sending).
        policy = answer.headers["content-security-policy"]
        assert "script-src" not in policy or "script-src 'self';" in policy, url
        assert "unsafe" not in policy
        scripts = re.findall(r"<script[^>]*>", answer.text)
        assert scripts in ([], ['<script src="/static/live.js" defer>']), url
    assert client.get("/static/reports.css").status_code == 200


def test_a_campaign_that_has_not_run_says_so(client: TestClient, runtime: Runtime) -> None:
    now = utcnow()
    with runtime.engine.begin() as db:
        topic_id = reporting.topic(db, "quiet", now=now)
        campaign_id, notification_id = reporting.campaign(
            db, topic_id=topic_id, name="Later", now=now
        )
        db.exec_driver_sql(f"DELETE FROM notifications WHERE id = {notification_id}")
    sign_in(client, runtime)
    page = client.get(f"/console/campaigns/{campaign_id}/report").text
    assert "Nothing has gone out yet: the campaign has not run." in page
    assert "<svg" not in page
