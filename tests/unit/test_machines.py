"""Issue 18, part 3: a person's open or click told apart from a proxy's, a scanner's or a script's.

The user agents are real ones, as the sources named in hub/dispatch/machines.py recorded them.
"""

from __future__ import annotations

import random

import pytest

from hub.dispatch.machines import Verdict, agent_of, all_at_once, classify
from hub.domain import AgentClass, EngagementKind, MachineReason

OPEN, CLICK = EngagementKind.OPEN, EngagementKind.CLICK
TOO_SOON = 10.0  # seconds; the dispatcher's setting
LATER = 3600.0  # an hour after sending: a person's time

GMAIL_PROXY = (
    "Mozilla/5.0 (Windows NT 5.1; rv:11.0) Gecko Firefox/11.0 (via ggpht.com GoogleImageProxy)"
)
GMAIL_PREFETCH = (
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) "
    "Chrome/42.0.2311.135 Safari/537.36 Edge/12.246 Mozilla/5.0"
)
YAHOO_PROXY = "YahooMailProxy; https://help.yahoo.com/kb/yahoo-mail-proxy-SLN28749.html"
APPLE_MPP = "Mozilla/5.0"
IPHONE_MAIL = (
    "Mozilla/5.0 (iPhone; CPU iPhone OS 17_1 like Mac OS X) AppleWebKit/605.1.15 "
    "(KHTML, like Gecko) Mobile/15E148"
)
IPHONE_SAFARI = (
    "Mozilla/5.0 (iPhone; CPU iPhone OS 17_1 like Mac OS X) AppleWebKit/605.1.15 "
    "(KHTML, like Gecko) Version/17.1 Mobile/15E148 Safari/604.1"
)
ANDROID_CHROME = (
    "Mozilla/5.0 (Linux; Android 14; Pixel 8) AppleWebKit/537.36 (KHTML, like Gecko) "
    "Chrome/120.0.6099.144 Mobile Safari/537.36"
)
CUBOT_PHONE = (
    "Mozilla/5.0 (Linux; Android 10; CUBOT X30) AppleWebKit/537.36 (KHTML, like Gecko) "
    "Chrome/108.0.0.0 Mobile Safari/537.36"
)
MAC_APPLE_MAIL = (
    "Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/605.1.15 (KHTML, like Gecko)"
)
OUTLOOK_DESKTOP = "Microsoft Office/16.0 (Windows NT 10.0; Microsoft Outlook 16.0.17126; Pro)"
OUTLOOK_IMAGES = (  # Outlook on Windows fetching a message's images
    "Mozilla/4.0 (compatible; MSIE 7.0; Windows NT 10.0; WOW64; Trident/7.0; .NET4.0C; .NET4.0E; "
    ".NET CLR 2.0.50727; Microsoft Outlook 16.0.5257; ms-office; MSOffice 16)"
)
OFFICE_DISCOVERY = "Microsoft Office Protocol Discovery"
THUNDERBIRD = "Mozilla/5.0 (X11; Linux x86_64; rv:115.0) Gecko/20100101 Thunderbird/115.5.0"
CHROME = (
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) "
    "Chrome/120.0.0.0 Safari/537.36"
)
FIREFOX = "Mozilla/5.0 (X11; Ubuntu; Linux x86_64; rv:121.0) Gecko/20100101 Firefox/121.0"
MAC_SAFARI = (
    "Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/605.1.15 (KHTML, like Gecko) "
    "Version/17.1 Safari/605.1.15"
)
EDGE = CHROME + " Edg/120.0.2210.91"
# Proofpoint publishes no user agent; scanner write-ups say its fetches often name it. This one
# stands for those; the ones that pass as Chrome are caught by time and all_at_once instead.
PROOFPOINT = "Mozilla/5.0 (compatible; Proofpoint URL Defense)"
BARRACUDA = "Barracuda Sentinel (EE)"
BING_PREVIEW = (
    "Mozilla/5.0 (Windows NT 6.1; WOW64) AppleWebKit/534+ (KHTML, like Gecko) BingPreview/1.0b"
)
CURL = "curl/8.5.0"
PYTHON_REQUESTS = "python-requests/2.31.0"
GO = "Go-http-client/1.1"
JAVA = "Java/1.8.0_392"
HEADLESS = (
    "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) "
    "HeadlessChrome/120.0.6099.109 Safari/537.36"
)
GOOGLEBOT = "Mozilla/5.0 (compatible; Googlebot/2.1; +http://www.google.com/bot.html)"

