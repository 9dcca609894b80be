"""Will a campaign's template render for the people it goes to?

One real person of the audience per language and channel (as the resolver picked the
channel for them) has the template rendered with the campaign's data, in the killable render
processes, never in the web process. The dry run shows what they get and each failure with
its part and line; scheduling and resuming are refused while any part fails, so a campaign
cannot fail its deliveries silently.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from typing import Any

from hub.campaigns.words import CAMPAIGN_DATA, campaign_words
from hub.dispatch.audience import Recipient
from hub.domain import Channel
from hub.schemas.campaigns import DryRunOut, RenderErrorOut, RenderOut
from hub.services.errors import Conflict
from hub.services.templates import contact_context
from hub.templates import Links, Rendered, TemplateDoc, TemplateError, sms
from hub.templates.isolation import Attempt, RenderProcesses
from hub.templates.layout import TEXT_FOOTER

# Languages x channels rendered by one check (about a millisecond each, one call a person):
# enough for every language an audience has, bounded for one that is all typos.
MAX_PAIRS = 400
SHOWN = 160  # characters of a sample's text shown
# Where the layout's text footer starts: "\n\n-- \n" (a signature's separator).
FOOTER_SEPARATOR = "\n\n" + TEXT_FOOTER[: TEXT_FOOTER.index("{company}")]
_LINKS = Links(  # the footer's links, as a sample: the real ones are signed per person
    preferences_url="https://hub.invalid/preferences/SAMPLE",
    unsubscribe_url="https://hub.invalid/unsubscribe/SAMPLE",
)
_PART_OF = {Channel.SMS: "sms_body", Channel.VOICE: "voice_say", Channel.WEBHOOK: "webhook_json"}


@dataclass
class Sampler:
    """Fed each person and channel the dry run would send (now or later); keeps the first
    person of each language and channel, and how many people each pair stands for."""

    people: Counter[tuple[str, Channel]] = field(default_factory=Counter)
    first: dict[tuple[str, Channel], Recipient] = field(default_factory=dict)

    def add(self, recipient: Recipient, channel: Channel) -> None:
        pair = (language(recipient.locale), channel)
        self.people[pair] += 1
        self.first.setdefault(pair, recipient)


def language(locale: str | None) -> str:
    """A contact's locale as a group: "ru-RU" and "ru_ru" are one; none is ''."""
    return (locale or "").strip().replace("_", "-").lower()


@dataclass
class Tried:
    renders: list[RenderOut] = field(default_factory=list)
    errors: list[RenderErrorOut] = field(default_factory=list)
    unchecked: int = 0


def try_renders(
    sampler: Sampler,
    *,
    processes: RenderProcesses,
    doc: TemplateDoc,
    data: dict[str, Any],
    topic: dict[str, str],
) -> Tried:
    """Render each sampled pair in the render processes, one call per sampled person."""
    tried = Tried()
    pairs = sorted(sampler.first, key=lambda p: (-sampler.people[p], p))
    tried.unchecked = max(0, len(pairs) - MAX_PAIRS)
    by_person: dict[int, list[tuple[str, Channel]]] = {}
    for pair in sorted(pairs[:MAX_PAIRS]):
        by_person.setdefault(sampler.first[pair].id, []).append(pair)
    for wanted in by_person.values():
        person = sampler.first[wanted[0]]
        context = {
            "contact": contact_context(
                external_id=person.external_id,
                name=person.name,
                locale=person.locale,
                timezone=person.view.timezone,
                attributes=person.attributes,
            ),
            "topic": topic,
            "data": data,
        }
        try:
            attempts = processes.attempts(doc, locale=person.locale, context=context, links=_LINKS)
        except TemplateError as exc:  # does not compile, or overran: every pair of this person
            attempts = [Attempt(channel, person.locale, error=exc) for _, channel in wanted]
        found = {attempt.channel: attempt for attempt in attempts}
        for pair in wanted:
            count = sampler.people[pair]
            attempt = found.get(pair[1])
            if attempt is None:
                if pair[1] is Channel.WEBHOOK:
                    continue  # no webhook part: the notification's data goes as a document
                attempt = Attempt(pair[1], person.locale, error=_missing(doc, pair))
            if attempt.error is not None:
                tried.errors.append(_error(attempt.error, pair, person.external_id, count))
            elif attempt.rendered is not None:
                tried.renders.append(_render(attempt.rendered, pair, person.external_id, count))
    return tried


