"""Who opened or clicked: a person, or a machine acting before them (a pure function of the hit).

A privacy proxy fetches every image of every message as it arrives; a mail filter follows every
link to check it; neither means a person read anything. They are recorded and flagged, never
dropped: reports show human figures and all of them side by side. The user agent is only a
claim, so the time since sending and the shape of the clicks (`all_at_once`) weigh in too;
a scanner that claims to be Chrome on Windows (Microsoft's Safe Links does) is caught by those.
"""

from __future__ import annotations

import collections
import functools
import re
from collections.abc import Sequence
from dataclasses import dataclass

from hub.domain import AgentClass, EngagementKind, MachineReason

# --- What the user agent says (data: add a vendor here, with where its string was seen) --------

# Privacy proxies: they fetch every image of a message before (or without) the person opening it.
# Sources: Matomo device-detector regexes/bots.yml ("via ggpht.com GoogleImageProxy",
# "YahooMailProxy", "YahooCacheSystem", "SeznamEmailProxy", "via secureurl.fwdcdn.com" for
# UkrNet); ua-parser/uap-core issue 509 (Apple Mail Privacy Protection sends the bare
# "Mozilla/5.0", since 2021-09-20); GMass's "false opens in Gmail" and Bird's "Gmail is
# prefetching images" (Gmail's prefetch: a 2015 Edge string with " Mozilla/5.0" again at the end).
PROXY_SUBSTRINGS = (
    "googleimageproxy",
    "yahoomailproxy",
    "yahoocachesystem",
    "seznamemailproxy",
    "secureurl.fwdcdn.com",
)
PROXY_EXACT = frozenset(
    {
        "mozilla/5.0",
        "mozilla/5.0 (windows nt 10.0; win64; x64) applewebkit/537.36 (khtml, like gecko) "
        "chrome/42.0.2311.135 safari/537.36 edge/12.246 mozilla/5.0",
    }
)

# Link scanners of mail filters, previews and scripts. Sources: the scanner families named in
# mautic/mautic issues 9162 and 16263 and resend/resend-node issue 901 (Barracuda, Proofpoint,
# Mimecast, Microsoft Defender), device-detector bots.yml ("Barracuda Sentinel", "BingPreview",
# "MicrosoftPreview", "Chrome Privacy Preserving Prefetch Proxy", "s~virustotalcloud") and
# client/libraries.yml (curl, Wget, python-requests, Python-urllib, Go-http-client, Java/,
# Apache-HttpClient, okhttp, libwww-perl, aiohttp, python-httpx, node-fetch), phpList issue 415
# (BingPreview following links in Outlook.com mail), GMass's bot list ("AHC/", "HubSpot Connect"),
# browscap issue 305 ("Microsoft Office Protocol Discovery": Office checking a link it was given).
SCANNER_SUBSTRINGS = (
    "barracuda",
    "proofpoint",
    "mimecast",
    "symantec",
    "messagelabs",
    "trendmicro",
    "trend micro",
    "ciscosecureemail",
    "ironport",
    "fortimail",
    "forcepoint",
    "sophos",
    "zscaler",
    "mcafee",
    "virustotal",
    "safelinks",
    "bingpreview",
    "microsoftpreview",
    "prefetch",
    "preview",
    "headlesschrome",
    "phantomjs",
    "puppeteer",
    "selenium",
    "python-requests",
    "python-urllib",
    "python-httpx",
    "aiohttp",
    "curl",
    "wget",
    "go-http-client",
    "java/",
    "apache-httpclient",
    "okhttp",
    "libwww",
    "node-fetch",
    "axios/",
    "ahc/",
    "hubspot connect",
    "protocol discovery",
    "existence discovery",
    "spider",
    "crawl",
    "scanner",
)
# "bot" as a word ending (Googlebot, bingbot, YandexBot, "bot/1.0"), but not Cubot, a phone maker.
_BOT = re.compile(r"(?<!cu)bot(?![a-z])")

# People. A phone's browser or mail app; then desktop mail clients (device-detector's
# client/pim.yml names; Apple Mail on a Mac sends WebKit's string without "Safari", as
# medama-io/go-useragent issue 10 and uap-core issue 528 show; Outlook on Windows loads images
# as an old MSIE naming "Microsoft Outlook" and "ms-office", httpagentparser issue 91); then
# desktop browsers.
MOBILE_SUBSTRINGS = ("iphone", "ipad", "ipod", "android", "mobile", "outlook-ios")
MAIL_CLIENT_SUBSTRINGS = (
    "outlook",
    "microsoft office",
    "msoffice",
    "windowsmail",
    "windows-live-mail",
    "thunderbird",
    "icedove",
    "airmail",
    "lotus-notes",
    "postbox",
    "the bat!",
    "mailbird",
    "em client",
    "emclient",
    "mailspring",
    "foxmail",
    "bluemail",
    "evolution/",
    "kmail",
)
_APPLE_MAIL = re.compile(r"^mail/\d|applewebkit/[\d.]+ \(khtml, like gecko\)$")
BROWSER_SUBSTRINGS = (
    "firefox/",
    "chrome/",
    "chromium/",
    "crios/",
    "edg/",
    "opr/",
    "opera",
    "safari/",
    "msie ",
    "trident/",
)


