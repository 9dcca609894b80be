"""What the template editor shows: its fields in words, a refused form's problems by field
(the error summary and the inline messages), and a preview made readable: the e-mail as a
sandboxed frame's document, the SMS with its length and segments, the variables with the
values the preview used."""

from __future__ import annotations

import json
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, NamedTuple

from pydantic import ValidationError

from hub.console.email_frame import framed
from hub.schemas.templates import PreviewOut
from hub.services.errors import HubError
from hub.services.template_preview import Sample
from hub.templates import variables
from hub.templates.sms import Encoding, SmsLength, measure


@dataclass(frozen=True, slots=True)
class Part:
    label: str  # beside its field, in its group
    called: str  # in messages and the history, alone
    hint: str
    rows: int
    group: str  # the fieldset it is in


PARTS: dict[str, Part] = {
    "email_subject": Part(
        "Subject",
        "E-mail subject",
        "One line. Leave every e-mail part empty to send no e-mail.",
        1,
        "E-mail",
    ),
    "email_html": Part(
        "HTML body (optional)",
        "E-mail HTML",
        "Inline styles work best in mail clients. The company name and the preferences and "
        "unsubscribe links are added below it.",
        8,
        "E-mail",
    ),
    "email_text": Part(
        "Text body",
        "E-mail text",
        "For mail programs that show no HTML. Left empty, it is made from the HTML body.",
        6,
        "E-mail",
    ),
    "sms_body": Part(
        "SMS text",
        "SMS text",
        "One character outside the GSM alphabet (Cyrillic, a curly quote, an emoji) halves "
        "what fits in each SMS: the preview counts the segments.",
        3,
        "SMS",
    ),
    "voice_say": Part(
        "What the call says",
        "Voice call script",
        "Read aloud in the contact's language.",
        3,
        "Voice",
    ),
    "webhook_json": Part(
        "Webhook JSON",
        "Webhook JSON",
        'A JSON document; every string in it is a template, e.g. {"text": "Hello {{ '
        'contact.name }}"}.',
        5,
        "Webhook",
    ),
}
DESCRIPTION = Part(
    "Description (optional)",
    "Description",
    "What the template is for, for your colleagues; the same in every language.",
    2,
    "",
)
OTHER_FIELDS = {
    "description": ("description", DESCRIPTION.called),
    "contact": ("contact", "Preview for contact"),
    "data": ("pdata", "Data"),
}
CHANNELS = {"email": "E-mail", "sms": "SMS", "voice": "Voice call", "webhook": "Webhook"}

_LINE = re.compile(r"\.\s*\(line")


class Problems:
    """Why a form was refused: the summary's entries in order (the id of the field each links
    to, None for none) and one message per field for beside it."""

    def __init__(self, locale: str) -> None:
        self.locale = locale
        self.items: list[tuple[str | None, str]] = []
        self.inline: dict[str, str] = {}

    def __bool__(self) -> bool:
        return bool(self.items)

    def add(self, target: str | None, message: str) -> None:
        self.items.append((target, message))
        if target is not None:
            self.inline.setdefault(target, message)

    def extend(self, items: list[tuple[str | None, str]]) -> None:
        for target, message in items:
            self.items.append((target, message))

    def at(self, path: str, message: str) -> None:
        """A problem named by its path in a template ("variants.ru.sms_body"), a preview
        field ("contact") or the form ("description")."""
        target, label = self._place(path)
        message = _LINE.sub(" (line", message)  # "...statement'. (line 1)": one sentence
        self.add(target, f"{label}: {message}" if label else message)

    def _place(self, path: str) -> tuple[str | None, str]:
        if path in OTHER_FIELDS:
            return OTHER_FIELDS[path]
        if not path.startswith("variants."):
            return None, ""
        locale, _, rest = path.removeprefix("variants.").partition(".")
        name = rest.split(".", 1)[0]
        part = PARTS.get(name)
        if part is None:
            return None, "Template"
        if locale.lower() == self.locale.lower():
            return name, part.called
        return None, f"{part.called} of the {_language(locale)}"