# (user agent, what an open of it an hour after sending is)
TABLE = [
    (GMAIL_PROXY, Verdict(AgentClass.PRIVACY_PROXY, True, MachineReason.PRIVACY_PROXY)),
    (GMAIL_PREFETCH, Verdict(AgentClass.PRIVACY_PROXY, True, MachineReason.PRIVACY_PROXY)),
    (YAHOO_PROXY, Verdict(AgentClass.PRIVACY_PROXY, True, MachineReason.PRIVACY_PROXY)),
    (APPLE_MPP, Verdict(AgentClass.PRIVACY_PROXY, True, MachineReason.PRIVACY_PROXY)),
    (IPHONE_MAIL, Verdict(AgentClass.MOBILE, False, None)),
    (IPHONE_SAFARI, Verdict(AgentClass.MOBILE, False, None)),
    (ANDROID_CHROME, Verdict(AgentClass.MOBILE, False, None)),
    (CUBOT_PHONE, Verdict(AgentClass.MOBILE, False, None)),
    (MAC_APPLE_MAIL, Verdict(AgentClass.MAIL_CLIENT, False, None)),
    (OUTLOOK_DESKTOP, Verdict(AgentClass.MAIL_CLIENT, False, None)),
    (OUTLOOK_IMAGES, Verdict(AgentClass.MAIL_CLIENT, False, None)),
    (THUNDERBIRD, Verdict(AgentClass.MAIL_CLIENT, False, None)),
    (CHROME, Verdict(AgentClass.BROWSER, False, None)),
    (FIREFOX, Verdict(AgentClass.BROWSER, False, None)),
    (MAC_SAFARI, Verdict(AgentClass.BROWSER, False, None)),
    (EDGE, Verdict(AgentClass.BROWSER, False, None)),
    (PROOFPOINT, Verdict(AgentClass.LINK_SCANNER, True, MachineReason.SCANNER_AGENT)),
    (BARRACUDA, Verdict(AgentClass.LINK_SCANNER, True, MachineReason.SCANNER_AGENT)),
    (BING_PREVIEW, Verdict(AgentClass.LINK_SCANNER, True, MachineReason.SCANNER_AGENT)),
    (CURL, Verdict(AgentClass.LINK_SCANNER, True, MachineReason.SCANNER_AGENT)),
    (PYTHON_REQUESTS, Verdict(AgentClass.LINK_SCANNER, True, MachineReason.SCANNER_AGENT)),
    (GO, Verdict(AgentClass.LINK_SCANNER, True, MachineReason.SCANNER_AGENT)),
    (JAVA, Verdict(AgentClass.LINK_SCANNER, True, MachineReason.SCANNER_AGENT)),
    (HEADLESS, Verdict(AgentClass.LINK_SCANNER, True, MachineReason.SCANNER_AGENT)),
    (OFFICE_DISCOVERY, Verdict(AgentClass.LINK_SCANNER, True, MachineReason.SCANNER_AGENT)),
    (GOOGLEBOT, Verdict(AgentClass.LINK_SCANNER, True, MachineReason.SCANNER_AGENT)),
    ("", Verdict(AgentClass.LINK_SCANNER, True, MachineReason.SCANNER_AGENT)),
    (None, Verdict(AgentClass.LINK_SCANNER, True, MachineReason.SCANNER_AGENT)),
    ("SomethingNew/1.0", Verdict(AgentClass.UNKNOWN, False, None)),
]


@pytest.mark.parametrize(("user_agent", "expected"), TABLE)
def test_an_open_an_hour_later_is_what_its_user_agent_says(
    user_agent: str | None, expected: Verdict
) -> None:
    verdict = classify(
        kind=OPEN, method="GET", user_agent=user_agent, seconds_since_sent=LATER, too_soon=TOO_SOON
    )
    assert verdict == expected


@pytest.mark.parametrize(("user_agent", "expected"), TABLE)
def test_a_click_an_hour_later_is_too_but_a_proxy_following_a_link_is_a_scanner(
    user_agent: str | None, expected: Verdict
) -> None:
    verdict = classify(
        kind=CLICK, method="GET", user_agent=user_agent, seconds_since_sent=LATER, too_soon=TOO_SOON
    )
    if expected.agent is AgentClass.PRIVACY_PROXY:
        expected = Verdict(AgentClass.LINK_SCANNER, True, MachineReason.SCANNER_AGENT)
    assert verdict == expected