@dataclass(frozen=True, slots=True)
class Verdict:
    """What a hit was, as far as its request tells, and whether it counts as a person's."""

    agent: AgentClass
    machine: bool
    reason: MachineReason | None


def _is_proxy(ua: str) -> bool:
    return ua in PROXY_EXACT or any(s in ua for s in PROXY_SUBSTRINGS)


def _is_scanner(ua: str) -> bool:
    return not ua or any(s in ua for s in SCANNER_SUBSTRINGS) or _BOT.search(ua) is not None


# Every hit asks, repeats included: 13.5 us a string, 0.1 us remembered.
@functools.lru_cache(maxsize=4096)
def agent_of(user_agent: str | None) -> AgentClass:
    """The kind of client a user agent string names (a proxy stays a proxy here)."""
    ua = " ".join((user_agent or "").lower().split())
    if _is_proxy(ua):
        return AgentClass.PRIVACY_PROXY
    if _is_scanner(ua):
        return AgentClass.LINK_SCANNER
    if any(s in ua for s in MOBILE_SUBSTRINGS):
        return AgentClass.MOBILE
    if any(s in ua for s in MAIL_CLIENT_SUBSTRINGS) or _APPLE_MAIL.search(ua):
        return AgentClass.MAIL_CLIENT
    if any(s in ua for s in BROWSER_SUBSTRINGS):
        return AgentClass.BROWSER
    return AgentClass.UNKNOWN


def classify(
    *,
    kind: EngagementKind,
    method: str,
    user_agent: str | None,
    seconds_since_sent: float | None,
    too_soon: float,
) -> Verdict:
    """Whether one open or click was a machine's, and why (the first reason that applies).

    HEAD first (a person's browser or mail client GETs), then what the user agent names, then,
    for a click, the time since sending. An open is not judged by time: a person with their inbox
    open sees a new message, and fetches its images, within seconds; a click needs reading first.
    """
    agent = agent_of(user_agent)
    if kind is EngagementKind.CLICK and agent is AgentClass.PRIVACY_PROXY:
        agent = AgentClass.LINK_SCANNER  # a proxy fetches images; one following links scans them
    if method.upper() == "HEAD":
        return Verdict(agent, True, MachineReason.HEAD_REQUEST)
    if agent is AgentClass.PRIVACY_PROXY:
        return Verdict(agent, True, MachineReason.PRIVACY_PROXY)
    if agent is AgentClass.LINK_SCANNER:
        return Verdict(agent, True, MachineReason.SCANNER_AGENT)
    if (
        kind is EngagementKind.CLICK
        and seconds_since_sent is not None
        and seconds_since_sent < too_soon
    ):
        return Verdict(agent, True, MachineReason.TOO_SOON)
    return Verdict(agent, False, None)


def all_at_once(clicks: Sequence[tuple[float, int]], *, window: float) -> set[int]:
    """Positions in `clicks` ((monotonic seconds, link index) of one delivery) of every click
    with a click on another link of the message within `window` seconds of it, either side.

    People follow one link, maybe a second a while later; a filter checking the message follows
    them all in a moment. One sweep over the clicks in time order, with the links of the clicks
    within `window` of the current one counted, so a long list costs n log n, not n².
    """
    if window < 0:
        raise ValueError(f"window must not be negative, got {window}")
    order = sorted(range(len(clicks)), key=lambda n: clicks[n][0])
    in_window: collections.Counter[int] = collections.Counter()
    flagged: set[int] = set()
    first = last = 0  # the clicks counted are order[first:last]
    for n in order:
        at = clicks[n][0]
        while last < len(order) and clicks[order[last]][0] <= at + window:
            in_window[clicks[order[last]][1]] += 1
            last += 1
        while clicks[order[first]][0] < at - window:
            link = clicks[order[first]][1]
            in_window[link] -= 1
            if not in_window[link]:
                del in_window[link]
            first += 1
        if len(in_window) > 1:  # this click's own link is one of them
            flagged.add(n)
    return flagged
