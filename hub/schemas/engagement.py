"""Engagement as the API shows it on a campaign and a notification: opens, clicks and
unsubscribes, people apart from machines.

*Human* figures leave out what was judged a machine's: privacy proxies (Apple Mail Privacy
Protection, Gmail's image proxy) fetch every image of every message, so an "open" by them says
nothing about a person; mail filters follow links to check them before anyone reads the
message. *All* figures count them too. Judge a message by the human ones.
"""

from __future__ import annotations

import datetime as dt

from pydantic import Field

from hub.schemas.base import Out

HUMAN = "not flagged as a machine's"


class LinkOut(Out):
    channel: str = Field(description="The channel whose message held the link: email or sms.")
    index: int = Field(description="The link's place in the message, from 1.")
    url: str | None = Field(description="Where it leads (as recorded when it was followed).")
    people: int = Field(description=f"People who followed it, {HUMAN}.")
    all_people: int = Field(
        description="People whose link was followed by anyone, machines (link scanners) included."
    )


class OverTimeOut(Out):
    start: dt.datetime = Field(description="The whole hour (UTC) the first message was sent in.")
    step_hours: int = Field(
        description="Hours per step: 1, or wider (3, 6, 12, 24, 168) when it spans over 48 steps."
    )
    ends: list[dt.datetime] = Field(description="The end of each step.")
    opens: list[int] = Field(description=f"People who first opened in each step, {HUMAN} (e-mail).")
    clicks: list[int] = Field(
        description=f"People who first clicked in each step, {HUMAN} (e-mail)."
    )


class EngagementOut(Out):
    """What people did with the e-mail (and SMS links): human figures leave out privacy
    proxies and link scanners; `*_all` ones count them. Rates are per person delivered to."""

    tracked: bool = Field(
        description="Whether opens and clicks were tracked: its own setting, else its "
        "topic's. People who turned tracking off are never tracked, so the rates count them "
        "as neither opening nor clicking."
    )
    delivered: int = Field(
        description="E-mails a mail server accepted (state sent or delivered), all runs."
    )
    delivered_people: int = Field(description="People those e-mails reached.")
    bounced: int = Field(description="E-mails that bounced.")
    opened: int = Field(
        description=f"People who opened the e-mail, {HUMAN}: their mail client fetched its "
        "image. Mail clients that block images open without it being seen."
    )
    opened_all: int = Field(
        description="People whose e-mail was opened by anyone, privacy proxies included: a "
        "proxy opens every message, read or not."
    )
    clicked: int = Field(description=f"People who followed a link of the e-mail, {HUMAN}.")
    clicked_all: int = Field(
        description="People whose e-mail's link was followed by anyone, link scanners included."
    )
    open_rate: float | None = Field(
        description="Human openers per person delivered to (0-1); null when none was delivered."
    )
    click_rate: float | None = Field(
        description="Human clickers per person delivered to (0-1); null when none was delivered."
    )
    click_to_open: float | None = Field(
        description="Human clickers per human opener; can pass 1 when images are blocked. "
        "Null when nobody opened."
    )
    machine_opens: dict[str, int] = Field(
        description="Opens recorded as a machine's, by why: privacy_proxy, scanner_agent, "
        "head_request, too_soon, all_links."
    )
    machine_clicks: dict[str, int] = Field(
        description="Clicks recorded as a machine's (the first per message and link), by why."
    )
    links: list[LinkOut] = Field(description="Clicks per link, by the link's place.")
    unsubscribed: int = Field(
        description="People who unsubscribed because of it: it reached them and they then "
        "left its topic, or unsubscribed from everything, within 30 days and before the next "
        "message of that topic reached them."
    )
    over_time: OverTimeOut | None = Field(
        description="Human first opens and clicks per hour since the send; null before any."
    )
    sms_delivered: int = Field(description="SMS accepted or delivered.")
    sms_clicked: int = Field(description=f"People who followed a link of the SMS, {HUMAN}.")
    sms_clicked_all: int = Field(
        description="People whose SMS link was followed by anyone, link scanners included."
    )