def problems_of(exc: Exception, problems: Problems) -> None:
    """A refusal from the services or the schema, by field."""
    if isinstance(exc, ValidationError):
        for error in exc.errors():
            path = ".".join(str(p) for p in error["loc"])
            problems.at(path or "form", error["msg"].removeprefix("Value error, "))
    elif isinstance(exc, HubError) and isinstance(exc.details, list) and exc.details:
        for detail in exc.details:
            problems.at(str(detail.get("field", "")), str(detail.get("message", "")))
    elif isinstance(exc, HubError):
        problems.add(None, exc.message)
    else:  # the preview's data, typed as JSON
        problems.add("pdata", f"Data is not valid JSON: {exc}")


@dataclass(frozen=True, slots=True)
class ChannelShown:
    channel: str
    title: str
    error: str | None = None
    subject: str | None = None
    frame: str | None = None  # the e-mail's HTML as the frame's document
    text: str | None = None
    sms: str | None = None  # its length and segments in words
    body: str | None = None  # the webhook's JSON, indented


@dataclass(frozen=True, slots=True)
class VariableShown:
    path: str
    found: bool
    value: str


class Advice(NamedTuple):
    """What to do next about a part that fails: words, an example to copy, more words."""

    target: str  # the id of the field it links to
    text: str
    example: str = ""  # shown as code
    then: str = ""


@dataclass
class Shown:
    locale: str | None
    person: str
    channels: list[ChannelShown]
    absent: list[str]  # channels no variant writes
    variables: list[VariableShown]
    problems: list[tuple[str | None, str]] = field(default_factory=list)
    chosen: str | None = None  # why this person, when the Contact field was left empty
    advice: Sequence[Advice] = ()


def shown_preview(rendered: PreviewOut, sample: Sample, paths: list[str]) -> Shown:
    channels = []
    problems: list[tuple[str | None, str]] = []
    for channel, title in CHANNELS.items():
        out = rendered.channels.get(channel)
        if out is None:
            continue
        if out.error is not None:
            channels.append(ChannelShown(channel, title, error=out.error))
            problems.append((f"preview-{channel}", f"{title} could not be rendered: {out.error}"))
        elif channel == "email":
            frame = framed(out.html) if out.html is not None else None
            channels.append(
                ChannelShown(channel, title, subject=out.subject, frame=frame, text=out.text)
            )
        elif channel == "webhook":
            body = json.dumps(out.body, indent=2, ensure_ascii=False)
            channels.append(ChannelShown(channel, title, body=body))
        else:
            sms = sms_words(measure(out.text or "")) if channel == "sms" else None
            channels.append(ChannelShown(channel, title, text=out.text, sms=sms))
    values = sample.values()
    contact: Mapping[str, Any] = values["contact"]
    person = f"{contact.get('name') or contact['external_id']} ({contact['external_id']})"
    found = []
    for path in paths:
        known, value = variables.lookup(values, path)
        found.append(VariableShown(path, known, variables.shown(value) if known else ""))
    absent = [title for channel, title in CHANNELS.items() if channel not in rendered.channels]
    return Shown(sample.locale, person, channels, absent, found, problems)


def sms_words(length: SmsLength) -> str:
    """ "58 characters, 1 SMS (GSM-7: 160 fit in one)" and so on."""
    if not length.segments:
        return "Empty: no SMS."
    count = f"{length.characters} character{'s' if length.characters != 1 else ''}"
    if length.units != length.characters:
        count += f" ({length.units} as counted for {length.encoding})"
    segments = f"{length.segments} SMS segment{'s' if length.segments != 1 else ''}"
    single = 160 if length.encoding is Encoding.GSM_7 else 70
    split = 153 if length.encoding is Encoding.GSM_7 else 67
    why = ""
    if length.encoding is Encoding.UCS_2:
        shown = [f"“{c}”" for c in length.outside_gsm[:3]]
        more = " and others" if len(length.outside_gsm) > len(shown) else ""
        verb = "is" if len(shown) == 1 and not more else "are"
        why = f", because {', '.join(shown)}{more} {verb} outside the GSM alphabet"
    limits = f"up to {single} characters fit in one SMS, {split} in each segment of a longer one"
    return f"{count}, {segments}. Sent as {length.encoding}{why}: {limits}."


def _language(locale: str) -> str:
    return f"language {locale}" if locale else "default language"