def of_arm(tried: Tried, *, arm: str, index: int, template: str) -> Tried:
    """An A/B variant's renders and errors, said as that variant's: its name on each, and
    the field as `variants[i].template.<variant>.<part>`."""
    return Tried(
        renders=[r.model_copy(update={"arm": arm}) for r in tried.renders],
        errors=[
            e.model_copy(
                update={
                    "arm": arm,
                    "template": template,
                    "field": f"variants[{index}].{e.field}",
                    "summary": f"variant {arm} ({template}) · {e.summary}",
                }
            )
            for e in tried.errors
        ],
        unchecked=tried.unchecked,
    )


def _missing(doc: TemplateDoc, pair: tuple[str, Channel]) -> TemplateError:
    """The resolver may pick a channel some other variant has: this language has none."""
    part = _PART_OF.get(pair[1], "email_subject")
    return TemplateError(  # the default variant's field ("variants..<part>"), named in words
        f"variants..{part}",
        f"no variant for {pair[0] or 'no language'} (nor the default) of {doc.key!r} "
        f"has what {pair[1]} needs",
    )


def _error(
    exc: TemplateError, pair: tuple[str, Channel], contact: str, people: int
) -> RenderErrorOut:
    where = exc.field.removeprefix("variants.")
    variant, _, part = where.partition(".") if where != exc.field else ("", "", where)
    name = part.split(".", 1)[0]
    served = "" if variant.lower() == pair[0] else f" ({_variant_words(variant)})"
    line = f" · line {exc.line}" if exc.line else ""
    message = campaign_words(exc.message)
    return RenderErrorOut(
        locale=pair[0],
        channel=pair[1],
        field=f"template.{variant}.{part}",  # as clients match it: "template..email_html"
        variant=variant,
        part=name,
        line=exc.line,
        message=message,
        missing=exc.missing,
        contact=contact,
        people=people,
        summary=f"{pair[0] or 'no language'} · {part}{served}{line}: {message}",
    )


def _variant_words(variant: str) -> str:
    return "the default variant" if not variant else f"the {variant} variant"


def _render(rendered: Rendered, pair: tuple[str, Channel], contact: str, people: int) -> RenderOut:
    text = rendered.text if rendered.text is not None else (rendered.body or b"").decode()
    if pair[1] is Channel.EMAIL:  # what was written, without Hub's footer (its links)
        text = text.rsplit(FOOTER_SEPARATOR, 1)[0]
    length = measured = None
    if pair[1] is Channel.SMS:
        measured = sms.measure(text)
        length = measured.characters
    return RenderOut(
        locale=pair[0],
        channel=pair[1],
        contact=contact,
        people=people,
        subject=rendered.subject,
        text=_short(text),
        length=length,
        segments=measured.segments if measured else None,
    )


def _short(text: str) -> str:
    flat = " ".join(text.split())
    return flat if len(flat) <= SHOWN else flat[: SHOWN - 1] + "…"


class WouldNotRender(Conflict):
    """A 409: the campaign's template fails for some of its audience."""

    code = "template_does_not_render"


def refusal(checked: DryRunOut, *, doing: str) -> WouldNotRender | None:
    """The refusal to start sending (`doing`: "scheduled", "resumed") while a part fails."""
    errors = checked.render_errors
    if not errors:
        return None
    people = sum(e.people for e in errors)
    first = errors[0]
    more = f" (and {len(errors) - 1} more, listed in the dry run)" if len(errors) > 1 else ""
    data = any((e.missing or "").startswith("data.") for e in errors)
    fix = f"the template or {CAMPAIGN_DATA}" if data else "the template"
    message = (
        f"Not {doing}: the template does not render for {people} "
        f"{'person' if people == 1 else 'people'} of the audience. "
        f"{first.summary}{more}. Fix {fix}, then try again."
    )
    details = [
        {"field": e.field, "message": e.summary}
        | e.model_dump(
            mode="json", include={"locale", "channel", "part", "line", "people", "missing"}
        )
        for e in errors
    ]
    return WouldNotRender(message, details=details)
