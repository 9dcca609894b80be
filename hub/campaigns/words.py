"""Render errors as a campaign's pages say them: the template's `data` is the campaign's."""

from __future__ import annotations

from hub.templates.missing import DATA

CAMPAIGN_DATA = "the campaign's data"


def campaign_words(message: str) -> str:
    """ "the data has no 'offer'" -> "the campaign's data has no 'offer'": a campaign's
    template reads the campaign's data, and that is where a marketer adds what is missing."""
    if message.startswith(f"{DATA} "):
        return CAMPAIGN_DATA + message[len(DATA) :]
    return message