@pytest.mark.parametrize("kind", [OPEN, CLICK])
@pytest.mark.parametrize("method", ["HEAD", "head"])
def test_a_head_request_is_a_machine_whatever_it_claims_to_be(
    kind: EngagementKind, method: str
) -> None:
    verdict = classify(
        kind=kind, method=method, user_agent=CHROME, seconds_since_sent=LATER, too_soon=TOO_SOON
    )
    assert verdict == Verdict(AgentClass.BROWSER, True, MachineReason.HEAD_REQUEST)
    scanner = classify(
        kind=kind, method=method, user_agent=CURL, seconds_since_sent=LATER, too_soon=TOO_SOON
    )
    assert scanner == Verdict(AgentClass.LINK_SCANNER, True, MachineReason.HEAD_REQUEST)


@pytest.mark.parametrize(
    ("seconds", "machine"), [(0.0, True), (2.5, True), (9.999, True), (10.0, False), (75.0, False)]
)
def test_a_click_before_a_person_could_have_read_the_message_is_a_machine(
    seconds: float, machine: bool
) -> None:
    verdict = classify(
        kind=CLICK, method="GET", user_agent=CHROME, seconds_since_sent=seconds, too_soon=TOO_SOON
    )
    # Safe Links claims to be Chrome on Windows: only the time gives it away.
    assert verdict.agent is AgentClass.BROWSER
    assert verdict.machine is machine
    assert verdict.reason is (MachineReason.TOO_SOON if machine else None)


def test_an_open_seconds_after_sending_is_a_person_with_their_inbox_open() -> None:
    verdict = classify(
        kind=OPEN, method="GET", user_agent=IPHONE_MAIL, seconds_since_sent=2.0, too_soon=TOO_SOON
    )
    assert verdict == Verdict(AgentClass.MOBILE, False, None)


def test_without_a_sending_time_only_the_request_decides() -> None:
    person = classify(
        kind=CLICK, method="GET", user_agent=FIREFOX, seconds_since_sent=None, too_soon=TOO_SOON
    )
    assert person == Verdict(AgentClass.BROWSER, False, None)


def test_agent_of_ignores_case_and_surrounding_space() -> None:
    assert agent_of("  mozilla/5.0 \t") is AgentClass.PRIVACY_PROXY
    assert agent_of(OUTLOOK_DESKTOP.upper()) is AgentClass.MAIL_CLIENT
    assert agent_of("Mozilla/5.0 (Windows NT 10.0) FakeBrowser") is AgentClass.UNKNOWN


def test_every_link_at_once_is_flagged_and_a_person_reading_along_is_not() -> None:
    clicks = [
        (100.0, 0),  # a filter: links 0, 1, 2 within a second
        (100.3, 1),
        (100.9, 2),
        (160.0, 1),  # the person, a minute later, one link
        (400.0, 3),  # then another, minutes apart
        (401.0, 3),  # and the same link again (a double click is not a scan)
    ]
    assert all_at_once(clicks, window=2.0) == {0, 1, 2}


def test_the_window_is_inclusive_and_looks_both_ways() -> None:
    clicks = [(10.0, 1), (12.0, 0), (20.0, 2), (22.0001, 3)]
    assert all_at_once(clicks, window=2.0) == {0, 1}
    assert all_at_once(clicks, window=0.0) == set()
    assert all_at_once([], window=2.0) == set()
    assert all_at_once([(5.0, 0)], window=2.0) == set()


def test_positions_refer_to_the_list_as_given_not_in_time_order() -> None:
    clicks = [(50.0, 2), (0.0, 0), (49.5, 1), (0.1, 0), (300.0, 4)]
    assert all_at_once(clicks, window=1.0) == {0, 2}


def test_all_at_once_matches_the_definition_on_random_clicks() -> None:
    rng = random.Random(18)  # seeded: the same cases every run
    for _ in range(200):
        clicks = [(rng.uniform(0, 60), rng.randrange(4)) for _ in range(rng.randrange(12))]
        window = rng.choice([0.5, 2.0, 5.0])
        expected = {
            n
            for n, (at, link) in enumerate(clicks)
            if any(abs(at - t) <= window and other != link for t, other in clicks)
        }
        assert all_at_once(clicks, window=window) == expected


def test_a_negative_window_is_refused() -> None:
    with pytest.raises(ValueError, match="window"):
        all_at_once([(0.0, 0)], window=-1.0)
